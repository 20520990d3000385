// KeyedHash20: every byte of the key counts, and the seed changes every hash (collisions
// cannot be aimed without it).
#define BOOST_TEST_MODULE keyed_hash
#include "common/keyed_hash.hpp"

#include <boost/test/unit_test.hpp>
#include <set>

using ringtracker::KeyedHash20;

BOOST_AUTO_TEST_CASE(every_byte_of_the_key_changes_the_hash) {
  const KeyedHash20 h(12345);
  std::array<std::uint8_t, 20> key{};
  const std::uint64_t base = h(key);
  for (std::size_t i = 0; i < key.size(); ++i) {
    auto k = key;
    k[i] ^= 0x01;
    BOOST_TEST_INFO("byte " << i);
    BOOST_TEST(h(k) != base);
  }
}

BOOST_AUTO_TEST_CASE(keys_sharing_most_bytes_spread_over_buckets) {
  // An attacker varies only the last bytes; with the seed unknown they still spread.
  const KeyedHash20 h(987654321);
  std::set<std::uint64_t> buckets;
  std::array<std::uint8_t, 20> key{};
  for (int i = 0; i < 4096; ++i) {
    key[18] = static_cast<std::uint8_t>(i >> 8);
    key[19] = static_cast<std::uint8_t>(i);
    buckets.insert(h(key) % 1024);
  }
  BOOST_TEST(buckets.size() > 1000U);  // 4096 keys into 1024 buckets: nearly all used
}

BOOST_AUTO_TEST_CASE(the_seed_changes_the_hash_and_a_seed_is_reproducible) {
  std::array<std::uint8_t, 20> key{};
  key[0] = 42;
  BOOST_TEST(KeyedHash20(1)(key) != KeyedHash20(2)(key));
  BOOST_TEST(KeyedHash20(7)(key) == KeyedHash20(7)(key));
}
