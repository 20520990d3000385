#define BOOST_TEST_MODULE udp_codec
#include "tracker/udp_codec.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <array>
#include <cstring>
#include <random>

using namespace ringtracker;
using namespace ringtracker::tracker;
using namespace ringtracker::tracker::udp;
namespace bdata = boost::unit_test::data;

namespace {

using Bytes = std::vector<std::uint8_t>;
using OutBuf = std::array<std::uint8_t, kDatagramMax>;
using RequestBuf = std::array<std::uint8_t, kRequestBytesMax>;

void put_be(Bytes& b, std::uint64_t v, int n) {
  for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint64_t get_be(const std::uint8_t* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

// A hand-built announce (independent of write_announce_request) with distinct field values.
Bytes announce_bytes(std::uint32_t event = 2) {
  Bytes b;
  put_be(b, 0x1122334455667788ULL, 8);  // connection id
  put_be(b, 1, 4);                      // action
  put_be(b, 0xCAFEBABE, 4);             // tid
  for (int i = 0; i < 20; ++i) b.push_back(static_cast<std::uint8_t>(0xA0 + i));  // info_hash
  for (int i = 0; i < 20; ++i) b.push_back(static_cast<std::uint8_t>(0x10 + i));  // peer_id
  put_be(b, 1000, 8);                   // downloaded
  put_be(b, 2000, 8);                   // left
  put_be(b, 3000, 8);                   // uploaded
  put_be(b, event, 4);
  put_be(b, 0x0A000001, 4);             // ip
  put_be(b, 0xDEADBEEF, 4);             // key
  put_be(b, 0xFFFFFFFF, 4);             // num_want = -1
  put_be(b, 6881, 2);
  BOOST_REQUIRE_EQUAL(b.size(), kAnnounceMinSize);
  return b;
}

Bytes scrape_bytes(std::size_t hashes, std::size_t extra = 0) {
  Bytes b;
  put_be(b, 0x0102030405060708ULL, 8);
  put_be(b, 2, 4);
  put_be(b, 77, 4);
  for (std::size_t i = 0; i < hashes * 20 + extra; ++i) b.push_back(static_cast<std::uint8_t>(i));
  return b;
}

Bytes connect_bytes() {
  Bytes b;
  put_be(b, kProtocolId, 8);
  put_be(b, 0, 4);
  put_be(b, 0x01020304, 4);
  return b;
}

const AnnouncePacket& as_announce(const Expected<Request, ParseError>& r) {
  BOOST_REQUIRE(r.has_value());
  BOOST_REQUIRE(std::holds_alternative<AnnouncePacket>(*r));
  return std::get<AnnouncePacket>(*r);
}

ParseErrorKind kind_of(const Expected<Request, ParseError>& r) {
  BOOST_REQUIRE(!r.has_value());
  return r.error().kind;
}

}  // namespace

BOOST_AUTO_TEST_CASE(parses_connect_and_ignores_extra_bytes) {
  auto b = connect_bytes();
  auto r = parse_request(b);
  BOOST_REQUIRE(r.has_value());
  BOOST_TEST(std::get<ConnectRequest>(*r).transaction_id == 0x01020304u);
  b.resize(200, 0xEE);
  auto r2 = parse_request(b);
  BOOST_REQUIRE(r2.has_value());
  BOOST_TEST(std::get<ConnectRequest>(*r2).transaction_id == 0x01020304u);
}

BOOST_AUTO_TEST_CASE(rejects_connect_with_bad_protocol_id_keeping_tid_only) {
  auto b = connect_bytes();
  b[7] ^= 1;
  auto r = parse_request(b);
  BOOST_TEST((kind_of(r) == ParseErrorKind::bad_protocol_id));
  BOOST_TEST(r.error().transaction_id.value() == 0x01020304u);
  BOOST_TEST(!r.error().connection_id.has_value());
}

BOOST_DATA_TEST_CASE(rejects_datagram_shorter_than_header, bdata::xrange(16), len) {
  auto b = connect_bytes();
  b.resize(static_cast<std::size_t>(len));
  auto r = parse_request(b);
  BOOST_TEST((kind_of(r) == ParseErrorKind::too_short));
  BOOST_TEST(!r.error().transaction_id.has_value());
}

BOOST_DATA_TEST_CASE(rejects_announce_of_every_length_below_98, bdata::xrange(98), len) {
  auto b = announce_bytes();
  b.resize(static_cast<std::size_t>(len));
  auto r = parse_request(b);
  BOOST_TEST((kind_of(r) == ParseErrorKind::too_short));
  if (len >= 16) {
    BOOST_TEST(r.error().transaction_id.value() == 0xCAFEBABEu);
    BOOST_TEST(r.error().connection_id.value() == 0x1122334455667788ULL);
  }
}

BOOST_AUTO_TEST_CASE(parses_announce_fields_in_bep15_order) {
  auto b = announce_bytes();
  auto r = parse_request(b);
  const auto& a = as_announce(r);
  BOOST_TEST(a.connection_id == 0x1122334455667788ULL);
  BOOST_TEST(a.transaction_id == 0xCAFEBABEu);
  BOOST_TEST(a.request.info_hash[0] == 0xA0);
  BOOST_TEST(a.request.info_hash[19] == 0xA0 + 19);
  BOOST_TEST(a.request.peer_id[0] == 0x10);
  BOOST_TEST(a.request.downloaded == 1000u);
  BOOST_TEST(a.request.left == 2000u);
  BOOST_TEST(a.request.uploaded == 3000u);
  BOOST_TEST((a.request.event == AnnounceEvent::started));
  BOOST_TEST(a.ip_field == 0x0A000001u);
  BOOST_TEST(a.request.key == 0xDEADBEEFu);
  BOOST_TEST(a.request.numwant == -1);
  BOOST_TEST(a.request.peer.port == 6881);
  BOOST_TEST(a.request.peer.ip.is_unspecified());
  BOOST_TEST(a.url_data.empty());
}

static const std::uint32_t kBadEvents[] = {4, 5, 255, 0x80000000u, 0xFFFFFFFFu};
BOOST_DATA_TEST_CASE(rejects_unknown_announce_event, bdata::make(kBadEvents), event) {
  auto r = parse_request(announce_bytes(event));
  BOOST_TEST((kind_of(r) == ParseErrorKind::bad_event));
  BOOST_TEST(r.error().transaction_id.value() == 0xCAFEBABEu);
  BOOST_TEST(r.error().connection_id.value() == 0x1122334455667788ULL);
}

static const std::uint32_t kBadActions[] = {3, 4, 7, 0x01000000u, 0xFFFFFFFFu};
BOOST_DATA_TEST_CASE(rejects_unknown_action_keeping_ids, bdata::make(kBadActions), action) {
  auto b = announce_bytes();
  for (int i = 0; i < 4; ++i) b[8 + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(action >> (24 - 8 * i));
  auto r = parse_request(b);
  BOOST_TEST((kind_of(r) == ParseErrorKind::unknown_action));
  BOOST_TEST(r.error().transaction_id.value() == 0xCAFEBABEu);
  BOOST_TEST(r.error().connection_id.value() == 0x1122334455667788ULL);
}

// ---- BEP 41 option tails ----

struct TailCase {
  const char* name;
  Bytes tail;
  std::string url_data;
};
std::ostream& operator<<(std::ostream& os, const TailCase& c) { return os << c.name; }

static const TailCase kTails[] = {
    {"empty", {}, ""},
    {"nop_only", {1, 1, 1}, ""},
    {"end_of_options_only", {0}, ""},
    {"url_data", {2, 3, '/', 'a', 'b'}, "/ab"},
    {"url_data_split_in_two", {2, 2, '/', 'a', 2, 3, 'n', '?', 'x'}, "/an?x"},
    {"nop_between_url_data", {2, 1, '/', 1, 1, 2, 1, 'z'}, "/z"},
    {"end_stops_parsing", {2, 1, '/', 0, 2, 1, 'z'}, "/"},
    {"end_then_garbage", {0, 0xFF, 0xFF, 7}, ""},
    {"unknown_option_skipped", {9, 2, 'q', 'q', 2, 1, '/'}, "/"},
    {"unknown_option_zero_length", {0x7F, 0, 2, 1, '/'}, "/"},
    {"truncated_type_without_length", {2, 1, '/', 2}, "/"},
    {"truncated_url_data_dropped", {2, 1, '/', 2, 5, 'a', 'b'}, "/"},
    {"truncated_unknown_option", {2, 1, '/', 9, 200, 1}, "/"},
    {"url_data_empty_option", {2, 0, 2, 1, '/'}, "/"},
};

BOOST_DATA_TEST_CASE(accepts_bep41_option_tails, bdata::make(kTails), c) {
  auto b = announce_bytes();
  b.insert(b.end(), c.tail.begin(), c.tail.end());
  auto r = parse_request(b);
  const auto& a = as_announce(r);
  BOOST_TEST(a.url_data == c.url_data);
  BOOST_TEST(a.transaction_id == 0xCAFEBABEu);
}

BOOST_AUTO_TEST_CASE(peek_finds_the_info_hash_of_announces_only) {
  auto b = announce_bytes();
  auto h = peek_announce_info_hash(b);
  BOOST_REQUIRE(h.has_value());
  BOOST_TEST((*h == as_announce(parse_request(b)).request.info_hash));
  BOOST_TEST(!peek_announce_info_hash(connect_bytes()).has_value());
  BOOST_TEST(!peek_announce_info_hash(scrape_bytes(5)).has_value());  // long enough, not one
  b.pop_back();
  BOOST_TEST(!peek_announce_info_hash(b).has_value());  // one byte short of an announce
  BOOST_TEST(!peek_announce_info_hash({}).has_value());
}

BOOST_AUTO_TEST_CASE(accepts_url_data_of_exactly_the_limit) {
  auto b = announce_bytes();
  std::string expect;
  for (std::size_t left = kUrlDataMax; left > 0;) {
    const std::size_t n = std::min<std::size_t>(left, 255);
    b.push_back(2);
    b.push_back(static_cast<std::uint8_t>(n));
    for (std::size_t i = 0; i < n; ++i) {
      b.push_back('u');
      expect.push_back('u');
    }
    left -= n;
  }
  auto r = parse_request(b);
  BOOST_TEST(as_announce(r).url_data == expect);
}

BOOST_AUTO_TEST_CASE(rejects_url_data_over_the_limit_with_bad_option) {
  auto b = announce_bytes();
  for (std::size_t i = 0; i < kUrlDataMax / 255 + 1; ++i) {
    b.push_back(2);
    b.push_back(255);
    b.insert(b.end(), 255, 'u');
  }
  auto r = parse_request(b);
  BOOST_TEST((kind_of(r) == ParseErrorKind::bad_option));
  BOOST_TEST(r.error().connection_id.value() == 0x1122334455667788ULL);
}

BOOST_AUTO_TEST_CASE(accepts_oversized_announce_of_nops) {
  auto b = announce_bytes();
  b.insert(b.end(), 65000, 1);
  auto r = parse_request(b);
  BOOST_TEST(as_announce(r).url_data.empty());
}

// ---- Scrape ----

BOOST_AUTO_TEST_CASE(rejects_scrape_with_zero_hashes) {
  auto r = parse_request(scrape_bytes(0));
  BOOST_TEST((kind_of(r) == ParseErrorKind::too_short));
  BOOST_TEST(r.error().transaction_id.value() == 77u);
}

static const std::size_t kGoodScrapeCounts[] = {1, 2, 73, 74};
BOOST_DATA_TEST_CASE(parses_scrape_hashes_in_order, bdata::make(kGoodScrapeCounts), n) {
  auto b = scrape_bytes(n);
  auto r = parse_request(b);
  BOOST_REQUIRE(r.has_value());
  const auto& s = std::get<ScrapePacket>(*r);
  BOOST_TEST(s.connection_id == 0x0102030405060708ULL);
  BOOST_TEST(s.transaction_id == 77u);
  BOOST_REQUIRE_EQUAL(s.info_hashes.size(), n);
  for (std::size_t i = 0; i < n; ++i)
    BOOST_TEST(std::memcmp(s.info_hashes[i].data(), b.data() + 16 + 20 * i, 20) == 0);
}

static const std::size_t kTooManyScrapeCounts[] = {75, 76, 200};
BOOST_DATA_TEST_CASE(rejects_scrape_of_more_than_74_hashes, bdata::make(kTooManyScrapeCounts), n) {
  auto r = parse_request(scrape_bytes(n));
  BOOST_TEST((kind_of(r) == ParseErrorKind::too_many_hashes));
  BOOST_TEST(r.error().connection_id.value() == 0x0102030405060708ULL);
}

static const std::size_t kPartialBytes[] = {1, 10, 19};
BOOST_DATA_TEST_CASE(rejects_scrape_with_trailing_partial_hash, bdata::make(kPartialBytes), extra) {
  auto r = parse_request(scrape_bytes(1, extra));
  BOOST_TEST((kind_of(r) == ParseErrorKind::bad_scrape_length));
  auto r2 = parse_request(scrape_bytes(3, extra));
  BOOST_TEST((kind_of(r2) == ParseErrorKind::bad_scrape_length));
}

BOOST_DATA_TEST_CASE(rejects_scrape_shorter_than_one_hash, bdata::make(kPartialBytes), extra) {
  auto r = parse_request(scrape_bytes(0, extra));
  BOOST_TEST((kind_of(r) == ParseErrorKind::too_short));
}

// ---- Seeded round trips ----

BOOST_DATA_TEST_CASE(round_trips_random_requests, bdata::xrange(200), seed) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(seed) * 7919 + 1);
  auto u8 = [&] { return static_cast<std::uint8_t>(rng()); };
  RequestBuf out{};
  // Connect.
  const auto tid = static_cast<std::uint32_t>(rng());
  auto n = write_connect_request(tid, out);
  BOOST_REQUIRE_EQUAL(n, kConnectSize);
  auto rc = parse_request(std::span(out.data(), n));
  BOOST_REQUIRE(rc.has_value());
  BOOST_TEST(std::get<ConnectRequest>(*rc).transaction_id == tid);
  // Announce with random URLData.
  AnnouncePacket a;
  a.connection_id = rng();
  a.transaction_id = static_cast<std::uint32_t>(rng());
  for (auto& x : a.request.info_hash) x = u8();
  for (auto& x : a.request.peer_id) x = u8();
  a.request.downloaded = rng();
  a.request.left = rng();
  a.request.uploaded = rng();
  a.request.event = static_cast<AnnounceEvent>(rng() % 4);
  a.ip_field = static_cast<std::uint32_t>(rng());
  a.request.key = static_cast<std::uint32_t>(rng());
  a.request.numwant = static_cast<std::int32_t>(static_cast<std::uint32_t>(rng()));
  a.request.peer.port = static_cast<std::uint16_t>(rng());
  a.url_data.resize(rng() % (kUrlDataMax + 1));
  for (auto& ch : a.url_data) ch = static_cast<char>(u8());
  n = write_announce_request(a, out);
  auto ra = parse_request(std::span(out.data(), n));
  const auto& b = as_announce(ra);
  BOOST_TEST(b.connection_id == a.connection_id);
  BOOST_TEST(b.transaction_id == a.transaction_id);
  BOOST_TEST((b.request.info_hash == a.request.info_hash));
  BOOST_TEST((b.request.peer_id == a.request.peer_id));
  BOOST_TEST(b.request.downloaded == a.request.downloaded);
  BOOST_TEST(b.request.left == a.request.left);
  BOOST_TEST(b.request.uploaded == a.request.uploaded);
  BOOST_TEST((b.request.event == a.request.event));
  BOOST_TEST(b.ip_field == a.ip_field);
  BOOST_TEST(b.request.key == a.request.key);
  BOOST_TEST(b.request.numwant == a.request.numwant);
  BOOST_TEST(b.request.peer.port == a.request.peer.port);
  BOOST_TEST(b.url_data == a.url_data);
  // Scrape.
  ScrapePacket s;
  s.connection_id = rng();
  s.transaction_id = static_cast<std::uint32_t>(rng());
  // Seed 0 always writes the largest request (74 hashes, kRequestBytesMax bytes).
  s.info_hashes.resize(seed == 0 ? kScrapeHashesMax : 1 + rng() % kScrapeHashesMax);
  for (auto& h : s.info_hashes)
    for (auto& x : h) x = u8();
  n = write_scrape_request(s, out);
  auto rs = parse_request(std::span(out.data(), n));
  BOOST_REQUIRE(rs.has_value());
  const auto& t = std::get<ScrapePacket>(*rs);
  BOOST_TEST(t.connection_id == s.connection_id);
  BOOST_TEST(t.transaction_id == s.transaction_id);
  BOOST_TEST((t.info_hashes == s.info_hashes));
}

BOOST_DATA_TEST_CASE(never_crashes_on_random_bytes, bdata::xrange(2000), seed) {
  std::mt19937 rng(static_cast<unsigned>(seed));
  Bytes b(rng() % 300);
  for (auto& x : b) x = static_cast<std::uint8_t>(rng());
  // Bias toward the interesting actions so the deeper paths run too.
  if (b.size() >= 12) b[8] = b[9] = b[10] = 0, b[11] = static_cast<std::uint8_t>(rng() % 4);
  auto r = parse_request(b);
  if (!r) BOOST_TEST(!to_string(r.error().kind).empty());
  auto rr = parse_reply(b, seed % 2 == 0);
  (void)rr;
}

// ---- Replies ----

namespace {
PeerInfo peer(const char* text) {
  auto a = SocketAddress::parse(text);
  BOOST_REQUIRE(a);
  return PeerInfo{*a, {}};
}
}  // namespace

BOOST_AUTO_TEST_CASE(writes_connect_reply_of_16_bytes) {
  OutBuf out{};
  auto n = write_connect(0xA1B2C3D4, 0x0123456789ABCDEFULL, out);
  BOOST_REQUIRE_EQUAL(n, 16u);
  BOOST_TEST(get_be(out.data(), 4) == 0u);
  BOOST_TEST(get_be(out.data() + 4, 4) == 0xA1B2C3D4u);
  BOOST_TEST(get_be(out.data() + 8, 8) == 0x0123456789ABCDEFULL);
}

BOOST_AUTO_TEST_CASE(writes_announce_reply_in_bep15_layout) {
  AnnounceResponse r;
  r.interval_s = 1800;
  r.result.complete = 7;    // seeders
  r.result.incomplete = 3;  // leechers
  r.result.peers = {peer("1.2.3.4:6881"), peer("[2001:db8::1]:51413"), peer("10.0.0.9:80")};
  OutBuf out{};
  auto n = write_announce(42, r, false, out);
  BOOST_REQUIRE_EQUAL(n, 20u + 2 * 6);
  BOOST_TEST(get_be(out.data(), 4) == 1u);
  BOOST_TEST(get_be(out.data() + 4, 4) == 42u);
  BOOST_TEST(get_be(out.data() + 8, 4) == 1800u);
  BOOST_TEST(get_be(out.data() + 12, 4) == 3u);  // leechers first
  BOOST_TEST(get_be(out.data() + 16, 4) == 7u);
  const std::uint8_t first[] = {1, 2, 3, 4, 0x1A, 0xE1};
  BOOST_TEST(std::memcmp(out.data() + 20, first, 6) == 0);
  const std::uint8_t second[] = {10, 0, 0, 9, 0, 80};
  BOOST_TEST(std::memcmp(out.data() + 26, second, 6) == 0);

  n = write_announce(42, r, true, out);
  BOOST_REQUIRE_EQUAL(n, 20u + 18);
  BOOST_TEST(out[20] == 0x20);
  BOOST_TEST(out[21] == 0x01);
  BOOST_TEST(out[35] == 0x01);
  BOOST_TEST(get_be(out.data() + 36, 2) == 51413u);
}

// A ring node keeps the owner's peers compact: they follow the built ones, of the socket's
// family only, and the datagram bound still holds.
BOOST_AUTO_TEST_CASE(writes_compact_peers_after_built_ones_within_the_bound) {
  AnnounceResponse r;
  r.result.peers = {peer("1.2.3.4:6881")};
  r.result.compact4 = std::string("\x0a\x00\x00\x09\x00\x50", 6);
  r.result.compact6.assign(kCompactPeer6Bytes, '\x20');
  OutBuf out{};
  auto n = write_announce(42, r, false, out);
  BOOST_REQUIRE_EQUAL(n, 20u + 2 * 6);
  const std::uint8_t both[] = {1, 2, 3, 4, 0x1A, 0xE1, 10, 0, 0, 9, 0, 80};
  BOOST_TEST(std::memcmp(out.data() + 20, both, 12) == 0);
  n = write_announce(42, r, true, out);
  BOOST_REQUIRE_EQUAL(n, 20u + 18);
  BOOST_TEST(out[20] == 0x20);

  r.result.compact4.assign(kCompactPeer4Bytes * (kPeersV4Max + 50), '\x07');
  n = write_announce(42, r, false, out);
  BOOST_TEST(n == 20 + kPeersV4Max * 6);
  BOOST_TEST(out[26] == 7);
}

BOOST_AUTO_TEST_CASE(clamps_announce_reply_to_one_datagram) {
  AnnounceResponse r;
  for (int i = 0; i < 300; ++i) {
    std::array<std::uint8_t, 4> v4{10, 0, static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
    r.result.peers.push_back(PeerInfo{SocketAddress{IpAddress::v4(v4.data()), 1000}, {}});
  }
  for (int i = 0; i < 100; ++i) {
    std::array<std::uint8_t, 16> v6{0x20, 0x01, 0x0d, 0xb8};
    v6[15] = static_cast<std::uint8_t>(i);
    r.result.peers.push_back(PeerInfo{SocketAddress{IpAddress::v6(v6.data()), 2000}, {}});
  }
  OutBuf out{};
  auto n4 = write_announce(1, r, false, out);
  BOOST_TEST(n4 == 20 + kPeersV4Max * 6);
  BOOST_TEST(kPeersV4Max == 200u);
  auto p4 = parse_reply(std::span(out.data(), n4), false);
  BOOST_REQUIRE(p4.has_value());
  const auto& a4 = std::get<AnnounceReply>(*p4);
  BOOST_REQUIRE_EQUAL(a4.peers.size(), 200u);
  BOOST_TEST((a4.peers.front() == r.result.peers[0].address));
  BOOST_TEST((a4.peers.back() == r.result.peers[199].address));

  auto n6 = write_announce(1, r, true, out);
  BOOST_TEST(n6 == 20 + kPeersV6Max * 18);
  BOOST_TEST(kPeersV6Max == 66u);
  BOOST_TEST(n6 <= kReplyBytesMax);
  auto p6 = parse_reply(std::span(out.data(), n6), true);
  BOOST_REQUIRE(p6.has_value());
  const auto& a6 = std::get<AnnounceReply>(*p6);
  BOOST_REQUIRE_EQUAL(a6.peers.size(), 66u);
  BOOST_TEST((a6.peers.front() == r.result.peers[300].address));
  BOOST_TEST(a6.peers.front().port == 2000);
}

BOOST_AUTO_TEST_CASE(writes_scrape_reply_in_request_order) {
  ScrapeResponse r;
  for (std::uint32_t i = 0; i < 3; ++i) r.files.push_back(ScrapeEntry{{}, 10 + i, 20 + i, 30 + i});
  OutBuf out{};
  auto n = write_scrape(9, r, out);
  BOOST_REQUIRE_EQUAL(n, 8u + 3 * 12);
  BOOST_TEST(get_be(out.data(), 4) == 2u);
  BOOST_TEST(get_be(out.data() + 4, 4) == 9u);
  for (std::size_t i = 0; i < 3; ++i) {
    BOOST_TEST(get_be(out.data() + 8 + 12 * i, 4) == 10 + i);      // seeders
    BOOST_TEST(get_be(out.data() + 12 + 12 * i, 4) == 20 + i);     // completed
    BOOST_TEST(get_be(out.data() + 16 + 12 * i, 4) == 30 + i);     // leechers
  }
}

BOOST_AUTO_TEST_CASE(clamps_scrape_reply_to_74_entries) {
  ScrapeResponse r;
  r.files.resize(100);
  OutBuf out{};
  BOOST_TEST(write_scrape(9, r, out) == 8 + 74 * 12);
}

BOOST_AUTO_TEST_CASE(writes_error_without_nul) {
  OutBuf out{};
  auto n = write_error(5, "torrent not registered", out);
  BOOST_REQUIRE_EQUAL(n, 8u + 22);
  BOOST_TEST(get_be(out.data(), 4) == 3u);
  BOOST_TEST(get_be(out.data() + 4, 4) == 5u);
  BOOST_TEST(std::memcmp(out.data() + 8, "torrent not registered", 22) == 0);
  auto p = parse_reply(std::span(out.data(), n), false);
  BOOST_REQUIRE(p.has_value());
  BOOST_TEST(std::get<ErrorReply>(*p).message == "torrent not registered");
}

BOOST_AUTO_TEST_CASE(truncates_long_error_at_a_utf8_boundary) {
  OutBuf out{};
  std::string ascii(5000, 'x');
  BOOST_TEST(write_error(5, ascii, out) == kReplyBytesMax);
  // "é" is two bytes; an odd prefix length would split one.
  std::string accents = "y";
  for (int i = 0; i < 1000; ++i) accents += "\xC3\xA9";
  auto n = write_error(5, accents, out);
  BOOST_TEST(n <= kReplyBytesMax);
  BOOST_TEST(n >= kReplyBytesMax - 1);
  BOOST_TEST((out[n - 1] & 0xC0) == 0x80);  // ends on a complete two-byte character
  BOOST_TEST(out[n - 2] == 0xC3);
}

BOOST_AUTO_TEST_CASE(round_trips_replies_through_the_client_parser) {
  OutBuf out{};
  auto n = write_connect(3, 0xFEEDFACECAFEBEEFULL, out);
  auto c = parse_reply(std::span(out.data(), n), false);
  BOOST_REQUIRE(c.has_value());
  BOOST_TEST(std::get<ConnectReply>(*c).connection_id == 0xFEEDFACECAFEBEEFULL);
  ScrapeResponse r;
  r.files.push_back(ScrapeEntry{{}, 1, 2, 3});
  n = write_scrape(4, r, out);
  auto s = parse_reply(std::span(out.data(), n), false);
  BOOST_REQUIRE(s.has_value());
  const auto& f = std::get<ScrapeReply>(*s).files.at(0);
  BOOST_TEST(f.complete == 1u);
  BOOST_TEST(f.downloaded == 2u);
  BOOST_TEST(f.incomplete == 3u);
}

BOOST_AUTO_TEST_CASE(names_every_parse_error_for_counters) {
  BOOST_TEST(to_string(ParseErrorKind::too_short) == "udp_too_short");
  BOOST_TEST(to_string(ParseErrorKind::bad_protocol_id) == "udp_bad_protocol_id");
  BOOST_TEST(to_string(ParseErrorKind::unknown_action) == "udp_unknown_action");
  BOOST_TEST(to_string(ParseErrorKind::bad_scrape_length) == "udp_bad_scrape_length");
  BOOST_TEST(to_string(ParseErrorKind::too_many_hashes) == "udp_too_many_hashes");
  BOOST_TEST(to_string(ParseErrorKind::bad_option) == "udp_bad_option");
  BOOST_TEST(to_string(ParseErrorKind::bad_event) == "udp_bad_event");
}
