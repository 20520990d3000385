// The pure HTTP/1.x request-head reader of the HTTP front end: bytes as they arrive in, one
// parsed request line + the few headers a tracker needs out (views into the caller's buffer),
// with hard limits and an error class that maps to a status code. It owns no buffer, no socket
// and no clock; it never allocates. Bodies are not read: a request announcing one is an error.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ringtracker::tracker::http {

/// Most X-Forwarded-For header lines kept for one request. One per proxy hop is normal and
/// chains are short; more lines than this is not a proxy chain but an attempt to make the
/// server join unbounded lists, so it is answered as too large.
inline constexpr std::size_t kForwardedForLinesMax = 8;

enum class Method : std::uint8_t { get, head };

/// Why a head was refused. Every error ends the connection after the answer.
enum class HeadError : std::uint8_t {
  bad_request,            // 400: malformed request line or header, control bytes, no version
  method_not_allowed,     // 405: a well-formed method other than GET or HEAD
  body_not_accepted,      // 413: Content-Length > 0 or any Transfer-Encoding (trackers GET)
  too_large,              // 431: the head does not fit in the configured byte bound
  version_not_supported,  // 505: HTTP/2.x and later in an HTTP/1 request line
};

/// One parsed request head. The views point into the bytes given to HttpRequestReader::read
/// and stay valid while the caller keeps those bytes unchanged.
struct RequestHead {
  Method method = Method::get;
  /// origin-form ("/path?query"); an absolute-form target ("http://host/path") is reduced to
  /// its path and query. Never empty, always starts with '/'.
  std::string_view target;
  std::uint8_t version_minor = 1;      // HTTP/1.0 -> 0, HTTP/1.1 (and 1.x) -> 1
  bool connection_close = false;       // a "close" token in a Connection header
  bool connection_keep_alive = false;  // a "keep-alive" token in a Connection header
  /// X-Forwarded-For values in the order received (empty values skipped).
  std::array<std::string_view, kForwardedForLinesMax> forwarded_for{};
  std::size_t forwarded_for_count = 0;

  /// What the client asked for: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
  /// "keep-alive" (and no "close"). The server may still close.
  bool wants_keep_alive() const {
    if (connection_close) return false;
    return version_minor >= 1 || connection_keep_alive;
  }
};

/// Incremental reader for one connection's request heads. Feed it the connection's unconsumed
/// bytes (the same prefix, growing) until it answers complete or error; after a complete head
/// the caller drops `consumed` bytes from the front of its buffer and calls reset() before
/// reading the next (pipelined) head. Work per call is proportional to the new bytes only.
///
/// Accepted: "METHOD SP target SP HTTP/1.d" then header lines "name: value", lines ending in
/// CRLF or bare LF, the head ending in an empty line; empty lines before the request line are
/// skipped (RFC 9112 section 2.2). Refused: control bytes other than HT/CR-before-LF anywhere
/// (at once, before the head is complete, so binary junk does not wait for the timeout), header
/// folding, whitespace before a header's colon, missing or malformed version, a head (with the
/// skipped empty lines) longer than `head_bytes_max`.
class HttpRequestReader {
 public:
  enum class Status : std::uint8_t { incomplete, complete, error };

  struct Result {
    Status status = Status::incomplete;
    HeadError error = HeadError::bad_request;  // meaningful when status == error
    std::size_t consumed = 0;  // complete: bytes of the head, leading empty lines included
    RequestHead head;          // meaningful when status == complete
  };

  /// `head_bytes_max` > 0: the largest head accepted, which is also the caller's buffer size.
  explicit HttpRequestReader(std::size_t head_bytes_max);

  /// `buffered`: every byte received and not yet consumed, starting at the same place as on
  /// the previous call since the last reset(). Once it has answered error it keeps answering it.
  Result read(std::string_view buffered);

  /// Forget the scan position (after the caller consumed a complete head, or on a new
  /// connection).
  void reset();

 private:
  std::size_t head_bytes_max_;
  std::size_t scanned_ = 0;     // bytes already checked: no head end, no forbidden byte
  std::size_t head_start_ = 0;  // first byte after skipped leading empty lines
  std::size_t line_start_ = 0;  // first byte of the line being scanned
  bool failed_ = false;
  HeadError error_ = HeadError::bad_request;
};

}  // namespace ringtracker::tracker::http
