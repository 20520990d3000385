#define BOOST_TEST_MODULE http_codec
#include "tracker/http_codec.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <ostream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "bencode/bencode.hpp"

namespace ringtracker {
// Found by argument-dependent lookup so BOOST_TEST can print addresses in failure messages.
inline std::ostream& boost_test_print_type(std::ostream& os, const IpAddress& a) {
  return os << a.to_string();
}
inline std::ostream& boost_test_print_type(std::ostream& os, const std::optional<IpAddress>& a) {
  return os << (a ? a->to_string() : std::string("<none>"));
}
}  // namespace ringtracker

using namespace ringtracker;
using namespace ringtracker::tracker;
using namespace ringtracker::tracker::http;
namespace bdata = boost::unit_test::data;

namespace {

// A hash with the bytes naive parsers get wrong: NUL, '+', '&', '%', '=', high bytes.
const InfoHash kHash = {0x00, 0x2b, 0x26, 0x25, 0x3d, 0xff, 0x00, 0x80, 0x20, 0x41,
                        0x00, 0x00, 0x7f, 0x3f, 0x23, 0x01, 0x02, 0x03, 0xfe, 0x00};
const PeerId kPeer = {'-', 'R', 'T', '0', '0', '0', '1', '-', 0x00, 0x01,
                      0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x00};

std::string pct(const std::uint8_t* p, std::size_t n) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back('%');
    out.push_back(kHex[p[i] >> 4]);
    out.push_back(kHex[p[i] & 15]);
  }
  return out;
}
template <std::size_t N>
std::string pct(const std::array<std::uint8_t, N>& a) {
  return pct(a.data(), N);
}

const std::string kHashQ = pct(kHash);
const std::string kPeerQ = pct(kPeer);
const std::string kValid =
    "info_hash=" + kHashQ + "&peer_id=" + kPeerQ + "&port=6881&uploaded=0&downloaded=0&left=0";

IpAddress ip(std::string_view s) {
  auto a = IpAddress::parse(s);
  BOOST_REQUIRE_MESSAGE(a, "bad test address " << s);
  return *a;
}

ParsedAnnounce parse_ok(const std::string& q) {
  auto r = parse_announce(q);
  BOOST_REQUIRE_MESSAGE(r, "unexpected failure for [" << q << "]: " << (r ? "" : r.error()));
  return *r;
}

std::string_view sv(const std::array<std::uint8_t, 20>& a) {
  return {reinterpret_cast<const char*>(a.data()), a.size()};
}

struct BadCase {
  const char* name;
  std::string query;
  const char* error_part;  // the failure reason must name what is wrong
};
std::ostream& operator<<(std::ostream& os, const BadCase& c) { return os << c.name; }

const std::string kTail = "&peer_id=" + kPeerQ + "&port=6881&left=0";
const std::string kHead = "info_hash=" + kHashQ + "&peer_id=" + kPeerQ;

