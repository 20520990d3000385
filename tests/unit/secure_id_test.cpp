// BEP 42 node ids: crc32c matches its standard check value; the five example ids of BEP 42 come
// out of secure_node_id bit for bit (first 21 bits and last byte); ids are accepted for their
// own IP only; local networks are exempt.
#define BOOST_TEST_MODULE secure_id
#include "dht/secure_id.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include <string_view>

using namespace ringtracker;
using namespace ringtracker::dht;

namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

struct Example {
  const char* ip;
  std::uint8_t rand;
  std::uint32_t prefix;  // the id's first three bytes, of which the top 21 bits are fixed
};

std::ostream& operator<<(std::ostream& os, const Example& e) { return os << e.ip; }

// BEP 42's table of example ids.
const Example kExamples[] = {
    {"124.31.75.21", 1, 0x5fbfbf},  {"21.75.31.124", 86, 0x5a3ce9},
    {"65.23.51.170", 22, 0xa5d432}, {"84.124.73.14", 65, 0x1b0321},
    {"43.213.53.83", 90, 0xe56f6c},
};

}  // namespace

BOOST_AUTO_TEST_CASE(crc32c_check_value) {
  constexpr std::string_view kCheck = "123456789";
  BOOST_TEST(crc32c(std::span<const std::uint8_t>(
                 reinterpret_cast<const std::uint8_t*>(kCheck.data()), kCheck.size())) ==
             0xe3069283U);
}

BOOST_DATA_TEST_CASE(bep42_examples, boost::unit_test::data::make(kExamples), e) {
  std::array<std::uint8_t, 20> random{};
  random.fill(0xa5);
  const NodeId id = secure_node_id(ip(e.ip), e.rand, random);
  const auto& b = id.bytes();
  const std::uint32_t got = (std::uint32_t{b[0]} << 16) | (std::uint32_t{b[1]} << 8) | b[2];
  BOOST_TEST((got & 0xfffff8U) == (e.prefix & 0xfffff8U));
  BOOST_TEST(b[19] == e.rand);
  BOOST_TEST(b[10] == 0xa5);  // the middle is the random input
  BOOST_TEST(secure_id_valid(id, ip(e.ip)));
  BOOST_TEST(!secure_id_valid(id, ip("8.8.4.4")));
}

BOOST_AUTO_TEST_CASE(ipv6_ids_verify_for_their_address_only) {
  std::array<std::uint8_t, 20> random{};
  random.fill(0x3c);
  const NodeId id = secure_node_id(ip("2001:db8:1234::1"), 7, random);
  BOOST_TEST(secure_id_valid(id, ip("2001:db8:1234::1")));
  BOOST_TEST(!secure_id_valid(id, ip("2001:db9:1234::1")));
}

BOOST_AUTO_TEST_CASE(local_networks_are_exempt) {
  for (const char* a : {"10.1.2.3", "172.16.0.1", "172.31.255.1", "192.168.1.1", "169.254.0.9",
                        "127.0.0.1", "::1", "fe80::1", "fd00::1", "0.0.0.0"}) {
    BOOST_TEST(secure_id_exempt(ip(a)), a);
  }
  for (const char* a : {"8.8.8.8", "172.32.0.1", "172.15.0.1", "2001:db8::1", "192.169.0.1"}) {
    BOOST_TEST(!secure_id_exempt(ip(a)), a);
  }
  BOOST_TEST(secure_id_valid(NodeId{}, ip("192.168.0.1")));
}
