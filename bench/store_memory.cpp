// Memory per peer and in-process announce throughput of MemorySwarmStore: fills N unique
// IPv4 ip:port peers over T torrents (even spread or Zipf popularity), reports RSS from
// /proc/self/status, then times refresh announces and a replica's merges of the same refreshes.
// Not a test; numbers go to stdout.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "tracker/memory_swarm_store.hpp"

using namespace ringtracker;
using namespace ringtracker::tracker;

namespace {

// Reads a "Key:   123 kB" line of /proc/self/status; 0 when unavailable.
long status_kib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') {
      return std::strtol(line.c_str() + n + 1, nullptr, 10);
    }
  }
  return 0;
}

InfoHash torrent_hash(std::uint32_t n) {
  // Info-hashes are SHA-1 outputs: spread the index over all bytes like one.
  InfoHash h{};
  std::uint64_t x = n * 0x9e3779b97f4a7c15ULL + 1;
  for (std::size_t i = 0; i < h.size(); ++i) {
    x ^= x >> 29;
    x *= 0xbf58476d1ce4e5b9ULL;
    h[i] = static_cast<std::uint8_t>(x >> 56);
  }
  return h;
}

SocketAddress peer_address(std::uint32_t n) {
  // Unique ip:port per peer: 16 ports per address in 10.0.0.0/8 and 11.0.0.0/8.
  const std::uint32_t ip = 0x0A000000U + (n >> 4);
  const std::uint8_t b[4] = {static_cast<std::uint8_t>(ip >> 24), static_cast<std::uint8_t>(ip >> 16),
                             static_cast<std::uint8_t>(ip >> 8), static_cast<std::uint8_t>(ip)};
  return SocketAddress{IpAddress::v4(b), static_cast<std::uint16_t>(6881 + (n & 15))};
}

