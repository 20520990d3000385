// MemorySwarmStore: see the header for the layout and the reasons behind it.
#include "tracker/memory_swarm_store.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>

namespace ringtracker::tracker {

namespace {

constexpr std::uint16_t kStampCounted = 0x8000;
constexpr std::uint16_t kStampTickMask = 0x7FFF;
// Ages stay below 2 x TTL (see header), so a TTL of at most 2^14 ticks keeps 15-bit stamps exact.
constexpr std::uint32_t kTtlTicksMax = 1U << 14;
constexpr std::uint32_t kNone = 0xFFFFFFFFU;
constexpr std::uint32_t kSwarmsPerChunk = 1024;  // 64 KiB chunks
constexpr std::size_t kIndexCapacityMin = 64;
constexpr std::uint32_t kSlotIndexMask = 0x00FFFFFFU;
// glibc malloc hands out chunks of 16k bytes carrying an 8-byte header; capacities that fill a
// chunk exactly waste nothing. Harmless on other allocators.
constexpr std::size_t kMallocHeader = 8;
constexpr std::size_t kMallocAlign = 16;

std::uint16_t make_stamp(std::uint32_t tick, bool counted) {
  return static_cast<std::uint16_t>((tick & kStampTickMask) | (counted ? kStampCounted : 0));
}

std::uint32_t age_of(std::uint16_t stamp, std::uint32_t tick) {
  return (tick - stamp) & kStampTickMask;
}

bool tick_reached(std::uint32_t tick, std::uint32_t deadline) {
  return static_cast<std::int32_t>(tick - deadline) >= 0;
}

}  // namespace

struct MemorySwarmStore::V4Peer {
  std::uint32_t ip = 0;  // big-endian value of the 4 address bytes, so order = numeric order
  std::uint16_t port = 0;
  std::uint16_t stamp = 0;

  std::uint64_t key() const { return (std::uint64_t{ip} << 16) | port; }
  static V4Peer of(const SocketAddress& a) {
    const std::uint8_t* b = a.ip.data();
    V4Peer p;
    p.ip = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
           std::uint32_t{b[3]};
    p.port = a.port;
    return p;
  }
  SocketAddress address() const {
    const std::uint8_t b[4] = {static_cast<std::uint8_t>(ip >> 24),
                               static_cast<std::uint8_t>(ip >> 16),
                               static_cast<std::uint8_t>(ip >> 8), static_cast<std::uint8_t>(ip)};
    return SocketAddress{IpAddress::v4(b), port};
  }
};

struct MemorySwarmStore::V6Peer {
  std::array<std::uint8_t, 18> addr{};  // 16 address bytes, then the port big-endian
  std::uint16_t stamp = 0;

  const std::array<std::uint8_t, 18>& key() const { return addr; }
  static V6Peer of(const SocketAddress& a) {
    V6Peer p;
    std::memcpy(p.addr.data(), a.ip.data(), 16);
    p.addr[16] = static_cast<std::uint8_t>(a.port >> 8);
    p.addr[17] = static_cast<std::uint8_t>(a.port);
    return p;
  }
  SocketAddress address() const {
    return SocketAddress{IpAddress::v6(addr.data()),
                         static_cast<std::uint16_t>((addr[16] << 8) | addr[17])};
  }
};

/// A growable array of peer records split into [leechers | seeders], each half sorted by key.
/// Raw realloc storage: records are trivially copyable and growth can often stay in place.
template <class Rec>
class MemorySwarmStore::PeerList {
  static_assert(std::is_trivially_copyable_v<Rec>);

 public:
  PeerList() = default;
  PeerList(PeerList&& o) noexcept
      : data_(o.data_), size_(o.size_), capacity_(o.capacity_), leechers_(o.leechers_) {
    o.data_ = nullptr;
    o.size_ = o.capacity_ = o.leechers_ = 0;
  }
  PeerList& operator=(PeerList&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = o.data_;
      size_ = o.size_;
      capacity_ = o.capacity_;
      leechers_ = o.leechers_;
      o.data_ = nullptr;
      o.size_ = o.capacity_ = o.leechers_ = 0;
    }
    return *this;
  }
  ~PeerList() { std::free(data_); }

  std::uint32_t size() const { return size_; }
  std::uint32_t leechers() const { return leechers_; }
  std::uint32_t seeders() const { return size_ - leechers_; }
  std::size_t bytes() const { return std::size_t{capacity_} * sizeof(Rec); }
  Rec& operator[](std::uint32_t i) { return data_[i]; }
  const Rec& operator[](std::uint32_t i) const { return data_[i]; }
  bool is_seeder_at(std::uint32_t i) const { return i >= leechers_; }

