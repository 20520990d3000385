// The splitmix64 finaliser (Steele, Lea, Flood 2014): a bijection on 64 bits with full
// avalanche. One definition for every seeded hash and generator of the project.
#pragma once

#include <cstdint>

namespace ringtracker {

constexpr std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace ringtracker
