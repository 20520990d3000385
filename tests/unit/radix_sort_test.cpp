// radix_sort_by_high32 orders a replication period's log by swarm: it must give exactly the
// order of sorting the whole keys (upper half, then the index below it) at every size.
#define BOOST_TEST_MODULE radix_sort
#include "common/radix_sort.hpp"

#include <boost/test/unit_test.hpp>
#include <cstdint>
#include <vector>

#include "dht/prng.hpp"

using ringtracker::radix_sort_by_high32;

BOOST_AUTO_TEST_CASE(orders_as_a_sort_of_whole_keys_with_indexes_below) {
  ringtracker::dht::Prng rng(7);
  std::vector<std::uint64_t> scratch;
  for (const std::size_t n : {0, 1, 2, 100, 255, 256, 257, 1000, 5000, 40000}) {
    for (const std::uint64_t spread :
         {std::uint64_t{3}, std::uint64_t{5000}, std::uint64_t{1} << 32}) {
      std::vector<std::uint64_t> keys(n);
      for (std::size_t i = 0; i < n; ++i) keys[i] = ((rng.next() % spread) << 32) | i;
      std::vector<std::uint64_t> expected = keys;
      std::sort(expected.begin(), expected.end());
      radix_sort_by_high32(keys, scratch);
      BOOST_TEST_INFO("n " << n << " spread " << spread);
      BOOST_TEST(keys == expected);
    }
  }
}

BOOST_AUTO_TEST_CASE(keeps_arrival_order_of_equal_upper_halves_whatever_the_lower) {
  // Lower halves not ascending: only the upper half orders, equal ones stay as they came.
  std::vector<std::uint64_t> keys;
  for (std::uint64_t i = 0; i < 600; ++i) keys.push_back(((i % 4) << 32) | (1000 - i));
  std::vector<std::uint64_t> scratch;
  radix_sort_by_high32(keys, scratch);
  for (std::size_t i = 1; i < keys.size(); ++i) {
    BOOST_REQUIRE((keys[i - 1] >> 32) <= (keys[i] >> 32));
    if ((keys[i - 1] >> 32) == (keys[i] >> 32))
      BOOST_REQUIRE((keys[i - 1] & 0xffffffffU) > (keys[i] & 0xffffffffU));
  }
  BOOST_TEST((keys.front() >> 32) == 0U);
  BOOST_TEST((keys.back() >> 32) == 3U);
}