  /// Index of the record with this key, or kNone. The half the caller expects the peer in
  /// (a peer announcing with nothing left is most likely a seeder already) is searched first.
  template <class Key>
  std::uint32_t find(const Key& key, bool seeder_first = false) const {
    const std::uint32_t first =
        seeder_first ? find_in(leechers_, size_, key) : find_in(0, leechers_, key);
    if (first != kNone) return first;
    return seeder_first ? find_in(0, leechers_, key) : find_in(leechers_, size_, key);
  }

  /// Inserts a record whose key is absent; returns its index.
  std::uint32_t insert(const Rec& rec, bool seeder) {
    if (size_ == capacity_) reserve_for(size_ + 1);
    const std::uint32_t pos =
        seeder ? lower_bound(leechers_, size_, rec.key()) : lower_bound(0, leechers_, rec.key());
    std::memmove(data_ + pos + 1, data_ + pos, (size_ - pos) * sizeof(Rec));
    data_[pos] = rec;
    ++size_;
    if (!seeder) ++leechers_;
    return pos;
  }

  void erase(std::uint32_t i) {
    std::memmove(data_ + i, data_ + i + 1, (size_ - i - 1) * sizeof(Rec));
    --size_;
    if (i < leechers_) --leechers_;
    shrink_if_sparse();
  }

  /// Moves record i to the other half; returns its new index.
  std::uint32_t flip(std::uint32_t i) {
    const Rec rec = data_[i];
    const bool to_seeder = !is_seeder_at(i);
    std::memmove(data_ + i, data_ + i + 1, (size_ - i - 1) * sizeof(Rec));
    --size_;
    if (i < leechers_) --leechers_;
    return insert(rec, to_seeder);
  }

  /// Keeps the records for which keep(rec) holds; returns {leechers removed, seeders removed}.
  template <class Keep>
  std::pair<std::uint32_t, std::uint32_t> retain(Keep keep) {
    std::uint32_t w = 0;
    for (std::uint32_t r = 0; r < leechers_; ++r) {
      if (keep(data_[r])) data_[w++] = data_[r];
    }
    const std::uint32_t new_leechers = w;
    for (std::uint32_t r = leechers_; r < size_; ++r) {
      if (keep(data_[r])) data_[w++] = data_[r];
    }
    const std::pair<std::uint32_t, std::uint32_t> removed{leechers_ - new_leechers,
                                                          (size_ - leechers_) - (w - new_leechers)};
    leechers_ = new_leechers;
    size_ = w;
    shrink_if_sparse();
    return removed;
  }

  void clear() {
    std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = leechers_ = 0;
  }

 private:
  template <class Key>
  std::uint32_t find_in(std::uint32_t lo, std::uint32_t hi, const Key& key) const {
    const std::uint32_t i = lower_bound(lo, hi, key);
    return i < hi && data_[i].key() == key ? i : kNone;
  }

  /// First index in [lo, hi) whose key is not below `key`. Large swarms do not fit the caches
  /// next to everything else, so the probes are a chain of misses: the loop has no branch to
  /// mispredict, and asks for the two records the next step may look at while this one loads.
  template <class Key>
  std::uint32_t lower_bound(std::uint32_t lo, std::uint32_t hi, const Key& key) const {
    if (lo == hi) return lo;
    const Rec* base = data_ + lo;
    std::uint32_t n = hi - lo;
    while (n > 1) {
      const std::uint32_t half = n / 2;
      __builtin_prefetch(base + half / 2);
      __builtin_prefetch(base + half + half / 2);
      base = base[half].key() < key ? base + half : base;
      n -= half;
    }
    return static_cast<std::uint32_t>(base - data_) + (base->key() < key ? 1U : 0U);
  }

  static std::uint32_t fitted_capacity(std::uint32_t wanted) {
    const std::size_t bytes = std::size_t{wanted} * sizeof(Rec) + kMallocHeader;
    const std::size_t chunk = (bytes + kMallocAlign - 1) / kMallocAlign * kMallocAlign;
    return static_cast<std::uint32_t>((chunk - kMallocHeader) / sizeof(Rec));
  }

  void reserve_for(std::uint32_t needed) {
    // Growth by ~1.5x keeps slack small; the tail shift dominates large swarms anyway.
    const std::uint32_t wanted = std::max<std::uint32_t>(needed, capacity_ + capacity_ / 2);
    resize_storage(fitted_capacity(wanted));
  }

  void shrink_if_sparse() {
    if (size_ == 0) {
      clear();
    } else if (capacity_ > 8 && size_ * 4U < capacity_) {
      resize_storage(fitted_capacity(size_ + size_ / 2));
    }
  }

