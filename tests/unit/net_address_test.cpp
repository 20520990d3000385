#define BOOST_TEST_MODULE net_address
#include "common/net_address.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

using namespace ringtracker;
namespace bdata = boost::unit_test::data;

BOOST_AUTO_TEST_CASE(parses_and_prints_v4_and_v6_endpoints) {
  auto a = SocketAddress::parse("127.0.0.2:6969");
  BOOST_REQUIRE(a);
  BOOST_TEST(a->to_string() == "127.0.0.2:6969");
  auto b = SocketAddress::parse("[::1]:80");
  BOOST_REQUIRE(b);
  BOOST_TEST(b->ip.is_v6());
  BOOST_TEST(b->to_string() == "[::1]:80");
}

BOOST_AUTO_TEST_CASE(normalises_v4_mapped_v6) {
  auto a = IpAddress::parse("::ffff:10.1.2.3");
  BOOST_REQUIRE(a);
  BOOST_TEST(a->is_v4());
  BOOST_TEST(a->to_string() == "10.1.2.3");
}

static const char* kBad[] = {"", ":", "1.2.3.4", "1.2.3.4:", "1.2.3.4:65536", "::1:80",
                             "[::1]80", "[::1]:", "a.b.c.d:1", "1.2.3.4:-1", "1.2.3.4:1x"};
BOOST_DATA_TEST_CASE(rejects_malformed_endpoints, bdata::make(kBad), text) {
  BOOST_TEST(!SocketAddress::parse(text));
}

BOOST_AUTO_TEST_CASE(network_contains_checks_prefix) {
  auto n = IpNetwork::parse("10.0.0.0/8");
  BOOST_REQUIRE(n);
  BOOST_TEST(n->contains(*IpAddress::parse("10.200.1.1")));
  BOOST_TEST(!n->contains(*IpAddress::parse("11.0.0.1")));
  BOOST_TEST(!n->contains(*IpAddress::parse("::1")));
  auto m = IpNetwork::parse("fd00::/12");
  BOOST_REQUIRE(m);
  BOOST_TEST(m->contains(*IpAddress::parse("fd0f::1")));
  BOOST_TEST(!m->contains(*IpAddress::parse("fd10::1")));
  BOOST_TEST(!IpNetwork::parse("10.0.0.0/33"));
}