const std::vector<BadCase> kBadAnnounces = {
    {"empty_query", "", "info_hash is missing"},
    {"only_ampersands", "&&&", "info_hash is missing"},
    {"oversized_query", kValid + "&pad=" + std::string(kQueryBytesMax, 'x'), "query is too long"},
    {"info_hash_19_bytes", "info_hash=" + pct(kHash.data(), 19) + kTail,
     "info_hash must be 20 bytes"},
    {"info_hash_21_bytes", "info_hash=" + kHashQ + "%00" + kTail, "info_hash must be 20 bytes"},
    {"info_hash_empty", "info_hash=" + kTail, "info_hash must be 20 bytes"},
    {"info_hash_no_equals", "info_hash" + kTail, "info_hash must be 20 bytes"},
    // evhttp-style decoding would stop at %00 and see a 1-byte hash
    {"info_hash_19_raw_plus_nul", "info_hash=%00" + std::string(17, 'a') + "%00" + kTail,
     "info_hash must be 20 bytes"},
    {"info_hash_bad_hex_digit", "info_hash=%G1" + pct(kHash.data(), 19) + kTail,
     "info_hash has bad percent-encoding"},
    {"info_hash_truncated_escape", "info_hash=" + pct(kHash.data(), 19) + "%4" + kTail,
     "info_hash has bad percent-encoding"},
    {"info_hash_lone_percent", "info_hash=" + pct(kHash.data(), 19) + "%" + kTail,
     "info_hash has bad percent-encoding"},
    {"info_hash_repeated", kValid + "&info_hash=" + kHashQ, "info_hash is given more than once"},
    {"peer_id_19_bytes", "info_hash=" + kHashQ + "&peer_id=" + pct(kPeer.data(), 19) +
                             "&port=1&left=0",
     "peer_id must be 20 bytes"},
    {"peer_id_21_bytes", "info_hash=" + kHashQ + "&peer_id=" + kPeerQ + "A&port=1&left=0",
     "peer_id must be 20 bytes"},
    {"peer_id_bad_escape", "info_hash=" + kHashQ + "&peer_id=%zz" + pct(kPeer.data(), 19) +
                               "&port=1&left=0",
     "peer_id has bad percent-encoding"},
    {"peer_id_repeated", kValid + "&peer_id=" + kPeerQ, "peer_id is given more than once"},
    {"peer_id_missing", "info_hash=" + kHashQ + "&port=1&left=0", "peer_id is missing"},
    {"port_missing", kHead + "&left=0", "port is missing"},
    {"left_missing", kHead + "&port=6881", "left is missing"},
    {"port_0", kHead + "&port=0&left=0", "port must be"},
    {"port_65536", kHead + "&port=65536&left=0", "port must be"},
    {"port_negative", kHead + "&port=-1&left=0", "port must be"},
    {"port_text", kHead + "&port=abc&left=0", "port must be"},
    {"port_empty", kHead + "&port=&left=0", "port must be"},
    {"port_plus_sign", kHead + "&port=+80&left=0", "port must be"},
    {"port_trailing_junk", kHead + "&port=80x&left=0", "port must be"},
    {"port_huge", kHead + "&port=99999999999999999999999&left=0", "port must be"},
    {"port_overlong", kHead + "&port=" + std::string(100, '1') + "&left=0", "port must be"},
    {"port_bad_escape", kHead + "&port=%3&left=0", "port has bad percent-encoding"},
    {"port_repeated", kValid + "&port=6882", "port is given more than once"},
    {"left_negative", kHead + "&port=1&left=-1", "left must be a non-negative decimal integer"},
    {"left_fraction", kHead + "&port=1&left=1.5", "left must be a non-negative decimal integer"},
    {"left_empty", kHead + "&port=1&left=", "left must be a non-negative decimal integer"},
    {"left_plus_is_not_space", kHead + "&port=1&left=+1",
     "left must be a non-negative decimal integer"},
    {"left_above_u64", kHead + "&port=1&left=18446744073709551616",
     "left must be a non-negative decimal integer"},
    {"uploaded_negative", kHead + "&port=1&left=0&uploaded=-5",
     "uploaded must be a non-negative decimal integer"},
    {"uploaded_repeated", kValid + "&uploaded=5", "uploaded is given more than once"},
    {"uploaded_text", kHead + "&port=1&left=0&uploaded=x",
     "uploaded must be a non-negative decimal integer"},
    {"downloaded_negative", kHead + "&port=1&left=0&downloaded=-1",
     "downloaded must be a non-negative decimal integer"},
    {"numwant_text", kValid + "&numwant=ten", "numwant must be an integer"},
    {"numwant_lone_minus", kValid + "&numwant=-", "numwant must be an integer"},
    {"numwant_empty", kValid + "&numwant=", "numwant must be an integer"},
    {"numwant_repeated", kValid + "&numwant=1&numwant=2", "numwant is given more than once"},
    {"event_unknown", kValid + "&event=start", "event must be"},
    {"event_plus_is_not_space", kValid + "&event=started+", "event must be"},
    {"event_repeated", kValid + "&event=started&event=stopped", "event is given more than once"},
    {"key_too_long", kValid + "&key=" + std::string(kSmallValueBytesMax + 1, 'k'),
     "key is too long"},
    {"ip_bad_escape", kValid + "&ip=1.2.3.%G4", "ip has bad percent-encoding"},
};

}  // namespace

BOOST_DATA_TEST_CASE(rejects_hostile_announce_with_named_reason, bdata::make(kBadAnnounces), c) {
  auto r = parse_announce(c.query);
  BOOST_REQUIRE_MESSAGE(!r, c.name << " was accepted");
  BOOST_TEST_MESSAGE(c.name << " -> " << r.error());
  BOOST_TEST(r.error().find(c.error_part) != std::string::npos,
             c.name << ": reason [" << r.error() << "] lacks [" << c.error_part << "]");
}

BOOST_AUTO_TEST_CASE(parses_every_field_of_a_full_announce) {
  auto p = parse_ok(kValid.substr(0, kValid.find("&uploaded")) +
                    "&uploaded=123&downloaded=18446744073709551615&left=987654321"
                    "&event=completed&numwant=30&compact=0&no_peer_id=1&key=1A2b3C4d"
                    "&ip=192.0.2.7&supportcrypto=1&passkey=%ZZ%&trackerid=");
  const AnnounceRequest& r = p.request;
  BOOST_TEST(r.info_hash == kHash);
  BOOST_TEST(r.peer_id == kPeer);
  BOOST_TEST(r.peer.port == 6881);
  BOOST_TEST(r.peer.ip == IpAddress{});  // left to the caller
  BOOST_TEST(r.uploaded == 123u);
  BOOST_TEST(r.downloaded == std::numeric_limits<std::uint64_t>::max());
  BOOST_TEST(r.left == 987654321u);
  BOOST_TEST(static_cast<int>(r.event) == static_cast<int>(AnnounceEvent::completed));
  BOOST_TEST(r.numwant == 30);
  BOOST_TEST(r.key == 0x1A2B3C4Du);
  BOOST_TEST(static_cast<int>(r.families) == static_cast<int>(PeerFamilies::both));
  BOOST_TEST(!p.compact);
  BOOST_TEST(p.no_peer_id);
  BOOST_REQUIRE(p.ip_param);
  BOOST_TEST(*p.ip_param == ip("192.0.2.7"));
}