  void resize_storage(std::uint32_t capacity) {
    void* p = std::realloc(data_, std::size_t{capacity} * sizeof(Rec));
    if (p == nullptr) throw std::bad_alloc();
    data_ = static_cast<Rec*>(p);
    capacity_ = capacity;
  }

  Rec* data_ = nullptr;
  std::uint32_t size_ = 0;
  std::uint32_t capacity_ = 0;
  std::uint32_t leechers_ = 0;
};

struct MemorySwarmStore::Swarm {
  InfoHash info_hash{};
  std::uint32_t downloaded = 0;
  std::uint32_t last_touch = 0;   // tick of the last announce/scrape/sweep/merge/export
  std::uint32_t next_expiry = 0;  // no peer expires before this tick
  PeerList<V4Peer> v4;
  std::unique_ptr<PeerList<V6Peer>> v6;  // allocated with the first IPv6 peer

  std::uint32_t seeders() const { return v4.seeders() + (v6 ? v6->seeders() : 0); }
  std::uint32_t leechers() const { return v4.leechers() + (v6 ? v6->leechers() : 0); }
  std::uint32_t size() const { return v4.size() + (v6 ? v6->size() : 0); }
};

struct MemorySwarmStore::SelfPosition {
  bool v6 = false;
  std::uint32_t index = kNone;
};

MemorySwarmStore::MemorySwarmStore(const SwarmLimits& limits, std::uint64_t seed)
    : limits_(limits),
      torrents_max_(std::min(limits.torrents_max, kTorrentsMaxSupported)),
      tick_(std::chrono::seconds(1)),
      hasher_(seed) {
  static_assert(sizeof(V4Peer) == 8);
  static_assert(sizeof(V6Peer) == 20);
  static_assert(sizeof(Swarm) == 64, "one cache line per swarm");
  const auto ttl_s =
      std::max<std::int64_t>(1, std::chrono::ceil<std::chrono::seconds>(limits.peer_ttl).count());
  if (ttl_s > kTtlTicksMax) tick_ = std::chrono::seconds((ttl_s + kTtlTicksMax - 1) / kTtlTicksMax);
  ttl_ticks_ = static_cast<std::uint32_t>(
      std::max<std::int64_t>(1, (limits.peer_ttl + tick_ - Duration(1)) / tick_));
  RT_ASSERT(ttl_ticks_ <= kTtlTicksMax);
  rng_state_ = mix64(seed ^ 0xa4093822299f31d0ULL);
  rehash_index(kIndexCapacityMin);
}

MemorySwarmStore::~MemorySwarmStore() = default;

std::uint32_t MemorySwarmStore::tick_of(TimePoint now) {
  const std::int64_t t = now.time_since_epoch() / tick_;
  if (!seen_time_ || t > latest_tick_) {
    latest_tick_ = t;
    seen_time_ = true;
  }
  return static_cast<std::uint32_t>(latest_tick_);
}

std::uint64_t MemorySwarmStore::hash_of(const InfoHash& key) const { return hasher_(key); }

std::uint64_t MemorySwarmStore::next_random() {
  // splitmix64 stream: deterministic per seed, cheap, good enough to pick a start offset.
  rng_state_ += 0x9e3779b97f4a7c15ULL;
  return mix64(rng_state_);
}

MemorySwarmStore::Swarm& MemorySwarmStore::swarm_at(std::uint32_t index) {
  return chunks_[index / kSwarmsPerChunk][index % kSwarmsPerChunk];
}
const MemorySwarmStore::Swarm& MemorySwarmStore::swarm_at(std::uint32_t index) const {
  return chunks_[index / kSwarmsPerChunk][index % kSwarmsPerChunk];
}

namespace {
/// The swarm index an occupied index slot names when its tag matches `hash`, else kNone.
std::uint32_t candidate_in(std::uint32_t slot, std::uint64_t hash) {
  return (slot >> 24) == static_cast<std::uint32_t>(hash >> 56) ? (slot & kSlotIndexMask) - 1
                                                                : kNone;
}
}  // namespace

std::uint32_t MemorySwarmStore::find_swarm(const InfoHash& key, std::uint64_t hash) const {
  for (std::size_t pos = hash & index_mask_;; pos = (pos + 1) & index_mask_) {
    const std::uint32_t slot = index_[pos];
    if (slot == 0) return kNone;
    const std::uint32_t i = candidate_in(slot, hash);
    if (i != kNone && swarm_at(i).info_hash == key) return i;
  }
}

