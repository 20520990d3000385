// ClusterNode: the data layer that makes ring members one tracker. It routes every announce and
// scrape to the owner of its info-hash (this node's store, or one batched ring RPC), streams
// announce deltas to the owner's replica successors, promotes replicas when a predecessor dies,
// pulls its range when it joins and pushes it when it leaves. Sans-IO: it owns no socket and no
// clock, and it does not run the ring (RingNode does; it sees the ring through RingView).
//
// Calling contract (the shape of RingNode's):
//   1. inputs, each with the current time: announce()/scrape() from the front ends;
//      handle_ring_event() (or the handle_app/handle_lookup/handle_ring_change it dispatches to)
//      for every event RingNode emits; handle_timeout() when next_timeout() is due;
//      begin_leave() before a graceful RingNode::leave();
//   2. after every input, drain poll_app() until empty and hand each payload to
//      RingNode::send_app(now, to.address, payload) (then drain RingNode as usual);
//   3. re-arm one timer for next_timeout().
// Completion callbacks run from inside these calls; they must not call back into the node.
// The owned store is swept by TrackerService::tick() as on a lone node; the replica store is
// swept here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.hpp"
#include "common/keyed_hash.hpp"
#include "common/slot_map.hpp"
#include "dht/node_id.hpp"
#include "dht/ring_node.hpp"
#include "tracker/cluster_messages.hpp"
#include "tracker/request_handler.hpp"
#include "tracker/swarm_store.hpp"
#include "tracker/tracker_service.hpp"

namespace ringtracker::tracker {

/// Whether this node owns a key, as far as it knows.
enum class Ownership : std::uint8_t {
  mine,      // key in (predecessor, self], or this node is alone on the ring
  not_mine,  // key outside (predecessor, self]
  unknown,   // predecessor unknown (e.g. it just died) or not a ring member yet
};

/// What ClusterNode needs from the ring. RingNodeView implements it over RingNode; unit tests
/// fake it.
class RingView {
 public:
  virtual ~RingView() = default;
  virtual const dht::NodeRef& self() const = 0;
  virtual Ownership ownership(const dht::NodeId& key) const = 0;
  virtual std::optional<dht::NodeRef> predecessor() const = 0;
  /// Nearest first; empty when alone or not a member.
  virtual std::vector<dht::NodeRef> successors() const = 0;
  /// True when this node is a member and the whole ring (owns every key).
  virtual bool alone() const = 0;
  /// Starts an iterative lookup of successor(key); the result must reach
  /// ClusterNode::handle_lookup() with the returned id (RingNode reports it as LookupCompleted).
  /// The owner it reports has answered during the lookup (RingNode verifies the candidate).
  virtual dht::LookupId start_lookup(TimePoint now, const dht::NodeId& key) = 0;
  /// The ring's current retransmission timeout towards `id` (its initial RTO when unknown).
  virtual Duration rto_for(const dht::NodeId& id) const = 0;
};

/// RingView over a RingNode. `node` must outlive the view.
class RingNodeView final : public RingView {
 public:
  explicit RingNodeView(dht::RingNode& node) : node_(node) {}
  const dht::NodeRef& self() const override { return node_.self(); }
  Ownership ownership(const dht::NodeId& key) const override;
  std::optional<dht::NodeRef> predecessor() const override { return node_.predecessor(); }
  std::vector<dht::NodeRef> successors() const override;
  bool alone() const override;
  dht::LookupId start_lookup(TimePoint now, const dht::NodeId& key) override {
    return node_.start_lookup(now, key);
  }
  Duration rto_for(const dht::NodeId& id) const override { return node_.rto_for(id); }

