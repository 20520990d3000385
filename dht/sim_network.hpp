// SimNetwork: a deterministic discrete-event network that runs real RingNodes (the same code
// the daemon runs) on simulated time: per-link latency, loss, partitions, crashes, restarts and
// graceful leaves, all derived from one seed. For tests and the simulation tool only; it owns
// no socket and no clock, and it knows nothing about what ring state is correct (see
// RingInvariants for that).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.hpp"
#include "common/net_address.hpp"
#include "dht/prng.hpp"
#include "dht/ring_node.hpp"

namespace ringtracker::dht {

/// Everything a run depends on besides the script of actions.
struct SimOptions {
  std::uint64_t seed = 1;
  /// Each ordered link (a -> b) gets a fixed base one-way latency uniform in [min, max]
  /// (derived from the seed); each packet then adds up to `latency_jitter` x base.
  Duration latency_min = Milliseconds(5);
  Duration latency_max = Milliseconds(60);
  double latency_jitter = 0.2;
  /// Probability that a datagram is lost.
  double loss = 0.0;
  /// Template for every node; `self` is replaced by the node's own address.
  RingConfig node;
};

/// Counters of what the network did with datagrams.
struct SimStats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t lost = 0;         // random loss
  std::uint64_t partitioned = 0;  // sender and receiver in different groups at delivery
  std::uint64_t to_dead = 0;      // receiver crashed, left, or never started
  std::uint64_t bytes = 0;
  std::uint64_t events = 0;       // deliveries + timer firings processed
};

class SimNetwork {
 public:
  using NodeIndex = std::size_t;
  /// Called for every event a node emits, right after the action that caused it.
  using EventHook = std::function<void(NodeIndex, const RingEvent&)>;

  explicit SimNetwork(const SimOptions& options);
  ~SimNetwork();
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  /// Simulated time; starts at an arbitrary fixed epoch.
  TimePoint now() const { return now_; }
  void set_event_hook(EventHook hook) { hook_ = std::move(hook); }

  /// Reserves a slot with a fresh address (10.a.b.c:6881); the node is not running yet.
  NodeIndex add_node();
  std::size_t size() const { return slots_.size(); }
  const SocketAddress& address(NodeIndex i) const { return slots_[i].address; }

  /// Starts a fresh RingNode in slot i (which must not be running) that creates a ring.
  void create(NodeIndex i);
  /// Starts a fresh RingNode in slot i (which must not be running) that joins through seeds.
  void join(NodeIndex i, std::span<const SocketAddress> seeds);
  /// Abrupt failure: the node vanishes; datagrams to it are dropped.
  void crash(NodeIndex i);
  /// Crash followed at once by a fresh start at the same address (same id, empty state) that
  /// joins through seeds: peers may still hold the old incarnation in their lists.
  void restart(NodeIndex i, std::span<const SocketAddress> seeds) {
    crash(i);
    join(i, seeds);
  }
  /// Graceful leave: the node keeps running until it reports Left, then stops.
  void leave(NodeIndex i);
  /// Starts a user lookup at node i; the result comes through the event hook.
  LookupId lookup(NodeIndex i, const NodeId& key);
  /// Sends an `app` payload from node i (like lookup(), the datagram leaves at once). Call it
  /// between run_* calls, not from the event hook.
  bool send_app(NodeIndex i, const SocketAddress& to, std::string_view payload);

  /// Datagrams between different groups are dropped; nodes not listed form group 0.
  void partition(const std::vector<std::vector<NodeIndex>>& groups);
  void heal();
  void set_loss(double loss) { options_.loss = loss; }

  /// Processes the next event; false when nothing is scheduled.
  bool step();
  /// Processes every event up to and including time `t`, then sets now() = t. `after_event`
  /// (if given) runs after each event (e.g. an invariant check); returning false stops early.
  void run_until(TimePoint t, const std::function<bool()>& after_event = {});
  void run_for(Duration d, const std::function<bool()>& after_event = {}) {
    run_until(now_ + d, after_event);
  }

  bool running(NodeIndex i) const { return slots_[i].node != nullptr; }
  RingNode& node(NodeIndex i) { return *slots_[i].node; }
  const RingNode& node(NodeIndex i) const { return *slots_[i].node; }
  /// Running nodes (members or not), for the invariant checker.
  std::vector<const RingNode*> running_nodes() const;
  std::optional<NodeIndex> index_of(const SocketAddress& a) const;
  const SimStats& stats() const { return stats_; }

 private:
  struct Slot {
    SocketAddress address;
    std::unique_ptr<RingNode> node;
    std::uint32_t generation = 0;  // bumped by every start/stop: stale timers are ignored
    TimePoint timer_at = TimePoint::max();
    int group = 0;
  };
  struct Packet {
    std::uint32_t from = 0;
    std::uint32_t to = 0;
    std::string bytes;
  };
  struct Event {
    TimePoint at;
    std::uint64_t seq;
    std::uint32_t node;        // timer: node index; delivery: packet slot
    std::uint32_t generation;  // timer only
    bool is_timer;
    bool operator>(const Event& o) const { return at != o.at ? at > o.at : seq > o.seq; }
  };

  bool step_until(TimePoint limit);
  void schedule(const Event& e);
  /// Makes current_ hold the earliest events if they are due by `limit`; false if none is.
  bool load_due(TimePoint limit);
  std::int64_t bucket_of(TimePoint t) const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t - epoch_).count() / kBucketNs;
  }
  void start(NodeIndex i);
  void stop(NodeIndex i);
  /// Drains transmits and events of node i and re-arms its timer.
  void pump(NodeIndex i);
  Duration link_latency(std::uint32_t from, std::uint32_t to);
  std::uint64_t key_of(const SocketAddress& a) const;

  SimOptions options_;
  Prng rng_;
  TimePoint now_;
  std::uint64_t seq_ = 0;
  std::vector<Slot> slots_;
  std::vector<Packet> packets_;
  std::vector<std::uint32_t> free_packets_;
  // Event queue: a timing wheel of 1 ms buckets over the next kBuckets ms (every datagram and
  // most timers), a heap for the earliest bucket's events (exact (time, seq) order, so results
  // equal those of one global heap) and a heap for events beyond the wheel.
  static constexpr std::int64_t kBucketNs = 1'000'000;
  static constexpr std::int64_t kBuckets = 8192;
  using EventHeap = std::priority_queue<Event, std::vector<Event>, std::greater<Event>>;
  TimePoint epoch_;
  std::int64_t cur_bucket_ = 0;  // every event in a bucket <= this one is in current_
  EventHeap current_;
  std::vector<std::vector<Event>> wheel_;
  std::size_t wheel_count_ = 0;
  EventHeap far_;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> by_address_;  // sorted (key, index)
  EventHook hook_;
  SimStats stats_;
  bool partitioned_ = false;
};

}  // namespace ringtracker::dht
