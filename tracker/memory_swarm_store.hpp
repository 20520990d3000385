// The in-memory SwarmStore of one node: compact per-peer records in sorted per-swarm arrays,
// swarms in a dense array behind an open-addressing index. It owns no clock, no I/O and no
// threads (one event loop calls it); replication to other nodes is the caller's business.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "common/keyed_hash.hpp"
#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker {

/// Peer identity is ip:port, not peer_id. The address is what the store hands out, so keying by
/// it means one record per reachable endpoint: a client that restarts with a fresh peer_id
/// replaces itself instead of being handed out twice, and nobody can fill a swarm with one
/// endpoint under many peer_ids (the source IP is not chosen by the client, the peer_id is).
///
/// Peer ids are not stored: 20 bytes would be 2.5x the whole 8-byte IPv4 record, and every
/// modern client asks for compact answers, which carry no peer id. PeerInfo::peer_id and
/// SnapshotPeer::peer_id are therefore all zero; a compact=0 codec should omit "peer id" for an
/// all-zero id (the dictionary model then looks as if no_peer_id had been sent).
///
/// Records: IPv4 peers are 8 bytes (address 4, port 2, a 15-bit coarse last-seen clock and a
/// "download counted" bit), IPv6 peers 20 bytes in a separate array allocated only when a swarm
/// has one. Each array is split into [leechers | seeders], each half sorted by address: lookup is
/// a binary search, a seeder's candidates are one contiguous range, and a pass of expiry is an
/// in-place compaction. Insertions shift the tail (opentracker's choice too); fine because most
/// announces are refreshes.
///
/// Time: the store counts in ticks of 1 s (peer_ttl / 16384 when longer than 16384 s). A peer is
/// live while whole ticks since its last announce < peer_ttl in ticks. The 15-bit stamps stay
/// unambiguous because every touch of a swarm first drops its expired peers (so ages stay below
/// 2 x TTL) and a swarm untouched for a full TTL is dropped whole. If `now` goes backwards the
/// store keeps using the latest `now` it has seen.
///
/// Selection: a random start (member PRNG, seeded by the constructor) over the candidates of
/// the wanted families, then consecutive candidates with wrap-around, so each candidate is
/// returned with the same probability.
///
/// Empty swarms are dropped at once, losing their `downloaded` counter: peers are soft state,
/// and keeping counters of dead torrents would grow memory without a limit.
class MemorySwarmStore final : public SwarmStore {
 public:
  /// Seed for tests and tools. The daemon passes a secret random seed: info-hashes are chosen
  /// by clients, and the seed keys the index hash so nobody can aim collisions at it.
  static constexpr std::uint64_t kDefaultSeed = 0x6a09e667f3bcc908ULL;
  /// The index packs a swarm position in 24 bits, so limits.torrents_max is clamped to this.
  static constexpr std::size_t kTorrentsMaxSupported = (std::size_t{1} << 24) - 2;

  explicit MemorySwarmStore(const SwarmLimits& limits, std::uint64_t seed = kDefaultSeed);
  ~MemorySwarmStore() override;
  MemorySwarmStore(const MemorySwarmStore&) = delete;
  MemorySwarmStore& operator=(const MemorySwarmStore&) = delete;

  Expected<void, StoreError> announce_into(const AnnounceRequest& req, TimePoint now,
                                           AnnounceResult& out) override;
  ScrapeEntry scrape(const InfoHash& info_hash, TimePoint now) override;
  bool sweep(TimePoint now, std::size_t swarms_budget) override;
  StoreStats stats() const override;
  std::optional<SwarmSnapshot> export_swarm(const InfoHash& info_hash, TimePoint now) override;
  void merge_swarm(const SwarmSnapshot& snapshot, TimePoint now) override;
  void for_each_info_hash(const std::function<void(const InfoHash&)>& fn) const override;
  bool erase_swarm(const InfoHash& info_hash) override;
  bool keeps_peer_ids() const override { return false; }
  /// Loads each swarm's index slot, then (once those arrived) the swarm itself, then the middle
  /// of each half of its IPv4 peer array, where a lookup starts (the first kPrefetchBatch hashes).
  void prefetch(std::span<const InfoHash> info_hashes) const override;

