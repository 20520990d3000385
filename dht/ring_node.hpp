// RingNode: the sans-IO state machine of one Chord ring member in Zave's corrected form (IEEE
// TSE 2017): successor list, predecessor, fingers, failure detection, iterative lookups, graceful
// leave and partition repair through seeds. It owns no socket, reads no clock, keeps no global
// state and draws randomness from its seed; the transport (or SimNetwork) moves bytes and time.
//
// Calling contract (same shape as quinn-proto's Connection):
//   1. feed inputs: handle_datagram(), handle_timeout(), or an API call (create, join, leave,
//      start_lookup, send_app), always with the current time;
//   2. drain poll_transmit() until empty and send each datagram;
//   3. drain poll_event() until empty;
//   4. arm one timer for next_timeout() and call handle_timeout() when it fires (early calls
//      are harmless).
// Ring-size rule (Zave 2017): the protocol is proven correct only while the ring has at least
// r + 1 members. With fewer, lists simply hold every other member; keeping r <= N - 1 for a
// small fixed cluster is the operator's choice (RingConfig::successors), not done here.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.hpp"
#include "common/net_address.hpp"
#include "dht/node_id.hpp"
#include "dht/prng.hpp"
#include "dht/ring_messages.hpp"

namespace ringtracker::dht {

struct RingConfig {
  /// The advertised ring address; the node id is SHA-1 of its text (plus vnode, if non-zero).
  SocketAddress self;
  std::uint16_t vnode = 0;
  /// Ring positions a joining node chooses from (Karger and Ruhl 2004, Byers et al. 2003): the
  /// ids of its address with virtual index 0 .. id_choices - 1. It looks up where each would
  /// land and takes the one that splits its gap most evenly (the largest smaller half), so the
  /// key space a node owns stays near 1/N instead of spreading up to ln N / N. Receivers
  /// verify any index as they verify the address. 1: no choice, the id of (self, vnode).
  std::uint16_t id_choices = 1;
  /// r: successor-list length, clamped to [1, MessageLimits::kNodesMax]. Tolerates r - 1
  /// simultaneous consecutive failures.
  std::size_t successors = 8;
  Duration stabilize_period = Seconds(5);
  /// Each period is drawn uniformly from period * [1 - jitter, 1 + jitter] so nodes desynchronise.
  double stabilize_jitter = 0.1;
  /// Fingers refreshed per stabilize tick (each is one lookup, usually a single RPC).
  int finger_refresh_per_tick = 1;
  /// How often a member asks a random seed or known member to look up its own id
  /// (partition repair). Zero disables it.
  Duration seed_check_period = Seconds(60);
  /// Retransmission timeout for a neighbour with no RTT sample yet, and bounds for
  /// SRTT + 4 * RTTVAR (RFC 6298 shape).
  Duration rto_initial = Seconds(1);
  Duration rto_min = Milliseconds(200);
  Duration rto_max = Seconds(3);
  /// A request unanswered this many times in a row declares its destination dead.
  int misses_dead = 2;
  /// A lookup that has not finished within this time fails.
  Duration lookup_timeout = Seconds(20);
  /// Concurrent lookups (user + maintenance); more fail at once.
  std::size_t lookups_max = 1024;
  /// Refuse a datagram whose advertised sender address differs from its source address.
  bool require_source_match = true;
  /// Also verify id == SHA-1(address) of every node listed inside a message.
  bool verify_listed_ids = true;
};

/// One datagram to send. `bytes` is a byte string (std::string as a byte container, so the
/// encoder can append without copies).
struct Transmit {
  SocketAddress destination;
  std::string bytes;
};

using LookupId = std::uint64_t;

namespace ring_event {
/// This node became a ring member (after create() or a successful join()).
struct Joined {};
/// A graceful leave finished (acknowledged or timed out); the node sends nothing more.
struct Left {};
/// The owned range (predecessor, self] changed. predecessor == nullopt means unknown, except
/// when `alone` is true: then this node is the whole ring and owns everything.
struct OwnedRangeChanged {
  std::optional<NodeRef> predecessor;
  bool alone = false;
};
/// The successor list changed (nearest first; empty when alone).
struct SuccessorsChanged {
  std::vector<NodeRef> successors;
};
/// A start_lookup() finished. owner == nullopt: the lookup failed (timeouts, no route).
struct LookupCompleted {
  LookupId id = 0;
  NodeId key;
  std::optional<NodeRef> owner;
  int hops = 0;  // find_step requests sent (retransmissions not counted)
};
/// An `app` message from another ring node (the data layer's own protocol).
struct AppReceived {
  NodeRef from;
  std::string payload;
};
}  // namespace ring_event

using RingEvent = std::variant<ring_event::Joined, ring_event::Left, ring_event::OwnedRangeChanged,
                               ring_event::SuccessorsChanged, ring_event::LookupCompleted,
                               ring_event::AppReceived>;

enum class DropReason : std::uint8_t {
  malformed,            // decode error (detail in RingCounters::malformed)
  not_member,           // ring request while idle, joining or left
  from_self,            // our own id and address
  source_mismatch,      // advertised address != datagram source
  bad_sender_id,        // sender id != SHA-1(sender address)
  bad_listed_id,        // a listed node's id != SHA-1(its address)
  unexpected_response,  // response without a matching outstanding request
  pending_full,         // too many outstanding requests to send another
  event_queue_full,     // events not polled; oldest dropped
  payload_too_large,    // send_app payload over the message limit
};
inline constexpr std::size_t kDropReasonCount = 10;
std::string_view to_string(DropReason r);

struct RingCounters {
  std::array<std::uint64_t, kMessageKindCount> sent{};
  std::array<std::uint64_t, kMessageKindCount> received{};
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::array<std::uint64_t, kDropReasonCount> drops{};
  std::array<std::uint64_t, kMessageErrorCount> malformed{};
  std::uint64_t retransmits = 0;
  std::uint64_t nodes_declared_dead = 0;
  std::uint64_t stabilize_immediate = 0;
  std::uint64_t lookups_started = 0;
  std::uint64_t lookups_failed = 0;
  std::uint64_t joins = 0;
  std::uint64_t rejoins = 0;  // partition repair: seed check found another ring
};

class RingNode {
 public:
  enum class State : std::uint8_t { idle, joining, member, leaving, left };