 private:
  dht::RingNode& node_;
};

struct ClusterConfig {
  /// r_d: copies of each swarm (owner + r_d - 1 successors). Survives r_d - 1 consecutive
  /// crashes at once.
  std::size_t replicas = 3;
  /// A request not answered by the ring within this is failed with kTimeoutReason. Below the
  /// usual client timeouts (HTTP 15 s, BEP 15 first retry 15 s) and above a few ring RTTs.
  Duration request_deadline = Config::kRequestDeadlineDefault;
  /// One forward to an owner waits the ring's RTO towards it, clamped to these bounds, before
  /// the owner is suspected, its cache entries dropped, and the request looked up and sent
  /// again. The maximum leaves a 1.5 s deadline room for a lookup and two more attempts; the
  /// minimum is the ring's own RTO floor (an owner never gets less than a ring ping does).
  Duration attempt_timeout_min = Config::kAttemptTimeoutMinDefault;
  Duration attempt_timeout_max = Config::kAttemptTimeoutMaxDefault;
  /// Wait before asking again after a failed lookup or a repeated "not mine" (the new owner
  /// has not noticed its predecessor's death yet, or the ring is still repairing): about one
  /// ring RTT, so a request during failure detection is retried several times in its deadline.
  Duration retry_backoff = Config::kRetryBackoffDefault;
  /// A forward or reply batch with few items waits up to this long for more before it is sent
  /// (0: sent at the end of every event-loop pass). Under load, with many small passes, a
  /// fraction of a millisecond turns one datagram per request into one per dozens.
  Duration batch_linger = Config::kBatchLingerDefault;
  /// Announce deltas are batched per owner and sent this often.
  Duration replicate_period = Config::kReplicatePeriodDefault;
  /// Every owned swarm is re-pushed to the replicas this often (repairs lost deltas).
  Duration sync_period = Config::kSyncPeriodDefault;
  /// A replica not refreshed by a sync (or pull, or handoff) for this long is no longer ours:
  /// dropped. Deltas do not count (they are the hot path). Must exceed sync_period by a margin
  /// for loss.
  Duration replica_grace = Seconds(120);
  /// A joining node answers its range only after its pull finished or this passed.
  Duration pull_timeout = Milliseconds(1000);
  /// begin_leave() is done when the successor confirmed the handoff or this passed.
  Duration handoff_timeout = Seconds(3);
  /// Peers live this long after an announce (SwarmLimits::peer_ttl of both stores).
  Duration peer_ttl = Seconds(2700);
  /// A peer stopped at this owner is remembered this long (and at most tombstones_max of them,
  /// oldest forgotten first): a copy of it that comes back in a merge (a sync, handoff or pull
  /// snapshot taken before the stop reached its sender) is older than the stop and is not
  /// merged. Matches replica_grace: no replica keeps a copy unrefreshed for longer.
  Duration tombstone_keep = Seconds(120);
  std::size_t tombstones_max = 65536;
  /// Swarms exported, moved or dropped per handle_timeout(): the loop never stalls.
  std::size_t swarms_per_tick = 512;
  /// Requests waiting for the ring at once; more are refused with kBusyReason.
  std::size_t pending_max = 8192;
  /// Payloads waiting in poll_app(); more are dropped and counted (the ring repairs them:
  /// requests time out, sync re-sends swarms).
  std::size_t outbox_max = 4096;
  /// Owner arcs remembered (one per ring node known; cleared when full), and for how long.
  std::size_t owner_cache_max = 65536;
  Duration owner_cache_ttl = Seconds(30);
  /// Announces buffered for the replicas between two replication ticks; reaching it flushes
  /// them at once (memory stays bounded, nothing is dropped).
  std::size_t delta_peers_max = 65536;
  /// Seeds the hash of the maps keyed by info-hash. The daemon passes a secret random value
  /// (clients choose info-hashes and must not aim collisions); tests a fixed one.
  std::uint64_t hash_seed = 0;
  /// Delta payloads awaiting a replica's ack at once (each up to kReplicateChunkBytes); more are
  /// sent once without tracking (the sync repairs a loss).
  std::size_t delta_unacked_max = 1024;
};

struct AppTransmit {
  dht::NodeRef to;
  std::string payload;
};

/// Bundles behind `first` the payloads of `queue` (looked at up to `scan_max` entries) that go
/// to the same node and fit within kBundleBytesMax, removing them from `queue`; stops at the
/// first one for that node that does not fit, so that the node gets its messages in order.
/// Returns how many messages the bundle holds (0: `first` is left as it was).
std::size_t bundle_for_node(AppTransmit& first, std::deque<AppTransmit>& queue,
                            std::size_t scan_max);

class ClusterNode final : public RequestHandler {
 public:
  static constexpr std::string_view kTimeoutReason = "tracker ring did not answer in time, retry";
  static constexpr std::string_view kBusyReason = "tracker busy, retry";
  static constexpr std::string_view kNoOwnerReason =
      "tracker ring could not find the owner of this torrent, retry";
  static constexpr std::string_view kMovingReason =
      "tracker ring is moving this torrent between nodes, retry";
  /// Nodes that timed out (or that the ring no longer lists) are not used from the owner cache
  /// for this long; a lookup that names one again clears it (the lookup heard from it).
  static constexpr Duration kSuspectFor = Seconds(10);
  static constexpr std::size_t kSuspectsMax = 64;
  /// Routings (cache use or lookup, then a send) one request may go through before it is
  /// failed. The deadline bounds them already (1.5 s of 100 ms waits is 15); this bounds the
  /// traffic of one request whatever the timings.
  static constexpr int kAttemptsMax = 16;
  /// Replica upkeep (sweep, drop pass) runs this often.
  static constexpr Duration kHousekeepingPeriod = Seconds(1);
  /// A delta payload unacknowledged after its attempt timeout is sent again, this many sends in
  /// all; then it is left to the background sync. A lost `completed` would otherwise surface as
  /// a wrong download count after the owner crashes.
  static constexpr int kDeltaSendsMax = 4;
  /// Swarm entries kept from one replication payload for the next flush (with their buffers),
  /// and the largest peer or stop list capacity such a spare may keep: bounded memory, and no
  /// allocation per swarm and period in the steady state.
  static constexpr std::size_t kSpareDeltasMax = 4096;
  static constexpr std::size_t kSpareDeltaPeersMax = 16;
  /// Peers a replicated swarm's scratch entry keeps room for after it was merged.
  static constexpr std::size_t kScratchPeersMax = 1024;

