// Pure BEP 15 (UDP tracker) and BEP 41 (URLData options) codec: datagram bytes <-> plain structs.
// It does not check connection ids, pick peers, count drops or touch sockets; the UDP server does.
// The client-side half (request writers, response parser) exists for tests and load generators.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "tracker/announce.hpp"

namespace ringtracker::tracker::udp {

/// BEP 15: the magic constant a connect request carries in place of a connection id.
inline constexpr std::uint64_t kProtocolId = 0x41727101980ULL;

/// BEP 15 fixed sizes: connect 16 bytes; announce 98 bytes before BEP 41 options; scrape header 16
/// bytes plus at least one 20-byte info-hash.
inline constexpr std::size_t kConnectSize = 16, kAnnounceMinSize = 98, kScrapeMinSize = 16 + 20;
/// BEP 15: "up to about 74 torrents can be scraped at once": 16 + 74 * 20 = 1496 bytes, the
/// BEP's figure for a 1500-byte packet (it leaves out the IP and UDP headers, so such a request
/// may arrive fragmented; we accept it). More hashes -> too_many_hashes.
inline constexpr std::size_t kScrapeHashesMax = 74;

/// Every reply we write fits 1232 bytes, the UDP payload of the IPv6 minimum MTU (RFC 8200:
/// 1280 - 40 IPv6 - 8 UDP), so no reply is ever fragmented on any path, either family.
inline constexpr std::size_t kReplyBytesMax = 1280 - 40 - 8;
/// Announce reply header (action, tid, interval, leechers, seeders).
inline constexpr std::size_t kAnnounceReplyHeader = 20;
/// Peers per announce reply: 20 + 200 * 6 = 1220 and 20 + 66 * 18 = 1208, both <= kReplyBytesMax
/// (200 is also the customary tracker cap; 66 keeps the v6 reply the same size as the v4 one).
inline constexpr std::size_t kPeersV4Max = 200, kPeersV6Max = 66;
/// Size of every out buffer the writers are given: an Ethernet MTU minus the IPv4 (20) and UDP (8)
/// headers. Writers stay within kReplyBytesMax; the extra room is slack, not a promise.
inline constexpr std::size_t kDatagramMax = 1500 - 28;
/// Longest URLData (BEP 41) we keep from one announce. Announce paths with a passkey are well
/// under 300 bytes; this bounds memory for jumbo/loopback datagrams. Longer -> bad_option.
inline constexpr std::size_t kUrlDataMax = 1024;

/// Largest request the client-side writers produce (a 74-hash scrape; the largest announce is
/// 98 + kUrlDataMax + its option headers), hence their out-buffer contract.
inline constexpr std::size_t kRequestBytesMax = kConnectSize + kScrapeHashesMax * 20;

static_assert(kAnnounceMinSize + kUrlDataMax + (kUrlDataMax / 255 + 1) * 2 + 1 <= kRequestBytesMax);
static_assert(kAnnounceReplyHeader + kPeersV4Max * 6 <= kReplyBytesMax);
static_assert(kAnnounceReplyHeader + kPeersV6Max * 18 <= kReplyBytesMax);
static_assert(8 + kScrapeHashesMax * 12 <= kReplyBytesMax);
static_assert(kReplyBytesMax <= kDatagramMax);

enum class Action : std::uint32_t { connect = 0, announce = 1, scrape = 2, error = 3 };

struct ConnectRequest {
  std::uint32_t transaction_id = 0;
};

struct AnnouncePacket {
  std::uint64_t connection_id = 0;
  std::uint32_t transaction_id = 0;
  /// peer.port is set; peer.ip is left unset (the caller uses the socket address); families is
  /// left at its default (the caller knows the socket's family).
  AnnounceRequest request;
  /// BEP 15 "IP address" field (0 = use the source address). Callers ignore it unless trusted.
  std::uint32_t ip_field = 0;
  /// BEP 41 URLData options concatenated in order (at most kUrlDataMax bytes).
  std::string url_data;
};

struct ScrapePacket {
  std::uint64_t connection_id = 0;
  std::uint32_t transaction_id = 0;
  std::vector<InfoHash> info_hashes;  // 1..kScrapeHashesMax, request order, repeats kept
};

using Request = std::variant<ConnectRequest, AnnouncePacket, ScrapePacket>;

enum class ParseErrorKind : std::uint8_t {
  too_short,          // shorter than its action's fixed size (or than 16 bytes)
  bad_protocol_id,    // connect without the BEP 15 magic
  unknown_action,     // action not 0, 1 or 2 (an error packet from a client is unknown too)
  bad_scrape_length,  // scrape body not a whole number of 20-byte hashes
  too_many_hashes,    // scrape with more than kScrapeHashesMax hashes
  bad_option,         // BEP 41 URLData longer than kUrlDataMax in total
  bad_event,          // announce event not 0..3
};

/// What went wrong, and what of the packet was readable. transaction_id and connection_id are set
/// only when the packet was long enough to carry them and was not a connect (a connect carries
/// the protocol id, not a connection id): the caller may answer with an error only if the
/// connection id verifies for the source address.
struct ParseError {
  ParseErrorKind kind;
  std::optional<std::uint32_t> transaction_id;
  std::optional<std::uint64_t> connection_id;
};

/// Counter name for a parse error, e.g. "udp_too_short".
std::string_view to_string(ParseErrorKind kind);

/// Parses one client datagram. Never throws; allocates at most 74 hashes or kUrlDataMax bytes.
/// Bytes past a connect's 16 are ignored. BEP 41 options start at byte 98 of an announce:
/// EndOfOptions (0) stops, NOP (1) is one byte, URLData (2) appends its data, any other type has a
/// length byte and is skipped. A truncated option list (a type without its length byte, or a
/// length running past the end) ends option parsing and the announce is accepted with the
/// complete options read so far; the truncated option's data is discarded.
Expected<Request, ParseError> parse_request(std::span<const std::uint8_t> datagram);

/// The info-hash of a datagram shaped like an announce (long enough, action 1), or nullopt;
/// nothing else is checked: for hints ahead of parse_request, never for answers.
std::optional<InfoHash> peek_announce_info_hash(std::span<const std::uint8_t> datagram);

// Writers fill `out` and return the bytes written. Contract: out.size() >= kDatagramMax (asserted).
// Every reply is at most kReplyBytesMax bytes.

/// Connect reply: action 0, tid, connection id (16 bytes).
std::size_t write_connect(std::uint32_t transaction_id, std::uint64_t connection_id,
                          std::span<std::uint8_t> out);
/// Announce reply: action 1, tid, interval, leechers, seeders, then only the peers of the family
/// chosen by `ipv6` (6 bytes IPv4 or 18 bytes IPv6 each), in the given order, clamped to
/// kPeersV4Max / kPeersV6Max.
std::size_t write_announce(std::uint32_t transaction_id, const AnnounceResponse& r, bool ipv6,
                           std::span<std::uint8_t> out);
/// Scrape reply: action 2, tid, then (seeders, completed, leechers) per entry in the given order,
/// clamped to kScrapeHashesMax entries.
std::size_t write_scrape(std::uint32_t transaction_id, const ScrapeResponse& r,
                         std::span<std::uint8_t> out);
/// Error reply: action 3, tid, message bytes without a NUL, truncated (at a UTF-8 boundary) so
/// the reply fits kReplyBytesMax.
std::size_t write_error(std::uint32_t transaction_id, std::string_view message,
                        std::span<std::uint8_t> out);

// ---- Client side (tests, load generators) ----

// Contract for these writers: out.size() >= kRequestBytesMax (asserted).

/// Connect request (16 bytes).
std::size_t write_connect_request(std::uint32_t transaction_id, std::span<std::uint8_t> out);
/// Announce request: 98 bytes, then `url_data` as URLData options of at most 255 bytes each and
/// EndOfOptions when url_data is not empty. Uses request.peer.port, not request.peer.ip.
/// Contract: url_data.size() <= kUrlDataMax.
std::size_t write_announce_request(const AnnouncePacket& p, std::span<std::uint8_t> out);
/// Scrape request. Contract: 1..kScrapeHashesMax hashes.
std::size_t write_scrape_request(const ScrapePacket& p, std::span<std::uint8_t> out);

struct ConnectReply {
  std::uint32_t transaction_id = 0;
  std::uint64_t connection_id = 0;
};
struct AnnounceReply {
  std::uint32_t transaction_id = 0;
  std::uint32_t interval_s = 0;
  std::uint32_t leechers = 0;
  std::uint32_t seeders = 0;
  std::vector<SocketAddress> peers;
};
struct ScrapeReply {
  std::uint32_t transaction_id = 0;
  std::vector<ScrapeEntry> files;  // info_hash left zero: the reply does not carry it
};
struct ErrorReply {
  std::uint32_t transaction_id = 0;
  std::string message;
};
using Reply = std::variant<ConnectReply, AnnounceReply, ScrapeReply, ErrorReply>;

/// Parses a tracker reply; `ipv6` selects the 18-byte peer format. Errors: too_short,
/// unknown_action, or bad_scrape_length (a body that is not whole entries or peers).
Expected<Reply, ParseErrorKind> parse_reply(std::span<const std::uint8_t> datagram, bool ipv6);

}  // namespace ringtracker::tracker::udp