BOOST_AUTO_TEST_CASE(minimal_announce_gets_documented_defaults) {
  auto p = parse_ok(kHead + "&port=1&left=5");
  BOOST_TEST(p.request.uploaded == 0u);
  BOOST_TEST(p.request.downloaded == 0u);
  BOOST_TEST(p.request.left == 5u);
  BOOST_TEST(p.request.peer.port == 1);
  BOOST_TEST(p.request.numwant == -1);
  BOOST_TEST(p.request.key == 0u);
  BOOST_TEST(static_cast<int>(p.request.event) == static_cast<int>(AnnounceEvent::none));
  BOOST_TEST(p.compact);
  BOOST_TEST(!p.no_peer_id);
  BOOST_TEST(!p.ip_param);
}

BOOST_AUTO_TEST_CASE(accepts_port_65535_and_keys_in_any_order_with_empty_segments) {
  auto p = parse_ok("&left=0&&port=65535&peer_id=" + kPeerQ + "&info_hash=" + kHashQ + "&");
  BOOST_TEST(p.request.peer.port == 65535);
  BOOST_TEST(p.request.info_hash == kHash);
}

BOOST_AUTO_TEST_CASE(keeps_nul_bytes_inside_hashes) {
  InfoHash zeros{};
  auto p = parse_ok("info_hash=" + pct(zeros) + kTail);
  BOOST_TEST(p.request.info_hash == zeros);
}

BOOST_AUTO_TEST_CASE(plus_in_hash_is_a_literal_plus_not_a_space) {
  // 19 escaped bytes then a raw '+': 20 bytes only if '+' stays one byte 0x2b.
  auto p = parse_ok("info_hash=" + pct(kHash.data(), 19) + "+" + kTail);
  InfoHash want = kHash;
  want[19] = '+';
  BOOST_TEST(p.request.info_hash == want);
}

BOOST_AUTO_TEST_CASE(decodes_lowercase_escapes_and_raw_bytes_in_hashes) {
  // Only the first '=' separates key and value; later ones are hash bytes.
  auto p = parse_ok("info_hash=abcdefghij%6b%6C%6d=+opqrs" + kTail);
  InfoHash want;
  std::copy_n(reinterpret_cast<const std::uint8_t*>("abcdefghijklm=+opqrs"), 20, want.begin());
  BOOST_TEST(p.request.info_hash == want);
}

BOOST_AUTO_TEST_CASE(seeded_hash_round_trip_through_mixed_encodings) {
  std::mt19937 rng(20240607);
  for (int round = 0; round < 2000; ++round) {
    InfoHash h;
    for (auto& b : h) b = static_cast<std::uint8_t>(rng());
    std::string q = "info_hash=";
    static const char* kHex[2] = {"0123456789abcdef", "0123456789ABCDEF"};
    for (auto b : h) {
      bool raw_ok = b != '&' && b != '%';
      if (raw_ok && (rng() & 1)) {
        q.push_back(static_cast<char>(b));
      } else {
        const char* hex = kHex[rng() & 1];
        q.push_back('%');
        q.push_back(hex[b >> 4]);
        q.push_back(hex[b & 15]);
      }
    }
    auto r = parse_announce(q + kTail);
    BOOST_REQUIRE_MESSAGE(r, "round " << round << ": " << (r ? "" : r.error()));
    BOOST_REQUIRE(r->request.info_hash == h);
  }
}

namespace {
struct NumwantCase {
  const char* param;  // nullptr: absent
  std::int32_t expected;
};
std::ostream& operator<<(std::ostream& os, const NumwantCase& c) {
  return os << (c.param ? c.param : "<absent>");
}
constexpr std::int32_t kI32Max = std::numeric_limits<std::int32_t>::max();
const std::vector<NumwantCase> kNumwants = {
    {nullptr, -1},      {"-1", -1},          {"-50", -1},         {"-0", 0},
    {"0", 0},           {"1", 1},            {"200", 200},        {"2147483647", kI32Max},
    {"2147483648", kI32Max}, {"99999999999999999999999999999", kI32Max},
    {"-99999999999999999999999999", -1},     {"%35%30", 50},
};
}  // namespace

BOOST_DATA_TEST_CASE(numwant_maps_absent_negative_zero_and_huge, bdata::make(kNumwants), c) {
  std::string q = kValid;
  if (c.param) q += std::string("&numwant=") + c.param;
  BOOST_TEST(parse_ok(q).request.numwant == c.expected);
}

namespace {
struct EventCase {
  const char* param;
  AnnounceEvent expected;
};
std::ostream& operator<<(std::ostream& os, const EventCase& c) { return os << c.param; }
const std::vector<EventCase> kEvents = {
    {"started", AnnounceEvent::started}, {"completed", AnnounceEvent::completed},
    {"stopped", AnnounceEvent::stopped}, {"", AnnounceEvent::none},
    {"paused", AnnounceEvent::none},     {"%73topped", AnnounceEvent::stopped},
};
}  // namespace