  /// `ring`, `service` (with its owned store) and `replica_store` must outlive the node.
  ClusterNode(const ClusterConfig& config, RingView& ring, TrackerService& service,
              SwarmStore& replica_store);
  ~ClusterNode() override;
  ClusterNode(const ClusterNode&) = delete;
  ClusterNode& operator=(const ClusterNode&) = delete;

  // --- RequestHandler ---------------------------------------------------------------------
  /// Owner here: answered before returning. Else forwarded; `on_done` runs later, at the
  /// latest from the handle_timeout() at now + request_deadline. An owner that stays silent
  /// for one attempt timeout, a failed lookup, or a "not mine" answer lead to a fresh lookup
  /// and another send while time remains; the answer is the owner's or a failure reason,
  /// never a guess.
  void announce(const AnnounceRequest& req, TimePoint now, AnnounceDone on_done) override;
  /// Split by owner, merged back in request order; one failed part fails the whole scrape.
  void scrape(const ScrapeRequest& req, TimePoint now, ScrapeDone on_done) override;
  /// Hints the owned store (the swarms of other owners are not here to load).
  void prefetch(std::span<const InfoHash> info_hashes) override {
    service_.store().prefetch(info_hashes);
  }

  // --- ring inputs ------------------------------------------------------------------------
  /// Dispatches AppReceived, LookupCompleted, OwnedRangeChanged, SuccessorsChanged, Joined.
  void handle_ring_event(TimePoint now, const dht::RingEvent& event);
  /// One payload of an `app` message from ring node `from`. Malformed bytes are counted.
  void handle_app(TimePoint now, const dht::NodeRef& from, std::string_view payload);
  /// The result of a RingView::start_lookup() (owner nullopt: failed).
  void handle_lookup(TimePoint now, dht::LookupId id, const std::optional<dht::NodeRef>& owner);
  /// Predecessor or successor list changed: re-reads the RingView. Owner-cache entries and
  /// requests in flight pointing at a node the ring dropped are sent elsewhere at once.
  void handle_ring_change(TimePoint now);
  void handle_timeout(TimePoint now);
  /// Graceful leave: pushes the owned range to the successor. Keep serving and driving the node
  /// until leave_ready(now), then call RingNode::leave().
  void begin_leave(TimePoint now);
  bool leave_ready(TimePoint now) const;

  // --- outputs ----------------------------------------------------------------------------
  /// Flushes open batches first, so everything queued since the last drain goes out together.
  std::optional<AppTransmit> poll_app();
  /// Earliest time handle_timeout() has work (a past time means "now"); TimePoint::max() if none.
  TimePoint next_timeout() const;

  // --- state ------------------------------------------------------------------------------
  /// Counter names and values for /stats and /metrics, in a fixed order.
  std::vector<std::pair<std::string_view, std::uint64_t>> counters() const;
  std::uint64_t counter(std::string_view name) const;
  /// Requests waiting for the ring (forwarded, looking up, or waiting for a pull).
  std::size_t pending_count() const;
  /// True while the join pull holds back requests for (predecessor, self].
  bool pulling() const { return pull_.active; }
  SwarmStore& owned_store() { return service_.store(); }
  SwarmStore& replica_store() { return replica_; }

