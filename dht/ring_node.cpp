// RingNode implementation. Protocol references: Zave, "Reasoning about identifier spaces: how
// to make Chord correct", IEEE TSE 2017 (successor lists, join, stabilize, rectify); Stoica et
// al. 2001 (fingers, lookups); RFC 6298 (SRTT/RTTVAR/RTO).
#include "dht/ring_node.hpp"

#include <algorithm>

#include "common/assert.hpp"
#include "common/buffer_pool.hpp"
#include "dht/ring_auth.hpp"

namespace ringtracker::dht {
namespace {

// Scratch messages shared by all nodes of a thread: a RingMessage holds a fixed node array
// (~1.5 KB) and 100,000 simulated nodes should not carry two each. A node is single-threaded
// and never decodes while it is encoding, so one of each suffices.
thread_local RingMessage tl_in;
thread_local RingMessage tl_out;

// How many closest-preceding candidates a find_reply offers (the first is the next hop, the
// others are fallbacks when it is dead).
constexpr std::size_t kNextCandidates = 3;
// How many owner guesses (nearest known nodes at or after the key) a `next` reply adds.
constexpr std::size_t kFollowCandidates = 2;
// Dead nodes one lookup remembers (more would mean the lookup should fail anyway).
constexpr std::size_t kLookupDeadMax = 16;

std::string encode(const RingMessage& m) {
  std::string s = BufferPool::local().take();
  s.reserve(48 + 42 * (m.nodes.size() + 1) + m.payload.size());
  encode_message(m, s);
  return s;
}

bool expected_response(MessageKind request_kind, MessageKind response) {
  switch (request_kind) {
    case MessageKind::ping: return response == MessageKind::pong;
    case MessageKind::get_state: return response == MessageKind::state;
    case MessageKind::find_step: return response == MessageKind::find_reply;
    case MessageKind::leave: return response == MessageKind::leave_ack;
    default: return false;
  }
}

}  // namespace

std::string_view to_string(DropReason r) {
  static constexpr std::array<std::string_view, kDropReasonCount> kNames = {
      "malformed",     "not_member",          "from_self",    "source_mismatch",
      "bad_sender_id", "bad_listed_id",       "unexpected_response",
      "pending_full",  "event_queue_full",    "payload_too_large"};
  return kNames[static_cast<std::size_t>(r)];
}

RingNode::RingNode(const RingConfig& config, std::uint64_t seed)
    : config_(config),
      self_(NodeRef::from_address(config.self, config.vnode)),
      rng_(seed ^ self_.id.prefix64()) {
  config_.successors = std::clamp<std::size_t>(config_.successors, 1, MessageLimits::kNodesMax);
  RT_ASSERT(config_.stabilize_period > Duration::zero());
  RT_ASSERT(config_.misses_dead >= 1);
  txid_next_ = static_cast<std::uint32_t>(rng_.next());
}

// ---------------------------------------------------------------------------------------------
// Inputs

void RingNode::create(TimePoint now) {
  RT_ASSERT(state_ == State::idle || state_ == State::left);
  state_ = State::member;
  succs_.clear();
  pred_.reset();
  fingers_.clear();
  stabilize_at_ = now + jittered(config_.stabilize_period);
  if (config_.seed_check_period > Duration::zero())
    seed_check_at_ = now + std::chrono::duration_cast<Duration>(config_.seed_check_period * rng_.unit());
  emit(ring_event::Joined{});
  emit(ring_event::OwnedRangeChanged{std::nullopt, true});
}

void RingNode::join(TimePoint now, std::span<const SocketAddress> seeds) {
  RT_ASSERT(state_ == State::idle || state_ == State::left);
  seeds_.clear();
  for (const auto& a : seeds) {
    if (seeds_.size() == kSeedsMax) break;
    if (a == self_.address) continue;
    auto ref = NodeRef::from_address(a);
    if (std::find(seeds_.begin(), seeds_.end(), ref) == seeds_.end()) seeds_.push_back(ref);
  }
  if (seeds_.empty()) {
    create(now);
    return;
  }
  state_ = State::joining;
  succs_.clear();
  pred_.reset();
  fingers_.clear();
  if (config_.id_choices > 1) {
    // Nodes started together would probe the same ring at the same instant and all pick the
    // middle of the same gap; a random start spreads them so that each sees the ones before.
    join_retry_at_ = now + std::chrono::duration_cast<Duration>(config_.stabilize_period *
                                                                kJoinSpreadFraction * rng_.unit());
    return;
  }
  join_attempt(now);
}

void RingNode::join_attempt(TimePoint now) {
  join_retry_at_ = TimePoint::max();
  if (state_ != State::joining && state_ != State::member) return;
  if (!probes_.empty() && finish_probes(now, true)) return;
  const NodeRef via = seeds_[seed_next_++ % seeds_.size()];
  if (state_ == State::joining && config_.id_choices > 1) {
    // Every candidate is looked up through the same seed; the probe period bounds the wait
    // for slow ones (join_retry_at_ then picks among those that answered).
    cancel_lookups(LookupPurpose::join);
    probes_.clear();
    for (std::uint16_t v = 0; v < config_.id_choices; ++v) {
      JoinProbe& p = probes_.emplace_back();
      p.vnode = v;
      p.id = NodeId::from_address(config_.self, v);
    }
    join_retry_at_ = now + config_.stabilize_period;
    for (std::size_t i = 0; i < probes_.size(); ++i) {
      const NodeId key = probes_[i].id;  // probes_ may be cleared by a synchronous answer
      if (begin_lookup(now, key, LookupPurpose::join, via, false, 0, via) == 0)
        join_probe_failed(now, key);
      if (probes_.empty()) return;
    }
    return;
  }
  if (begin_lookup(now, self_.id, LookupPurpose::join, via, false, 0, via) == 0)
    join_retry_at_ = now + config_.stabilize_period;
}

void RingNode::join_found(TimePoint now, const NodeId& key, const std::optional<NodeRef>& pred,
                          std::vector<NodeRef> list) {
  auto probe = std::find_if(probes_.begin(), probes_.end(),
                            [&](const JoinProbe& p) { return p.id == key && !p.done; });
  if (state_ != State::joining || probe == probes_.end()) {
    if (key == self_.id) join_complete(now, pred, std::move(list));  // no choice, or a rejoin
    return;
  }
  probe->done = probe->found = true;
  probe->pred = pred;
  probe->list = std::move(list);
  finish_probes(now, false);
}

void RingNode::join_probe_failed(TimePoint now, const NodeId& key) {
  auto probe = std::find_if(probes_.begin(), probes_.end(),
                            [&](const JoinProbe& p) { return p.id == key && !p.done; });
  if (probe == probes_.end()) return;
  probe->done = true;
  finish_probes(now, false);
}

bool RingNode::finish_probes(TimePoint now, bool force) {
  const bool all_done =
      std::all_of(probes_.begin(), probes_.end(), [](const JoinProbe& p) { return p.done; });
  if (!all_done && !force) return false;
  // The smaller of the two pieces the candidate cuts its gap into: the largest one splits the
  // widest gap near its middle. A lone member's gap is the whole circle.
  auto smaller_piece = [](const JoinProbe& p) {
    const NodeId& lower = p.pred ? p.pred->id : p.list.front().id;
    const NodeId& upper = p.pred && !p.list.empty() ? p.list.front().id : lower;
    return std::min(NodeId::distance(lower, p.id), NodeId::distance(p.id, upper));
  };
  std::optional<std::size_t> best;
  NodeId best_piece;
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    if (!probes_[i].found || probes_[i].list.empty()) continue;
    const NodeId piece = smaller_piece(probes_[i]);
    if (!best || piece > best_piece) {
      best = i;
      best_piece = piece;
    }
  }
  if (!best) {
    if (!all_done) return false;
    probes_.clear();  // nothing answered: the next seed, a period later
    join_retry_at_ = now + config_.stabilize_period;
    return true;
  }
  JoinProbe chosen = std::move(probes_[*best]);
  probes_.clear();
  cancel_lookups(LookupPurpose::join);
  self_ = NodeRef::from_address(config_.self, chosen.vnode);
  join_complete(now, chosen.pred, std::move(chosen.list));
  return true;
}

