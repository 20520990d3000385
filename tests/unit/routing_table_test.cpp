// RoutingTable (BEP 5 buckets): nodes that answered are kept, k per bucket; a full bucket of
// good nodes takes no one but a bad node (two unanswered queries) is replaced; closest() is the
// XOR order; questionable nodes are offered for a ping, oldest first; ids and addresses are
// unique in the table.
#define BOOST_TEST_MODULE routing_table
#include "dht/routing_table.hpp"

#include <boost/test/unit_test.hpp>

#include <algorithm>

using namespace ringtracker;
using namespace ringtracker::dht;

namespace {

TimePoint at(int s) { return TimePoint{} + std::chrono::hours(1000) + std::chrono::seconds(s); }

/// An id with the given first byte and `n` in the last bytes.
NodeId id(std::uint8_t first, unsigned n) {
  std::array<std::uint8_t, 20> b{};
  b[0] = first;
  b[18] = static_cast<std::uint8_t>(n >> 8);
  b[19] = static_cast<std::uint8_t>(n);
  return NodeId(b);
}

krpc::Contact contact(const NodeId& i, unsigned port) {
  const std::uint8_t ip[4] = {10, 0, static_cast<std::uint8_t>(port >> 8),
                              static_cast<std::uint8_t>(port)};
  return krpc::Contact{i, SocketAddress{IpAddress::v4(ip), static_cast<std::uint16_t>(port)}};
}

const NodeId kSelf = id(0x00, 0);

}  // namespace

BOOST_AUTO_TEST_CASE(xor_metric_and_prefix) {
  BOOST_TEST(shared_prefix_bits(id(0x80, 0), id(0x00, 0)) == 0);
  BOOST_TEST(shared_prefix_bits(id(0x01, 0), id(0x00, 0)) == 7);
  BOOST_TEST(shared_prefix_bits(id(0x00, 1), id(0x00, 0)) == 159);
  BOOST_TEST(shared_prefix_bits(kSelf, kSelf) == 160);
  BOOST_TEST(xor_closer(id(0x10, 0), id(0x20, 0), id(0x11, 0)));
  BOOST_TEST(!xor_closer(id(0x20, 0), id(0x10, 0), id(0x11, 0)));
  BOOST_TEST(!xor_closer(id(0x10, 0), id(0x10, 0), id(0x11, 0)));
}

BOOST_AUTO_TEST_CASE(full_bucket_of_good_nodes_takes_no_one) {
  RoutingTable t(kSelf, 4);
  // All ids with the top bit set share 0 bits with self: one bucket.
  for (unsigned i = 1; i <= 4; ++i) BOOST_TEST(t.on_answer(contact(id(0x80, i), i), at(0)));
  BOOST_TEST(!t.on_answer(contact(id(0x80, 5), 5), at(1)));
  BOOST_TEST(!t.would_take(contact(id(0x80, 6), 6)));
  BOOST_TEST(t.size() == 4U);
  // Another bucket still has room.
  BOOST_TEST(t.on_answer(contact(id(0x40, 1), 50), at(1)));
  BOOST_TEST(t.size() == 5U);
}

BOOST_AUTO_TEST_CASE(bad_node_is_replaced_and_not_handed_out) {
  RoutingTable t(kSelf, 2);
  t.on_answer(contact(id(0x80, 1), 1), at(0));
  t.on_answer(contact(id(0x80, 2), 2), at(0));
  t.on_timeout(id(0x80, 1));
  BOOST_TEST(!t.would_take(contact(id(0x80, 3), 3)));  // one miss: questionable at worst
  t.on_timeout(id(0x80, 1));
  auto near = t.closest(id(0x80, 1), 8);
  BOOST_TEST(near.size() == 1U);
  BOOST_TEST((near[0].id == id(0x80, 2)));
  BOOST_TEST(t.would_take(contact(id(0x80, 3), 3)));
  BOOST_TEST(t.on_answer(contact(id(0x80, 3), 3), at(1)));
  BOOST_TEST(t.size() == 2U);
  BOOST_TEST(t.closest(id(0x80, 3), 8).size() == 2U);
}

BOOST_AUTO_TEST_CASE(answer_resets_failures) {
  RoutingTable t(kSelf, 2);
  t.on_answer(contact(id(0x80, 1), 1), at(0));
  t.on_answer(contact(id(0x80, 2), 2), at(0));
  t.on_timeout(id(0x80, 1));
  t.on_answer(contact(id(0x80, 1), 1), at(5));
  t.on_timeout(id(0x80, 1));
  BOOST_TEST(!t.would_take(contact(id(0x80, 3), 3)));
  BOOST_TEST(t.closest(kSelf, 8).size() == 2U);
}