 private:
  struct ScrapeJob {
    ScrapeResponse response;
    std::size_t parts_left = 0;
    bool finished = false;
    ScrapeDone done;
  };
  /// One request waiting for the ring: an announce, or one info-hash of a scrape.
  struct Item {
    InfoHash key{};
    TimePoint deadline;
    bool is_announce = true;
    int not_owner_retries = 0;
    int attempts = 0;  // sends, lookups and waits so far (kAttemptsMax)
    /// When set: an attempt timeout (sent_to set) or the end of a retry wait (sent_to unset).
    TimePoint wake = TimePoint::max();
    /// Given to the client if the deadline passes: why the last attempt did not answer.
    std::string_view reason = kTimeoutReason;
    AnnounceRequest request;  // announce
    AnnounceDone announce_done;
    std::shared_ptr<ScrapeJob> job;  // scrape
    std::size_t index = 0;
    std::optional<dht::NodeRef> sent_to;
  };
  struct OpenForward {
    dht::NodeRef to;
    ForwardBatchWriter batch;
    TimePoint opened;
  };
  struct OpenReply {
    dht::NodeRef to;
    ReplyBatchWriter batch;
    std::size_t bytes = 0;
    TimePoint opened;
  };
  /// A stream of swarms to some nodes, a bounded slice per tick.
  struct Transfer {
    TransferPurpose purpose = TransferPurpose::sync;
    std::uint32_t txid = 0;
    std::vector<dht::NodeRef> targets;
    std::vector<InfoHash> hashes;
    std::size_t next = 0;
    std::uint32_t sent = 0;
    bool send_done = false;
    bool include_replicas = false;  // also export the replica store's copy
  };
  /// One announce since the last replication flush, in arrival order.
  struct DeltaEntry {
    InfoHash info_hash{};
    SocketAddress peer;
    PeerId peer_id{};
    std::uint32_t downloaded = 0;  // the swarm's completed count after it
    bool seeder = false;
    bool stopped = false;
    TimePoint at;
  };
  /// A delta payload sent to one replica and not acknowledged yet. What is kept is what it was
  /// about, not its bytes: a resend carries the swarms' state at resend time (a stale copy
  /// could bring back a peer that stopped since) plus the removals it carried.
  struct UnackedDelta {
    dht::NodeRef to;
    std::vector<std::pair<InfoHash, std::vector<SocketAddress>>> swarms;  // (hash, gone)
    int sends = 1;
    TimePoint resend_at;
  };
  using UnackedKey = std::pair<std::uint32_t, dht::NodeId>;  // (txid, replica)
  /// The owner cache holds arcs of the ring, not keys: (lower, owner.id] is owned by `owner`
  /// as far as this node learned. A ring of N nodes needs at most N entries however many
  /// swarms it serves, and one lookup serves every key of its arc.
  struct Arc {
    dht::NodeId lower;  // exclusive
    dht::NodeRef owner;
    TimePoint expires;
  };
  using Arcs = std::map<dht::NodeId, Arc>;  // by owner id: the arc's inclusive upper end
  struct Counters;
  /// Keyed (ClusterConfig::hash_seed): info-hashes are chosen by clients.
  struct HashOf {
    KeyedHash20 keyed;
    std::size_t operator()(const InfoHash& h) const { return static_cast<std::size_t>(keyed(h)); }
  };
  struct IdHash {
    std::size_t operator()(const dht::NodeId& id) const {
      return static_cast<std::size_t>(id.prefix64());
    }
  };