void MemorySwarmStore::prefetch(std::span<const InfoHash> info_hashes) const {
  if (index_.empty()) return;
  const std::size_t n = std::min(info_hashes.size(), kPrefetchBatch);
  std::array<std::uint64_t, kPrefetchBatch> hashes;
  for (std::size_t i = 0; i < n; ++i) {
    hashes[i] = hash_of(info_hashes[i]);
    __builtin_prefetch(&index_[hashes[i] & index_mask_]);
  }
  // The slots asked for above arrive together; the first probe finds most swarms.
  std::array<const Swarm*, kPrefetchBatch> found;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t slot = index_[hashes[i] & index_mask_];
    const std::uint32_t candidate = slot == 0 ? kNone : candidate_in(slot, hashes[i]);
    found[i] = candidate == kNone ? nullptr : &swarm_at(candidate);
    if (found[i] != nullptr) __builtin_prefetch(found[i]);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (found[i] == nullptr) continue;
    const PeerList<V4Peer>& list = found[i]->v4;
    if (list.leechers() != 0) __builtin_prefetch(&list[list.leechers() / 2]);
    if (list.seeders() != 0) __builtin_prefetch(&list[list.leechers() + list.seeders() / 2]);
  }
}

void MemorySwarmStore::index_insert(std::uint32_t swarm_index, std::uint64_t hash) {
  std::size_t pos = hash & index_mask_;
  while (index_[pos] != 0) pos = (pos + 1) & index_mask_;
  index_[pos] = (static_cast<std::uint32_t>(hash >> 56) << 24) | (swarm_index + 1);
}

std::size_t MemorySwarmStore::index_slot_of(std::uint32_t swarm_index) const {
  const std::uint64_t hash = hash_of(swarm_at(swarm_index).info_hash);
  for (std::size_t pos = hash & index_mask_;; pos = (pos + 1) & index_mask_) {
    RT_ASSERT(index_[pos] != 0);
    if ((index_[pos] & kSlotIndexMask) == swarm_index + 1) return pos;
  }
}

void MemorySwarmStore::rehash_index(std::size_t capacity) {
  index_.assign(capacity, 0);
  index_.shrink_to_fit();
  index_mask_ = capacity - 1;
  for (std::uint32_t i = 0; i < swarms_count_; ++i) index_insert(i, hash_of(swarm_at(i).info_hash));
}

std::uint32_t MemorySwarmStore::create_swarm(const InfoHash& key, std::uint64_t hash,
                                             std::uint32_t tick) {
  // Load factor <= 3/4 keeps linear probes short; 4-byte slots make the spare room cheap.
  if ((std::size_t{swarms_count_} + 1) * 4 > index_.size() * 3) rehash_index(index_.size() * 2);
  const std::uint32_t index = swarms_count_;
  if (index / kSwarmsPerChunk == chunks_.size()) {
    chunks_.push_back(std::make_unique<Swarm[]>(kSwarmsPerChunk));
  }
  ++swarms_count_;
  Swarm& s = swarm_at(index);
  s.info_hash = key;
  s.downloaded = 0;
  s.last_touch = tick;
  s.next_expiry = tick + ttl_ticks_;
  index_insert(index, hash);
  return index;
}

void MemorySwarmStore::remove_swarm(std::uint32_t index) {
  clear_peers(swarm_at(index));
  // Backward-shift deletion keeps probe chains intact without tombstones.
  std::size_t hole = index_slot_of(index);
  for (std::size_t pos = (hole + 1) & index_mask_; index_[pos] != 0;
       pos = (pos + 1) & index_mask_) {
    const std::uint32_t other = (index_[pos] & kSlotIndexMask) - 1;
    const std::size_t home = hash_of(swarm_at(other).info_hash) & index_mask_;
    // Move the entry into the hole unless its home lies cyclically in (hole, pos].
    const bool home_after_hole =
        hole <= pos ? (home > hole && home <= pos) : (home > hole || home <= pos);
    if (!home_after_hole) {
      index_[hole] = index_[pos];
      hole = pos;
    }
  }
  index_[hole] = 0;

  const std::uint32_t last = swarms_count_ - 1;
  if (index != last) {
    const std::size_t slot = index_slot_of(last);
    index_[slot] = (index_[slot] & ~kSlotIndexMask) | (index + 1);
    swarm_at(index) = std::move(swarm_at(last));
  }
  swarm_at(last) = Swarm{};
  --swarms_count_;

  // Keep one spare chunk so that a swarm count oscillating at a boundary does not thrash.
  const std::size_t chunks_needed = (swarms_count_ + kSwarmsPerChunk - 1) / kSwarmsPerChunk;
  while (chunks_.size() > chunks_needed + 1) chunks_.pop_back();
  if (index_.size() > kIndexCapacityMin && std::size_t{swarms_count_} * 8 < index_.size()) {
    rehash_index(index_.size() / 2);
  }
}

void MemorySwarmStore::clear_peers(Swarm& s) {
  peers_ -= s.size();
  seeders_ -= s.seeders();
  s.v4.clear();
  s.v6.reset();
}