void RingNode::join_complete(TimePoint now, const std::optional<NodeRef>& pred,
                             std::vector<NodeRef> list) {
  const bool was_joining = state_ == State::joining;
  if (!was_joining && state_ != State::member) return;
  // The predecessor may still list an earlier incarnation of us (a restart at the same
  // address) first: that entry is us, not the end of the list.
  while (!list.empty() && list.front().id == self_.id) list.erase(list.begin());
  auto merged = merge_successors(nullptr, list);
  if (merged.empty()) {
    // Nothing usable: never start a second ring on our own; try again a period later.
    if (was_joining) join_retry_at_ = now + config_.stabilize_period;
    return;
  }
  state_ = State::member;
  set_successors(std::move(merged));
  set_pred(now, pred);
  fingers_.clear();
  next_finger_ = 0;
  if (was_joining) {
    ++counters_.joins;
    emit(ring_event::Joined{});
    stabilize_at_ = now + jittered(config_.stabilize_period);
    if (config_.seed_check_period > Duration::zero())
      seed_check_at_ =
          now + std::chrono::duration_cast<Duration>(config_.seed_check_period * (0.5 + rng_.unit()));
  }
  // Zave 2017: the joiner changes only itself; the predecessor learns of it through its own
  // guarded stabilize step. The hint merely makes that step happen now instead of next period.
  hint_pending_ = pred.has_value();
  last_immediate_ = now;
  stabilize(now);
}

void RingNode::leave(TimePoint now) {
  if (state_ == State::idle || state_ == State::joining) {
    finish_leave();
    return;
  }
  if (state_ != State::member) return;
  state_ = State::leaving;
  leave_deadline_ = now + config_.stabilize_period;
  leave_waiting_ = 0;
  if (!succs_.empty()) {
    auto send_leave = [&](const NodeRef& to) {
      RingMessage& m = out_message(MessageKind::leave, next_txid());
      m.predecessor = pred_;
      for (const auto& s : succs_) m.nodes.push_back(s);
      if (send_request(now, to, m, Purpose::leave)) ++leave_waiting_;
    };
    send_leave(succs_[0]);
    if (pred_ && pred_->id != succs_[0].id) send_leave(*pred_);
  }
  if (leave_waiting_ == 0) finish_leave();
}

void RingNode::finish_leave() {
  state_ = State::left;
  probes_.clear();
  pending_.clear();
  for (const auto& l : lookups_)
    if (l.purpose == LookupPurpose::user)
      emit(ring_event::LookupCompleted{l.id, l.key, std::nullopt, l.hops});
  lookups_.clear();
  stabilize_at_ = extra_stabilize_at_ = seed_check_at_ = join_retry_at_ = leave_deadline_ =
      TimePoint::max();
  emit(ring_event::Left{});
}

void RingNode::handle_datagram(TimePoint now, const SocketAddress& from,
                               std::span<const std::uint8_t> bytes) {
  counters_.bytes_received += bytes.size();
  if (state_ == State::idle || state_ == State::left) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::not_member)];
    return;
  }
  RingMessage& m = tl_in;
  // The last app payload was moved out with its event; the daemon gave its buffer back.
  BufferPool::local().refill(m.payload);
  auto decoded = decode_message(bytes, m);
  if (!decoded) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::malformed)];
    ++counters_.malformed[static_cast<std::size_t>(decoded.error())];
    return;
  }
  ++counters_.received[static_cast<std::size_t>(m.kind)];
  if (m.sender.id == self_.id) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::from_self)];
    return;
  }
  if (config_.require_source_match && m.sender.address != from) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::source_mismatch)];
    return;
  }
  if (!verify(m.sender.id, m.sender.address, m.sender.vnode)) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::bad_sender_id)];
    return;
  }
  if (config_.verify_listed_ids) {
    bool ok = !m.predecessor || verify(m.predecessor->id, m.predecessor->address,
                                       m.predecessor->vnode);
    for (const auto& n : m.nodes) ok = ok && verify(n.id, n.address, n.vnode);
    if (!ok) {
      ++counters_.drops[static_cast<std::size_t>(DropReason::bad_listed_id)];
      return;
    }
  }
  dispatch(now, from, m);
}