BOOST_AUTO_TEST_CASE(closest_is_xor_order) {
  RoutingTable t(kSelf, 8);
  const std::uint8_t firsts[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x81, 0xC0};
  unsigned port = 1;
  for (auto f : firsts) t.on_answer(contact(id(f, 0), port++), at(0));
  const NodeId target = id(0x83, 0);
  auto got = t.closest(target, 4);
  BOOST_REQUIRE(got.size() == 4U);
  BOOST_TEST((got[0].id == id(0x81, 0)));
  BOOST_TEST((got[1].id == id(0x80, 0)));
  BOOST_TEST((got[2].id == id(0xC0, 0)));
  BOOST_TEST((got[3].id == id(0x02, 0)));  // 0x02 ^ 0x83 = 0x81 < 0x01 ^ 0x83 = 0x82
  for (std::size_t i = 1; i < got.size(); ++i)
    BOOST_TEST(xor_closer(got[i - 1].id, got[i].id, target));
}

BOOST_AUTO_TEST_CASE(query_refreshes_known_and_asks_to_ping_unknown) {
  RoutingTable t(kSelf, 8);
  t.on_answer(contact(id(0x80, 1), 1), at(0));
  // Known node querying us: refreshed, no ping needed.
  BOOST_TEST(!t.on_query(contact(id(0x80, 1), 1), at(1000)));
  // Unknown: ping it (it is not in the table until it answers).
  BOOST_TEST(t.on_query(contact(id(0x80, 2), 2), at(1000)));
  BOOST_TEST(t.size() == 1U);
  // Self is never taken.
  BOOST_TEST(!t.on_query(contact(kSelf, 9), at(1000)));
  BOOST_TEST(!t.on_answer(contact(kSelf, 9), at(1000)));
  // The refresh at 1000 s keeps it good until 1000 s + 15 min.
  BOOST_TEST(!t.stalest(at(1000 + 899)).has_value());
  BOOST_TEST(t.stalest(at(1000 + 901)).has_value());
}

BOOST_AUTO_TEST_CASE(stalest_is_the_oldest_questionable_node) {
  RoutingTable t(kSelf, 8);
  t.on_answer(contact(id(0x80, 1), 1), at(100));
  t.on_answer(contact(id(0x40, 1), 2), at(50));
  t.on_answer(contact(id(0x20, 1), 3), at(800));
  BOOST_TEST(!t.stalest(at(800)).has_value());
  auto s = t.stalest(at(1000));
  BOOST_REQUIRE(s.has_value());
  BOOST_TEST((s->id == id(0x40, 1)));
  t.on_answer(contact(id(0x40, 1), 2), at(1000));
  BOOST_TEST((t.stalest(at(1000))->id == id(0x80, 1)));
}

BOOST_AUTO_TEST_CASE(ids_and_addresses_are_unique) {
  RoutingTable t(kSelf, 8);
  BOOST_TEST(t.on_answer(contact(id(0x80, 1), 1), at(0)));
  // Same id from another address: not taken, the entry keeps its address.
  BOOST_TEST(!t.on_answer(contact(id(0x80, 1), 2), at(1)));
  // Same address under another id: not taken.
  BOOST_TEST(!t.on_answer(contact(id(0x40, 7), 1), at(1)));
  BOOST_TEST(!t.would_take(contact(id(0x40, 7), 1)));
  BOOST_TEST(t.size() == 1U);
  BOOST_TEST(t.closest(kSelf, 8).at(0).address.port == 1);
}

BOOST_AUTO_TEST_CASE(closest_matches_a_full_sort_on_random_tables) {
  std::uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  auto random_id = [&] {
    std::array<std::uint8_t, 20> b{};
    for (auto& v : b) v = static_cast<std::uint8_t>(next());
    // Some ids near self, so that deep buckets fill too.
    if (next() % 3 == 0) std::fill(b.begin(), b.begin() + static_cast<long>(next() % 4), 0);
    return NodeId(b);
  };
  for (int round = 0; round < 50; ++round) {
    RoutingTable t(kSelf, 8);
    std::vector<krpc::Contact> all;
    for (unsigned i = 0; i < 300; ++i) {
      auto c = contact(random_id(), 1000 + i);
      if (t.on_answer(c, at(0))) all.push_back(c);
    }
    BOOST_REQUIRE(t.size() == all.size());
    for (int q = 0; q < 20; ++q) {
      const NodeId target = q == 0 ? kSelf : random_id();
      std::sort(all.begin(), all.end(), [&](const krpc::Contact& a, const krpc::Contact& b) {
        return xor_closer(a.id, b.id, target);
      });
      for (std::size_t n : {1U, 8U, 9U, 500U}) {
        auto got = t.closest(target, n);
        BOOST_REQUIRE(got.size() == std::min(n, all.size()));
        for (std::size_t i = 0; i < got.size(); ++i) BOOST_TEST((got[i].id == all[i].id));
      }
    }
  }
}