void MemorySwarmStore::expire(Swarm& s, std::uint32_t tick) {
  if (tick - s.last_touch >= ttl_ticks_) {
    clear_peers(s);  // untouched for a whole TTL: every peer is older than that
  } else if (tick_reached(tick, s.next_expiry)) {
    std::uint32_t oldest_age = 0;
    auto keep = [&](const auto& rec) {
      const std::uint32_t age = age_of(rec.stamp, tick);
      if (age >= ttl_ticks_) return false;
      oldest_age = std::max(oldest_age, age);
      return true;
    };
    const auto [l4, s4] = s.v4.retain(keep);
    peers_ -= l4 + s4;
    seeders_ -= s4;
    if (s.v6) {
      const auto [l6, s6] = s.v6->retain(keep);
      peers_ -= l6 + s6;
      seeders_ -= s6;
      if (s.v6->size() == 0) s.v6.reset();
    }
    s.next_expiry = tick + (ttl_ticks_ - oldest_age);
  }
  // A swarm without a live peer is gone whether or not it was removed yet; its counter with it.
  if (s.size() == 0) s.downloaded = 0;
  s.last_touch = tick;
}

namespace {
/// `out` with no peers and zero counts; its buffers are kept for reuse.
void clear_result(AnnounceResult& out) {
  out.complete = 0;
  out.incomplete = 0;
  out.downloaded = 0;
  out.peers.clear();
  out.compact4.clear();
  out.compact6.clear();
}
}  // namespace

void MemorySwarmStore::counts_of(const Swarm& s, AnnounceResult& out) const {
  clear_result(out);
  out.complete = s.seeders();
  out.incomplete = s.leechers();
  out.downloaded = s.downloaded;
}

template <class Rec>
Expected<std::uint32_t, StoreError> MemorySwarmStore::apply_announce(Swarm& s, PeerList<Rec>& list,
                                                                     Rec rec,
                                                                     const AnnounceRequest& req,
                                                                     std::uint32_t tick) {
  const bool seeder = req.left == 0;
  // BEP 3: `completed` is sent once when the download finishes; only a peer with nothing left
  // has finished.
  const bool completes = req.event == AnnounceEvent::completed && seeder;
  std::uint32_t i = list.find(rec.key(), seeder);
  if (i != kNone) {
    bool counted = (list[i].stamp & kStampCounted) != 0;
    if (completes && !counted) {
      if (s.downloaded != UINT32_MAX) ++s.downloaded;
      counted = true;
    }
    list[i].stamp = make_stamp(tick, counted);
    if (list.is_seeder_at(i) != seeder) {
      i = list.flip(i);
      if (seeder) {
        ++seeders_;
      } else {
        --seeders_;
      }
    }
  } else {
    if (s.size() >= limits_.peers_per_torrent_max) return Unexpected(StoreError::peers_full);
    if (completes && s.downloaded != UINT32_MAX) ++s.downloaded;
    rec.stamp = make_stamp(tick, completes);
    i = list.insert(rec, seeder);
    ++peers_;
    if (seeder) ++seeders_;
  }
  if (!tick_reached(tick + ttl_ticks_, s.next_expiry)) s.next_expiry = tick + ttl_ticks_;
  return i;
}

Expected<void, StoreError> MemorySwarmStore::announce_into(const AnnounceRequest& req,
                                                           TimePoint now, AnnounceResult& out) {
  const std::uint32_t tick = tick_of(now);
  const std::uint64_t hash = hash_of(req.info_hash);
  const bool stopping = req.event == AnnounceEvent::stopped;
  std::uint32_t index = find_swarm(req.info_hash, hash);
  if (req.lookup_only) {
    lookup(req, index, tick, out);
    return {};
  }
  if (index == kNone) {
    if (stopping) {  // nothing to remove, and nothing to create
      clear_result(out);
      return {};
    }
    if (limits_.peers_per_torrent_max == 0) return Unexpected(StoreError::peers_full);
    if (swarms_count_ >= torrents_max_) return Unexpected(StoreError::torrents_full);
    index = create_swarm(req.info_hash, hash, tick);
  } else {
    expire(swarm_at(index), tick);
  }
  Swarm& s = swarm_at(index);
  const bool v6 = req.peer.ip.is_v6();

  if (stopping) {
    if (v6) {
      if (s.v6) {
        const std::uint32_t i = s.v6->find(V6Peer::of(req.peer).key(), req.left == 0);
        if (i != kNone) {
          --peers_;
          if (s.v6->is_seeder_at(i)) --seeders_;
          s.v6->erase(i);
          if (s.v6->size() == 0) s.v6.reset();
        }
      }
    } else {
      const std::uint32_t i = s.v4.find(V4Peer::of(req.peer).key(), req.left == 0);
      if (i != kNone) {
        --peers_;
        if (s.v4.is_seeder_at(i)) --seeders_;
        s.v4.erase(i);
      }
    }
    counts_of(s, out);
    if (s.size() == 0) remove_swarm(index);
    return {};
  }

  SelfPosition self;
  self.v6 = v6;
  Expected<std::uint32_t, StoreError> applied = Unexpected(StoreError::peers_full);
  if (v6) {
    if (!s.v6) s.v6 = std::make_unique<PeerList<V6Peer>>();
    applied = apply_announce(s, *s.v6, V6Peer::of(req.peer), req, tick);
  } else {
    applied = apply_announce(s, s.v4, V4Peer::of(req.peer), req, tick);
  }
  if (!applied) {
    if (s.v6 && s.v6->size() == 0) s.v6.reset();
    if (s.size() == 0) remove_swarm(index);
    return Unexpected(applied.error());
  }
  self.index = *applied;

  counts_of(s, out);
  const std::size_t want = wanted(req);
  if (want > 0) select_peers(s, req, self, want, out);
  return {};
}

