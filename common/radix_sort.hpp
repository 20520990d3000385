// Sorting 64-bit keys by their upper 32 bits only, stably: a least-significant-digit radix sort
// in three passes of 11 bits. For keys whose lower half is already ascending (an index), the
// result is exactly std::sort's, at a few passes over the keys instead of n log n comparisons.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringtracker {

/// Below this many keys std::sort is cheaper than clearing and summing the digit counts.
inline constexpr std::size_t kRadixSortMin = 256;

/// Sorts `keys` by (key >> 32), keeping the order of keys with equal upper halves. `scratch`
/// is working space, kept by the caller so that repeated sorts do not allocate.
inline void radix_sort_by_high32(std::vector<std::uint64_t>& keys,
                                 std::vector<std::uint64_t>& scratch) {
  constexpr unsigned kDigitBits = 11;
  constexpr std::size_t kDigits = std::size_t{1} << kDigitBits;
  constexpr unsigned kPasses = 3;  // 33 bits cover the upper 32
  if (keys.size() < kRadixSortMin) {
    std::stable_sort(keys.begin(), keys.end(),
                     [](std::uint64_t a, std::uint64_t b) { return (a >> 32) < (b >> 32); });
    return;
  }
  scratch.resize(keys.size());
  std::vector<std::uint64_t>* from = &keys;
  std::vector<std::uint64_t>* to = &scratch;
  for (unsigned pass = 0; pass < kPasses; ++pass) {
    const unsigned shift = 32 + pass * kDigitBits;
    std::array<std::uint32_t, kDigits> count{};
    for (const std::uint64_t k : *from) ++count[(k >> shift) & (kDigits - 1)];
    std::uint32_t sum = 0;
    for (auto& c : count) {
      const std::uint32_t n = c;
      c = sum;
      sum += n;
    }
    for (const std::uint64_t k : *from) (*to)[count[(k >> shift) & (kDigits - 1)]++] = k;
    std::swap(from, to);
  }
  // An odd number of passes leaves the result in `scratch`.
  keys.swap(scratch);
}

}  // namespace ringtracker