void RingNode::dispatch(TimePoint now, const SocketAddress& from, RingMessage& m) {
  if (pred_ && m.sender.id == pred_->id) pred_heard_ = now;
  if (!suspects_.empty()) {
    // Hearing from a node is proof of life: let it be adopted again.
    std::erase_if(suspects_, [&](const Suspect& s) { return s.id == m.sender.id; });
  }
  const bool member = is_member();
  if (member) remember_member(m.sender.address);
  auto not_member = [&] { ++counters_.drops[static_cast<std::size_t>(DropReason::not_member)]; };
  switch (m.kind) {
    case MessageKind::ping: {
      RingMessage& r = out_message(MessageKind::pong, m.txid);
      send_response(from, r);
      break;
    }
    case MessageKind::pong:
    case MessageKind::state:
    case MessageKind::find_reply:
    case MessageKind::leave_ack:
      on_response(now, m);
      break;
    case MessageKind::app:
      emit(ring_event::AppReceived{m.sender, std::move(m.payload)});
      break;
    case MessageKind::get_state:
      if (!member) return not_member();
      on_get_state(now, from, m);
      break;
    case MessageKind::rectify:
      if (!member) return not_member();
      rectify(now, m.sender);
      break;
    case MessageKind::hint:
      if (!member) return not_member();
      if (state_ == State::member &&
          (succs_.empty() || in_open(m.sender.id, self_.id, succs_[0].id)))
        restabilize_soon(now);
      break;
    case MessageKind::find_step:
      if (!member) return not_member();
      on_find_step(from, m);
      break;
    case MessageKind::leave:
      if (!member) return not_member();
      on_leave(now, from, m);
      break;
  }
}

void RingNode::on_response(TimePoint now, const RingMessage& m) {
  auto it = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
    return p.txid == m.txid && (p.to.id == m.sender.id ||
                                (p.by_address && p.to.address == m.sender.address));
  });
  if (it == pending_.end()) {
    // The node at that address answers under another id: the one asked is an earlier
    // incarnation (restarted with another id) and gone. A lookup moves on at once instead of
    // waiting out its retransmissions.
    auto old = std::find_if(pending_.begin(), pending_.end(), [&](const Pending& p) {
      return p.txid == m.txid && p.purpose == Purpose::lookup &&
             p.to.address == m.sender.address;
    });
    if (old != pending_.end()) {
      const LookupId lookup = old->lookup;
      *old = std::move(pending_.back());
      pending_.pop_back();
      lookup_target_dead(now, lookup);
      return;
    }
  }
  if (it == pending_.end() || !expected_response(it->kind, m.kind)) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::unexpected_response)];
    return;
  }
  Pending p = std::move(*it);
  *it = std::move(pending_.back());
  pending_.pop_back();
  // Karn: only a reply to an unrepeated request is an unambiguous RTT sample.
  if (p.misses == 0) rtt_sample(now, m.sender.id, now - p.sent_at);
  switch (p.purpose) {
    case Purpose::stabilize:
    case Purpose::adopt:
      on_state_reply(now, p, m);
      break;
    case Purpose::lookup:
      lookup_reply(now, p.lookup, m.sender, m.code, m.predecessor,
                   std::span<const NodeRef>(m.nodes.begin(), m.nodes.end()));
      break;
    case Purpose::leave:
      if (--leave_waiting_ <= 0 && state_ == State::leaving) finish_leave();
      break;
    case Purpose::pred_check:
    case Purpose::ping:
      break;
  }
}

void RingNode::on_request_failed(TimePoint now, Pending p) {
  if (state_ == State::left) return;
  node_dead(now, p.to);
  switch (p.purpose) {
    case Purpose::stabilize:
      restabilize_soon(now);  // Zave 2017: shift the list and stabilize against the new first
      break;
    case Purpose::lookup:
      lookup_target_dead(now, p.lookup);
      break;
    case Purpose::leave:
      if (--leave_waiting_ <= 0 && state_ == State::leaving) finish_leave();
      break;
    case Purpose::adopt:
    case Purpose::pred_check:
    case Purpose::ping:
      break;
  }
}

void RingNode::handle_timeout(TimePoint now) {
  if (state_ == State::idle || state_ == State::left) return;
  // Collect first: handlers add and remove pending requests.
  std::uint32_t expired[64];
  std::size_t n_expired = 0;
  for (const auto& p : pending_)
    if (p.deadline <= now && n_expired < std::size(expired)) expired[n_expired++] = p.txid;
  for (std::size_t e = 0; e < n_expired; ++e) {
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [&](const Pending& p) { return p.txid == expired[e]; });
    if (it == pending_.end()) continue;
    if (++it->misses < config_.misses_dead) {
      // Same RTO again, no backoff: detection must stay within misses_dead * RTO.
      it->deadline = now + rto(it->to.id);
      ++counters_.retransmits;
      RingMessage& m = out_message(it->kind, it->txid);
      m.rectify = it->rectify;
      m.key = it->key;
      if (it->kind == MessageKind::leave) {
        m.predecessor = pred_;
        for (const auto& s : succs_) m.nodes.push_back(s);
      }
      push_transmit(it->to.address, encode(m), it->kind);
      continue;
    }
    Pending p = std::move(*it);
    *it = std::move(pending_.back());
    pending_.pop_back();
    on_request_failed(now, std::move(p));
    if (state_ == State::left) return;
  }
  if (leave_deadline_ <= now) {
    finish_leave();
    return;
  }
  if (join_retry_at_ <= now) join_attempt(now);
  if (extra_stabilize_at_ <= now) {
    extra_stabilize_at_ = TimePoint::max();
    last_immediate_ = now;
    ++counters_.stabilize_immediate;
    stabilize(now);
  }
  if (stabilize_at_ <= now) tick(now);
  if (seed_check_at_ <= now) seed_check(now);
}

LookupId RingNode::start_lookup(TimePoint now, const NodeId& key) {
  LookupId id = 0;
  if (is_member()) id = begin_lookup(now, key, LookupPurpose::user, std::nullopt, false);
  if (id == 0) {
    id = lookup_next_++;
    ++counters_.lookups_failed;
    emit(ring_event::LookupCompleted{id, key, std::nullopt, 0});
  }
  return id;
}

bool RingNode::send_app(TimePoint, const SocketAddress& to, std::string_view payload) {
  // Room for the envelope (kind, txid, sender node) and the transport's authentication
  // trailer inside one UDP datagram.
  constexpr std::size_t kEnvelopeMax = 128 + RingAuth::kOverheadBytes;
  if (state_ == State::idle || state_ == State::left) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::not_member)];
    return false;
  }
  if (payload.size() > MessageLimits::kBytesMax - kEnvelopeMax) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::payload_too_large)];
    return false;
  }
  RingMessage& m = out_message(MessageKind::app, next_txid());
  m.payload.assign(payload.data(), payload.size());
  push_transmit(to, encode(m), MessageKind::app);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Outputs

std::optional<Transmit> RingNode::poll_transmit() {
  if (out_head_ == out_.size()) return std::nullopt;
  Transmit t = std::move(out_[out_head_++]);
  if (out_head_ == out_.size()) {
    out_.clear();
    out_head_ = 0;
  }
  return t;
}

std::optional<RingEvent> RingNode::poll_event() {
  if (events_head_ == events_.size()) return std::nullopt;
  RingEvent e = std::move(events_[events_head_++]);
  if (events_head_ == events_.size()) {
    events_.clear();
    events_head_ = 0;
  }
  return e;
}

