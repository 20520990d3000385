// The swarm store contract: peers per info-hash with expiry by `now` and hard caps. Any
// implementation (the in-memory one, the ring-backed one) must pass
// tests/unit/swarm_store_conformance.hpp. No I/O, no clock: time is always an argument.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

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
  /// Snapshot peers merge_swarm could not take (caps).
  std::uint64_t merge_peers_dropped = 0;
};

/// One peer of a swarm snapshot. The TTL is relative so that a snapshot means the same on a
/// machine whose steady clock has another origin.
struct SnapshotPeer {
  SocketAddress address;
  PeerId peer_id{};  // all zero when the store does not keep peer ids
  bool seeder = false;
  Duration remaining_ttl{};
};

/// A swarm as it travels between ring replicas.
struct SwarmSnapshot {
  InfoHash info_hash{};
  std::uint32_t downloaded = 0;
  std::vector<SnapshotPeer> peers;
};

/// Peers are soft state. A swarm left without a live peer (by stopped or expiry) is gone with
/// its `downloaded` counter: at once or when next touched or swept, and in any case an announce,
/// scrape, export or merge that finds it empty treats it as new. Expiry is lazy: announce,
/// scrape and export only ever see live peers; stats() may still count expired peers until
/// their swarm is touched or swept.
class SwarmStore {
 public:
  virtual ~SwarmStore() = default;

  /// Applies `req` at `now` and returns counts plus up to min(numwant, numwant_max) peers of
  /// req.families (numwant < 0 -> kNumwantDefault). Never returns the announcer itself; never
  /// returns seeders to a seeder (left == 0). event=stopped removes the peer and returns no
  /// peers; event=completed with left == 0 counts a download once per peer. Errors only for caps.
  Expected<AnnounceResult, StoreError> announce(const AnnounceRequest& req, TimePoint now) {
    return filled<AnnounceResult>(
        [&](AnnounceResult& out) { return announce_into(req, now, out); });
  }
  /// The same into `out`, whose buffers are reused (a caller answering many announces keeps one
  /// result and allocates nothing per announce). `out` is unspecified after an error.
  virtual Expected<void, StoreError> announce_into(const AnnounceRequest& req, TimePoint now,
                                                   AnnounceResult& out) = 0;

  /// Counts for one info-hash (zeros for an unknown one). Does not create a swarm.
  virtual ScrapeEntry scrape(const InfoHash& info_hash, TimePoint now) = 0;

  /// Drops expired peers and empty swarms, visiting at most `swarms_budget` swarms per call so
  /// that the event loop never stalls; returns true when a full pass finished.
  virtual bool sweep(TimePoint now, std::size_t swarms_budget) = 0;

  virtual StoreStats stats() const = 0;

  /// The live peers of one swarm at `now` with their remaining TTL, or nullopt when the swarm
  /// is unknown or has no live peer. Expires lazily like announce (hence not const).
  virtual std::optional<SwarmSnapshot> export_swarm(const InfoHash& info_hash, TimePoint now) = 0;

  /// Merges a snapshot from another node: union of peers by identity; for a peer known to both
  /// the later expiry wins (with its seeder flag); downloaded = max. Peers with remaining_ttl <= 0
  /// are ignored, a remaining_ttl above peer_ttl is clamped to it. A merged peer new to this
  /// store that is a seeder counts as already counted for `completed`. Caps apply: peers that do
  /// not fit are dropped and counted in StoreStats::merge_peers_dropped; no swarm is created for
  /// a snapshot without live peers.
  virtual void merge_swarm(const SwarmSnapshot& snapshot, TimePoint now) = 0;

  /// Calls `fn` once per info-hash held (including swarms whose peers have expired but were not
  /// swept yet). `fn` must not call back into the store.
  virtual void for_each_info_hash(const std::function<void(const InfoHash&)>& fn) const = 0;

  /// Forgets a swarm (peers and downloaded). Returns whether it existed.
  virtual bool erase_swarm(const InfoHash& info_hash) = 0;

  /// A hint that the swarms of `info_hashes` are about to be announced into or merged (one
  /// batch of them): the store may start loading them now, so that their cache misses overlap
  /// instead of following one another. Changes nothing; the default does nothing.
  virtual void prefetch(std::span<const InfoHash> info_hashes) const { (void)info_hashes; }
  /// Hashes worth one prefetch(): the swarms of more would push the first out of the caches
  /// before they are used. Callers go through a longer batch this many at a time.
  static constexpr std::size_t kPrefetchBatch = 32;

  /// Whether peer ids are kept (and handed out in PeerInfo / SnapshotPeer). When not, callers
  /// need not carry them to the store: a ring node leaves them out of the announces it streams
  /// to replicas.
  virtual bool keeps_peer_ids() const = 0;
};

}  // namespace ringtracker::tracker
