// SlotMap: the requests waiting for the ring live here; a key must never find another request.
#define BOOST_TEST_MODULE slot_map
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/slot_map.hpp"

using ringtracker::SlotMap;

BOOST_AUTO_TEST_CASE(finds_what_was_inserted_until_it_is_erased) {
  SlotMap<std::string> m(4);
  const auto a = m.insert("a");
  const auto b = m.insert("b");
  BOOST_TEST(a != b);
  BOOST_TEST(m.size() == 2U);
  BOOST_REQUIRE(m.find(a) != nullptr);
  BOOST_TEST(*m.find(a) == "a");
  BOOST_TEST(*m.find(b) == "b");
  BOOST_TEST(m.erase(a));
  BOOST_TEST(m.find(a) == nullptr);
  BOOST_TEST(!m.erase(a));
  BOOST_TEST(m.size() == 1U);
  BOOST_TEST(m.find(12345) == nullptr);
  BOOST_TEST(m.find(0) == nullptr);
}

// A late answer carries the key of a finished request: it must not find the request that
// reuses the slot, for a long run of reuses, and no key is ever 0.
BOOST_AUTO_TEST_CASE(keys_stay_unique_while_slots_are_reused) {
  for (std::size_t capacity : {1U, 2U, 3U, 8U, 8192U}) {
    SlotMap<int> m(capacity);
    std::set<std::uint32_t> seen;
    std::deque<std::uint32_t> live;
    for (int i = 0; i < 200000; ++i) {
      if (m.full() || (i % 3 == 2 && !live.empty())) {
        const auto k = live.front();
        live.pop_front();
        BOOST_REQUIRE(m.erase(k));
        BOOST_REQUIRE(m.find(k) == nullptr);
      }
      const auto k = m.insert(i);
      BOOST_REQUIRE(k != 0U);
      BOOST_REQUIRE_MESSAGE(seen.insert(k).second,
                            "key " << k << " repeated, capacity " << capacity);
      BOOST_REQUIRE(*m.find(k) == i);
      live.push_back(k);
    }
  }
}

BOOST_AUTO_TEST_CASE(erase_releases_the_value_at_once) {
  SlotMap<std::shared_ptr<int>> m(2);
  auto p = std::make_shared<int>(7);
  const auto k = m.insert(p);
  BOOST_TEST(p.use_count() == 2);
  m.erase(k);
  BOOST_TEST(p.use_count() == 1);
}

BOOST_AUTO_TEST_CASE(pointers_survive_later_inserts_and_for_each_visits_the_live_values) {
  SlotMap<int> m(1000);
  const auto first = m.insert(1);
  int* p = m.find(first);
  std::vector<std::uint32_t> keys;
  for (int i = 0; i < 999; ++i) keys.push_back(m.insert(i + 2));
  BOOST_TEST(m.full());
  BOOST_TEST(p == m.find(first));
  for (std::size_t i = 0; i < keys.size(); i += 2) m.erase(keys[i]);
  long sum = 0;
  std::size_t n = 0;
  m.for_each([&](std::uint32_t k, int& v) {
    BOOST_TEST(m.find(k) == &v);
    sum += v;
    ++n;
  });
  BOOST_TEST(n == m.size());
  BOOST_TEST(n == 500U);
  long expected = 1;
  for (std::size_t i = 1; i < keys.size(); i += 2) expected += static_cast<long>(i) + 2;
  BOOST_TEST(sum == expected);
}