TimePoint RingNode::next_timeout() const {
  if (state_ == State::idle || state_ == State::left) return TimePoint::max();
  TimePoint t = std::min({stabilize_at_, extra_stabilize_at_, seed_check_at_, join_retry_at_,
                          leave_deadline_});
  for (const auto& p : pending_) t = std::min(t, p.deadline);
  return t;
}

void RingNode::emit(RingEvent e) {
  if (events_.size() - events_head_ >= kEventsMax) {
    ++events_head_;
    ++counters_.drops[static_cast<std::size_t>(DropReason::event_queue_full)];
  }
  if (events_head_ > 64 && events_head_ * 2 > events_.size()) {
    events_.erase(events_.begin(), events_.begin() + static_cast<std::ptrdiff_t>(events_head_));
    events_head_ = 0;
  }
  events_.push_back(std::move(e));
}

std::size_t RingNode::finger_count() const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < fingers_.size(); ++i)
    if (i == 0 || fingers_[i].second.id != fingers_[i - 1].second.id) ++n;
  return n;
}

Duration RingNode::rto_for(const NodeId& id) const { return rto(id); }

// ---------------------------------------------------------------------------------------------
// Sending

RingMessage& RingNode::out_message(MessageKind kind, std::uint32_t txid) {
  RingMessage& m = tl_out;
  m.clear();
  m.kind = kind;
  m.txid = txid;
  m.sender = self_;
  return m;
}

void RingNode::push_transmit(const SocketAddress& to, std::string bytes, MessageKind kind) {
  ++counters_.sent[static_cast<std::size_t>(kind)];
  counters_.bytes_sent += bytes.size();
  out_.push_back(Transmit{to, std::move(bytes)});
}

void RingNode::send_oneway(const NodeRef& to, RingMessage& m) {
  push_transmit(to.address, encode(m), m.kind);
}

void RingNode::send_response(const SocketAddress& to, RingMessage& m) {
  push_transmit(to, encode(m), m.kind);
}

bool RingNode::send_request(TimePoint now, const NodeRef& to, RingMessage& m, Purpose purpose,
                            LookupId lookup, bool by_address) {
  if (pending_.size() >= kPendingMax) {
    ++counters_.drops[static_cast<std::size_t>(DropReason::pending_full)];
    return false;
  }
  Pending p;
  p.txid = m.txid;
  p.to = to;
  p.purpose = purpose;
  p.lookup = lookup;
  p.sent_at = now;
  p.deadline = now + rto(to.id);
  p.kind = m.kind;
  p.rectify = m.rectify;
  p.key = m.key;
  p.by_address = by_address;
  push_transmit(to.address, encode(m), m.kind);
  pending_.push_back(std::move(p));
  return true;
}

bool RingNode::has_pending(Purpose purpose) const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [&](const Pending& p) { return p.purpose == purpose; });
}

bool RingNode::has_pending_to(Purpose purpose, const NodeId& id) const {
  return std::any_of(pending_.begin(), pending_.end(),
                     [&](const Pending& p) { return p.purpose == purpose && p.to.id == id; });
}

// ---------------------------------------------------------------------------------------------
// Requests from others

void RingNode::on_get_state(TimePoint now, const SocketAddress& from, const RingMessage& m) {
  // The rectify rides on the request so that the reply already reflects it.
  if (m.rectify) rectify(now, m.sender);
  RingMessage& r = out_message(MessageKind::state, m.txid);
  r.predecessor = pred_;
  for (const auto& s : succs_) r.nodes.push_back(s);
  send_response(from, r);
}

void RingNode::on_find_step(const SocketAddress& from, const RingMessage& m) {
  FindAnswer a;
  answer_find(m.key, a);
  RingMessage& r = out_message(MessageKind::find_reply, m.txid);
  r.code = a.code;
  r.predecessor = a.predecessor;
  for (const auto& n : a.nodes) r.nodes.push_back(n);
  send_response(from, r);
}

void RingNode::on_leave(TimePoint now, const SocketAddress& from, const RingMessage& m) {
  const NodeRef leaver = m.sender;
  RingMessage& ack = out_message(MessageKind::leave_ack, m.txid);
  send_response(from, ack);
  if (state_ != State::member) return;
  node_gone(leaver.id, now + 2 * config_.stabilize_period);
  std::erase_if(fingers_, [&](const auto& f) { return f.second.id == leaver.id; });
  if (!succs_.empty() && succs_[0].id == leaver.id) {
    // Our successor leaves: its successor list becomes ours at once.
    std::vector<NodeRef> rest(succs_.begin() + 1, succs_.end());
    auto list = merge_successors(nullptr, std::span<const NodeRef>(m.nodes.begin(), m.nodes.end()));
    if (list.empty()) list = merge_successors(nullptr, rest);
    set_successors(std::move(list));
    if (!succs_.empty()) {
      RingMessage& r = out_message(MessageKind::rectify, next_txid());
      send_oneway(succs_[0], r);
    }
  } else {
    auto list = succs_;
    std::erase_if(list, [&](const NodeRef& n) { return n.id == leaver.id; });
    set_successors(std::move(list));
  }
  if (pred_ && pred_->id == leaver.id) {
    // Our predecessor leaves: its predecessor becomes ours at once.
    std::optional<NodeRef> p = m.predecessor;
    if (p && p->id == self_.id) p.reset();
    set_pred(now, p);
  }
}

// ---------------------------------------------------------------------------------------------
// Ring maintenance

Duration RingNode::jittered(Duration d) {
  const double f = 1.0 + config_.stabilize_jitter * (2.0 * rng_.unit() - 1.0);
  return std::chrono::duration_cast<Duration>(d * f);
}

void RingNode::tick(TimePoint now) {
  stabilize_at_ = now + jittered(config_.stabilize_period);
  std::erase_if(suspects_, [&](const Suspect& s) { return s.until <= now; });
  if (state_ != State::member) return;
  stabilize(now);
  for (int i = 0; i < config_.finger_refresh_per_tick; ++i) refresh_finger(now);
  if (pred_ && now - pred_heard_ > 2 * config_.stabilize_period &&
      !has_pending(Purpose::pred_check)) {
    RingMessage& m = out_message(MessageKind::ping, next_txid());
    send_request(now, *pred_, m, Purpose::pred_check);
  }
}