std::size_t MemorySwarmStore::wanted(const AnnounceRequest& req) const {
  // numwant: negative means the default, 0 means none; never more than the configured cap.
  const std::size_t asked =
      req.numwant < 0 ? static_cast<std::size_t>(kNumwantDefault) : std::size_t(req.numwant);
  return std::min(asked, limits_.numwant_max);
}

void MemorySwarmStore::lookup(const AnnounceRequest& req, std::uint32_t index, std::uint32_t tick,
                              AnnounceResult& out) {
  clear_result(out);
  if (index == kNone) return;
  Swarm& s = swarm_at(index);
  expire(s, tick);
  if (s.size() == 0) {
    remove_swarm(index);
    return;
  }
  // The asker may be in the swarm already (a peer searching again): it never gets itself.
  SelfPosition self;
  self.v6 = req.peer.ip.is_v6();
  if (self.v6) {
    if (s.v6) self.index = s.v6->find(V6Peer::of(req.peer).key(), req.left == 0);
  } else {
    self.index = s.v4.find(V4Peer::of(req.peer).key(), req.left == 0);
  }
  counts_of(s, out);
  const std::size_t want = wanted(req);
  if (want > 0) select_peers(s, req, self, want, out);
}

void MemorySwarmStore::select_peers(const Swarm& s, const AnnounceRequest& req,
                                    const SelfPosition& self, std::size_t want,
                                    AnnounceResult& out) {
  const bool seeder = req.left == 0;
  const auto families = static_cast<std::uint8_t>(req.families);
  const bool want_v4 = (families & static_cast<std::uint8_t>(PeerFamilies::v4)) != 0;
  const bool want_v6 = (families & static_cast<std::uint8_t>(PeerFamilies::v6)) != 0;
  // Candidates are a prefix of each array: the leechers for a seeder, everyone otherwise.
  const std::uint32_t n4 = want_v4 ? (seeder ? s.v4.leechers() : s.v4.size()) : 0;
  const std::uint32_t n6 = (want_v6 && s.v6) ? (seeder ? s.v6->leechers() : s.v6->size()) : 0;
  const std::uint32_t skip4 = (!self.v6 && self.index < n4) ? self.index : kNone;
  const std::uint32_t skip6 = (self.v6 && self.index < n6) ? self.index : kNone;
  const std::uint32_t c4 = n4 - (skip4 != kNone ? 1 : 0);
  const std::uint32_t c6 = n6 - (skip6 != kNone ? 1 : 0);
  const std::uint32_t total = c4 + c6;
  const std::uint32_t k = static_cast<std::uint32_t>(std::min<std::size_t>(want, total));
  if (k == 0) return;
  // A window of k candidates from a random start, wrapping: the v4 part, then the v6 part.
  const std::uint32_t start = k == total ? 0 : static_cast<std::uint32_t>(next_random() % total);
  const std::uint32_t end = start + k;  // exclusive, may pass total (then wraps to 0)
  auto overlap = [](std::uint32_t a, std::uint32_t b, std::uint32_t lo, std::uint32_t hi) {
    return std::min(b, hi) > std::max(a, lo) ? std::min(b, hi) - std::max(a, lo) : 0U;
  };
  const std::uint32_t k4 = overlap(start, end, 0, c4) + overlap(start, end, total, total + c4);
  const std::uint32_t k6 = k - k4;
  // Written in place: the records are in the store's order, so each family's bytes come from
  // one or two runs of its array (the wrap, and the asker's own record, split a run).
  auto write4 = [&](char* o, std::uint32_t from, std::uint32_t count) {
    for (std::uint32_t j = 0; j < count; ++j, o += kCompactPeer4Bytes) {
      std::uint32_t v = from + j;
      if (v >= skip4) ++v;
      const V4Peer& p = s.v4[v];
      o[0] = static_cast<char>(p.ip >> 24);
      o[1] = static_cast<char>(p.ip >> 16);
      o[2] = static_cast<char>(p.ip >> 8);
      o[3] = static_cast<char>(p.ip);
      o[4] = static_cast<char>(p.port >> 8);
      o[5] = static_cast<char>(p.port);
    }
    return o;
  };
  auto write6 = [&](char* o, std::uint32_t from, std::uint32_t count) {
    for (std::uint32_t j = 0; j < count; ++j, o += kCompactPeer6Bytes) {
      std::uint32_t v = from + j;
      if (v >= skip6) ++v;
      std::memcpy(o, (*s.v6)[v].addr.data(), kCompactPeer6Bytes);
    }
    return o;
  };
  if (k4 > 0) {
    out.compact4.resize(std::size_t{k4} * kCompactPeer4Bytes);
    char* o = out.compact4.data();
    // In window order: [start, c4) then, after a wrap, [0, end - total).
    if (start < c4) o = write4(o, start, std::min(end, c4) - start);
    if (end > total) write4(o, 0, std::min(end - total, c4));
  }
  if (k6 > 0) {
    out.compact6.resize(std::size_t{k6} * kCompactPeer6Bytes);
    char* o = out.compact6.data();
    const std::uint32_t a = std::max(start, c4);
    if (a < std::min(end, total)) o = write6(o, a - c4, std::min(end, total) - a);
    if (end > total + c4) write6(o, 0, end - total - c4);
  }
}