BOOST_DATA_TEST_CASE(maps_each_event_value, bdata::make(kEvents), c) {
  auto p = parse_ok(kValid + "&event=" + c.param);
  BOOST_TEST(static_cast<int>(p.request.event) == static_cast<int>(c.expected));
}

namespace {
struct FlagCase {
  const char* extra;
  bool compact;
  bool no_peer_id;
};
std::ostream& operator<<(std::ostream& os, const FlagCase& c) { return os << '[' << c.extra << ']'; }
const std::vector<FlagCase> kFlags = {
    {"", true, false},          {"&compact=1", true, false},  {"&compact=0", false, false},
    {"&no_peer_id=1", true, true}, {"&no_peer_id=0", true, false},
    {"&compact=0&no_peer_id=1", false, true},
};
}  // namespace

BOOST_DATA_TEST_CASE(reads_compact_and_no_peer_id_flags, bdata::make(kFlags), c) {
  auto p = parse_ok(kValid + c.extra);
  BOOST_TEST(p.compact == c.compact);
  BOOST_TEST(p.no_peer_id == c.no_peer_id);
}

namespace {
struct KeyCase {
  const char* param;
  std::uint32_t expected;
};
std::ostream& operator<<(std::ostream& os, const KeyCase& c) { return os << c.param; }
const std::vector<KeyCase> kKeys = {
    {"ABCDEF01", 0xABCDEF01u}, {"deadbeef", 0xDEADBEEFu}, {"12345678", 0x12345678u},  // hex first
    {"ff", 0xFFu},             {"123456789", 123456789u},   {"4294967295", 4294967295u},
    {"", 0u},
};
}  // namespace

BOOST_DATA_TEST_CASE(reads_key_as_hex_or_decimal, bdata::make(kKeys), c) {
  BOOST_TEST(parse_ok(kValid + "&key=" + c.param).request.key == c.expected);
}

BOOST_AUTO_TEST_CASE(folds_free_text_key_deterministically) {
  auto a = parse_ok(kValid + "&key=not-hex-at-all").request.key;
  auto b = parse_ok(kValid + "&key=not-hex-at-all").request.key;
  auto c = parse_ok(kValid + "&key=not-hex-at-alm").request.key;
  auto d = parse_ok(kValid + "&key=4294967296").request.key;  // above u32: folded, not wrapped
  BOOST_TEST(a == b);
  BOOST_TEST(a != c);
  BOOST_TEST(a != 0u);
  BOOST_TEST(d != 0u);
}

namespace {
struct IpParamCase {
  const char* extra;
  const char* expected;  // nullptr: no ip_param
};
std::ostream& operator<<(std::ostream& os, const IpParamCase& c) { return os << c.extra; }
const std::vector<IpParamCase> kIpParams = {
    {"&ip=198.51.100.4", "198.51.100.4"},
    {"&ip=2001%3Adb8%3A%3A1", "2001:db8::1"},
    {"&ipv4=198.51.100.5", "198.51.100.5"},
    {"&ipv4=198.51.100.5:6881", "198.51.100.5"},
    {"&ipv6=%5B2001:db8::2%5D:6881", "2001:db8::2"},
    {"&ipv6=2001:db8::3", "2001:db8::3"},
    {"&ipv6=2001:db8::3&ipv4=198.51.100.6", "198.51.100.6"},
    {"&ipv4=198.51.100.6&ip=198.51.100.7", "198.51.100.7"},
    {"&ip=tracker.example.org&ipv6=2001:db8::4", "2001:db8::4"},
    {"&ip=tracker.example.org", nullptr},
    {"&ip=", nullptr},
    {"&ip=1.2.3.4.5", nullptr},
};
}  // namespace

BOOST_DATA_TEST_CASE(takes_ip_param_from_ip_then_ipv4_then_ipv6, bdata::make(kIpParams), c) {
  auto p = parse_ok(kValid + c.extra);
  if (c.expected) {
    BOOST_REQUIRE(p.ip_param);
    BOOST_TEST(p.ip_param->to_string() == c.expected);
  } else {
    BOOST_TEST(!p.ip_param);
  }
}

BOOST_AUTO_TEST_CASE(accepts_query_of_exactly_the_limit) {
  std::string q = kValid + "&pad=";
  q += std::string(kQueryBytesMax - q.size(), 'x');
  BOOST_REQUIRE(q.size() == kQueryBytesMax);
  BOOST_TEST(parse_announce(q).has_value());
  BOOST_TEST(!parse_announce(q + "x").has_value());
}