void RingNode::stabilize(TimePoint now) {
  if (state_ != State::member || has_pending(Purpose::stabilize)) return;
  if (succs_.empty()) {
    // Alone: our successor is ourselves, whose predecessor (if any) lies in (self, self) and
    // is adopted if it answers (Zave 2017, StabilizeFromPredecessor with succ = self).
    if (pred_ && !has_pending_to(Purpose::adopt, pred_->id)) {
      RingMessage& m = out_message(MessageKind::get_state, next_txid());
      m.rectify = true;
      send_request(now, *pred_, m, Purpose::adopt);
    }
    return;
  }
  RingMessage& m = out_message(MessageKind::get_state, next_txid());
  m.rectify = true;
  send_request(now, succs_[0], m, Purpose::stabilize);
}

void RingNode::restabilize_soon(TimePoint now) {
  // DESIGN 4: at most one immediate extra stabilize per half period; reactive repair storms
  // under churn are a known failure mode.
  const Duration half = config_.stabilize_period / 2;
  if (last_immediate_ == TimePoint::min() || now - last_immediate_ >= half) {
    last_immediate_ = now;
    ++counters_.stabilize_immediate;
    stabilize(now);
  } else if (extra_stabilize_at_ == TimePoint::max()) {
    extra_stabilize_at_ = last_immediate_ + half;
  }
}

void RingNode::on_state_reply(TimePoint now, const Pending& p, const RingMessage& m) {
  if (state_ != State::member) return;
  const std::span<const NodeRef> list(m.nodes.begin(), m.nodes.end());
  if (p.purpose == Purpose::stabilize) {
    if (succs_.empty() || succs_[0].id != p.to.id) return;  // overtaken by another change
    set_successors(merge_successors(&p.to, list));
    if (hint_pending_ && pred_) {
      hint_pending_ = false;
      RingMessage& h = out_message(MessageKind::hint, next_txid());
      send_oneway(*pred_, h);
    }
  } else {
    // Adopt only if still closer than the current successor (or we have none).
    if (!succs_.empty() && !in_open(p.to.id, self_.id, succs_[0].id)) return;
    set_successors(merge_successors(&p.to, list));
  }
  // Zave 2017 StabilizeFromPredecessor: the successor's predecessor, if it lies between us and
  // the successor and answers, becomes our successor. The get_state we send it is the
  // "answers" check, and it carries our rectify.
  if (m.predecessor && m.predecessor->id != self_.id &&
      in_open(m.predecessor->id, self_.id, p.to.id) && !is_suspect(m.predecessor->id) &&
      !has_pending_to(Purpose::adopt, m.predecessor->id)) {
    RingMessage& g = out_message(MessageKind::get_state, next_txid());
    g.rectify = true;
    send_request(now, *m.predecessor, g, Purpose::adopt);
  }
}

void RingNode::rectify(TimePoint now, const NodeRef& c) {
  if (state_ != State::member || c.id == self_.id) return;
  if (!pred_ || is_suspect(pred_->id) || in_open(c.id, pred_->id, self_.id)) {
    pred_candidate_.reset();
    set_pred(now, c);
    if (succs_.empty()) restabilize_soon(now);
    return;
  }
  if (c.id == pred_->id) return;
  // Zave 2017 Rectify: the candidate also wins when the current predecessor is dead. Ask it,
  // unless it spoke recently; the candidate is adopted if the check fails.
  pred_candidate_ = c;
  if (!has_pending(Purpose::pred_check) && now - pred_heard_ > rto(pred_->id)) {
    RingMessage& m = out_message(MessageKind::ping, next_txid());
    send_request(now, *pred_, m, Purpose::pred_check);
  }
}

void RingNode::set_pred(TimePoint now, std::optional<NodeRef> p) {
  if (p && p->id == self_.id) p.reset();
  const bool changed = p.has_value() != pred_.has_value() || (p && !(*p == *pred_));
  pred_ = std::move(p);
  pred_heard_ = now;
  if (changed) emit(ring_event::OwnedRangeChanged{pred_, !pred_ && succs_.empty()});
}

void RingNode::set_successors(std::vector<NodeRef> list) {
  if (list == succs_) return;
  succs_ = std::move(list);
  emit(ring_event::SuccessorsChanged{succs_});
}

std::vector<NodeRef> RingNode::merge_successors(const NodeRef* first,
                                                std::span<const NodeRef> rest) const {
  std::vector<NodeRef> out;
  out.reserve(config_.successors);
  NodeId last_distance;  // zero: the next entry must lie strictly further clockwise
  auto take = [&](const NodeRef& n) {
    if (out.size() == config_.successors) return false;
    const NodeId d = NodeId::distance(self_.id, n.id);
    // Order broken (includes reaching self, distance 0): the rest wraps around the ring.
    if (!(d > last_distance)) return false;
    last_distance = d;
    if (!is_suspect(n.id)) out.push_back(n);
    return true;
  };
  if (first && !take(*first)) return out;
  for (const auto& n : rest)
    if (!take(n)) break;
  return out;
}

void RingNode::node_gone(const NodeId& id, TimePoint until) {
  for (auto& s : suspects_) {
    if (s.id == id) {
      s.until = std::max(s.until, until);
      return;
    }
  }
  if (suspects_.size() == kSuspectsMax) {
    auto oldest = std::min_element(suspects_.begin(), suspects_.end(),
                                   [](const Suspect& a, const Suspect& b) { return a.until < b.until; });
    *oldest = Suspect{id, until};
    return;
  }
  suspects_.push_back(Suspect{id, until});
}

bool RingNode::is_suspect(const NodeId& id) const {
  return std::any_of(suspects_.begin(), suspects_.end(),
                     [&](const Suspect& s) { return s.id == id; });
}

void RingNode::node_dead(TimePoint now, const NodeRef& n) {
  ++counters_.nodes_declared_dead;
  node_gone(n.id, now + 2 * config_.stabilize_period);
  if (std::any_of(succs_.begin(), succs_.end(), [&](const NodeRef& s) { return s.id == n.id; })) {
    auto list = succs_;
    std::erase_if(list, [&](const NodeRef& s) { return s.id == n.id; });
    set_successors(std::move(list));
  }
  std::erase_if(fingers_, [&](const auto& f) { return f.second.id == n.id; });
  if (pred_ && pred_->id == n.id) {
    std::optional<NodeRef> c = pred_candidate_;
    pred_candidate_.reset();
    if (c && is_suspect(c->id)) c.reset();
    set_pred(now, c);
  }
}

int RingNode::first_useful_finger() const {
  if (succs_.empty()) return NodeId::kBits;
  // Finger i targets self + 2^i; every i with 2^i <= d(self, succ0) is served by succ0.
  return NodeId::distance(self_.id, succs_[0].id).log2_floor() + 1;
}

