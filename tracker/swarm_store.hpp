// The swarm store contract: peers per info-hash with expiry by `now` and hard caps. Any
// implementation (the in-memory one, the ring-backed one) must pass
// tests/unit/swarm_store_conformance.hpp. No I/O, no clock: time is always an argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/clock.hpp"
#include "common/expected.hpp"
#include "tracker/announce.hpp"

namespace ringtracker::tracker {

/// Hard limits of a store (from config; defaults are the named constants below).
struct SwarmLimits {
  /// Torrents tracked at once; announces of new torrents beyond this are refused.
  static constexpr std::size_t kTorrentsMaxDefault = 2'000'000;
  /// Peers per torrent; new peers beyond this are refused (existing ones keep refreshing).
  static constexpr std::size_t kPeersPerTorrentMaxDefault = 100'000;
  /// Peers returned in one answer, whatever numwant says.
  static constexpr std::size_t kNumwantMaxDefault = 200;

  std::size_t torrents_max = kTorrentsMaxDefault;
  std::size_t peers_per_torrent_max = kPeersPerTorrentMaxDefault;
  std::size_t numwant_max = kNumwantMaxDefault;
  /// A peer not heard from for this long is gone (1.5 x announce interval).
  Duration peer_ttl = std::chrono::seconds(2700);
};

enum class StoreError : std::uint8_t { torrents_full, peers_full };
std::string_view to_string(StoreError e);

struct StoreStats {
  std::size_t torrents = 0;
  std::size_t peers = 0;
  std::size_t seeders = 0;
  std::size_t leechers = 0;
};

class SwarmStore {
 public:
  virtual ~SwarmStore() = default;

  /// Applies `req` at `now` and returns counts plus up to min(numwant, numwant_max) peers of
  /// req.families (numwant < 0 -> kNumwantDefault). Never returns the announcer itself; never
  /// returns seeders to a seeder (left == 0). event=stopped removes the peer and returns no
  /// peers; event=completed with left == 0 counts a download once per peer. Errors only for caps.
  virtual Expected<AnnounceResult, StoreError> announce(const AnnounceRequest& req,
                                                        TimePoint now) = 0;

  /// Counts for one info-hash (zeros for an unknown one). Does not create a swarm.
  virtual ScrapeEntry scrape(const InfoHash& info_hash, TimePoint now) = 0;

  /// Drops expired peers and empty swarms, visiting at most `swarms_budget` swarms per call so
  /// that the event loop never stalls; returns true when a full pass finished.
  virtual bool sweep(TimePoint now, std::size_t swarms_budget) = 0;

  virtual StoreStats stats() const = 0;
};

}  // namespace ringtracker::tracker