  // Routing.
  Ownership ownership(const InfoHash& h) const;
  std::uint32_t add_item(Item item, TimePoint now);
  void route_remote(TimePoint now, std::uint32_t txid, bool use_cache);
  void on_owner(TimePoint now, std::uint32_t txid, const dht::NodeRef& owner);
  void serve_item_here(TimePoint now, std::uint32_t txid);
  void enqueue_forward(TimePoint now, const dht::NodeRef& to, std::uint32_t txid);
  void set_wake(std::uint32_t txid, Item& item, TimePoint at);
  void erase_item(std::uint32_t txid);
  /// Another attempt after `wait` if the deadline and kAttemptsMax allow (true), else fails the
  /// request now with `reason` (false).
  bool retry_later(TimePoint now, std::uint32_t txid, Duration wait, std::string_view reason);
  void on_attempt_timeout(TimePoint now, std::uint32_t txid);
  Duration attempt_timeout(const dht::NodeRef& to) const;
  /// True when `id` lies inside the part of the ring this node sees exactly, (predecessor,
  /// last successor], and is not listed there: the ring does not know it (any more).
  bool ring_dropped(const dht::NodeId& id) const;
  /// Forgets the owner arc of `id`.
  void forget_owner(dht::NodeId id);  // by value: `id` may live in an entry it erases
  void complete_announce(std::uint32_t txid, Expected<AnnounceResponse, std::string>&& r);
  void complete_scrape(std::uint32_t txid, Expected<ScrapeEntry, std::string> r);
  void fail_item(std::uint32_t txid, std::string_view reason);
  std::optional<dht::NodeRef> cached_owner(const InfoHash& h, TimePoint now);
  /// The arc of the successor list holding `h` (nullopt: beyond the list, or suspected).
  std::optional<Arc> successor_arc(const InfoHash& h, TimePoint now) const;
  /// Caches (lower, owner]; arcs of other owners that it contradicts are dropped.
  void remember_arc(const dht::NodeId& lower, const dht::NodeRef& owner, TimePoint now);
  /// The arc holding `key`, expired or not; arcs_.end() if none.
  Arcs::iterator arc_of(const dht::NodeId& key);
  /// Marks `id` suspect; the first time (or after it expired) also forgets its cache entries.
  void suspect(dht::NodeId id, TimePoint now);
  void unsuspect(const dht::NodeId& id);
  bool is_suspect(const dht::NodeId& id, TimePoint now) const;

  // Serving as owner.
  bool gated(const InfoHash& h) const;
  Expected<AnnounceResponse, std::string> apply_announce(const AnnounceRequest& req, TimePoint now);
  /// The same into `out`, reusing its buffers.
  Expected<void, std::string> apply_announce_into(const AnnounceRequest& req, TimePoint now,
                                                  AnnounceResponse& out);
  ScrapeEntry apply_scrape(const InfoHash& h, TimePoint now);
  /// Moves the swarm of `h` from the replica store into the owned store if it is there (a key
  /// this node owns); a no-op without a lookup while the replica store is settled.
  void ensure_owned(const InfoHash& h, TimePoint now);
  /// The move itself, after a lookup in the replica store.
  void promote(const InfoHash& h, TimePoint now);
  /// Keys of this node's range may be in the replica store (the range changed, or a swarm of
  /// unknown ownership landed there): ensure_owned() looks again until a scan settles it.
  void unsettle_replicas();
  /// The ring's view that decides this node's range.
  struct RangeView {
    bool alone = false;
    std::optional<dht::NodeId> pred;
    bool operator==(const RangeView&) const = default;
  };
  RangeView range_view() const;
  /// Settled when a scan that started at `scanned_epoch` with the ring at `scanned` (the
  /// reconcile's, or a drop pass) promoted everything of ours, nothing unsettled it since and
  /// the range is still the one scanned for.
  void settle_replicas_if(std::uint64_t scanned_epoch, const RangeView& scanned);
  /// Remembers that `peer` stopped in swarm `h` at `now` (this node being its owner).
  void add_tombstone(const InfoHash& h, const SocketAddress& peer, TimePoint now);
  /// Whether a peer of swarm `h` was stopped here recently (one empty() check when none was).
  bool has_tombstones(const InfoHash& h) const {
    return !tombstones_by_hash_.empty() && tombstones_by_hash_.count(h) != 0;
  }
  /// Removes from `snap` the peers stopped here after the copy's last announce.
  void drop_stopped(SwarmSnapshot& snap, TimePoint now) const;
  void on_forward(TimePoint now, const dht::NodeRef& from, ForwardBatchReader& batch);
  void answer_forwarded_announce(TimePoint now, const dht::NodeRef& from,
                                 const ForwardedAnnounce& a);
  void answer_forwarded_scrape(TimePoint now, const dht::NodeRef& from, const ForwardedScrape& s);
  void on_reply(TimePoint now, const dht::NodeRef& from, ReplyBatchReader& batch);
  void add_reply(const dht::NodeRef& to, const AnnounceReply& r);
  void add_reply(const dht::NodeRef& to, const ScrapeReply& r);
  /// The open reply batch to `to` with room for `bytes` more (a full one is sent first).
  ReplyBatchWriter& open_reply_to(const dht::NodeRef& to, std::size_t bytes);
  void send_replies(OpenReply& o);
  void send_forwards(OpenForward& o);