void RingNode::refresh_finger(TimePoint now) {
  if (succs_.empty() || has_lookup(LookupPurpose::finger)) return;
  const int i0 = first_useful_finger();
  if (i0 >= NodeId::kBits) return;
  if (next_finger_ < i0 || next_finger_ >= NodeId::kBits) next_finger_ = i0;
  const int i = next_finger_;
  const NodeId target = self_.id.plus_pow2(i);
  // Start at the current finger and let it confirm (one RPC in a stable ring); a full lookup
  // only when there is no usable guess or the guess fails.
  std::optional<NodeRef> guess;
  for (const auto& f : fingers_)
    if (f.first == i && !is_suspect(f.second.id)) guess = f.second;
  if (begin_lookup(now, target, LookupPurpose::finger, guess, guess.has_value(), i) == 0)
    next_finger_ = i + 1;
}

void RingNode::finger_result(int i, const std::optional<NodeRef>& owner) {
  if (!owner) {
    next_finger_ = i + 1;
    return;
  }
  if (owner->id == self_.id) {
    std::erase_if(fingers_, [&](const auto& f) { return f.first >= i; });
    next_finger_ = NodeId::kBits;
    return;
  }
  const int j = std::max(i + 1, NodeId::distance(self_.id, owner->id).log2_floor() + 1);
  const int i0 = first_useful_finger();
  std::erase_if(fingers_, [&](const auto& f) { return (f.first >= i && f.first < j) || f.first < i0; });
  auto pos = std::lower_bound(fingers_.begin(), fingers_.end(), i,
                              [](const auto& f, int idx) { return f.first < idx; });
  fingers_.insert(pos, {i, *owner});
  next_finger_ = j;
}

void RingNode::remember_member(const SocketAddress& a) {
  // A sample, not a census: once full, only one message in 32 may replace an entry (slow
  // turnover keeps members from afar), and only then is the list scanned.
  if (known_.size() == kKnownMembersMax && rng_.below(32) != 0) return;
  if (std::any_of(known_.begin(), known_.end(),
                  [&](const SocketAddress& k) { return k.port == a.port && k == a; }))
    return;
  if (known_.size() < kKnownMembersMax) {
    known_.push_back(a);
  } else {
    known_[rng_.below(known_.size())] = a;
  }
}

void RingNode::seed_check(TimePoint now) {
  seed_check_at_ = now + jittered(config_.seed_check_period);
  if (state_ != State::member || has_lookup(LookupPurpose::seed_check) ||
      has_lookup(LookupPurpose::join))
    return;
  const std::size_t total = seeds_.size() + known_.size();
  if (total == 0) return;
  const std::size_t pick = rng_.below(total);
  const NodeRef via = pick < seeds_.size() ? seeds_[pick]
                                           : NodeRef::from_address(known_[pick - seeds_.size()]);
  if (via.address == self_.address) return;
  begin_lookup(now, self_.id, LookupPurpose::seed_check, via, false, 0, via);
}

// ---------------------------------------------------------------------------------------------
// Lookups

void RingNode::answer_find(const NodeId& key, FindAnswer& out) const {
  out.nodes.clear();
  out.predecessor = pred_;
  if ((pred_ && in_half_open(key, pred_->id, self_.id)) || (!pred_ && succs_.empty())) {
    out.code = FindCode::self_owner;
    return;
  }
  // With no successor but a predecessor (a lone node just joined by another), that
  // predecessor is the successor-to-be.
  const NodeRef& succ0 = succs_.empty() ? *pred_ : succs_[0];
  if (in_half_open(key, self_.id, succ0.id)) {
    out.code = FindCode::successor;
    if (succs_.empty()) out.nodes.push_back(succ0);
    for (const auto& s : succs_) out.nodes.push_back(s);
    return;
  }
  // Closest preceding nodes of the key among everything we know (fingers, successors,
  // predecessor), nearest to the key first.
  const NodeRef* best[kNextCandidates] = {};
  NodeId best_d[kNextCandidates];
  std::size_t count = 0;
  auto consider = [&](const NodeRef& n) {
    if (!in_open(n.id, self_.id, key) || is_suspect(n.id)) return;
    const NodeId d = NodeId::distance(n.id, key);
    for (std::size_t i = 0; i < count; ++i)
      if (best[i]->id == n.id) return;
    std::size_t pos = count;
    while (pos > 0 && d < best_d[pos - 1]) --pos;
    if (pos >= kNextCandidates) return;
    for (std::size_t i = std::min(count, kNextCandidates - 1); i > pos; --i) {
      best[i] = best[i - 1];
      best_d[i] = best_d[i - 1];
    }
    best[pos] = &n;
    best_d[pos] = d;
    count = std::min(count + 1, kNextCandidates);
  };
  for (const auto& f : fingers_) consider(f.second);
  for (const auto& s : succs_) consider(s);
  if (pred_) consider(*pred_);
  if (count == 0) {
    out.code = FindCode::successor;
    if (succs_.empty()) out.nodes.push_back(succ0);
    for (const auto& s : succs_) out.nodes.push_back(s);
    return;
  }
  out.code = FindCode::next;
  for (std::size_t i = 0; i < count; ++i) out.nodes.push_back(*best[i]);
  // Then our best guesses of the owner itself (the nearest known nodes at or after the key):
  // they lie outside (self, key), so the requester tells them apart, and uses them when every
  // preceding candidate turns out dead.
  const NodeRef* follow[kFollowCandidates] = {};
  NodeId follow_d[kFollowCandidates];
  std::size_t follows = 0;
  auto consider_follow = [&](const NodeRef& n) {
    if (in_open(n.id, self_.id, key) || n.id == self_.id || is_suspect(n.id)) return;
    const NodeId d = NodeId::distance(key, n.id);
    for (std::size_t i = 0; i < follows; ++i)
      if (follow[i]->id == n.id) return;
    std::size_t pos = follows;
    while (pos > 0 && d < follow_d[pos - 1]) --pos;
    if (pos >= kFollowCandidates) return;
    for (std::size_t i = std::min(follows, kFollowCandidates - 1); i > pos; --i) {
      follow[i] = follow[i - 1];
      follow_d[i] = follow_d[i - 1];
    }
    follow[pos] = &n;
    follow_d[pos] = d;
    follows = std::min(follows + 1, kFollowCandidates);
  };
  for (const auto& f : fingers_) consider_follow(f.second);
  for (const auto& s : succs_) consider_follow(s);
  for (std::size_t i = 0; i < follows; ++i) out.nodes.push_back(*follow[i]);
}