  /// Outstanding requests at once: bounds memory whatever peers do.
  static constexpr std::size_t kPendingMax = 2048;
  /// Undelivered events kept; older ones are dropped (and counted) past this.
  static constexpr std::size_t kEventsMax = 4096;
  /// Seeds remembered from join() (partition repair needs only a few).
  static constexpr std::size_t kSeedsMax = 16;
  /// Members remembered from traffic as extra seed-check targets.
  static constexpr std::size_t kKnownMembersMax = 8;
  /// Neighbours with an RTT estimate (successors, predecessor, fingers, a few more).
  static constexpr std::size_t kRttEntriesMax = 48;
  /// Nodes remembered as dead, so that stale lists do not re-adopt them at once.
  static constexpr std::size_t kSuspectsMax = 64;
  /// find_step requests one lookup may send (a lookup needs about log2 N / 2 + 1).
  static constexpr int kLookupStepsMax = 64;
  /// Newcomers a join probe walks past while it confirms its gap (id_choices).
  static constexpr int kJoinConfirmsMax = 8;
  /// A node choosing its id (id_choices > 1) starts joining after a random part of this
  /// fraction of the stabilize period.
  static constexpr double kJoinSpreadFraction = 0.05;

  RingNode(const RingConfig& config, std::uint64_t seed);

  // --- inputs -------------------------------------------------------------------------------
  /// Starts a new ring with this node as its only member. Requires state() == idle.
  void create(TimePoint now);
  /// Joins through any of `seeds` (tried in turn until one works; retried every stabilize
  /// period). The seeds are kept for partition repair. Requires state() == idle or left.
  void join(TimePoint now, std::span<const SocketAddress> seeds);
  /// Graceful leave: tells predecessor and successor, which adopt each other at once; Left is
  /// emitted when both acknowledged or one stabilize period passed.
  void leave(TimePoint now);
  /// One received datagram. Bad bytes are counted and dropped; never throws.
  void handle_datagram(TimePoint now, const SocketAddress& from, std::span<const std::uint8_t> bytes);
  /// Runs every timer due at `now`.
  void handle_timeout(TimePoint now);
  /// Starts an iterative lookup of the owner (successor) of `key`; completion comes as
  /// LookupCompleted with the returned id (possibly at once, from this call).
  LookupId start_lookup(TimePoint now, const NodeId& key);
  /// Sends an opaque `app` payload to another ring node (any state but idle/left). False (and
  /// counted) when too large or not running.
  bool send_app(TimePoint now, const SocketAddress& to, std::string_view payload);

  // --- outputs ------------------------------------------------------------------------------
  std::optional<Transmit> poll_transmit();
  std::optional<RingEvent> poll_event();
  /// The earliest time handle_timeout() has work; TimePoint::max() when none.
  TimePoint next_timeout() const;