ScrapeEntry MemorySwarmStore::scrape(const InfoHash& info_hash, TimePoint now) {
  const std::uint32_t tick = tick_of(now);
  ScrapeEntry e;
  e.info_hash = info_hash;
  const std::uint32_t index = find_swarm(info_hash, hash_of(info_hash));
  if (index == kNone) return e;
  Swarm& s = swarm_at(index);
  expire(s, tick);
  if (s.size() == 0) {
    remove_swarm(index);
    return e;
  }
  e.complete = s.seeders();
  e.incomplete = s.leechers();
  e.downloaded = s.downloaded;
  return e;
}

bool MemorySwarmStore::sweep(TimePoint now, std::size_t swarms_budget) {
  const std::uint32_t tick = tick_of(now);
  if (!sweep_in_pass_) {
    sweep_next_ = swarms_count_;
    sweep_in_pass_ = true;
  }
  sweep_next_ = std::min(sweep_next_, swarms_count_);
  for (; swarms_budget > 0 && sweep_next_ > 0; --swarms_budget) {
    const std::uint32_t i = --sweep_next_;
    Swarm& s = swarm_at(i);
    expire(s, tick);
    if (s.size() == 0) remove_swarm(i);
  }
  if (sweep_next_ > 0) return false;
  sweep_in_pass_ = false;
  return true;
}

StoreStats MemorySwarmStore::stats() const {
  StoreStats st;
  st.torrents = swarms_count_;
  st.peers = peers_;
  st.seeders = seeders_;
  st.leechers = peers_ - seeders_;
  st.merge_peers_dropped = merge_peers_dropped_;
  return st;
}

std::optional<SwarmSnapshot> MemorySwarmStore::export_swarm(const InfoHash& info_hash,
                                                            TimePoint now) {
  const std::uint32_t tick = tick_of(now);
  const std::uint32_t index = find_swarm(info_hash, hash_of(info_hash));
  if (index == kNone) return std::nullopt;
  Swarm& s = swarm_at(index);
  expire(s, tick);
  if (s.size() == 0) {
    remove_swarm(index);
    return std::nullopt;
  }
  SwarmSnapshot snap;
  snap.info_hash = info_hash;
  snap.downloaded = s.downloaded;
  snap.peers.reserve(s.size());
  auto add = [&](const auto& list) {
    for (std::uint32_t i = 0; i < list.size(); ++i) {
      const std::uint32_t remaining = ttl_ticks_ - age_of(list[i].stamp, tick);
      snap.peers.push_back(
          SnapshotPeer{list[i].address(), PeerId{}, list.is_seeder_at(i), remaining * tick_});
    }
  };
  add(s.v4);
  if (s.v6) add(*s.v6);
  return snap;
}