LookupId RingNode::begin_lookup(TimePoint now, const NodeId& key, LookupPurpose purpose,
                                std::optional<NodeRef> first, bool verifying, int finger_index,
                                std::optional<NodeRef> via) {
  if (lookups_.size() >= config_.lookups_max) return 0;
  Lookup l;
  l.id = lookup_next_++;
  l.key = key;
  l.purpose = purpose;
  l.finger_index = finger_index;
  l.deadline = now + config_.lookup_timeout;
  l.verifying = verifying;
  l.restartable = verifying && first.has_value();
  l.target = first ? *first : self_;
  if (via) {
    l.via = *via;
    l.via_seed = true;
  }
  const LookupId id = l.id;
  lookups_.push_back(std::move(l));
  ++counters_.lookups_started;
  lookup_step(now, id);
  return id;
}

void RingNode::cancel_lookups(LookupPurpose purpose) {
  for (const auto& l : lookups_) {
    if (l.purpose != purpose) continue;
    std::erase_if(pending_, [&](const Pending& p) {
      return p.purpose == Purpose::lookup && p.lookup == l.id;
    });
  }
  std::erase_if(lookups_, [&](const Lookup& l) { return l.purpose == purpose; });
}

bool RingNode::has_lookup(LookupPurpose purpose) const {
  return std::any_of(lookups_.begin(), lookups_.end(),
                     [&](const Lookup& l) { return l.purpose == purpose; });
}

RingNode::Lookup* RingNode::find_lookup(LookupId id) {
  for (auto& l : lookups_)
    if (l.id == id) return &l;
  return nullptr;
}

bool RingNode::lookup_knows_dead(const Lookup& l, const NodeId& id) const {
  return std::find(l.dead.begin(), l.dead.end(), id) != l.dead.end();
}

void RingNode::lookup_step(TimePoint now, LookupId id) {
  Lookup* l = find_lookup(id);
  if (!l) return;
  if (++l->steps > kLookupStepsMax || now >= l->deadline) {
    lookup_finish(now, id, std::nullopt);
    return;
  }
  if (l->target.id == self_.id) {
    if (!is_member()) {  // a joiner has nothing to answer with
      lookup_fallback(now, id);
      return;
    }
    FindAnswer a;
    answer_find(l->key, a);
    lookup_reply(now, id, self_, a.code, a.predecessor,
                 std::span<const NodeRef>(a.nodes.begin(), a.nodes.end()));
    return;
  }
  if (l->target.address == self_.address) {
    // An earlier incarnation of this node (a restart with another id): gone, and its address
    // would only reach us.
    lookup_target_dead(now, id);
    return;
  }
  RingMessage& m = out_message(MessageKind::find_step, next_txid());
  m.key = l->key;
  ++l->hops;
  const bool by_address = l->via_seed && l->target == l->via;
  if (!send_request(now, l->target, m, Purpose::lookup, id, by_address))
    lookup_finish(now, id, std::nullopt);
}

void RingNode::lookup_reply(TimePoint now, LookupId id, const NodeRef& from, FindCode code,
                            const std::optional<NodeRef>& pred, std::span<const NodeRef> nodes) {
  Lookup* l = find_lookup(id);
  if (!l) return;
  const NodeId key = l->key;
  auto usable = [&](const NodeRef& n) {
    return !lookup_knows_dead(*l, n.id) &&
           !(l->purpose == LookupPurpose::join && n.id == key);
  };

  if (l->purpose == LookupPurpose::join) {
    if (l->confirming) {
      join_confirmed(now, id, from, pred, pred && usable(*pred));
      return;
    }
    if (code == FindCode::successor) {
      // Zave 2017 join: the node whose successor interval holds us is our predecessor, and
      // its whole successor list becomes ours.
      std::vector<NodeRef> list(nodes.begin(), nodes.end());
      if (state_ == State::joining && !probes_.empty() && !list.empty() &&
          list.front().id != from.id && usable(list.front())) {
        // A probe is scored by the gap it falls into, and a node that joined there moments
        // ago is known to the gap's upper end (it rectified at its first stabilize) before
        // its predecessor learns of it (within half a period). Asked first, so that joiners
        // started together do not all pick the middle of the same gap.
        l->confirming = true;
        l->join_pred = from;
        l->join_list = std::move(list);
        l->target = l->join_list.front();
        lookup_step(now, id);
        return;
      }
      std::erase_if(lookups_, [&](const Lookup& x) { return x.id == id; });
      join_found(now, key, from, std::move(list));
      return;
    }
    if (code == FindCode::self_owner) {
      if (pred && usable(*pred) && pred->id != from.id) {
        l->target = *pred;
        lookup_step(now, id);
        return;
      }
      std::erase_if(lookups_, [&](const Lookup& x) { return x.id == id; });
      join_found(now, key, std::nullopt, std::vector<NodeRef>{from});
      return;
    }
  } else if (l->verifying) {
    // `from` is a candidate owner. It is the owner unless it knows a live predecessor in
    // [key, from): a node that joined in between. Then that one is asked in turn.
    if (code != FindCode::self_owner && pred && pred->id != from.id &&
        (pred->id == key || in_open(pred->id, key, from.id)) && usable(*pred) &&
        !is_suspect(pred->id)) {
      l->fallback = from;
      l->alternates.clear();
      l->target = *pred;
      lookup_step(now, id);
      return;
    }
    lookup_finish(now, id, from);
    return;
  }

  switch (code) {
    case FindCode::self_owner:
      lookup_finish(now, id, from);
      return;
    case FindCode::successor: {
      l->best_pred = from;
      l->verifying = true;
      l->fallback.reset();
      l->alternates.clear();
      for (const auto& n : nodes)
        if (usable(n)) l->alternates.push_back(n);
      if (l->alternates.empty()) {
        lookup_fallback(now, id);
        return;
      }
      l->target = l->alternates.front();
      l->alternates.erase(l->alternates.begin());
      if (l->target.id == from.id) {
        lookup_finish(now, id, from);
        return;
      }
      lookup_step(now, id);
      return;
    }
    case FindCode::next: {
      // Progress rule: a next hop must lie strictly between the responder and the key. The
      // other nodes are the responder's guesses of the owner, kept for when all hops fail.
      l->alternates.clear();
      l->owner_guesses.clear();
      for (const auto& n : nodes) {
        if (!usable(n) || n.id == from.id) continue;
        (in_open(n.id, from.id, key) ? l->alternates : l->owner_guesses).push_back(n);
      }
      if (l->alternates.empty()) {
        lookup_fallback(now, id);
        return;
      }
      l->best_pred = from;
      l->target = l->alternates.front();
      l->alternates.erase(l->alternates.begin());
      lookup_step(now, id);
      return;
    }
  }
}