  // Replication and ranges.
  std::vector<dht::NodeRef> replica_targets() const;
  void record_delta(const AnnounceRequest& req, std::uint32_t downloaded, TimePoint now);
  void flush_deltas(TimePoint now);
  void on_replicate(TimePoint now, const dht::NodeRef& from, ReplicateReader& r);
  /// Merges one replicated swarm where this node's view says it belongs (may edit `d`).
  /// `own`: ownership(d's swarm) in this node's view, looked up by the caller.
  void merge_replicated(TimePoint now, TransferPurpose purpose, Ownership own, SwarmDelta& d);
  void on_pull(TimePoint now, const dht::NodeRef& from, const PullRequest& m);
  void on_done(TimePoint now, const dht::NodeRef& from, const TransferDone& m);
  void release_gate(TimePoint now);
  void start_sync(TimePoint now, std::vector<dht::NodeRef> targets);
  /// Asks the replica successors for what they hold of (pred, self] and merges it (the
  /// other direction of the sync): after a partition heals, a swarm the other side updated
  /// may have been handed to a replica of this node instead of to this node.
  void pull_range();
  void reconcile(TimePoint now);
  void run_moves(TimePoint now, std::size_t& budget);
  void run_transfers(TimePoint now, std::size_t& budget);
  void run_drops(TimePoint now, std::size_t& budget);
  /// Deltas travel with per-payload txids, tracked until acknowledged; `sends` is how many
  /// times their content went out already (1 for a first send).
  void send_swarms(const std::vector<dht::NodeRef>& targets, TransferPurpose purpose,
                   std::uint32_t txid, std::vector<SwarmDelta>& swarms, int sends = 1);

  /// An empty SwarmDelta, from the spares when there are some.
  SwarmDelta take_spare_delta();
  /// Keeps `d` as a spare when there is room and its buffers are small (see kSpareDeltasMax).
  void keep_spare_delta(SwarmDelta&& d);
  void on_delta_ack(const dht::NodeRef& from, std::uint32_t txid);
  void resend_deltas(TimePoint now);
  void send(const dht::NodeRef& to, const ClusterMessage& m);
  void send_payload(const dht::NodeRef& to, std::string payload);
  /// One cluster message (handle_app splits bundles into them).
  void handle_message(TimePoint now, const dht::NodeRef& from, std::string_view payload);
  /// Sends the open batches that are due (all of them without a linger).
  void flush_open();
  bool batch_due(TimePoint opened, std::size_t items) const;
  bool outbox_has_room() const { return outbox_.size() < config_.outbox_max / 2; }

  ClusterConfig config_;
  RingView& ring_;
  TrackerService& service_;
  SwarmStore& replica_;
  const bool keep_peer_ids_;  // either store keeps them: deltas carry them
  TimePoint last_now_{};

  // Requests waiting for the ring.
  SlotMap<Item> items_;  // by txid; at most pending_max
  /// Item times, earliest first, with lazy deletion: an entry counts only while its item still
  /// has that time (finishing an item or moving its wake leaves the old entry to be skipped
  /// when it comes up). A heap push per forward instead of two tree nodes; compacted when stale
  /// entries outnumber live ones, so it stays within twice the pending items.
  class ItemTimes {
   public:
    void push(TimePoint at, std::uint32_t txid);
    bool empty() const { return heap_.empty(); }
    const std::pair<TimePoint, std::uint32_t>& top() const { return heap_.front(); }
    void pop();
    /// Keeps the entries `live(at, txid)` approves of once stale ones dominate.
    template <class Live>
    void compact_if_stale(std::size_t live_items, Live live);

   private:
    std::vector<std::pair<TimePoint, std::uint32_t>> heap_;
  };
  ItemTimes deadlines_;  // Item::deadline of every item
  ItemTimes wakes_;      // Item::wake of every item that has one
  std::uint32_t txid_next_ = 1;
  std::unordered_map<dht::LookupId, InfoHash> lookups_;
  std::unordered_map<InfoHash, std::pair<dht::LookupId, std::vector<std::uint32_t>>, HashOf>
      lookup_waiters_;
  Arcs arcs_;
  std::vector<std::pair<dht::NodeId, TimePoint>> suspects_;

