#define BOOST_TEST_MODULE node_id
#include "dht/node_id.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

using namespace ringtracker;
using namespace ringtracker::dht;
namespace bdata = boost::unit_test::data;

namespace ringtracker::dht {
std::ostream& operator<<(std::ostream& os, const NodeId& id) { return os << id.to_hex(); }
}  // namespace ringtracker::dht

namespace {
NodeId hex(const char* h) { return *NodeId::from_hex(h); }
NodeId small(std::uint8_t v) {
  std::array<std::uint8_t, 20> a{};
  a[19] = v;
  return NodeId(a);
}
}  // namespace

BOOST_AUTO_TEST_CASE(id_is_sha1_of_printed_address) {
  // sha1("127.0.0.1:6969"), computed independently.
  auto a = SocketAddress::parse("127.0.0.1:6969");
  BOOST_REQUIRE(a);
  BOOST_TEST(NodeId::from_address(*a).to_hex() == "379a06d5a0b002f3522d846aca58ee62e32ecbc9");
}

BOOST_AUTO_TEST_CASE(vnode_index_changes_the_id_and_zero_means_none) {
  auto a = *SocketAddress::parse("10.0.0.1:1");
  BOOST_TEST(NodeId::from_address(a, 0) == NodeId::from_address(a));
  BOOST_TEST(NodeId::from_address(a, 1) != NodeId::from_address(a));
  BOOST_TEST(NodeId::from_address(a, 1) != NodeId::from_address(a, 2));
}

BOOST_AUTO_TEST_CASE(verify_refuses_id_of_another_address) {
  auto a = *SocketAddress::parse("10.0.0.1:1");
  auto b = *SocketAddress::parse("10.0.0.1:2");
  BOOST_TEST(verify(NodeId::from_address(a), a));
  BOOST_TEST(!verify(NodeId::from_address(a), b));
  BOOST_TEST(!verify(NodeId::from_address(a, 3), a));
  BOOST_TEST(verify(NodeId::from_address(a, 3), a, 3));
}

BOOST_AUTO_TEST_CASE(hex_round_trips_and_accepts_upper_case) {
  auto id = hex("00112233445566778899aabbccddeeff01234567");
  BOOST_TEST(id.to_hex() == "00112233445566778899aabbccddeeff01234567");
  BOOST_TEST(hex("00112233445566778899AABBCCDDEEFF01234567") == id);
}

static const char* kBadHex[] = {"", "0", "00112233445566778899aabbccddeeff0123456",
                                "00112233445566778899aabbccddeeff012345678",
                                "00112233445566778899aabbccddeeff0123456g",
                                " 0112233445566778899aabbccddeeff01234567"};
BOOST_DATA_TEST_CASE(rejects_malformed_hex, bdata::make(kBadHex), text) {
  BOOST_TEST(!NodeId::from_hex(text).has_value());
}

BOOST_AUTO_TEST_CASE(from_bytes_requires_exactly_20) {
  BOOST_TEST(!NodeId::from_bytes(std::string_view("0123456789012345678")).has_value());
  BOOST_TEST(!NodeId::from_bytes(std::string_view("012345678901234567890")).has_value());
  BOOST_TEST(NodeId::from_bytes(std::string_view("01234567890123456789")).has_value());
}

BOOST_AUTO_TEST_CASE(ordering_is_numeric_big_endian) {
  BOOST_TEST((small(1) < small(2)));
  BOOST_TEST((hex("0100000000000000000000000000000000000000") > small(255)));
}

BOOST_AUTO_TEST_CASE(addition_wraps_modulo_2_160) {
  auto max = hex("ffffffffffffffffffffffffffffffffffffffff");
  BOOST_TEST(max.plus(small(1)) == NodeId());
  BOOST_TEST(max.plus_pow2(0) == NodeId());
  BOOST_TEST(NodeId().plus_pow2(159) == hex("8000000000000000000000000000000000000000"));
  BOOST_TEST(small(0xff).plus_pow2(0) == hex("0000000000000000000000000000000000000100"));
}

BOOST_AUTO_TEST_CASE(distance_is_clockwise) {
  BOOST_TEST(NodeId::distance(small(5), small(7)) == small(2));
  auto max = hex("ffffffffffffffffffffffffffffffffffffffff");
  BOOST_TEST(NodeId::distance(small(7), small(5)) == hex("fffffffffffffffffffffffffffffffffffffffe"));
  BOOST_TEST(NodeId::distance(max, small(1)) == small(2));
  BOOST_TEST(NodeId::distance(small(9), small(9)).is_zero());
}

BOOST_AUTO_TEST_CASE(fraction_is_the_share_of_the_circle) {
  BOOST_TEST(NodeId().fraction() == 0.0);
  BOOST_TEST(NodeId::pow2(159).fraction() == 0.5);
  BOOST_TEST(NodeId::pow2(158).fraction() == 0.25);
  // A quarter of the circle between two ids, across the wrap.
  const NodeId three_quarters = NodeId::pow2(159).plus(NodeId::pow2(158));
  BOOST_TEST(NodeId::distance(three_quarters, NodeId()).fraction() == 0.25);
}

BOOST_AUTO_TEST_CASE(log2_floor_finds_top_bit) {
  BOOST_TEST(NodeId().log2_floor() == -1);
  BOOST_TEST(small(1).log2_floor() == 0);
  BOOST_TEST(small(0x80).log2_floor() == 7);
  BOOST_TEST(NodeId::pow2(100).log2_floor() == 100);
  BOOST_TEST(NodeId::pow2(159).log2_floor() == 159);
}

BOOST_AUTO_TEST_CASE(open_interval_without_wrap) {
  BOOST_TEST(in_open(small(5), small(3), small(9)));
  BOOST_TEST(!in_open(small(3), small(3), small(9)));
  BOOST_TEST(!in_open(small(9), small(3), small(9)));
  BOOST_TEST(!in_open(small(10), small(3), small(9)));
}

BOOST_AUTO_TEST_CASE(open_interval_wraps_past_zero) {
  BOOST_TEST(in_open(small(1), small(200), small(3)));
  BOOST_TEST(in_open(small(250), small(200), small(3)));
  BOOST_TEST(!in_open(small(100), small(200), small(3)));
  BOOST_TEST(!in_open(small(3), small(200), small(3)));
}

BOOST_AUTO_TEST_CASE(open_interval_with_equal_ends_is_circle_minus_point) {
  BOOST_TEST(in_open(small(1), small(7), small(7)));
  BOOST_TEST(!in_open(small(7), small(7), small(7)));
}

BOOST_AUTO_TEST_CASE(half_open_interval_includes_right_end_only) {
  BOOST_TEST(in_half_open(small(9), small(3), small(9)));
  BOOST_TEST(!in_half_open(small(3), small(3), small(9)));
  BOOST_TEST(in_half_open(small(3), small(200), small(3)));
  BOOST_TEST(!in_half_open(small(200), small(200), small(3)));
}

BOOST_AUTO_TEST_CASE(half_open_interval_with_equal_ends_is_whole_circle) {
  BOOST_TEST(in_half_open(small(7), small(7), small(7)));
  BOOST_TEST(in_half_open(small(0), small(7), small(7)));
}