  // --- state --------------------------------------------------------------------------------
  const NodeRef& self() const { return self_; }
  State state() const { return state_; }
  bool is_member() const { return state_ == State::member || state_ == State::leaving; }
  const std::optional<NodeRef>& predecessor() const { return pred_; }
  /// Nearest first, at most r entries, never self, no duplicates. Empty = alone.
  std::span<const NodeRef> successors() const { return succs_; }
  /// Distinct nodes in the finger table.
  std::size_t finger_count() const;
  const RingCounters& counters() const { return counters_; }
  const RingConfig& config() const { return config_; }
  /// The id the next start_lookup() will return (tests match completions to requests).
  LookupId next_lookup_id_for_test() const { return lookup_next_; }
  /// Current RTO towards `id` (initial RTO when no sample yet).
  Duration rto_for(const NodeId& id) const;

 private:
  enum class Purpose : std::uint8_t { stabilize, adopt, pred_check, lookup, leave, ping };
  enum class LookupPurpose : std::uint8_t { user, finger, join, seed_check };

  struct Pending {
    std::uint32_t txid = 0;
    NodeRef to;
    Purpose purpose = Purpose::ping;
    LookupId lookup = 0;
    TimePoint sent_at;
    TimePoint deadline;
    int misses = 0;
    // Enough to encode the request again on retransmission (rare), instead of keeping a copy
    // of every request's bytes.
    MessageKind kind = MessageKind::ping;
    bool rectify = false;
    NodeId key;
    /// Sent to a seed known by address only: its id may carry a virtual index (id_choices),
    /// so the answer is matched by address and the id it comes with is the node's.
    bool by_address = false;
  };
  struct Lookup {
    LookupId id = 0;
    NodeId key;
    LookupPurpose purpose = LookupPurpose::user;
    int finger_index = 0;
    TimePoint deadline;
    bool verifying = false;    // target is a candidate owner being asked to confirm
    bool restartable = false;  // started from a guess: on exhaustion, route from self
    NodeRef target;
    std::optional<NodeRef> best_pred;  // last node that answered as preceding the key
    std::optional<NodeRef> fallback;   // live owner to use if the redirect target is dead
    std::vector<NodeRef> alternates;
    std::vector<NodeRef> owner_guesses;  // last responder's nearest nodes at or after the key
    std::vector<NodeId> dead;
    NodeRef via;  // seed of join / seed check
    bool via_seed = false;  // `via` is a seed address (its id not known yet)
    /// A join probe being confirmed at the successor its answer named (join_list.front()).
    bool confirming = false;
    int confirms = 0;
    std::optional<NodeRef> join_pred;
    std::vector<NodeRef> join_list;
    int hops = 0;
    int steps = 0;
  };
  struct RttEntry {
    std::uint64_t id_prefix = 0;  // a prefix collision would only share an RTT estimate
    Duration srtt{};
    Duration rttvar{};
    TimePoint last_used;
  };
  struct Suspect {
    NodeId id;
    TimePoint until;
  };

  // Sending.
  RingMessage& out_message(MessageKind kind, std::uint32_t txid);
  void push_transmit(const SocketAddress& to, std::string bytes, MessageKind kind);
  void send_oneway(const NodeRef& to, RingMessage& m);
  void send_response(const SocketAddress& to, RingMessage& m);
  bool send_request(TimePoint now, const NodeRef& to, RingMessage& m, Purpose purpose,
                    LookupId lookup = 0, bool by_address = false);
  std::uint32_t next_txid() { return txid_next_++; }
  bool has_pending(Purpose purpose) const;
  bool has_pending_to(Purpose purpose, const NodeId& id) const;

  // Receiving.
  /// `m` is the decode scratch: an app payload is moved out of it into the event.
  void dispatch(TimePoint now, const SocketAddress& from, RingMessage& m);
  void on_response(TimePoint now, const RingMessage& m);
  void on_request_failed(TimePoint now, Pending p);
  void on_get_state(TimePoint now, const SocketAddress& from, const RingMessage& m);
  void on_find_step(const SocketAddress& from, const RingMessage& m);
  void on_leave(TimePoint now, const SocketAddress& from, const RingMessage& m);