void RingNode::join_confirmed(TimePoint now, LookupId id, const NodeRef& from,
                              const std::optional<NodeRef>& pred, bool pred_usable) {
  Lookup* l = find_lookup(id);
  if (!l) return;
  const NodeId key = l->key;
  // The upper end's predecessor (every answer carries it), when it lies inside the gap,
  // joined there since the lower end named the gap: it splits the gap, and the key is in one
  // of the two halves. In the upper half the gap is settled (the upper end knows its
  // predecessor); the lower half may hold more newcomers, so its upper end is asked in turn.
  if (pred && pred_usable && l->join_pred && in_open(pred->id, l->join_pred->id, from.id)) {
    if (in_half_open(key, pred->id, from.id)) {
      l->join_pred = *pred;
      l->join_list = {from};
    } else if (++l->confirms < kJoinConfirmsMax) {
      l->join_list = {*pred, from};
      l->target = *pred;
      lookup_step(now, id);
      return;
    } else {
      l->join_list = {*pred, from};
    }
  }
  settle_join_probe(now, id);
}

void RingNode::settle_join_probe(TimePoint now, LookupId id) {
  Lookup* l = find_lookup(id);
  if (!l) return;
  std::optional<NodeRef> gap_pred = std::move(l->join_pred);
  std::vector<NodeRef> list = std::move(l->join_list);
  const NodeId key = l->key;
  std::erase_if(lookups_, [&](const Lookup& x) { return x.id == id; });
  join_found(now, key, gap_pred, std::move(list));
}

void RingNode::lookup_target_dead(TimePoint now, LookupId id) {
  Lookup* l = find_lookup(id);
  if (!l) return;
  if (l->confirming) {
    settle_join_probe(now, id);  // the upper end did not answer: the gap as last named
    return;
  }
  if (l->dead.size() < kLookupDeadMax) l->dead.push_back(l->target.id);
  if (l->verifying && l->fallback) {
    // The node that redirected us owns the key if the one it named in between is dead.
    const NodeRef owner = *l->fallback;
    lookup_finish(now, id, owner);
    return;
  }
  lookup_fallback(now, id);
}

void RingNode::lookup_fallback(TimePoint now, LookupId id) {
  Lookup* l = find_lookup(id);
  if (!l) return;
  while (!l->alternates.empty()) {
    NodeRef n = l->alternates.front();
    l->alternates.erase(l->alternates.begin());
    if (!lookup_knows_dead(*l, n.id) && !is_suspect(n.id)) {
      l->target = n;
      lookup_step(now, id);
      return;
    }
  }
  if (!l->verifying && !l->owner_guesses.empty()) {
    // Every preceding candidate of the last responder is dead: continue routing from its
    // owner guesses (a live node anywhere makes progress; verifying a far guess would walk
    // back one predecessor at a time).
    l->fallback.reset();
    l->best_pred.reset();
    l->alternates = std::move(l->owner_guesses);
    l->owner_guesses.clear();
    l->target = l->alternates.front();
    l->alternates.erase(l->alternates.begin());
    lookup_step(now, id);
    return;
  }
  if (l->restartable && is_member()) {
    l->restartable = false;
    l->verifying = false;
    l->fallback.reset();
    l->best_pred.reset();
    l->target = self_;
    lookup_step(now, id);
    return;
  }
  if (!l->verifying && is_member()) {
    // Fall back on our own table: the closest preceding node beyond the last good hop.
    FindAnswer a;
    answer_find(l->key, a);
    if (a.code == FindCode::next) {
      for (const auto& n : a.nodes) {
        if (lookup_knows_dead(*l, n.id)) continue;
        if (l->best_pred && !in_open(n.id, l->best_pred->id, l->key)) continue;
        l->target = n;
        lookup_step(now, id);
        return;
      }
    }
  }
  lookup_finish(now, id, std::nullopt);
}

void RingNode::lookup_finish(TimePoint now, LookupId id, std::optional<NodeRef> owner) {
  auto it = std::find_if(lookups_.begin(), lookups_.end(), [&](const Lookup& l) { return l.id == id; });
  if (it == lookups_.end()) return;
  Lookup l = std::move(*it);
  lookups_.erase(it);
  std::erase_if(pending_, [&](const Pending& p) { return p.purpose == Purpose::lookup && p.lookup == id; });
  if (!owner) ++counters_.lookups_failed;
  switch (l.purpose) {
    case LookupPurpose::user:
      emit(ring_event::LookupCompleted{l.id, l.key, owner, l.hops});
      break;
    case LookupPurpose::finger:
      finger_result(l.finger_index, owner);
      break;
    case LookupPurpose::join:
      if (!probes_.empty()) {
        join_probe_failed(now, l.key);  // the others may still answer
        break;
      }
      // No answer through this seed: try the next one a period later.
      if (state_ == State::joining) join_retry_at_ = now + config_.stabilize_period;
      break;
    case LookupPurpose::seed_check:
      // DESIGN 4: the ring reached through a seed disagrees about who owns our id: we are on
      // another ring (partition healed) or in a loop. Rejoin through that seed.
      if (owner && owner->id != self_.id && state_ == State::member &&
          (succs_.empty() || owner->id != succs_[0].id)) {
        ++counters_.rejoins;
        begin_lookup(now, self_.id, LookupPurpose::join, l.via, false, 0, l.via);
      }
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// RTT (RFC 6298)

void RingNode::rtt_sample(TimePoint now, const NodeId& id, Duration rtt) {
  const std::uint64_t key = id.prefix64();
  for (auto& e : rtt_) {
    if (e.id_prefix == key) {
      const Duration err = e.srtt > rtt ? e.srtt - rtt : rtt - e.srtt;
      e.rttvar = (3 * e.rttvar + err) / 4;
      e.srtt = (7 * e.srtt + rtt) / 8;
      e.last_used = now;
      return;
    }
  }
  RttEntry fresh{key, rtt, rtt / 2, now};
  if (rtt_.size() < kRttEntriesMax) {
    rtt_.push_back(fresh);
  } else {
    *std::min_element(rtt_.begin(), rtt_.end(), [](const RttEntry& a, const RttEntry& b) {
      return a.last_used < b.last_used;
    }) = fresh;
  }
}

Duration RingNode::rto(const NodeId& id) const {
  const std::uint64_t key = id.prefix64();
  for (const auto& e : rtt_)
    if (e.id_prefix == key)
      return std::clamp<Duration>(e.srtt + 4 * e.rttvar, config_.rto_min, config_.rto_max);
  return config_.rto_initial;
}

}  // namespace ringtracker::dht