template <class Rec>
void MemorySwarmStore::merge_peer(Swarm& s, PeerList<Rec>& list, Rec rec, bool seeder,
                                  std::uint32_t age, std::uint32_t tick) {
  const std::uint32_t seen = tick - age;
  std::uint32_t i = list.find(rec.key(), seeder);
  if (i != kNone) {
    // Copies from other nodes carry ages rounded to whole ticks on another clock, so two
    // copies within one tick of each other are the same moment as far as we can tell. Then
    // completion wins (a peer does not turn back into a leecher within a second); only a
    // clearly fresher copy may turn a seeder back into a leecher, or make the peer younger:
    // a copy's age does not count its time in transit, so taking a copy one tick younger
    // would let two nodes syncing each other extend a peer's life by a tick per round trip
    // (a peer announced once stayed alive past its TTL that way).
    const std::uint32_t ours = age_of(list[i].stamp, tick);
    const bool clearly_fresher = age + kMergeSlackTicks < ours;
    const bool about_same = !clearly_fresher && age <= ours + kMergeSlackTicks;
    if (!clearly_fresher && !about_same) return;  // ours is clearly fresher
    if (clearly_fresher) list[i].stamp = make_stamp(seen, (list[i].stamp & kStampCounted) != 0);
    if (!clearly_fresher) seeder = seeder || list.is_seeder_at(i);
    if (list.is_seeder_at(i) != seeder) {
      list.flip(i);
      if (seeder) {
        ++seeders_;
      } else {
        --seeders_;
      }
    }
  } else {
    if (s.size() >= limits_.peers_per_torrent_max) {
      ++merge_peers_dropped_;
      return;
    }
    // No history travels with a peer: treat a seeder as counted so it cannot count twice.
    rec.stamp = make_stamp(seen, seeder);
    list.insert(rec, seeder);
    ++peers_;
    if (seeder) ++seeders_;
  }
  const std::uint32_t expiry = seen + ttl_ticks_;
  if (!tick_reached(expiry, s.next_expiry)) s.next_expiry = expiry;
}

void MemorySwarmStore::merge_swarm(const SwarmSnapshot& snapshot, TimePoint now) {
  const std::uint32_t tick = tick_of(now);
  auto remaining_ticks = [&](const SnapshotPeer& p) -> std::uint32_t {
    if (p.remaining_ttl <= Duration::zero()) return 0;
    const auto r = p.remaining_ttl / tick_;
    return static_cast<std::uint32_t>(std::min<std::int64_t>(r, ttl_ticks_));
  };
  std::size_t live = 0;
  for (const SnapshotPeer& p : snapshot.peers) live += remaining_ticks(p) > 0 ? 1 : 0;

  const std::uint64_t hash = hash_of(snapshot.info_hash);
  std::uint32_t index = find_swarm(snapshot.info_hash, hash);
  if (index == kNone) {
    if (live == 0) return;
    if (swarms_count_ >= torrents_max_ || limits_.peers_per_torrent_max == 0) {
      merge_peers_dropped_ += live;
      return;
    }
    index = create_swarm(snapshot.info_hash, hash, tick);
  } else {
    expire(swarm_at(index), tick);
  }
  Swarm& s = swarm_at(index);
  s.downloaded = std::max(s.downloaded, snapshot.downloaded);
  for (const SnapshotPeer& p : snapshot.peers) {
    const std::uint32_t remaining = remaining_ticks(p);
    if (remaining == 0) continue;
    const std::uint32_t age = ttl_ticks_ - remaining;
    if (p.address.ip.is_v6()) {
      if (!s.v6) s.v6 = std::make_unique<PeerList<V6Peer>>();
      merge_peer(s, *s.v6, V6Peer::of(p.address), p.seeder, age, tick);
    } else {
      merge_peer(s, s.v4, V4Peer::of(p.address), p.seeder, age, tick);
    }
  }
  if (s.v6 && s.v6->size() == 0) s.v6.reset();
  if (s.size() == 0) remove_swarm(index);
}

void MemorySwarmStore::for_each_info_hash(const std::function<void(const InfoHash&)>& fn) const {
  for (std::uint32_t i = 0; i < swarms_count_; ++i) fn(swarm_at(i).info_hash);
}

bool MemorySwarmStore::erase_swarm(const InfoHash& info_hash) {
  const std::uint32_t index = find_swarm(info_hash, hash_of(info_hash));
  if (index == kNone) return false;
  remove_swarm(index);
  return true;
}

std::size_t MemorySwarmStore::memory_bytes_for_test() const {
  std::size_t bytes =
      chunks_.size() * kSwarmsPerChunk * sizeof(Swarm) + index_.capacity() * sizeof(std::uint32_t);
  for (std::uint32_t i = 0; i < swarms_count_; ++i) {
    const Swarm& s = swarm_at(i);
    bytes += s.v4.bytes();
    if (s.v6) bytes += sizeof(PeerList<V6Peer>) + s.v6->bytes();
  }
  return bytes;
}

}  // namespace ringtracker::tracker