  // Ring maintenance.
  void tick(TimePoint now);
  void stabilize(TimePoint now);
  void restabilize_soon(TimePoint now);
  void on_state_reply(TimePoint now, const Pending& p, const RingMessage& m);
  void rectify(TimePoint now, const NodeRef& candidate);
  void set_pred(TimePoint now, std::optional<NodeRef> pred);
  void set_successors(std::vector<NodeRef> list);
  /// first + rest, cut where the order (clockwise from self) breaks, without self, duplicates
  /// or suspects, truncated to r.
  std::vector<NodeRef> merge_successors(const NodeRef* first, std::span<const NodeRef> rest) const;
  void node_dead(TimePoint now, const NodeRef& n);
  void node_gone(const NodeId& id, TimePoint until);
  bool is_suspect(const NodeId& id) const;
  void refresh_finger(TimePoint now);
  int first_useful_finger() const;
  void finger_result(int index, const std::optional<NodeRef>& owner);
  void remember_member(const SocketAddress& a);
  void seed_check(TimePoint now);
  void join_attempt(TimePoint now);
  /// A join lookup for `key` found where that id would sit: before `pred` (or alone with the
  /// node in `list` when pred is unset), whose successor list is `list`.
  void join_found(TimePoint now, const NodeId& key, const std::optional<NodeRef>& pred,
                  std::vector<NodeRef> list);
  void join_probe_failed(TimePoint now, const NodeId& key);
  /// Joins at the best probed position once every probe has answered or failed (or `force`:
  /// the probe period is over and at least one answered). False while still waiting.
  bool finish_probes(TimePoint now, bool force);
  void join_complete(TimePoint now, const std::optional<NodeRef>& pred, std::vector<NodeRef> list);
  void finish_leave();
  Duration jittered(Duration d);

  // Lookups.
  struct FindAnswer {
    FindCode code = FindCode::next;
    std::optional<NodeRef> predecessor;
    NodeList nodes;
  };
  void answer_find(const NodeId& key, FindAnswer& out) const;
  LookupId begin_lookup(TimePoint now, const NodeId& key, LookupPurpose purpose,
                        std::optional<NodeRef> first, bool verifying, int finger_index = 0,
                        std::optional<NodeRef> via = std::nullopt);
  bool has_lookup(LookupPurpose purpose) const;
  /// Drops every lookup of `purpose` with its requests in flight (their answers are ignored).
  void cancel_lookups(LookupPurpose purpose);
  Lookup* find_lookup(LookupId id);
  void lookup_step(TimePoint now, LookupId id);
  void lookup_reply(TimePoint now, LookupId id, const NodeRef& from, FindCode code,
                    const std::optional<NodeRef>& pred, std::span<const NodeRef> nodes);
  void lookup_target_dead(TimePoint now, LookupId id);
  /// The answer of a join probe's confirmation at the gap's named upper end `from`.
  void join_confirmed(TimePoint now, LookupId id, const NodeRef& from,
                      const std::optional<NodeRef>& pred, bool pred_usable);
  /// Ends a confirming join probe with the gap it holds (join_pred, join_list).
  void settle_join_probe(TimePoint now, LookupId id);
  void lookup_fallback(TimePoint now, LookupId id);
  void lookup_finish(TimePoint now, LookupId id, std::optional<NodeRef> owner);
  bool lookup_knows_dead(const Lookup& l, const NodeId& id) const;

  // RTT.
  void rtt_sample(TimePoint now, const NodeId& id, Duration rtt);
  Duration rto(const NodeId& id) const;

  void emit(RingEvent e);

  RingConfig config_;
  NodeRef self_;
  Prng rng_;
  State state_ = State::idle;

  std::optional<NodeRef> pred_;
  std::optional<NodeRef> pred_candidate_;
  TimePoint pred_heard_{};
  std::vector<NodeRef> succs_;
  std::vector<std::pair<int, NodeRef>> fingers_;  // (lowest finger index served, node), by index
  int next_finger_ = 0;

  std::vector<Pending> pending_;
  std::vector<Lookup> lookups_;
  LookupId lookup_next_ = 1;
  std::uint32_t txid_next_;
  std::vector<RttEntry> rtt_;
  std::vector<Suspect> suspects_;
  std::vector<NodeRef> seeds_;
  std::size_t seed_next_ = 0;
  std::vector<SocketAddress> known_;

  TimePoint stabilize_at_ = TimePoint::max();
  TimePoint extra_stabilize_at_ = TimePoint::max();
  TimePoint last_immediate_ = TimePoint::min();
  TimePoint seed_check_at_ = TimePoint::max();
  TimePoint join_retry_at_ = TimePoint::max();
  /// One candidate position of a joining node (RingConfig::id_choices).
  struct JoinProbe {
    std::uint16_t vnode = 0;
    NodeId id;
    bool done = false;
    bool found = false;
    std::optional<NodeRef> pred;
    std::vector<NodeRef> list;
  };
  std::vector<JoinProbe> probes_;
  TimePoint leave_deadline_ = TimePoint::max();
  int leave_waiting_ = 0;
  bool hint_pending_ = false;  // tell the predecessor after the first stabilize following a join

  // FIFO queues as vector + head index: an empty std::deque still costs ~600 bytes per node.
  std::vector<Transmit> out_;
  std::size_t out_head_ = 0;
  std::vector<RingEvent> events_;
  std::size_t events_head_ = 0;
  RingCounters counters_;
};

}  // namespace ringtracker::dht
