// A keyed hash for 20-byte keys that clients choose (info-hashes): finding two keys that land
// in the same bucket needs the seed, so nobody can aim a hash table's collisions (an unkeyed
// table of client-chosen keys turns crafted announces into quadratic work).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "common/mix64.hpp"

namespace ringtracker {

class KeyedHash20 {
 public:
  /// The daemon passes a secret random seed; tests and simulations a fixed one (reproducible
  /// iteration order).
  explicit KeyedHash20(std::uint64_t seed = 0)
      : k0_(mix64(seed ^ 0x243f6a8885a308d3ULL)), k1_(mix64(seed ^ 0x13198a2e03707344ULL)) {}

  std::uint64_t operator()(const std::array<std::uint8_t, 20>& key) const {
    // Chained keyed mixing over the whole key.
    std::uint64_t a = 0;
    std::uint64_t b = 0;
    std::uint32_t c = 0;
    std::memcpy(&a, key.data(), 8);
    std::memcpy(&b, key.data() + 8, 8);
    std::memcpy(&c, key.data() + 16, 4);
    std::uint64_t h = mix64(a ^ k0_);
    h = mix64(h ^ b);
    return mix64(h ^ c ^ k1_);
  }

 private:
  std::uint64_t k0_;
  std::uint64_t k1_;
};

}  // namespace ringtracker