struct Options {
  std::uint32_t peers = 1'000'000;
  std::uint32_t torrents = 100'000;
  bool zipf = false;
  std::uint32_t announces = 2'000'000;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::uint32_t {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "missing value after %s\n", a.c_str());
        std::exit(2);
      }
      return static_cast<std::uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    };
    if (a == "--peers") {
      o.peers = next();
    } else if (a == "--torrents") {
      o.torrents = next();
    } else if (a == "--announces") {
      o.announces = next();
    } else if (a == "--zipf") {
      o.zipf = true;
    } else {
      std::fprintf(stderr,
                   "usage: store_memory [--peers N] [--torrents N] [--zipf] [--announces N]\n");
      std::exit(2);
    }
  }
  if (o.torrents == 0) o.torrents = 1;
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse(argc, argv);
  std::mt19937_64 rng(12345);

  // Torrent of each peer, drawn before measuring so the draw costs no RSS in between.
  std::vector<std::uint32_t> torrent_of(opt.peers);
  if (opt.zipf) {
    // Zipf(s = 1) over torrent ranks by inverse CDF on the harmonic partial sums.
    std::vector<double> cdf(opt.torrents);
    double sum = 0;
    for (std::uint32_t r = 0; r < opt.torrents; ++r) cdf[r] = (sum += 1.0 / (r + 1));
    std::uniform_real_distribution<double> u(0, sum);
    for (auto& t : torrent_of) {
      t = static_cast<std::uint32_t>(std::lower_bound(cdf.begin(), cdf.end(), u(rng)) - cdf.begin());
      if (t >= opt.torrents) t = opt.torrents - 1;
    }
  } else {
    // Every torrent gets peers/torrents peers, as bench/memory.sh loads the daemons.
    for (std::uint32_t p = 0; p < opt.peers; ++p) torrent_of[p] = p % opt.torrents;
  }
  std::vector<InfoHash> hashes(opt.torrents);
  for (std::uint32_t t = 0; t < opt.torrents; ++t) hashes[t] = torrent_hash(t);

  SwarmLimits limits;
  limits.peers_per_torrent_max = opt.peers;  // measure, do not refuse
  MemorySwarmStore store(limits, 0x5eed);
  const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);

  const long rss_before = status_kib("VmRSS");
  AnnounceRequest req;
  req.left = 1;
  req.numwant = 0;
  const auto fill_start = std::chrono::steady_clock::now();
  for (std::uint32_t p = 0; p < opt.peers; ++p) {
    req.info_hash = hashes[torrent_of[p]];
    req.peer = peer_address(p);
    req.left = (p % 3 == 0) ? 0 : 1;
    if (!store.announce(req, t0)) {
      std::fprintf(stderr, "announce refused at peer %u\n", p);
      return 1;
    }
  }
  const double fill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - fill_start).count();
  const long rss_after = status_kib("VmRSS");
  const long hwm = status_kib("VmHWM");
  const StoreStats st = store.stats();
  const double peers = static_cast<double>(st.peers);

  std::printf("distribution      %s\n", opt.zipf ? "zipf(s=1)" : "even");
  std::printf("torrents          %zu\n", st.torrents);
  std::printf("peers             %zu (seeders %zu)\n", st.peers, st.seeders);
  std::printf("VmRSS before      %ld kB\n", rss_before);
  std::printf("VmRSS after       %ld kB\n", rss_after);
  std::printf("VmHWM             %ld kB\n", hwm);
  std::printf("RSS bytes/peer    %.2f\n", (rss_after - rss_before) * 1024.0 / peers);
  std::printf("store bytes/peer  %.2f (requested from the allocator)\n",
              static_cast<double>(store.memory_bytes_for_test()) / peers);
  std::printf("fill              %.0f new peers/s\n", peers / fill_s);

  // Steady state: refreshes of random existing peers with numwant 50, as clients do.
  std::uniform_int_distribution<std::uint32_t> pick(0, opt.peers - 1);
  std::vector<std::uint32_t> order(opt.announces);
  for (auto& o : order) o = pick(rng);
  std::size_t returned = 0;
  req.numwant = 50;
  const auto run_start = std::chrono::steady_clock::now();
  for (std::uint32_t i = 0; i < opt.announces; ++i) {
    const std::uint32_t p = order[i];
    req.info_hash = hashes[torrent_of[p]];
    req.peer = peer_address(p);
    req.left = (p % 3 == 0) ? 0 : 1;
    // One second per 100k announces keeps time moving without expiring anyone.
    auto r = store.announce(req, t0 + std::chrono::seconds(i / 100'000));
    returned += r ? r->peers.size() : 0;
  }
  const double run_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
  std::printf("announce          %.0f announces/s (numwant 50, %.1f peers returned on average)\n",
              opt.announces / run_s, static_cast<double>(returned) / opt.announces);

  // Replica merges: the refreshes again, as a replica receives them from the owner: one
  // snapshot per swarm and replication period, a hot swarm's peers sorted by address (as the
  // owner's flush sends them), merged into a copy of the store.
  const TimePoint t_merge = t0 + std::chrono::seconds(opt.announces / 100'000 + 1);
  MemorySwarmStore replica(limits, 0x5eed);
  for (std::uint32_t t = 0; t < opt.torrents; ++t) {
    if (auto snap = store.export_swarm(hashes[t], t_merge)) replica.merge_swarm(*snap, t_merge);
  }
  constexpr std::size_t kPeriodAnnounces = 17'000;  // one 100 ms period at 170,000 announces/s
  constexpr std::size_t kSortedFrom = 17;           // the owner sorts groups larger than 16
  const std::size_t merged = std::min<std::size_t>(opt.announces, 1'000'000);
  std::vector<SwarmSnapshot> snapshots;
  std::vector<std::vector<std::uint32_t>> group(opt.torrents);
  for (std::size_t begin = 0; begin < merged; begin += kPeriodAnnounces) {
    const std::size_t end = std::min(merged, begin + kPeriodAnnounces);
    for (std::size_t i = begin; i < end; ++i) group[torrent_of[order[i]]].push_back(order[i]);
    for (std::uint32_t t = 0; t < opt.torrents; ++t) {
      auto& members = group[t];
      if (members.empty()) continue;
      if (members.size() >= kSortedFrom) {
        std::sort(members.begin(), members.end(), [](std::uint32_t x, std::uint32_t y) {
          return peer_address(x) < peer_address(y);
        });
      }
      SwarmSnapshot& snap = snapshots.emplace_back();
      snap.info_hash = hashes[t];
      for (const std::uint32_t p : members) {
        SnapshotPeer sp;
        sp.address = peer_address(p);
        sp.seeder = p % 3 == 0;
        sp.remaining_ttl = limits.peer_ttl;
        snap.peers.push_back(sp);
      }
      members.clear();
    }
  }
  const auto merge_start = std::chrono::steady_clock::now();
  for (const SwarmSnapshot& snap : snapshots) replica.merge_swarm(snap, t_merge);
  const double merge_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - merge_start).count();
  std::printf("replica merge     %.0f peers/s (%zu refreshes in %zu swarm snapshots)\n",
              static_cast<double>(merged) / merge_s, merged, snapshots.size());

  const auto sweep_start = std::chrono::steady_clock::now();
  while (!store.sweep(t0 + std::chrono::seconds(60), 10'000)) {
  }
  const double sweep_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sweep_start).count();
  std::printf("sweep             %.1f ms for a full pass over %zu torrents\n", sweep_s * 1e3,
              store.stats().torrents);
  return 0;
}
