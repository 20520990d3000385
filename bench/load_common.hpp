// What the load generators share: a seedable PRNG, the info-hash of torrent i (scripts
// reproduce the list for whitelists), Zipf popularity and a latency histogram. Header-only,
// libc/libstdc++ only; no I/O.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ringtracker::bench {

using InfoHash = std::array<std::uint8_t, 20>;

using Clock = std::chrono::steady_clock;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The splitmix64 finaliser (Steele, Lea, Flood 2014): a bijection on 64 bits with good mixing.
inline std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// splitmix64: a tiny, seedable generator.
inline std::uint64_t splitmix64(std::uint64_t& state) {
  state += 0x9e3779b97f4a7c15ULL;
  return mix64(state);
}

/// Seeded pseudo-random source; the same seed gives the same run.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix64(state_); }
  /// Uniform in [0, bound); bound > 0. The modulo bias is below 2^-30 for the bounds used here.
  std::uint64_t below(std::uint64_t bound) { return next() % bound; }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  std::uint64_t state_;
};

/// The info-hash of torrent `index`: a fixed function of (index, hash_seed), so scripts can
/// reproduce the list (--print-hashes) for a tracker's whitelist without running the load.
inline InfoHash info_hash_of(std::uint32_t index, std::uint64_t hash_seed) {
  InfoHash h{};
  for (std::uint64_t word = 0; word < 3; ++word) {
    // (index, word) -> distinct inputs of a bijection: no two torrents share any 8-byte word.
    const std::uint64_t v = mix64(((static_cast<std::uint64_t>(index) << 2) | word) +
                                  (hash_seed + 1) * 0x9e3779b97f4a7c15ULL);
    for (std::size_t b = 0; b < 8 && word * 8 + b < h.size(); ++b) {
      h[word * 8 + b] = static_cast<std::uint8_t>(v >> (56 - 8 * b));
    }
  }
  return h;
}

/// Popularity of torrents: rank r (0 = most popular) has weight 1 / (r + 1)^s; s = 0 is uniform.
class ZipfSampler {
 public:
  ZipfSampler(std::uint32_t n, double s) : cdf_(n) {
    double sum = 0;
    for (std::uint32_t r = 0; r < n; ++r) {
      sum += 1.0 / std::pow(static_cast<double>(r) + 1.0, s);
      cdf_[r] = sum;
    }
    for (double& c : cdf_) c /= sum;
  }
  std::uint32_t sample(Rng& rng) const {
    const double u = rng.unit();
    const auto it = std::lower_bound(cdf_.begin(), cdf_.end(), u);
    return static_cast<std::uint32_t>(
        std::min<std::size_t>(static_cast<std::size_t>(it - cdf_.begin()), cdf_.size() - 1));
  }

 private:
  std::vector<double> cdf_;
};

/// Latency histogram with 64 sub-buckets per power of two (about 1.5 % relative error).
class LatencyHistogram {
 public:
  void record(std::int64_t ns) {
    const std::uint64_t v = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
    ++buckets_[index_of(v)];
    ++count_;
  }
  std::uint64_t count() const { return count_; }
  /// Value (ns) at quantile q in [0, 1]; 0 when empty.
  std::uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= std::max<std::uint64_t>(rank, 1)) return lower_bound_of(i);
    }
    return lower_bound_of(buckets_.size() - 1);
  }

 private:
  static constexpr std::size_t kLinear = 128;
  static constexpr std::size_t kSub = 64;
  static constexpr std::size_t kBuckets = kLinear + 57 * kSub;
  static std::size_t index_of(std::uint64_t v) {
    if (v < kLinear) return static_cast<std::size_t>(v);
    const auto shift = static_cast<std::size_t>(std::bit_width(v)) - 7;
    return kLinear + (shift - 1) * kSub + static_cast<std::size_t>((v >> shift) - kSub);
  }
  static std::uint64_t lower_bound_of(std::size_t i) {
    if (i < kLinear) return i;
    const std::size_t shift = (i - kLinear) / kSub + 1;
    return (static_cast<std::uint64_t>((i - kLinear) % kSub) + kSub) << shift;
  }
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
};

}  // namespace ringtracker::bench