BOOST_DATA_TEST_CASE(random_queries_give_a_request_or_a_named_reason, bdata::xrange(8), seed) {
  // Fragments of real queries glued at random: escapes cut in half, repeated and missing keys.
  static const std::vector<std::string> kParts = {
      "info_hash=", "peer_id=", "port=", "left=", "numwant=", "event=", "key=", "ip=", "ipv6=",
      "compact=", "&", "&", "=", "%", "%0", "%00", "%G", "%ff", "+", "-", "1", "0", "65536",
      "6881", kHashQ, kPeerQ, pct(kHash.data(), 19), "started", "::1", "1.2.3.4", "x"};
  std::mt19937 rng(777 + seed);
  int accepted = 0;
  for (int round = 0; round < 5000; ++round) {
    std::string q;
    if (rng() % 2) q = kValid;  // sometimes start from a valid query and damage it
    std::size_t n = rng() % 12;
    for (std::size_t i = 0; i < n; ++i) q += kParts[rng() % kParts.size()];
    auto a = parse_announce(q);
    if (a) {
      ++accepted;
      BOOST_REQUIRE(a->request.peer.port != 0);
    } else {
      BOOST_REQUIRE(!a.error().empty());
    }
    auto s = parse_scrape(q);
    if (s) {
      BOOST_REQUIRE(!s->info_hashes.empty());
      BOOST_REQUIRE(s->info_hashes.size() <= kScrapeHashesMax);
    } else {
      BOOST_REQUIRE(!s.error().empty());
    }
  }
  BOOST_TEST(accepted > 0);  // the generator does reach the success path
}

// --- scrape -------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(scrape_keeps_repeated_hashes_in_request_order) {
  InfoHash other{};
  other[0] = 9;
  auto r = parse_scrape("info_hash=" + kHashQ + "&info_hash=" + pct(other) + "&peer_id=x" +
                        "&info_hash=" + kHashQ);
  BOOST_REQUIRE(r);
  BOOST_REQUIRE(r->info_hashes.size() == 3u);
  BOOST_TEST(r->info_hashes[0] == kHash);
  BOOST_TEST(r->info_hashes[1] == other);
  BOOST_TEST(r->info_hashes[2] == kHash);
}

namespace {
std::string raw_scrape(std::size_t n) {
  std::string q;
  for (std::size_t i = 0; i < n; ++i) q += (i ? "&" : "") + std::string("info_hash=AAAAAAAAAAAAAAAAAAAA");
  return q;
}
const std::vector<BadCase> kBadScrapes = {
    {"empty", "", "scrape of all torrents is not supported"},
    {"no_info_hash", "peer_id=x&port=1", "scrape of all torrents is not supported"},
    {"hash_19_bytes", "info_hash=" + pct(kHash.data(), 19), "info_hash must be 20 bytes"},
    {"hash_21_bytes", "info_hash=" + kHashQ + "%00", "info_hash must be 20 bytes"},
    {"second_hash_short", "info_hash=" + kHashQ + "&info_hash=" + pct(kHash.data(), 19),
     "info_hash must be 20 bytes"},
    {"bad_escape", "info_hash=%4" + pct(kHash.data(), 19), "info_hash has bad percent-encoding"},
    {"truncated_escape", "info_hash=" + pct(kHash.data(), 19) + "%4",
     "info_hash has bad percent-encoding"},
    {"too_many_hashes", raw_scrape(kScrapeHashesMax + 1), "too many info_hash"},
    {"oversized", "info_hash=" + kHashQ + "&pad=" + std::string(kQueryBytesMax, 'x'),
     "query is too long"},
};
}  // namespace

BOOST_DATA_TEST_CASE(rejects_hostile_scrape_with_named_reason, bdata::make(kBadScrapes), c) {
  auto r = parse_scrape(c.query);
  BOOST_REQUIRE_MESSAGE(!r, c.name << " was accepted");
  BOOST_TEST(r.error().find(c.error_part) != std::string::npos,
             c.name << ": reason [" << r.error() << "] lacks [" << c.error_part << "]");
}

BOOST_AUTO_TEST_CASE(scrape_accepts_exactly_the_hash_limit) {
  auto q = raw_scrape(kScrapeHashesMax);
  BOOST_REQUIRE(q.size() <= kQueryBytesMax);  // the limit is reachable within the query limit
  auto r = parse_scrape(q);
  BOOST_REQUIRE(r);
  BOOST_TEST(r->info_hashes.size() == kScrapeHashesMax);
}

// --- encoding -----------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(encodes_empty_compact_announce_byte_exact) {
  AnnounceResponse r;
  r.result.complete = 1;
  r.result.incomplete = 2;
  r.result.downloaded = 3;
  r.interval_s = 1800;
  r.min_interval_s = 900;
  BOOST_TEST(encode_announce(r, true, false) ==
             "d8:completei1e10:downloadedi3e10:incompletei2e8:intervali1800e"
             "12:min intervali900e5:peers0:6:peers60:e");
  BOOST_TEST(encode_announce(r, false, false) ==
             "d8:completei1e10:downloadedi3e10:incompletei2e8:intervali1800e"
             "12:min intervali900e5:peerslee");
}