  /// Bytes requested from the allocator for swarms, index and peer arrays (excludes the
  /// allocator's own overhead; the benchmark reports RSS next to it).
  std::size_t memory_bytes_for_test() const;

 private:
  /// Ticks within which two copies of a peer from different nodes count as simultaneous
  /// (each side rounds ages to whole ticks of its own clock).
  static constexpr std::uint32_t kMergeSlackTicks = 1;
  struct V4Peer;
  struct V6Peer;
  template <class Rec>
  class PeerList;
  struct Swarm;
  struct SelfPosition;

  std::uint32_t tick_of(TimePoint now);
  std::uint64_t hash_of(const InfoHash& key) const;
  Swarm& swarm_at(std::uint32_t index);
  const Swarm& swarm_at(std::uint32_t index) const;
  std::uint32_t find_swarm(const InfoHash& key, std::uint64_t hash) const;
  std::uint32_t create_swarm(const InfoHash& key, std::uint64_t hash, std::uint32_t tick);
  void remove_swarm(std::uint32_t index);
  void index_insert(std::uint32_t swarm_index, std::uint64_t hash);
  std::size_t index_slot_of(std::uint32_t swarm_index) const;
  void rehash_index(std::size_t capacity);
  void expire(Swarm& s, std::uint32_t tick);
  void clear_peers(Swarm& s);
  template <class Rec>
  Expected<std::uint32_t, StoreError> apply_announce(Swarm& s, PeerList<Rec>& list, Rec rec,
                                                     const AnnounceRequest& req,
                                                     std::uint32_t tick);
  template <class Rec>
  void merge_peer(Swarm& s, PeerList<Rec>& list, Rec rec, bool seeder, std::uint32_t age,
                  std::uint32_t tick);
  /// Peers to return for `req`: numwant within the configured cap.
  std::size_t wanted(const AnnounceRequest& req) const;
  /// announce() for a lookup_only request; `index` is the swarm's or kNone.
  void lookup(const AnnounceRequest& req, std::uint32_t index, std::uint32_t tick,
              AnnounceResult& out);
  /// Up to `want` peers for the asker, written compact into out.compact4 / out.compact6.
  void select_peers(const Swarm& s, const AnnounceRequest& req, const SelfPosition& self,
                    std::size_t want, AnnounceResult& out);
  std::uint64_t next_random();
  /// `out` emptied (buffers kept) and given the counts of `s`.
  void counts_of(const Swarm& s, AnnounceResult& out) const;

  SwarmLimits limits_;
  std::size_t torrents_max_;
  Duration tick_;
  std::uint32_t ttl_ticks_;
  std::int64_t latest_tick_ = 0;
  bool seen_time_ = false;
  KeyedHash20 hasher_;  // index hash, keyed by the seed
  std::uint64_t rng_state_;

  // Dense swarm storage in fixed chunks: no relocation and no 2x slack when it grows.
  std::vector<std::unique_ptr<Swarm[]>> chunks_;
  std::uint32_t swarms_count_ = 0;
  // Open addressing, linear probing, backward-shift deletion. Slot = (8-bit hash tag << 24) |
  // (swarm index + 1); 0 is empty.
  std::vector<std::uint32_t> index_;
  std::size_t index_mask_ = 0;

  std::size_t peers_ = 0;
  std::size_t seeders_ = 0;
  std::uint64_t merge_peers_dropped_ = 0;

  // Sweep walks the dense array downwards: a removal moves the last swarm into the hole, and
  // the last swarm is always in the visited part (or new), so no swarm present at the start of
  // a pass is skipped however the map changes between calls.
  std::uint32_t sweep_next_ = 0;
  bool sweep_in_pass_ = false;
};

}  // namespace ringtracker::tracker
