// A small seeded PRNG (xoshiro256**, seeded through splitmix64) for the ring: 32 bytes of state,
// so that 100,000 simulated nodes do not carry a 2.5 KB mt19937 each. Not for secrets.
#pragma once

#include <cstdint>

#include "common/mix64.hpp"

namespace ringtracker::dht {

class Prng {
 public:
  explicit Prng(std::uint64_t seed) {
    for (auto& s : s_) s = splitmix(seed);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  /// Uniform in [0, n); n > 0. Lemire's multiply-shift (bias below 2^-32 for our n).
  std::uint64_t below(std::uint64_t n) {
    __extension__ using U128 = unsigned __int128;
    return static_cast<std::uint64_t>((static_cast<U128>(next()) * n) >> 64);
  }
  /// Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static std::uint64_t splitmix(std::uint64_t& x) { return mix64(x += 0x9e3779b97f4a7c15ULL); }
  std::uint64_t s_[4];
};

}  // namespace ringtracker::dht