  // Outgoing.
  std::vector<OpenForward> open_forwards_;
  std::vector<std::string_view> bundle_parts_;  // scratch of handle_app
  // Each item of a received batch is read into these in turn (like bundle_parts_: answering
  // an item never receives another payload, so they are not reused under our feet).
  std::vector<ForwardedAnnounce> forwarded_announces_scratch_;  // kPrefetchBatch at most
  ForwardedScrape forwarded_scrape_scratch_;
  AnnounceReply announce_reply_scratch_;
  AnnounceReply owner_reply_scratch_;  // this node's answer to a forwarded announce
  ScrapeReply scrape_reply_scratch_;
  std::vector<OpenReply> open_replies_;
  // Room the last forward and reply batch needed: a new batch takes that much at once.
  std::size_t forward_batch_bytes_ = 0;
  std::size_t reply_batch_bytes_ = 0;
  std::deque<AppTransmit> outbox_;

  // Replication.
  std::vector<DeltaEntry> delta_log_;             // sorted by swarm and address at the flush
  std::vector<SwarmDelta> replicate_scratch_;     // replicated swarms, kPrefetchBatch at a time
  std::vector<InfoHash> prefetch_scratch_;        // hashes of a batch's swarms, for prefetch
  std::vector<InfoHash> owned_prefetch_scratch_;  // the owned ones of a replicated batch
  std::vector<SwarmDelta> delta_swarms_;          // one flush's swarms (emptied by the flush)
  // One flush's log order, the sort's working space and one swarm's entries: kept, not
  // allocated again every replication period.
  std::vector<std::uint64_t> delta_order_;
  std::vector<std::uint64_t> delta_order_scratch_;
  std::vector<std::uint32_t> delta_group_;
  std::vector<SwarmDelta> spare_deltas_;          // cleared entries to reuse (see kSpareDeltasMax)
  TimePoint delta_due_ = TimePoint::max();
  std::map<UnackedKey, UnackedDelta> unacked_;
  std::set<std::pair<TimePoint, UnackedKey>> resends_;  // UnackedDelta::resend_at of each entry
  std::deque<Transfer> transfers_;
  std::vector<dht::NodeRef> last_targets_;
  TimePoint next_sync_ = TimePoint::max();
  std::unordered_map<InfoHash, TimePoint, HashOf> replica_seen_;
  struct Tombstone {
    InfoHash h;
    SocketAddress peer;
    TimePoint at;
  };
  std::deque<Tombstone> tombstones_;  // oldest first
  std::unordered_map<InfoHash, std::vector<std::pair<SocketAddress, TimePoint>>, HashOf>
      tombstones_by_hash_;
  std::vector<InfoHash> drop_queue_;
  TimePoint next_housekeeping_ = TimePoint::max();

  // The ring as last read by handle_ring_change(): nodes it dropped are told apart from nodes
  // that only fell off the end of the successor list.
  std::optional<dht::NodeRef> window_pred_;
  std::vector<dht::NodeRef> window_succs_;
  bool window_alone_ = false;

  // Ranges.
  std::optional<dht::NodeRef> last_pred_;
  bool was_alone_ = false;
  bool reconcile_needed_ = false;
  std::vector<std::pair<InfoHash, bool>> moves_;  // (hash, true = promote / false = demote)
  bool replica_settled_ = false;   // no key of this node's range is in the replica store
  std::uint64_t range_epoch_ = 0;  // counts unsettle_replicas()
  std::uint64_t moves_epoch_ = std::numeric_limits<std::uint64_t>::max();  // of the last reconcile
  std::uint64_t drops_epoch_ = std::numeric_limits<std::uint64_t>::max();  // of the drop pass
  RangeView moves_view_;
  RangeView drops_view_;
  RangeView settled_view_;

  // Join pull: requests for (from, to] wait in `gate_waiters_` until it is done.
  struct Pull {
    bool active = false;
    bool done_once = false;
    std::uint32_t txid = 0;
    dht::NodeId from;
    dht::NodeId to;
    TimePoint deadline = TimePoint::max();
  } pull_;
  std::vector<std::function<void(TimePoint)>> gate_waiters_;

  // Graceful leave.
  bool leaving_ = false;
  bool handoff_acked_ = false;
  std::uint32_t handoff_txid_ = 0;
  TimePoint handoff_deadline_ = TimePoint::max();

  std::unique_ptr<Counters> counters_;
};

}  // namespace ringtracker::tracker
