// The pure HTTP tracker codec (BEP 3, 7, 23, 48): raw announce/scrape query strings in,
// protocol-neutral requests out; responses and failures out as bencoded bodies; the client
// address rule for trusted proxies. It owns no socket, reads no clock and keeps no state; HTTP
// framing, status codes and headers belong to the HTTP server.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "tracker/announce.hpp"

namespace ringtracker::tracker::http {

/// Longest raw query accepted. A real announce is ~300 bytes even with every byte of both
/// hashes percent-encoded; 4 KiB leaves room for private-tracker extras and still bounds the
/// parsing work per request.
inline constexpr std::size_t kQueryBytesMax = 4096;

/// Most info_hash values one HTTP scrape may carry (repeats counted). BEP 15 fits 74 hashes in
/// one UDP scrape; HTTP gets the same per-request bound so both front ends cost the store the same
/// at most, and a scrape reply stays a few KiB. 74 hashes (>= 31 query bytes each) fit inside
/// kQueryBytesMax, so this limit is reachable and tested, not only implied by the query length.
inline constexpr std::size_t kScrapeHashesMax = 74;

/// Longest decoded value of a small (non-hash) parameter: ip text, numbers, key. Longer values
/// are an error, so decoding uses a fixed stack buffer and never allocates.
inline constexpr std::size_t kSmallValueBytesMax = 64;

struct ParsedAnnounce {
  /// peer.port is set from port=; peer.ip is left unset (the caller applies socket/proxy rules).
  /// families stays `both`: HTTP answers carry peers and peers6.
  AnnounceRequest request;
  bool compact = true;  // compact=0 -> dictionary model (BEP 3); compact is the default (BEP 23)
  bool no_peer_id = false;
  /// From ip=, else ipv4=, else ipv6= (BEP 3, BEP 7), the first of them that parses as an
  /// address ("[v6]:port" and "v4:port" forms too). A host name is ignored. Trusted only by the
  /// caller, and only from trusted proxies (see client_address).
  std::optional<IpAddress> ip_param;
};

/// Parses an announce query. `raw_query` is the bytes after '?', still percent-encoded.
/// Keys are matched as sent (not decoded); values of known keys are percent-decoded, where '+'
/// stays '+' and %00 is a byte like any other. Unknown keys are ignored and not validated.
/// Required: info_hash and peer_id (exactly 20 bytes each), port (1..65535) and left (it decides
/// seeder or leecher, so it is not guessed). uploaded/downloaded default to 0. Every known key
/// may appear once. numwant: absent or negative -> -1 (store default), larger than INT32_MAX ->
/// INT32_MAX. key: up to 8 hex digits, else a decimal u32, else a 32-bit FNV-1a of the bytes.
/// event: started, completed, stopped, empty or paused (paused = none).
/// Error: a human readable reason naming the parameter, for a `failure reason` reply.
Expected<ParsedAnnounce, std::string> parse_announce(std::string_view raw_query);

/// Parses a scrape query: every info_hash (20 bytes each, repeats kept, at most
/// kScrapeHashesMax). No info_hash at all is an error (full scrape is not supported).
Expected<ScrapeRequest, std::string> parse_scrape(std::string_view raw_query);

/// Bencoded announce reply. Always: complete, downloaded, incomplete, interval, min interval,
/// peers. compact: peers = 6-byte IPv4 entries, peers6 = 18-byte IPv6 entries (BEP 7), both
/// always present (empty strings when none). Not compact: peers = list of dicts
/// {ip (text), peer id (unless no_peer_id, BEP 23), port} with both families; no peers6.
std::string encode_announce(const AnnounceResponse& r, bool compact, bool no_peer_id);

/// Bencoded scrape reply (BEP 48): `files` dict keyed by the raw 20-byte hash, sorted, each hash
/// once (the first entry of a repeated hash wins), each value {complete, downloaded, incomplete}.
std::string encode_scrape(const ScrapeResponse& r);

/// `d14:failure reason<len>:<reason>e`, to be sent with HTTP 200 (BEP 3).
std::string encode_failure(std::string_view reason);

/// The address to record for the client. The socket address, unless the socket address is
/// inside `trusted_proxies`; then X-Forwarded-For is walked from the right and the first entry
/// that is not itself trusted is the client. If every entry is trusted, the left-most (the
/// origin) is the client. If there is no X-Forwarded-For, or an entry that does not parse is met
/// before an untrusted one, ip_param (trusted because a trusted proxy relayed it) is used when
/// present, else the socket address. `x_forwarded_for` is the header value (several headers
/// joined with ','); entries may be "a.b.c.d", "v6", "a.b.c.d:port" or "[v6]:port".
IpAddress client_address(const IpAddress& socket_ip, std::string_view x_forwarded_for,
                         const std::optional<IpAddress>& ip_param,
                         std::span<const IpNetwork> trusted_proxies);

}  // namespace ringtracker::tracker::http