// Peers a ring node got compact from the owner: copied into "peers" / "peers6" after the
// built ones, and listed as dictionaries (without a peer id) in the dictionary model.
BOOST_AUTO_TEST_CASE(encodes_peers_that_came_compact) {
  AnnounceResponse r;
  r.result.peers.push_back({{ip("1.2.3.4"), 0x1AE1}, kPeer});
  r.result.compact4 = std::string("\x05\x06\x07\x08\x00\x50", 6);
  r.result.compact6 = std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x02\x01\xbb", 18);
  std::string body = encode_announce(r, true, false);
  std::string v4("\x01\x02\x03\x04\x1a\xe1", 6);
  BOOST_TEST(body.find("5:peers12:" + v4 + r.result.compact4 + "6:peers618:" + r.result.compact6 +
                       "e") != std::string::npos);
  BOOST_TEST(encode_announce(r, false, false).find(
                 "d2:ip7:5.6.7.84:porti80eed2:ip11:2001:db8::24:porti443ee") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(encodes_compact_peers_in_network_order) {
  AnnounceResponse r;
  r.result.peers.push_back({{ip("1.2.3.4"), 0x1AE1}, kPeer});
  r.result.peers.push_back({{ip("2001:db8::1"), 443}, kPeer});
  std::string body = encode_announce(r, true, false);
  std::string v4("\x01\x02\x03\x04\x1a\xe1", 6);
  std::string v6("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01\x01\xbb", 18);
  BOOST_TEST(body.find("5:peers6:" + v4 + "6:peers618:" + v6 + "e") != std::string::npos);
}

namespace {
void check_sorted_keys(const bencode::Node& dict) {
  for (std::size_t i = 1; i < dict.dict_size(); ++i)
  {
    std::string_view prev = dict.dict_at(i - 1).first, cur = dict.dict_at(i).first;
    bool ascending = prev < cur;  // char_traits<char> compares as unsigned char: byte order
    BOOST_TEST(ascending, "key order at " << i);
  }
}

AnnounceResponse random_response(std::mt19937& rng) {
  AnnounceResponse r;
  r.result.complete = rng();
  r.result.incomplete = rng();
  r.result.downloaded = rng();
  r.interval_s = rng();
  r.min_interval_s = rng();
  std::size_t n = rng() % 120;
  for (std::size_t i = 0; i < n; ++i) {
    PeerInfo p;
    std::uint8_t raw[16];
    for (auto& b : raw) b = static_cast<std::uint8_t>(rng());
    raw[0] |= 0x20;  // never v4-mapped, so v6 stays v6
    p.address.ip = (rng() & 1) ? IpAddress::v6(raw) : IpAddress::v4(raw);
    p.address.port = static_cast<std::uint16_t>(rng());
    for (auto& b : p.peer_id) b = static_cast<std::uint8_t>(rng());
    r.result.peers.push_back(p);
  }
  return r;
}
}  // namespace

BOOST_DATA_TEST_CASE(compact_announce_round_trips_every_field, bdata::xrange(40), seed) {
  std::mt19937 rng(1000 + seed);
  AnnounceResponse r = random_response(rng);
  auto doc = bencode::Document::decode(encode_announce(r, true, false));
  BOOST_REQUIRE(doc);
  auto root = doc->root();
  BOOST_REQUIRE(root.is_dict());
  check_sorted_keys(root);
  BOOST_TEST(root.dict_size() == 7u);
  BOOST_TEST(*root.find_integer("complete") == r.result.complete);
  BOOST_TEST(*root.find_integer("incomplete") == r.result.incomplete);
  BOOST_TEST(*root.find_integer("downloaded") == r.result.downloaded);
  BOOST_TEST(*root.find_integer("interval") == r.interval_s);
  BOOST_TEST(*root.find_integer("min interval") == r.min_interval_s);
  auto peers = root.find_string("peers");
  auto peers6 = root.find_string("peers6");
  BOOST_REQUIRE(peers);
  BOOST_REQUIRE(peers6);
  std::size_t i4 = 0, i6 = 0;
  for (const PeerInfo& p : r.result.peers) {
    std::string_view blob = p.address.ip.is_v6() ? *peers6 : *peers;
    std::size_t& at = p.address.ip.is_v6() ? i6 : i4;
    std::size_t ip_len = p.address.ip.size();
    BOOST_REQUIRE(at + ip_len + 2 <= blob.size());
    auto bytes = reinterpret_cast<const std::uint8_t*>(blob.data() + at);
    IpAddress got = ip_len == 16 ? IpAddress::v6(bytes) : IpAddress::v4(bytes);
    BOOST_TEST(got == p.address.ip);
    BOOST_TEST((bytes[ip_len] << 8 | bytes[ip_len + 1]) == p.address.port);
    at += ip_len + 2;
  }
  BOOST_TEST(i4 == peers->size());
  BOOST_TEST(i6 == peers6->size());
}

BOOST_DATA_TEST_CASE(dictionary_announce_round_trips_every_field,
                     bdata::xrange(20) * bdata::make({false, true}), seed, no_peer_id) {
  std::mt19937 rng(5000 + seed);
  AnnounceResponse r = random_response(rng);
  auto doc = bencode::Document::decode(encode_announce(r, false, no_peer_id));
  BOOST_REQUIRE(doc);
  auto root = doc->root();
  check_sorted_keys(root);
  BOOST_TEST(root.dict_size() == 6u);  // no peers6 in the dictionary model
  BOOST_TEST(!root.find("peers6"));
  BOOST_TEST(*root.find_integer("complete") == r.result.complete);
  BOOST_TEST(*root.find_integer("incomplete") == r.result.incomplete);
  BOOST_TEST(*root.find_integer("downloaded") == r.result.downloaded);
  BOOST_TEST(*root.find_integer("interval") == r.interval_s);
  BOOST_TEST(*root.find_integer("min interval") == r.min_interval_s);
  auto list = root.find("peers");
  BOOST_REQUIRE(list.is_list());
  BOOST_REQUIRE(list.list_size() == r.result.peers.size());
  for (std::size_t i = 0; i < r.result.peers.size(); ++i) {
    const PeerInfo& p = r.result.peers[i];
    auto d = list.list_at(i);
    BOOST_REQUIRE(d.is_dict());
    check_sorted_keys(d);
    BOOST_TEST(d.dict_size() == (no_peer_id ? 2u : 3u));
    auto text = d.find_string("ip");
    BOOST_REQUIRE(text);
    BOOST_TEST(IpAddress::parse(*text) == std::optional<IpAddress>(p.address.ip));
    BOOST_TEST(*d.find_integer("port") == p.address.port);
    if (no_peer_id) {
      BOOST_TEST(!d.find("peer id"));
    } else {
      auto id = d.find_string("peer id");
      BOOST_REQUIRE(id);
      BOOST_TEST(*id == sv(p.peer_id));
    }
  }
}

BOOST_AUTO_TEST_CASE(dictionary_model_leaves_out_unknown_all_zero_peer_id) {
  AnnounceResponse r;
  PeerInfo p;
  p.address = *SocketAddress::parse("10.0.0.1:6881");
  r.result.peers.push_back(p);  // peer_id all zero: the store does not know it
  auto doc = bencode::Document::decode(encode_announce(r, false, false));
  BOOST_REQUIRE(doc);
  auto d = doc->root().find("peers").list_at(0);
  BOOST_TEST(d.dict_size() == 2u);
  BOOST_TEST(!d.find("peer id"));
  BOOST_TEST(*d.find_string("ip") == "10.0.0.1");
}

BOOST_AUTO_TEST_CASE(encodes_scrape_byte_exact) {
  ScrapeResponse r;
  InfoHash h;
  h.fill('a');
  r.files.push_back({h, 5, 7, 6});
  BOOST_TEST(encode_scrape(r) ==
             "d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5e10:downloadedi7e10:incompletei6eeee");
  BOOST_TEST(encode_scrape(ScrapeResponse{}) == "d5:filesdee");
}

BOOST_DATA_TEST_CASE(scrape_is_sorted_deduplicated_and_round_trips, bdata::xrange(30), seed) {
  std::mt19937 rng(9000 + seed);
  ScrapeResponse r;
  std::map<InfoHash, ScrapeEntry> first;  // what must come out: first entry per hash
  std::size_t n = 1 + rng() % 60;
  for (std::size_t i = 0; i < n; ++i) {
    ScrapeEntry e;
    if (!r.files.empty() && rng() % 3 == 0) {
      e.info_hash = r.files[rng() % r.files.size()].info_hash;  // a repeat
    } else {
      for (auto& b : e.info_hash) b = static_cast<std::uint8_t>(rng());
      if (rng() % 4 == 0) e.info_hash[0] = 0;  // share prefixes, test byte-wise order
    }
    e.complete = rng();
    e.downloaded = rng();
    e.incomplete = rng();
    r.files.push_back(e);
    first.emplace(e.info_hash, e);
  }
  auto doc = bencode::Document::decode(encode_scrape(r));
  BOOST_REQUIRE(doc);
  auto root = doc->root();
  BOOST_TEST(root.dict_size() == 1u);
  auto files = root.find("files");
  BOOST_REQUIRE(files.is_dict());
  BOOST_REQUIRE(files.dict_size() == first.size());
  check_sorted_keys(files);
  std::size_t i = 0;
  for (const auto& [hash, e] : first) {  // std::map order == byte order of std::array
    auto [key, v] = files.dict_at(i++);
    BOOST_TEST(key == sv(hash));
    check_sorted_keys(v);
    BOOST_TEST(v.dict_size() == 3u);
    BOOST_TEST(*v.find_integer("complete") == e.complete);
    BOOST_TEST(*v.find_integer("downloaded") == e.downloaded);
    BOOST_TEST(*v.find_integer("incomplete") == e.incomplete);
  }
}

BOOST_AUTO_TEST_CASE(encodes_failure_reason_and_round_trips_binary_text) {
  BOOST_TEST(encode_failure("info_hash must be 20 bytes") ==
             "d14:failure reason26:info_hash must be 20 bytese");
  BOOST_TEST(encode_failure("") == "d14:failure reason0:e");
  std::string odd("e:d\0i1e", 7);
  auto doc = bencode::Document::decode(encode_failure(odd));
  BOOST_REQUIRE(doc);
  BOOST_TEST(*doc->root().find_string("failure reason") == odd);
  BOOST_TEST(doc->root().dict_size() == 1u);
}

BOOST_AUTO_TEST_CASE(parser_failures_encode_as_decodable_failure_replies) {
  for (const BadCase& c : kBadAnnounces) {
    auto r = parse_announce(c.query);
    BOOST_REQUIRE(!r);
    auto doc = bencode::Document::decode(encode_failure(r.error()));
    BOOST_REQUIRE(doc);
    BOOST_TEST(*doc->root().find_string("failure reason") == r.error());
  }
}

// --- client address -----------------------------------------------------------------------

namespace {
struct AddrCase {
  const char* name;
  const char* socket;
  const char* xff;
  const char* ip_param;  // nullptr: none
  const char* expected;
};
std::ostream& operator<<(std::ostream& os, const AddrCase& c) { return os << c.name; }
const std::vector<AddrCase> kAddrs = {
    {"untrusted_socket_ignores_xff", "203.0.113.5", "1.2.3.4", nullptr, "203.0.113.5"},
    {"untrusted_socket_ignores_ip_param", "203.0.113.5", "", "1.2.3.4", "203.0.113.5"},
    {"trusted_socket_takes_xff", "10.0.0.1", "1.2.3.4", nullptr, "1.2.3.4"},
    {"rightmost_untrusted_wins_over_spoofed_left", "10.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2",
     nullptr, "1.2.3.4"},
    {"xff_wins_over_ip_param", "10.0.0.1", "1.2.3.4", "5.5.5.5", "1.2.3.4"},
    {"no_xff_uses_trusted_ip_param", "10.0.0.1", "", "5.5.5.5", "5.5.5.5"},
    {"blank_xff_uses_trusted_ip_param", "10.0.0.1", "  ", "5.5.5.5", "5.5.5.5"},
    {"no_xff_no_param_is_socket", "10.0.0.1", "", nullptr, "10.0.0.1"},
    {"all_trusted_takes_origin", "10.0.0.1", "10.0.0.7, 10.0.0.2", nullptr, "10.0.0.7"},
    {"garbage_xff_falls_back_to_socket", "10.0.0.1", "unknown", nullptr, "10.0.0.1"},
    {"garbage_xff_falls_back_to_param", "10.0.0.1", "unknown", "5.5.5.5", "5.5.5.5"},
    {"garbage_before_untrusted_stops_walk", "10.0.0.1", "1.2.3.4, junk, 10.0.0.3", nullptr,
     "10.0.0.1"},
    {"garbage_left_of_untrusted_is_never_read", "10.0.0.1", "junk, 1.2.3.4", nullptr, "1.2.3.4"},
    {"trims_spaces_and_tabs", "10.0.0.1", " 1.2.3.4\t,\t10.0.0.3 ", nullptr, "1.2.3.4"},
    {"v4_with_port", "10.0.0.1", "1.2.3.4:5678", nullptr, "1.2.3.4"},
    {"loopback_proxy", "127.0.0.1", "198.51.100.9", nullptr, "198.51.100.9"},
    {"other_loopback_is_not_trusted", "127.0.0.2", "198.51.100.9", nullptr, "127.0.0.2"},
    {"v4_mapped_socket_is_trusted_v4", "::ffff:10.0.0.1", "1.2.3.4", nullptr, "1.2.3.4"},
    {"v6_trusted_socket_takes_v6_xff", "fd00::1", "2001:db8::1", nullptr, "2001:db8::1"},
    {"v6_bracketed_with_port", "fd00::1", "[2001:db8::2]:443, fd00::9", nullptr, "2001:db8::2"},
    {"v6_rightmost_untrusted", "fd00::1", "2001:db8::66, 2001:db8::2, fd12::1", nullptr,
     "2001:db8::2"},
    {"v6_untrusted_socket_ignores_xff", "2001:db8::9", "2001:db8::1", nullptr, "2001:db8::9"},
    {"v6_proxy_forwarding_v4_client", "fd00::1", "192.0.2.1", nullptr, "192.0.2.1"},
    {"v4_proxy_forwarding_v6_client", "10.0.0.1", "2001:db8::5", nullptr, "2001:db8::5"},
    {"v6_trusted_ip_param", "fd00::1", "", "2001:db8::7", "2001:db8::7"},
    {"v6_loopback_not_in_list", "::1", "1.2.3.4", nullptr, "::1"},
};
const std::vector<IpNetwork> kTrusted = {*IpNetwork::parse("10.0.0.0/8"),
                                         *IpNetwork::parse("127.0.0.1/32"),
                                         *IpNetwork::parse("fd00::/8")};
}  // namespace

BOOST_DATA_TEST_CASE(client_address_trusts_only_configured_proxies, bdata::make(kAddrs), c) {
  std::optional<IpAddress> param;
  if (c.ip_param) param = ip(c.ip_param);
  IpAddress got = client_address(ip(c.socket), c.xff, param, kTrusted);
  BOOST_TEST(got == ip(c.expected), c.name << ": got " << got.to_string());
}

BOOST_AUTO_TEST_CASE(client_address_without_trusted_list_is_socket) {
  IpAddress got = client_address(ip("10.0.0.1"), "1.2.3.4", ip("5.5.5.5"), {});
  BOOST_TEST(got == ip("10.0.0.1"));
}
