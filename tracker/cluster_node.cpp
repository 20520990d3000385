#include "tracker/cluster_node.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "common/buffer_pool.hpp"
#include "common/radix_sort.hpp"

namespace ringtracker::tracker {

namespace {

dht::NodeId key_of(const InfoHash& h) { return dht::NodeId(h); }

std::string pooled_copy(std::string_view bytes) {
  std::string copy = BufferPool::local().take();
  copy.assign(bytes);
  return copy;
}

bool same_node(const dht::NodeRef& a, const dht::NodeRef& b) { return a.id == b.id; }

}  // namespace

// ---- counters ------------------------------------------------------------------------------

#define RT_CLUSTER_COUNTERS(X)                                                                   \
  X(announces_local)     /* answered from the owned store, here */                               \
  X(scrapes_local)       /* info-hashes scraped from the owned store, here */                    \
  X(announces_forwarded) /* sent to a remote owner */                                            \
  X(scrapes_forwarded)   /* info-hashes sent to a remote owner */                                \
  X(forward_messages)    /* forward batches sent */                                              \
  X(bundled_messages)    /* payloads that shared a datagram with others for the same node */     \
  X(answered_remote)     /* forwarded requests answered by their owner */                        \
  X(remote_failures)     /* forwarded requests the owner refused (failure reason) */             \
  X(timeouts)            /* requests failed at their deadline */                                 \
  X(attempt_timeouts)    /* forwards unanswered in their attempt timeout: looked up again */     \
  X(retry_waits)         /* failed lookups and repeated "not mine" waited out, then retried */   \
  X(rerouted)            /* requests in flight moved off a node the ring dropped */              \
  X(owner_cache_dropped) /* owner arcs of suspected or dropped nodes */                          \
  X(not_owner_retries)   /* "not mine" answers followed by a new lookup */                       \
  X(not_owner_failures)  /* "not mine" until the deadline: client told to retry */               \
  X(not_owner_sent)      /* forwarded requests this node refused as not owner */                 \
  X(served_for_others)   /* forwarded requests applied here as owner */                          \
  X(owner_cache_hits)                                                                            \
  X(owner_cache_misses)                                                                          \
  X(owner_guesses) /* cache misses routed to the owner the successor list names, no lookup */    \
  X(lookups_started)                                                                             \
  X(lookups_failed)                                                                              \
  X(busy_refusals)         /* pending_max reached */                                             \
  X(stale_replies)         /* replies to requests already finished or from another node */       \
  X(replicate_messages)    /* replicate payloads sent (all purposes) */                          \
  X(replicated_swarms)     /* swarm entries sent (x targets) */                                  \
  X(replica_swarms_merged) /* swarm entries received and merged */                               \
  X(replica_gone_applied)  /* peers removed by a received delta */                               \
  X(delta_early_flushes)   /* delta flushed before its period: delta_peers_max reached */        \
  X(delta_acks)            /* delta payloads a replica confirmed */                              \
  X(delta_resends)         /* delta payloads sent again after their attempt timeout */           \
  X(delta_given_up)        /* delta payloads never confirmed (left to the sync) */               \
  X(delta_untracked)       /* delta payloads sent over delta_unacked_max, not tracked */         \
  X(sync_passes)                                                                                 \
  X(promoted)        /* replica -> owned */                                                      \
  X(demoted)         /* owned -> replica (range given to a new predecessor) */                   \
  X(replica_dropped) /* replicas not refreshed within replica_grace */                           \
  X(pulls_started)                                                                               \
  X(pulls_completed)                                                                             \
  X(pull_timeouts)                                                                               \
  X(pulls_served)                                                                                \
  X(range_pulls)    /* (pred, self] asked back from the replicas after a range change or sync */ \
  X(gated_requests) /* requests held until the join pull finished */                             \
  X(handoffs_sent)                                                                               \
  X(handoffs_received)                                                                           \
  X(handoff_acks)                                                                                \
  X(outbox_dropped)                                                                              \
  X(malformed)   /* undecodable payloads */                                                      \
  X(bad_replies) /* decodable replies that do not match their request */

struct ClusterNode::Counters {
#define RT_FIELD(name) std::uint64_t name = 0;
  RT_CLUSTER_COUNTERS(RT_FIELD)
#undef RT_FIELD
};

std::vector<std::pair<std::string_view, std::uint64_t>> ClusterNode::counters() const {
  std::vector<std::pair<std::string_view, std::uint64_t>> out;
#define RT_ROW(name) out.emplace_back(#name, counters_->name);
  RT_CLUSTER_COUNTERS(RT_ROW)
#undef RT_ROW
  return out;
}

std::uint64_t ClusterNode::counter(std::string_view name) const {
  for (const auto& [n, v] : counters()) {
    if (n == name) return v;
  }
  RT_ASSERT(false && "unknown cluster counter");
  return 0;
}

// ---- RingNodeView --------------------------------------------------------------------------

Ownership RingNodeView::ownership(const dht::NodeId& key) const {
  if (!node_.is_member()) return Ownership::unknown;
  if (node_.successors().empty()) return Ownership::mine;
  const auto& pred = node_.predecessor();
  if (!pred) return Ownership::unknown;
  return dht::in_half_open(key, pred->id, node_.self().id) ? Ownership::mine : Ownership::not_mine;
}

std::vector<dht::NodeRef> RingNodeView::successors() const {
  if (!node_.is_member()) return {};
  auto s = node_.successors();
  return {s.begin(), s.end()};
}

bool RingNodeView::alone() const { return node_.is_member() && node_.successors().empty(); }

// ---- construction --------------------------------------------------------------------------

ClusterNode::ClusterNode(const ClusterConfig& config, RingView& ring, TrackerService& service,
                         SwarmStore& replica_store)
    : config_(config),
      ring_(ring),
      service_(service),
      replica_(replica_store),
      keep_peer_ids_(service.store().keeps_peer_ids() || replica_store.keeps_peer_ids()),
      items_(std::max<std::size_t>(config.pending_max, 1)),
      lookup_waiters_(0, HashOf{KeyedHash20(config.hash_seed)}),
      replica_seen_(0, HashOf{KeyedHash20(config.hash_seed)}),
      counters_(std::make_unique<Counters>()) {
  RT_ASSERT(config_.replicas >= 1);
  RT_ASSERT(config_.outbox_max >= 2);
  RT_ASSERT(config_.attempt_timeout_min > Duration::zero());
  RT_ASSERT(config_.attempt_timeout_min <= config_.attempt_timeout_max);
  RT_ASSERT(config_.retry_backoff > Duration::zero());
}

ClusterNode::~ClusterNode() = default;

std::size_t ClusterNode::pending_count() const { return items_.size() + gate_waiters_.size(); }

Ownership ClusterNode::ownership(const InfoHash& h) const { return ring_.ownership(key_of(h)); }

// ---- requests from the front ends ----------------------------------------------------------

void ClusterNode::announce(const AnnounceRequest& req, TimePoint now, AnnounceDone on_done) {
  last_now_ = now;
  const bool mine = ownership(req.info_hash) == Ownership::mine;
  if (pending_count() >= config_.pending_max && (!mine || gated(req.info_hash))) {
    ++counters_->busy_refusals;
    on_done(Unexpected(std::string(kBusyReason)));
    return;
  }
  if (mine) {
    if (gated(req.info_hash)) {
      ++counters_->gated_requests;
      gate_waiters_.push_back([this, req, done = std::move(on_done)](TimePoint t) {
        ++counters_->announces_local;
        done(apply_announce(req, t));
      });
      return;
    }
    ++counters_->announces_local;
    on_done(apply_announce(req, now));
    return;
  }
  Item item;
  item.key = req.info_hash;
  item.is_announce = true;
  item.request = req;
  item.announce_done = std::move(on_done);
  auto txid = add_item(std::move(item), now);
  route_remote(now, txid, true);
}

void ClusterNode::scrape(const ScrapeRequest& req, TimePoint now, ScrapeDone on_done) {
  last_now_ = now;
  auto job = std::make_shared<ScrapeJob>();
  job->done = std::move(on_done);
  job->response.files.resize(req.info_hashes.size());
  std::vector<std::size_t> remote;
  for (std::size_t i = 0; i < req.info_hashes.size(); ++i) {
    const auto& h = req.info_hashes[i];
    if (ownership(h) == Ownership::mine && !gated(h)) {
      ++counters_->scrapes_local;
      job->response.files[i] = apply_scrape(h, now);
    } else {
      remote.push_back(i);
    }
  }
  if (remote.empty()) {
    job->finished = true;
    job->done(std::move(job->response));
    return;
  }
  if (pending_count() + remote.size() > config_.pending_max) {
    ++counters_->busy_refusals;
    job->finished = true;
    job->done(Unexpected(std::string(kBusyReason)));
    return;
  }
  job->parts_left = remote.size();
  std::vector<std::uint32_t> txids;
  for (auto i : remote) {
    const auto& h = req.info_hashes[i];
    if (ownership(h) == Ownership::mine) {  // gated: answered when the pull is done
      ++counters_->gated_requests;
      gate_waiters_.push_back([this, job, i, h](TimePoint t) {
        if (job->finished) return;
        ++counters_->scrapes_local;
        job->response.files[i] = apply_scrape(h, t);
        if (--job->parts_left == 0) {
          job->finished = true;
          job->done(std::move(job->response));
        }
      });
      continue;
    }
    Item item;
    item.key = h;
    item.is_announce = false;
    item.job = job;
    item.index = i;
    txids.push_back(add_item(std::move(item), now));
  }
  // Route after all items exist: a synchronous answer must not finish the job early.
  for (auto txid : txids) {
    if (items_.find(txid) != nullptr) route_remote(now, txid, true);
  }
}

namespace {
/// Stale timer entries tolerated beyond the live ones before a compaction.
constexpr std::size_t kStaleTimesSlack = 1024;
constexpr auto kLaterFirst = [](const auto& a, const auto& b) { return a.first > b.first; };
}  // namespace

void ClusterNode::ItemTimes::push(TimePoint at, std::uint32_t txid) {
  heap_.emplace_back(at, txid);
  std::push_heap(heap_.begin(), heap_.end(), kLaterFirst);
}

void ClusterNode::ItemTimes::pop() {
  std::pop_heap(heap_.begin(), heap_.end(), kLaterFirst);
  heap_.pop_back();
}

template <class Live>
void ClusterNode::ItemTimes::compact_if_stale(std::size_t live_items, Live live) {
  if (heap_.size() <= 2 * live_items + kStaleTimesSlack) return;
  std::erase_if(heap_, [&](const auto& e) { return !live(e.first, e.second); });
  std::make_heap(heap_.begin(), heap_.end(), kLaterFirst);
}

std::uint32_t ClusterNode::add_item(Item item, TimePoint now) {
  item.deadline = now + config_.request_deadline;
  const TimePoint deadline = item.deadline;
  const std::uint32_t txid = items_.insert(std::move(item));
  deadlines_.push(deadline, txid);
  deadlines_.compact_if_stale(items_.size(), [&](TimePoint at, std::uint32_t id) {
    const Item* it = items_.find(id);
    return it != nullptr && it->deadline == at;
  });
  return txid;
}

ClusterNode::Arcs::iterator ClusterNode::arc_of(const dht::NodeId& key) {
  if (arcs_.empty()) return arcs_.end();
  auto it = arcs_.lower_bound(key);           // the first owner at or after the key...
  if (it == arcs_.end()) it = arcs_.begin();  // ...going round the circle
  return dht::in_half_open(key, it->second.lower, it->first) ? it : arcs_.end();
}

std::optional<dht::NodeRef> ClusterNode::cached_owner(const InfoHash& h, TimePoint now) {
  auto it = arc_of(key_of(h));
  if (it == arcs_.end()) return std::nullopt;
  const dht::NodeRef& owner = it->second.owner;
  // Checked lazily, per use: a node this ring window no longer lists has crashed or left,
  // whatever the entry's age (the ring usually notices long before the TTL ends).
  if (is_suspect(owner.id, now) || ring_dropped(owner.id)) {
    ++counters_->owner_cache_dropped;
    arcs_.erase(it);
    return std::nullopt;
  }
  // An expired arc stays until a lookup replaces it: handle_lookup() compares the two.
  if (it->second.expires <= now) return std::nullopt;
  return owner;
}

std::optional<ClusterNode::Arc> ClusterNode::successor_arc(const InfoHash& h, TimePoint now) const {
  // succ[i] owns (succ[i-1], succ[i]] as far as this node knows: the exact answer a lookup
  // would verify, without the round trips. A node that joined in between answers "not mine"
  // and the request is looked up.
  const dht::NodeId key = key_of(h);
  dht::NodeId from = ring_.self().id;
  for (const auto& s : window_succs_) {
    if (dht::in_half_open(key, from, s.id)) {
      if (is_suspect(s.id, now)) return std::nullopt;
      return Arc{from, s, now + config_.owner_cache_ttl};
    }
    from = s.id;
  }
  return std::nullopt;
}

void ClusterNode::remember_arc(const dht::NodeId& lower, const dht::NodeRef& owner, TimePoint now) {
  if (owner.id == lower) return;  // names no key
  auto same = arcs_.find(owner.id);
  dht::NodeId from = lower;
  if (same != arcs_.end() && same->second.expires > now &&
      same->second.owner.address == owner.address &&
      dht::NodeId::distance(same->second.lower, owner.id) > dht::NodeId::distance(lower, owner.id))
    from = same->second.lower;  // both say no node lies in their arc: keep the wider one
  // Owners inside (from, owner) contradict the new arc (no node lies there): gone or stale.
  for (auto it = arcs_.upper_bound(from); !arcs_.empty();) {
    if (it == arcs_.end()) it = arcs_.begin();
    if (!dht::in_open(it->first, from, owner.id)) break;
    it = arcs_.erase(it);
  }
  if (arcs_.size() >= config_.owner_cache_max) {
    // Drop expired arcs first; if none, forget everything (arcs are only hints).
    std::erase_if(arcs_, [&](const auto& e) { return e.second.expires <= now; });
    if (arcs_.size() >= config_.owner_cache_max) arcs_.clear();
  }
  arcs_[owner.id] = Arc{from, owner, now + config_.owner_cache_ttl};
  // The next owner's arc cannot reach past this owner any more.
  auto next = arcs_.upper_bound(owner.id);
  if (next == arcs_.end()) next = arcs_.begin();
  if (next->first != owner.id && dht::in_open(owner.id, next->second.lower, next->first))
    next->second.lower = owner.id;
}

bool ClusterNode::ring_dropped(const dht::NodeId& id) const {
  const dht::NodeId& self = ring_.self().id;
  if (id == self) return false;
  if (window_alone_) return true;
  // Chord keeps (predecessor, self) empty and lists the next r members exactly: a node inside
  // that window the ring does not list is not a member. A node beyond the last successor may
  // be anything: no verdict.
  if (window_pred_ && dht::in_open(id, window_pred_->id, self)) return true;
  if (window_succs_.empty() || !dht::in_half_open(id, self, window_succs_.back().id)) return false;
  return std::none_of(window_succs_.begin(), window_succs_.end(),
                      [&](const dht::NodeRef& n) { return n.id == id; });
}

void ClusterNode::forget_owner(dht::NodeId id) {
  counters_->owner_cache_dropped += arcs_.erase(id);
}

Duration ClusterNode::attempt_timeout(const dht::NodeRef& to) const {
  return std::clamp(ring_.rto_for(to.id), config_.attempt_timeout_min, config_.attempt_timeout_max);
}

void ClusterNode::set_wake(std::uint32_t txid, Item& item, TimePoint at) {
  item.wake = at;
  if (at == TimePoint::max()) return;
  wakes_.push(at, txid);
  wakes_.compact_if_stale(items_.size(), [&](TimePoint when, std::uint32_t id) {
    Item* it = items_.find(id);
    return it != nullptr && it->wake == when;
  });
}

void ClusterNode::erase_item(std::uint32_t txid) {
  items_.erase(txid);  // its timer entries are skipped when they come up
}

bool ClusterNode::retry_later(TimePoint now, std::uint32_t txid, Duration wait,
                              std::string_view reason) {
  Item* it = items_.find(txid);
  if (!it) return true;
  Item& item = *it;
  item.reason = reason;
  item.sent_to.reset();
  // Failing now rather than at the deadline: the client hears the reason as early as possible.
  if (item.attempts >= kAttemptsMax || now + wait >= item.deadline) {
    fail_item(txid, reason);
    return false;
  }
  ++counters_->retry_waits;
  set_wake(txid, item, now + wait);
  return true;
}

void ClusterNode::on_attempt_timeout(TimePoint now, std::uint32_t txid) {
  Item* it = items_.find(txid);
  if (!it || !it->sent_to) return;
  Item& item = *it;
  ++counters_->attempt_timeouts;
  // Forgets every cache entry pointing at the silent node, not only this key's: it owns a range.
  suspect(item.sent_to->id, now);
  item.sent_to.reset();
  item.reason = kTimeoutReason;
  if (item.attempts >= kAttemptsMax) {
    ++counters_->timeouts;
    fail_item(txid, kTimeoutReason);
    return;
  }
  // A fresh lookup: the ring verifies the owner it names, so a dead one is skipped as soon as
  // the lookup finds it silent (or the ring has dropped it already).
  route_remote(now, txid, false);
}

void ClusterNode::route_remote(TimePoint now, std::uint32_t txid, bool use_cache) {
  Item* it = items_.find(txid);
  if (!it) return;
  const InfoHash key = it->key;
  ++it->attempts;
  it->sent_to.reset();
  set_wake(txid, *it, TimePoint::max());
  if (ownership(key) == Ownership::mine) {
    // A retry for a key this node took over meanwhile (its predecessor, the old owner, died).
    serve_item_here(now, txid);
    return;
  }
  if (use_cache) {
    if (auto owner = cached_owner(key, now)) {
      ++counters_->owner_cache_hits;
      on_owner(now, txid, *owner);
      return;
    }
    ++counters_->owner_cache_misses;
    if (auto arc = successor_arc(key, now)) {
      ++counters_->owner_guesses;
      remember_arc(arc->lower, arc->owner, now);
      on_owner(now, txid, arc->owner);
      return;
    }
  }
  auto w = lookup_waiters_.find(key);
  if (w != lookup_waiters_.end()) {
    w->second.second.push_back(txid);
    return;
  }
  ++counters_->lookups_started;
  // Register the waiter before starting: the ring may report the result from inside the call.
  auto& slot = lookup_waiters_[key];
  slot.second.push_back(txid);
  const dht::LookupId id = ring_.start_lookup(now, key_of(key));
  slot.first = id;
  lookups_[id] = key;
}

void ClusterNode::handle_lookup(TimePoint now, dht::LookupId id,
                                const std::optional<dht::NodeRef>& owner) {
  last_now_ = now;
  auto l = lookups_.find(id);
  if (l == lookups_.end()) return;
  const InfoHash key = l->second;
  lookups_.erase(l);
  auto w = lookup_waiters_.find(key);
  if (w == lookup_waiters_.end() || w->second.first != id) return;
  auto txids = std::move(w->second.second);
  lookup_waiters_.erase(w);
  if (!owner) {
    // Lookups fail while the ring repairs (timeouts on a dead hop): ask again shortly.
    ++counters_->lookups_failed;
    for (auto txid : txids) retry_later(now, txid, config_.retry_backoff, kNoOwnerReason);
    return;
  }
  // The ring heard from the owner it names during the lookup: not silent (any more).
  unsuspect(owner->id);
  auto old = arc_of(key_of(key));
  if (old != arcs_.end()) {
    const dht::NodeId was = old->second.owner.id;  // a copy: suspect() erases the entry
    // The cached owner lies between the key and the new owner, yet the ring passed it over:
    // it is no longer a member (a node that joined before the key would be named instead).
    if (was != owner->id && (was == key_of(key) || dht::in_open(was, key_of(key), owner->id)))
      suspect(was, now);
  }
  // The owner of a key k is the first node at or after k: no node lies in [k, owner).
  if (!same_node(*owner, ring_.self()) && !ring_dropped(owner->id))
    remember_arc(dht::NodeId::distance(dht::NodeId::pow2(0), key_of(key)), *owner, now);
  for (auto txid : txids) on_owner(now, txid, *owner);
}

void ClusterNode::on_owner(TimePoint now, std::uint32_t txid, const dht::NodeRef& owner) {
  if (items_.find(txid) == nullptr) return;
  if (same_node(owner, ring_.self())) {
    // The ring says this node owns the key although its own view did not (predecessor unknown,
    // or just changed): serve it here, like a forwarded request.
    serve_item_here(now, txid);
    return;
  }
  enqueue_forward(now, owner, txid);
}

void ClusterNode::serve_item_here(TimePoint now, std::uint32_t txid) {
  Item* it = items_.find(txid);
  if (!it) return;
  if (gated(it->key)) {
    ++counters_->gated_requests;
    gate_waiters_.push_back([this, txid](TimePoint t) { serve_item_here(t, txid); });
    return;
  }
  if (it->is_announce) {
    ++counters_->announces_local;
    auto r = apply_announce(it->request, now);
    complete_announce(txid, std::move(r));
  } else {
    ++counters_->scrapes_local;
    auto e = apply_scrape(it->key, now);
    complete_scrape(txid, e);
  }
}

void ClusterNode::enqueue_forward(TimePoint now, const dht::NodeRef& to, std::uint32_t txid) {
  Item* it = items_.find(txid);
  if (!it) return;
  Item& item = *it;
  item.sent_to = to;
  set_wake(txid, item, now + attempt_timeout(to));
  auto open = std::find_if(open_forwards_.begin(), open_forwards_.end(),
                           [&](const OpenForward& o) { return same_node(o.to, to); });
  if (open == open_forwards_.end()) {
    open_forwards_.push_back(OpenForward{to, ForwardBatchWriter(forward_batch_bytes_), now});
    open = std::prev(open_forwards_.end());
  }
  // Encoded at once into the batch: nothing of the request is kept for it.
  if (item.is_announce) {
    // BEP 23 compact answers carry no peer ids; the stores keep none either.
    open->batch.add(ForwardedAnnounce{txid, item.request, false});
    ++counters_->announces_forwarded;
  } else {
    open->batch.add(ForwardedScrape{txid, {item.key}});
    ++counters_->scrapes_forwarded;
  }
  if (open->batch.bytes() >= ClusterLimits::kBatchBytesTarget ||
      open->batch.items() >= ClusterLimits::kBatchItemsMax) {
    send_forwards(*open);
    open_forwards_.erase(open);
  }
}

void ClusterNode::send_forwards(OpenForward& o) {
  ++counters_->forward_messages;
  std::string payload = BufferPool::local().take();
  o.batch.finish(payload);
  RT_ASSERT(payload.size() <= ClusterLimits::kPayloadBytesMax);
  forward_batch_bytes_ = o.batch.room();
  send_payload(o.to, std::move(payload));
}

void ClusterNode::complete_announce(std::uint32_t txid,
                                    Expected<AnnounceResponse, std::string>&& r) {
  Item* it = items_.find(txid);
  if (!it) return;
  auto done = std::move(it->announce_done);
  erase_item(txid);
  done(std::move(r));
}

void ClusterNode::complete_scrape(std::uint32_t txid, Expected<ScrapeEntry, std::string> r) {
  Item* it = items_.find(txid);
  if (!it) return;
  auto job = std::move(it->job);
  const std::size_t index = it->index;
  erase_item(txid);
  if (job->finished) return;
  if (!r) {
    // Never a wrong zero: one missing part fails the whole scrape.
    job->finished = true;
    job->done(Unexpected(r.error()));
    return;
  }
  job->response.files[index] = *r;
  if (--job->parts_left == 0) {
    job->finished = true;
    job->done(std::move(job->response));
  }
}

void ClusterNode::fail_item(std::uint32_t txid, std::string_view reason) {
  Item* it = items_.find(txid);
  if (!it) return;
  if (it->is_announce) {
    complete_announce(txid, Unexpected(std::string(reason)));
  } else {
    complete_scrape(txid, Unexpected(std::string(reason)));
  }
}

void ClusterNode::suspect(dht::NodeId id, TimePoint now) {
  // The cache is scanned once per suspicion, not per timed-out request: a dead owner with many
  // requests in flight costs one pass.
  bool fresh = true;
  auto s = std::find_if(suspects_.begin(), suspects_.end(),
                        [&](const auto& e) { return e.first == id; });
  if (s != suspects_.end()) {
    fresh = s->second <= now;
    s->second = now + kSuspectFor;
  } else {
    if (suspects_.size() >= kSuspectsMax) {
      auto oldest =
          std::min_element(suspects_.begin(), suspects_.end(),
                           [](const auto& a, const auto& b) { return a.second < b.second; });
      suspects_.erase(oldest);
    }
    suspects_.emplace_back(id, now + kSuspectFor);
  }
  if (fresh) forget_owner(id);
}

void ClusterNode::unsuspect(const dht::NodeId& id) {
  std::erase_if(suspects_, [&](const auto& e) { return e.first == id; });
}

bool ClusterNode::is_suspect(const dht::NodeId& id, TimePoint now) const {
  return std::any_of(suspects_.begin(), suspects_.end(),
                     [&](const auto& s) { return s.first == id && s.second > now; });
}

// ---- serving as owner ----------------------------------------------------------------------

bool ClusterNode::gated(const InfoHash& h) const {
  return pull_.active && dht::in_half_open(key_of(h), pull_.from, pull_.to);
}

void ClusterNode::ensure_owned(const InfoHash& h, TimePoint now) {
  // Promotion is also lazy: a key served here whose swarm still sits in the replica store (the
  // predecessor just died, the batch promotion has not reached it) is moved before use. Once a
  // scan of the replica store found every key of the range and promoted them, and nothing of
  // the range can have landed there since, there is nothing to look up (the replica store's
  // index is large and cold: a cache miss per announce).
  // The range is read from the ring itself: it may have moved before this node was told.
  if (replica_settled_ && ownership(h) == Ownership::mine && range_view() == settled_view_) return;
  promote(h, now);
}

ClusterNode::RangeView ClusterNode::range_view() const {
  const auto pred = ring_.predecessor();
  return RangeView{ring_.alone(), pred ? std::optional<dht::NodeId>(pred->id) : std::nullopt};
}

void ClusterNode::unsettle_replicas() {
  replica_settled_ = false;
  ++range_epoch_;
}

void ClusterNode::settle_replicas_if(std::uint64_t scanned_epoch, const RangeView& scanned) {
  if (scanned_epoch != range_epoch_ || !moves_.empty() || scanned != range_view()) return;
  replica_settled_ = true;
  settled_view_ = scanned;
}

void ClusterNode::promote(const InfoHash& h, TimePoint now) {
  auto snap = replica_.export_swarm(h, now);
  if (!snap) return;
  if (has_tombstones(h)) drop_stopped(*snap, now);
  service_.store().merge_swarm(*snap, now);
  replica_.erase_swarm(h);
  replica_seen_.erase(h);
  ++counters_->promoted;
  if (!last_targets_.empty()) {
    // Re-replicate so that r_d copies exist again (one queued transfer collects them all).
    if (transfers_.empty() || transfers_.back().purpose != TransferPurpose::sync ||
        transfers_.back().next != 0 || transfers_.back().targets != last_targets_) {
      Transfer t;
      t.purpose = TransferPurpose::sync;
      t.targets = last_targets_;
      transfers_.push_back(std::move(t));
    }
    transfers_.back().hashes.push_back(h);
  }
}

Expected<AnnounceResponse, std::string> ClusterNode::apply_announce(const AnnounceRequest& req,
                                                                    TimePoint now) {
  return filled<AnnounceResponse>(
      [&](AnnounceResponse& out) { return apply_announce_into(req, now, out); });
}

Expected<void, std::string> ClusterNode::apply_announce_into(const AnnounceRequest& req,
                                                             TimePoint now, AnnounceResponse& out) {
  ensure_owned(req.info_hash, now);
  auto done = service_.apply_announce_into(req, now, out);
  if (done && !req.lookup_only) {
    record_delta(req, out.result.downloaded, now);
    if (req.event == AnnounceEvent::stopped) add_tombstone(req.info_hash, req.peer, now);
  }
  return done;
}

void ClusterNode::add_tombstone(const InfoHash& h, const SocketAddress& peer, TimePoint now) {
  auto forget_oldest = [&] {
    const Tombstone& t = tombstones_.front();
    auto it = tombstones_by_hash_.find(t.h);
    if (it != tombstones_by_hash_.end()) {
      std::erase_if(it->second,
                    [&](const auto& e) { return e.first == t.peer && e.second == t.at; });
      if (it->second.empty()) tombstones_by_hash_.erase(it);
    }
    tombstones_.pop_front();
  };
  while (!tombstones_.empty() && (now - tombstones_.front().at > config_.tombstone_keep ||
                                  tombstones_.size() >= config_.tombstones_max))
    forget_oldest();
  if (config_.tombstones_max == 0) return;
  tombstones_.push_back(Tombstone{h, peer, now});
  tombstones_by_hash_[h].emplace_back(peer, now);
}

void ClusterNode::drop_stopped(SwarmSnapshot& snap, TimePoint now) const {
  auto it = tombstones_by_hash_.find(snap.info_hash);
  if (it == tombstones_by_hash_.end()) return;
  // The copy's last announce, from its remaining life. Both sides count in whole seconds, so a
  // copy up to kTombstoneSlack younger than the stop still counts as older: this node, the
  // owner, already holds any announce that came after the stop itself.
  constexpr Duration kTombstoneSlack = Seconds(2);
  std::erase_if(snap.peers, [&](const SnapshotPeer& p) {
    const TimePoint announced = now - (config_.peer_ttl - p.remaining_ttl);
    return std::any_of(it->second.begin(), it->second.end(), [&](const auto& t) {
      return t.first == p.address && now - t.second <= config_.tombstone_keep &&
             announced <= t.second + kTombstoneSlack;
    });
  });
}

ScrapeEntry ClusterNode::apply_scrape(const InfoHash& h, TimePoint now) {
  ensure_owned(h, now);
  ScrapeRequest one;
  one.info_hashes.push_back(h);
  return service_.apply_scrape(one, now).files.at(0);
}

namespace {
/// Reads the items of one list of `batch` into `scratch` in turn and hands each to `handle`:
/// true after the last, false at a malformed one (the items before it were handled).
template <class Reader, class Item, class Handle>
bool for_each_item(Reader& batch, Item& scratch, Handle&& handle) {
  for (;;) {
    auto more = batch.next(scratch);
    if (!more) return false;
    if (!*more) return true;
    handle(scratch);
  }
}
/// What read_prefetch_batch() read: `items` of them; whether the reader has no more
/// (`ended`), and whether it ended at a malformed item.
struct BatchRead {
  std::size_t items = 0;
  bool ended = false;
  bool malformed = false;
};

/// Reads up to SwarmStore::kPrefetchBatch items of `reader` into `items` (which grows to that
/// many at most and keeps them, buffers and all, for the next call).
template <class Reader, class Item>
BatchRead read_prefetch_batch(Reader& reader, std::vector<Item>& items) {
  BatchRead got;
  while (got.items < SwarmStore::kPrefetchBatch) {
    if (got.items == items.size()) items.emplace_back();
    auto next = reader.next(items[got.items]);
    if (!next || !*next) {
      got.ended = true;
      got.malformed = !next;
      break;
    }
    ++got.items;
  }
  return got;
}
}  // namespace

void ClusterNode::on_forward(TimePoint now, const dht::NodeRef& from, ForwardBatchReader& batch) {
  // Announces are read SwarmStore::kPrefetchBatch at a time into the same objects, and the
  // store is told their swarms before the first is answered: it loads them together instead of
  // one miss after another. A malformed request ends the batch; the requests not answered by
  // then time out at their sender.
  auto& announces = forwarded_announces_scratch_;
  for (;;) {
    const BatchRead got = read_prefetch_batch(batch, announces);
    prefetch_scratch_.clear();
    for (std::size_t i = 0; i < got.items; ++i)
      prefetch_scratch_.push_back(announces[i].request.info_hash);
    service_.store().prefetch(prefetch_scratch_);
    for (std::size_t i = 0; i < got.items; ++i) answer_forwarded_announce(now, from, announces[i]);
    if (got.malformed) {
      ++counters_->malformed;
      return;
    }
    if (got.ended) break;
  }
  if (!for_each_item(batch, forwarded_scrape_scratch_,
                     [&](const ForwardedScrape& sc) { answer_forwarded_scrape(now, from, sc); }))
    ++counters_->malformed;
}

void ClusterNode::answer_forwarded_announce(TimePoint now, const dht::NodeRef& from,
                                            const ForwardedAnnounce& a) {
  // Only a confirmed owner answers (key in (pred, self]). With the predecessor unknown (it just
  // died) this node cannot tell: a replica holder answering then would promote a copy that the
  // real owner never sees again, losing the update. The sender waits and retries.
  if (ownership(a.request.info_hash) != Ownership::mine) {
    ++counters_->not_owner_sent;
    add_reply(from, AnnounceReply{a.txid, ReplyStatus::not_owner, {}, {}});
    return;
  }
  if (gated(a.request.info_hash)) {
    if (gate_waiters_.size() >= config_.pending_max) return;  // the sender times out
    ++counters_->gated_requests;
    gate_waiters_.push_back(
        [this, from, a](TimePoint t) { answer_forwarded_announce(t, from, a); });
    return;
  }
  ++counters_->served_for_others;
  // Answered into one reply object kept for all forwarded announces: no allocation per answer.
  AnnounceReply& reply = owner_reply_scratch_;
  reply.txid = a.txid;
  reply.status = ReplyStatus::ok;
  reply.failure.clear();
  auto done = apply_announce_into(a.request, now, reply.response);
  if (done) {
    if (!a.want_peer_ids && service_.store().keeps_peer_ids()) {
      for (auto& p : reply.response.result.peers) p.peer_id = {};
    }
  } else {
    reply.status = ReplyStatus::failure;
    reply.failure = std::move(done).error();
    reply.response = {};
  }
  add_reply(from, reply);
}

void ClusterNode::answer_forwarded_scrape(TimePoint now, const dht::NodeRef& from,
                                          const ForwardedScrape& s) {
  for (const auto& h : s.info_hashes) {
    if (ownership(h) != Ownership::mine) {  // see answer_forwarded_announce
      ++counters_->not_owner_sent;
      add_reply(from, ScrapeReply{s.txid, ReplyStatus::not_owner, {}, {}});
      return;
    }
  }
  for (const auto& h : s.info_hashes) {
    if (gated(h)) {
      if (gate_waiters_.size() >= config_.pending_max) return;
      ++counters_->gated_requests;
      gate_waiters_.push_back(
          [this, from, s](TimePoint t) { answer_forwarded_scrape(t, from, s); });
      return;
    }
  }
  ++counters_->served_for_others;
  ScrapeReply reply;
  reply.txid = s.txid;
  for (const auto& h : s.info_hashes) reply.files.push_back(apply_scrape(h, now));
  add_reply(from, std::move(reply));
}

// Encoded at once: the answer (and its peer list) is freed here, not after the batch is sent.
void ClusterNode::add_reply(const dht::NodeRef& to, const AnnounceReply& r) {
  open_reply_to(to, encoded_bytes_max(r)).add(r);
}

void ClusterNode::add_reply(const dht::NodeRef& to, const ScrapeReply& r) {
  open_reply_to(to, encoded_bytes_max(r)).add(r);
}

ReplyBatchWriter& ClusterNode::open_reply_to(const dht::NodeRef& to, std::size_t bytes) {
  auto open = std::find_if(open_replies_.begin(), open_replies_.end(),
                           [&](const OpenReply& o) { return same_node(o.to, to); });
  if (open == open_replies_.end()) {
    open_replies_.push_back(
        OpenReply{to, ReplyBatchWriter(reply_batch_bytes_), kEnvelopeBytesMax, last_now_});
    open = std::prev(open_replies_.end());
  }
  if (open->bytes + bytes > ClusterLimits::kPayloadBytesMax ||
      open->batch.items() >= ClusterLimits::kBatchItemsMax) {
    send_replies(*open);
    open->bytes = kEnvelopeBytesMax;
    open->opened = last_now_;
  }
  open->bytes += bytes;
  return open->batch;
}

void ClusterNode::send_replies(OpenReply& o) {
  std::string payload = BufferPool::local().take();
  o.batch.finish(payload);
  RT_ASSERT(payload.size() <= ClusterLimits::kPayloadBytesMax);
  reply_batch_bytes_ = o.batch.room();
  send_payload(o.to, std::move(payload));
}

void ClusterNode::on_reply(TimePoint now, const dht::NodeRef& from, ReplyBatchReader& batch) {
  auto take = [&](std::uint32_t txid, bool announce) -> Item* {
    Item* it = items_.find(txid);
    if (!it || it->is_announce != announce || !it->sent_to || !same_node(*it->sent_to, from)) {
      ++counters_->stale_replies;
      return nullptr;
    }
    return it;
  };
  auto not_owner = [&](std::uint32_t txid, Item& item) {
    // Its arc is wrong somewhere (a node joined inside it): dropped, learned again.
    if (auto arc = arc_of(key_of(item.key)); arc != arcs_.end() && arc->first == item.sent_to->id)
      arcs_.erase(arc);
    item.sent_to.reset();
    set_wake(txid, item, TimePoint::max());
    if (item.not_owner_retries++ == 0) {
      // Usually a stale cache entry (a node joined before the key): the ring knows better now.
      ++counters_->not_owner_retries;
      route_remote(now, txid, false);
      return;
    }
    // The ring keeps naming a node that does not own the key yet: most likely the successor of
    // a dead owner that has not noticed its predecessor's death. Give it time, then ask again.
    if (!retry_later(now, txid, config_.retry_backoff, kMovingReason))
      ++counters_->not_owner_failures;
  };
  // Items are read one at a time into the same reply objects: their buffers serve the whole
  // batch. A malformed item ends the batch; the requests not answered by then time out.
  auto on_announce = [&](AnnounceReply& r) {
    Item* item = take(r.txid, true);
    if (!item) return;
    switch (r.status) {
      case ReplyStatus::ok: {
        ++counters_->answered_remote;
        Expected<AnnounceResponse, std::string> answer(std::move(r.response));
        complete_announce(r.txid, std::move(answer));
        if (answer) r.response = std::move(*answer);  // its buffers, back for the next item
        break;
      }
      case ReplyStatus::failure:
        ++counters_->remote_failures;
        complete_announce(r.txid, Unexpected(r.failure));
        break;
      case ReplyStatus::not_owner:
        not_owner(r.txid, *item);
        break;
    }
  };
  auto on_scrape = [&](const ScrapeReply& r) {
    Item* item = take(r.txid, false);
    if (!item) return;
    switch (r.status) {
      case ReplyStatus::ok:
        if (r.files.size() != 1 || r.files[0].info_hash != item->key) {
          ++counters_->bad_replies;
          fail_item(r.txid, kNoOwnerReason);
          break;
        }
        ++counters_->answered_remote;
        complete_scrape(r.txid, r.files[0]);
        break;
      case ReplyStatus::failure:
        ++counters_->remote_failures;
        complete_scrape(r.txid, Unexpected(r.failure));
        break;
      case ReplyStatus::not_owner:
        not_owner(r.txid, *item);
        break;
    }
  };
  if (!for_each_item(batch, announce_reply_scratch_, on_announce) ||
      !for_each_item(batch, scrape_reply_scratch_, on_scrape))
    ++counters_->malformed;
}

// ---- messages from the ring ----------------------------------------------------------------

void ClusterNode::handle_ring_event(TimePoint now, const dht::RingEvent& event) {
  if (auto* a = std::get_if<dht::ring_event::AppReceived>(&event)) {
    handle_app(now, a->from, a->payload);
  } else if (auto* l = std::get_if<dht::ring_event::LookupCompleted>(&event)) {
    handle_lookup(now, l->id, l->owner);
  } else if (std::holds_alternative<dht::ring_event::OwnedRangeChanged>(event) ||
             std::holds_alternative<dht::ring_event::SuccessorsChanged>(event) ||
             std::holds_alternative<dht::ring_event::Joined>(event)) {
    handle_ring_change(now);
  }
}

void ClusterNode::handle_app(TimePoint now, const dht::NodeRef& from, std::string_view payload) {
  last_now_ = now;
  if (is_bundle(payload)) {
    // Parts are views into `payload`, which outlives this call; handling a part never
    // receives another payload, so the scratch list is not reused under our feet.
    if (!split_bundle(payload, bundle_parts_)) {
      ++counters_->malformed;
      return;
    }
    for (const std::string_view part : bundle_parts_) handle_message(now, from, part);
    return;
  }
  handle_message(now, from, payload);
}

void ClusterNode::handle_message(TimePoint now, const dht::NodeRef& from,
                                 std::string_view payload) {
  // Replication, the bulk of the traffic, is merged swarm by swarm as it is read.
  if (auto rep = ReplicateReader::open(payload)) {
    on_replicate(now, from, *rep);
    return;
  }
  if (auto rep = ReplyBatchReader::open(payload)) {
    on_reply(now, from, *rep);
    return;
  }
  if (auto fwd = ForwardBatchReader::open(payload)) {
    on_forward(now, from, *fwd);
    return;
  }
  auto m = decode_cluster_message(payload);
  if (!m) {
    ++counters_->malformed;
    return;
  }
  if (auto* p = std::get_if<PullRequest>(&*m)) {
    on_pull(now, from, *p);
  } else if (auto* d = std::get_if<TransferDone>(&*m)) {
    on_done(now, from, *d);
  } else if (auto* a = std::get_if<TransferAck>(&*m)) {
    if (leaving_ && a->txid == handoff_txid_) {
      ++counters_->handoff_acks;
      handoff_acked_ = true;
    } else {
      on_delta_ack(from, a->txid);
    }
  }
}

void ClusterNode::on_replicate(TimePoint now, const dht::NodeRef& from, ReplicateReader& r) {
  if (r.purpose() == TransferPurpose::handoff) ++counters_->handoffs_received;
  // Swarms are read SwarmStore::kPrefetchBatch at a time and their stores told about them
  // before the first is merged (see on_forward). Merging changes no ring view, so each swarm's
  // ownership, looked up to choose its store here, holds for its merge.
  auto& swarms = replicate_scratch_;
  std::array<Ownership, SwarmStore::kPrefetchBatch> owns;
  for (;;) {
    const BatchRead got = read_prefetch_batch(r, swarms);
    prefetch_scratch_.clear();
    owned_prefetch_scratch_.clear();
    for (std::size_t i = 0; i < got.items; ++i) {
      const InfoHash& h = swarms[i].snapshot.info_hash;
      owns[i] = ownership(h);
      (owns[i] == Ownership::mine ? owned_prefetch_scratch_ : prefetch_scratch_).push_back(h);
    }
    replica_.prefetch(prefetch_scratch_);
    service_.store().prefetch(owned_prefetch_scratch_);
    for (std::size_t i = 0; i < got.items; ++i) {
      merge_replicated(now, r.purpose(), owns[i], swarms[i]);
      // A big swarm's lists are not kept in all kPrefetchBatch entries at once.
      if (swarms[i].snapshot.peers.capacity() > kScratchPeersMax) swarms[i] = SwarmDelta{};
    }
    if (got.malformed) {
      // What was merged stays (merging is idempotent); without an ack the owner sends again.
      ++counters_->malformed;
      return;
    }
    if (got.ended) break;
  }
  // Deltas are acknowledged once merged (a resent one does no harm).
  if (r.purpose() == TransferPurpose::delta && r.txid() != 0) send(from, TransferAck{r.txid()});
}

void ClusterNode::merge_replicated(TimePoint now, TransferPurpose purpose, Ownership own,
                                   SwarmDelta& d) {
  const InfoHash& h = d.snapshot.info_hash;
  // Whoever sent it, a swarm lands where this node's own view (`own`) says it belongs: a
  // sender with a stale view (a node that does not know about a join yet) must not hide data.
  const bool mine = own == Ownership::mine;
  SwarmStore& store = mine ? service_.store() : replica_;
  if (mine) ensure_owned(h, now);
  // Whether it is ours is known only once the predecessor is: a later scan must look again.
  if (own == Ownership::unknown) unsettle_replicas();
  if (mine && has_tombstones(h)) drop_stopped(d.snapshot, now);
  store.merge_swarm(d.snapshot, now);
  for (const auto& gone : d.gone) {
    AnnounceRequest stop;
    stop.info_hash = h;
    stop.peer = gone;
    stop.event = AnnounceEvent::stopped;
    stop.numwant = 0;
    if (store.announce(stop, now)) ++counters_->replica_gone_applied;
  }
  // The stamp says "still a replica target": the sync re-sends every swarm well within
  // replica_grace, so deltas (the hot path, one per announce batch) need not stamp; a swarm a
  // delta created gets its first stamp from the next drop pass.
  if (!mine && purpose != TransferPurpose::delta) replica_seen_[h] = now;
  ++counters_->replica_swarms_merged;
}

void ClusterNode::on_pull(TimePoint now, const dht::NodeRef& from, const PullRequest& m) {
  ++counters_->pulls_served;
  Transfer t;
  t.purpose = TransferPurpose::pull;
  t.txid = m.txid;
  t.targets.push_back(from);
  t.send_done = true;
  t.include_replicas = true;
  auto collect = [&](const InfoHash& h) {
    if (dht::in_half_open(key_of(h), m.from, m.to)) t.hashes.push_back(h);
  };
  service_.store().for_each_info_hash(collect);
  replica_.for_each_info_hash(collect);
  std::sort(t.hashes.begin(), t.hashes.end());
  t.hashes.erase(std::unique(t.hashes.begin(), t.hashes.end()), t.hashes.end());
  // A joiner waits for this answer: serve it before the background syncs.
  transfers_.push_front(std::move(t));
  (void)now;
}

void ClusterNode::on_done(TimePoint now, const dht::NodeRef& from, const TransferDone& m) {
  if (m.purpose == TransferPurpose::pull) {
    if (pull_.active && m.txid == pull_.txid) {
      ++counters_->pulls_completed;
      release_gate(now);
    }
  } else if (m.purpose == TransferPurpose::handoff) {
    send(from, TransferAck{m.txid});
  }
}

void ClusterNode::release_gate(TimePoint now) {
  pull_.active = false;
  pull_.deadline = TimePoint::max();
  auto waiters = std::move(gate_waiters_);
  gate_waiters_.clear();
  for (auto& w : waiters) w(now);
}

// ---- ring changes --------------------------------------------------------------------------

std::vector<dht::NodeRef> ClusterNode::replica_targets() const {
  auto succ = ring_.successors();
  if (succ.size() > config_.replicas - 1) succ.resize(config_.replicas - 1);
  return succ;
}

void ClusterNode::handle_ring_change(TimePoint now) {
  last_now_ = now;

  // Nodes the ring dropped (crashed or left): nothing is sent to them from the cache, and
  // requests waiting for their answer go elsewhere now instead of at their attempt timeout.
  std::vector<dht::NodeRef> before = std::move(window_succs_);
  if (window_pred_) before.push_back(*window_pred_);
  window_pred_ = ring_.predecessor();
  window_succs_ = ring_.successors();
  window_alone_ = ring_.alone();
  std::vector<dht::NodeId> dropped;
  for (const auto& n : before) {
    if (ring_dropped(n.id) && std::find(dropped.begin(), dropped.end(), n.id) == dropped.end())
      dropped.push_back(n.id);
  }
  for (const auto& id : dropped) suspect(id, now);

  if (next_housekeeping_ == TimePoint::max()) next_housekeeping_ = now + kHousekeepingPeriod;
  if (next_sync_ == TimePoint::max()) next_sync_ = now + config_.sync_period;

  // New replica successors get every owned swarm (the others already have them).
  auto targets = replica_targets();
  std::vector<dht::NodeRef> fresh;
  for (const auto& t : targets) {
    if (std::none_of(last_targets_.begin(), last_targets_.end(),
                     [&](const dht::NodeRef& o) { return same_node(o, t); }))
      fresh.push_back(t);
  }
  last_targets_ = targets;
  if (!fresh.empty()) start_sync(now, std::move(fresh));

  const bool alone = ring_.alone();
  const auto pred = ring_.predecessor();
  const bool pred_changed =
      pred && (!last_pred_ || last_pred_->id != pred->id || was_alone_ != alone);
  if (alone && !was_alone_) reconcile_needed_ = true;
  if (pred_changed) reconcile_needed_ = true;
  if (reconcile_needed_) unsettle_replicas();  // the range changed: keys of ours may be there
  if (pred_changed) {
    if (last_pred_ && !alone && dht::in_open(pred->id, last_pred_->id, ring_.self().id)) {
      // The range shrank: a node joined before us. Give it what we hold of its range (it pulls
      // too, but announces we applied meanwhile would otherwise only reach it with the sync).
      Transfer t;
      t.purpose = TransferPurpose::handoff;
      t.targets.push_back(*pred);
      t.include_replicas = true;
      auto collect = [&](const InfoHash& h) {
        if (dht::in_half_open(key_of(h), last_pred_->id, pred->id)) t.hashes.push_back(h);
      };
      service_.store().for_each_info_hash(collect);
      if (!t.hashes.empty()) {
        ++counters_->handoffs_sent;
        transfers_.push_back(std::move(t));
      }
    }
  }
  if (pred) last_pred_ = pred;
  was_alone_ = alone;

  // A new predecessor after the join pull: what the replicas hold of the new range comes back.
  const bool pull_back = pred_changed && pull_.done_once && !alone;

  // The join pull: once, when this node first learns its range and has someone to ask.
  if (!pull_.done_once) {
    if (alone) {
      pull_.done_once = true;
    } else if (pred && !targets.empty()) {
      pull_.done_once = true;
      pull_.active = true;
      pull_.txid = txid_next_++;
      pull_.from = pred->id;
      pull_.to = ring_.self().id;
      pull_.deadline = now + config_.pull_timeout;
      ++counters_->pulls_started;
      send(targets.front(), PullRequest{pull_.txid, pull_.from, pull_.to});
    }
  }
  if (reconcile_needed_) reconcile(now);
  if (pull_back) pull_range();

  // Last, once ranges and the join pull are up to date (a rerouted key may now be ours).
  if (!dropped.empty()) {
    std::vector<std::uint32_t> moved;
    items_.for_each([&](std::uint32_t txid, const Item& item) {
      if (item.sent_to &&
          std::find(dropped.begin(), dropped.end(), item.sent_to->id) != dropped.end())
        moved.push_back(txid);
    });
    for (auto txid : moved) {
      ++counters_->rerouted;
      route_remote(now, txid, false);
    }
  }
}

void ClusterNode::reconcile(TimePoint now) {
  (void)now;
  reconcile_needed_ = false;
  const bool alone = ring_.alone();
  if (!alone && !ring_.predecessor()) return;  // range unknown: wait
  moves_.clear();
  replica_.for_each_info_hash([&](const InfoHash& h) {
    if (ownership(h) == Ownership::mine) moves_.emplace_back(h, true);
  });
  service_.store().for_each_info_hash([&](const InfoHash& h) {
    if (ownership(h) == Ownership::not_mine) moves_.emplace_back(h, false);
  });
  moves_epoch_ = range_epoch_;
  moves_view_ = range_view();
  settle_replicas_if(moves_epoch_, moves_view_);
}

void ClusterNode::start_sync(TimePoint now, std::vector<dht::NodeRef> targets) {
  (void)now;
  Transfer t;
  t.purpose = TransferPurpose::sync;
  t.targets = std::move(targets);
  service_.store().for_each_info_hash([&](const InfoHash& h) {
    if (ownership(h) == Ownership::mine) t.hashes.push_back(h);
  });
  ++counters_->sync_passes;
  if (!t.hashes.empty()) transfers_.push_back(std::move(t));
}

void ClusterNode::pull_range() {
  const auto pred = ring_.predecessor();
  if (!pred || ring_.alone() || last_targets_.empty()) return;
  ++counters_->range_pulls;
  // Not gated: this node answers for its range meanwhile; the answers merge in when they come.
  const std::uint32_t txid = txid_next_++;
  for (const auto& t : last_targets_) send(t, PullRequest{txid, pred->id, ring_.self().id});
}

void ClusterNode::begin_leave(TimePoint now) {
  last_now_ = now;
  leaving_ = true;
  handoff_acked_ = false;
  flush_deltas(now);
  auto succ = ring_.successors();
  if (succ.empty()) {
    handoff_acked_ = true;  // alone: nobody to give the swarms to
    return;
  }
  Transfer t;
  t.purpose = TransferPurpose::handoff;
  t.txid = handoff_txid_ = txid_next_++;
  t.targets.push_back(succ.front());
  t.send_done = true;
  service_.store().for_each_info_hash([&](const InfoHash& h) { t.hashes.push_back(h); });
  ++counters_->handoffs_sent;
  transfers_.push_front(std::move(t));
  handoff_deadline_ = now + config_.handoff_timeout;
}

bool ClusterNode::leave_ready(TimePoint now) const {
  return leaving_ && delta_log_.empty() && (handoff_acked_ || now >= handoff_deadline_);
}

// ---- replication ---------------------------------------------------------------------------

void ClusterNode::record_delta(const AnnounceRequest& req, std::uint32_t downloaded,
                               TimePoint now) {
  if (config_.replicas <= 1 || last_targets_.empty()) return;
  if (delta_log_.size() >= config_.delta_peers_max) {
    ++counters_->delta_early_flushes;
    flush_deltas(now);
  }
  // A store without peer ids drops them: 20 bytes per peer and replica not worth sending.
  delta_log_.push_back(DeltaEntry{req.info_hash, req.peer, keep_peer_ids_ ? req.peer_id : PeerId{},
                                  downloaded, req.left == 0, req.event == AnnounceEvent::stopped,
                                  now});
  if (delta_due_ == TimePoint::max()) delta_due_ = now + config_.replicate_period;
  // A leaving node may stop at any moment after leave_ready(): its last announces go out now,
  // ahead of the reply to the client.
  if (leaving_) flush_deltas(now);
}

void ClusterNode::flush_deltas(TimePoint now) {
  delta_due_ = TimePoint::max();
  if (delta_log_.empty()) return;
  // Grouped by swarm: one sort of the period's log instead of a map lookup per announce. The
  // keys are single integers, the hash's first 32 bits above the log index, so arrival order
  // is kept within a swarm. Two swarms sharing those bits may interleave; each run of one swarm
  // is then its own entry, sent in arrival order, which a replica merges to the same state.
  // The radix sort orders by those 32 bits, stably: the same order as sorting whole keys.
  std::vector<std::uint64_t>& order = delta_order_;
  order.resize(delta_log_.size());
  for (std::size_t i = 0; i < delta_log_.size(); ++i) {
    const std::uint8_t* h = delta_log_[i].info_hash.data();
    const std::uint64_t prefix = (std::uint64_t{h[0]} << 24) | (std::uint64_t{h[1]} << 16) |
                                 (std::uint64_t{h[2]} << 8) | std::uint64_t{h[3]};
    order[i] = (prefix << 32) | i;
  }
  radix_sort_by_high32(order, delta_order_scratch_);
  auto index_of = [](std::uint64_t key) { return static_cast<std::uint32_t>(key); };
  auto same_swarm = [&](std::uint64_t x, std::uint64_t y) {
    return delta_log_[index_of(x)].info_hash == delta_log_[index_of(y)].info_hash;
  };
  std::vector<SwarmDelta>& swarms = delta_swarms_;
  swarms.clear();
  std::vector<std::uint32_t>& group = delta_group_;
  for (std::size_t begin = 0, end = 0; begin < order.size(); begin = end) {
    end = begin + 1;
    while (end < order.size() && same_swarm(order[begin], order[end])) ++end;
    group.clear();
    for (std::size_t i = begin; i < end; ++i) group.push_back(index_of(order[i]));
    // The last announce of an address is its state: a stop, or a peer with its TTL. Few
    // announces per swarm and period are looked over pairwise; a hot swarm's are sorted.
    constexpr std::size_t kPairwiseMax = 16;
    auto is_last = [&](std::size_t i) {
      const SocketAddress& peer = delta_log_[group[i]].peer;
      if (group.size() <= kPairwiseMax) {
        for (std::size_t j = i + 1; j < group.size(); ++j)
          if (delta_log_[group[j]].peer == peer) return false;
        return true;
      }
      return i + 1 == group.size() || delta_log_[group[i + 1]].peer != peer;
    };
    if (group.size() > kPairwiseMax) {
      std::stable_sort(group.begin(), group.end(), [&](std::uint32_t x, std::uint32_t y) {
        return delta_log_[x].peer < delta_log_[y].peer;
      });
    }
    SwarmDelta& s = swarms.emplace_back(take_spare_delta());
    s.snapshot.info_hash = delta_log_[group.front()].info_hash;
    for (std::size_t i = 0; i < group.size(); ++i) {
      const DeltaEntry& e = delta_log_[group[i]];
      s.snapshot.downloaded = std::max(s.snapshot.downloaded, e.downloaded);
      if (!is_last(i)) continue;
      if (e.stopped) {
        s.gone.push_back(e.peer);
        continue;
      }
      SnapshotPeer sp;
      sp.address = e.peer;
      sp.peer_id = e.peer_id;
      sp.seeder = e.seeder;
      sp.remaining_ttl = config_.peer_ttl - (now - e.at);
      if (sp.remaining_ttl > Duration::zero()) s.snapshot.peers.push_back(sp);
    }
  }
  delta_log_.clear();
  auto targets = last_targets_;
  if (!targets.empty()) send_swarms(targets, TransferPurpose::delta, 0, swarms);
  for (auto& d : swarms) keep_spare_delta(std::move(d));  // what send_swarms did not take
  swarms.clear();
}

SwarmDelta ClusterNode::take_spare_delta() {
  if (spare_deltas_.empty()) return {};
  SwarmDelta d = std::move(spare_deltas_.back());
  spare_deltas_.pop_back();
  d.snapshot.info_hash = {};
  d.snapshot.downloaded = 0;
  d.snapshot.peers.clear();
  d.gone.clear();
  return d;
}

void ClusterNode::keep_spare_delta(SwarmDelta&& d) {
  if (spare_deltas_.size() >= kSpareDeltasMax) return;
  if (d.snapshot.peers.capacity() == 0) return;  // nothing to reuse (moved from, or never used)
  if (d.snapshot.peers.capacity() > kSpareDeltaPeersMax) return;
  if (d.gone.capacity() > kSpareDeltaPeersMax) return;
  spare_deltas_.push_back(std::move(d));
}

void ClusterNode::send_swarms(const std::vector<dht::NodeRef>& targets, TransferPurpose purpose,
                              std::uint32_t txid, std::vector<SwarmDelta>& swarms, int sends) {
  Replicate msg;
  msg.purpose = purpose;
  msg.txid = txid;
  std::size_t bytes = kEnvelopeBytesMax;
  auto flush = [&] {
    if (msg.swarms.empty()) return;
    if (purpose == TransferPurpose::delta) {
      // Each delta payload has its own txid, acknowledged by every replica.
      do msg.txid = txid_next_++;
      while (msg.txid == 0);
    }
    std::string payload = BufferPool::local().take();
    encode_cluster_message(msg, payload);
    RT_ASSERT(payload.size() <= ClusterLimits::kPayloadBytesMax);
    for (std::size_t i = 0; i < targets.size(); ++i) {
      const auto& t = targets[i];
      ++counters_->replicate_messages;
      counters_->replicated_swarms += msg.swarms.size();
      // The last target takes the payload itself, the others a copy.
      send_payload(t, i + 1 < targets.size() ? pooled_copy(payload) : std::move(payload));
      if (purpose != TransferPurpose::delta) continue;
      if (unacked_.size() >= config_.delta_unacked_max) {
        ++counters_->delta_untracked;
        continue;
      }
      UnackedDelta u{t, {}, sends, last_now_ + attempt_timeout(t)};
      u.swarms.reserve(msg.swarms.size());
      for (const auto& d : msg.swarms) u.swarms.emplace_back(d.snapshot.info_hash, d.gone);
      const UnackedKey key{msg.txid, t.id};
      resends_.emplace(u.resend_at, key);
      unacked_[key] = std::move(u);
    }
    for (auto& d : msg.swarms) keep_spare_delta(std::move(d));
    msg.swarms.clear();
    bytes = kEnvelopeBytesMax;
  };
  for (auto& s : swarms) {
    const std::size_t whole = encoded_bytes_max(s);
    if (bytes + whole > ClusterLimits::kReplicateChunkBytes) flush();
    if (bytes + whole <= ClusterLimits::kReplicateChunkBytes) {  // the usual case: it fits
      bytes += whole;
      msg.swarms.push_back(std::move(s));
      if (msg.swarms.size() >= ClusterLimits::kSwarmsPerMessageMax) flush();
      continue;
    }
    // A swarm too big for one chunk travels in slices: merging is a union, so slices add up.
    std::size_t peer_next = 0;
    do {
      SwarmDelta part;
      part.snapshot.info_hash = s.snapshot.info_hash;
      part.snapshot.downloaded = s.snapshot.downloaded;
      if (peer_next == 0) part.gone = std::move(s.gone);
      std::size_t part_bytes = encoded_bytes_max(part);
      if (bytes + part_bytes > ClusterLimits::kReplicateChunkBytes) flush();
      while (peer_next < s.snapshot.peers.size() &&
             bytes + part_bytes + kSnapshotPeerBytesMax <= ClusterLimits::kReplicateChunkBytes) {
        part.snapshot.peers.push_back(s.snapshot.peers[peer_next++]);
        part_bytes += kSnapshotPeerBytesMax;
      }
      bytes += part_bytes;
      msg.swarms.push_back(std::move(part));
      if (msg.swarms.size() >= ClusterLimits::kSwarmsPerMessageMax) flush();
    } while (peer_next < s.snapshot.peers.size());
  }
  flush();
}

void ClusterNode::on_delta_ack(const dht::NodeRef& from, std::uint32_t txid) {
  auto it = unacked_.find(UnackedKey{txid, from.id});
  if (it == unacked_.end()) return;  // late duplicate, or a payload already given up
  ++counters_->delta_acks;
  resends_.erase({it->second.resend_at, it->first});
  unacked_.erase(it);
}

void ClusterNode::resend_deltas(TimePoint now) {
  while (!resends_.empty() && resends_.begin()->first <= now) {
    const UnackedKey key = resends_.begin()->second;
    resends_.erase(resends_.begin());
    auto it = unacked_.find(key);
    if (it == unacked_.end()) continue;
    UnackedDelta u = std::move(it->second);
    unacked_.erase(it);
    // A node that is no longer a replica target (it died or the ring moved) gets nothing more:
    // the new targets receive the swarms from the sync that every ring change starts.
    const bool target = std::any_of(last_targets_.begin(), last_targets_.end(),
                                    [&](const dht::NodeRef& t) { return t.id == u.to.id; });
    if (!target || u.sends >= kDeltaSendsMax) {
      ++counters_->delta_given_up;
      continue;
    }
    ++counters_->delta_resends;
    std::vector<SwarmDelta> swarms;
    for (auto& [h, gone] : u.swarms) {
      if (ownership(h) != Ownership::mine) continue;  // handed on: the new owner replicates it
      SwarmDelta d;
      d.snapshot.info_hash = h;
      if (auto snap = service_.store().export_swarm(h, now)) d.snapshot = std::move(*snap);
      // Removals stand unless the peer announced again since (then it is in the snapshot).
      std::erase_if(gone, [&](const SocketAddress& a) {
        return std::any_of(d.snapshot.peers.begin(), d.snapshot.peers.end(),
                           [&](const SnapshotPeer& p) { return p.address == a; });
      });
      d.gone = std::move(gone);
      swarms.push_back(std::move(d));
    }
    if (!swarms.empty()) send_swarms({u.to}, TransferPurpose::delta, 0, swarms, u.sends + 1);
  }
}

void ClusterNode::run_transfers(TimePoint now, std::size_t& budget) {
  while (budget > 0 && !transfers_.empty() && outbox_has_room()) {
    Transfer& t = transfers_.front();
    std::vector<SwarmDelta> swarms;
    while (budget > 0 && t.next < t.hashes.size()) {
      const InfoHash& h = t.hashes[t.next++];
      --budget;
      if (auto s = service_.store().export_swarm(h, now)) swarms.push_back(SwarmDelta{*s, {}});
      if (t.include_replicas) {
        if (auto s = replica_.export_swarm(h, now)) swarms.push_back(SwarmDelta{*s, {}});
      }
    }
    t.sent += static_cast<std::uint32_t>(swarms.size());
    send_swarms(t.targets, t.purpose, t.txid, swarms);
    if (t.next >= t.hashes.size()) {
      if (t.send_done) {
        for (const auto& target : t.targets) send(target, TransferDone{t.txid, t.purpose, t.sent});
      }
      transfers_.pop_front();
    }
  }
}

void ClusterNode::run_moves(TimePoint now, std::size_t& budget) {
  while (budget > 0 && !moves_.empty()) {
    auto [h, up] = moves_.back();
    moves_.pop_back();
    --budget;
    if (up) {
      if (ownership(h) == Ownership::mine) promote(h, now);
    } else if (ownership(h) == Ownership::not_mine) {
      // Keep it as a replica: the new owner's range was ours, so we are its first successor.
      if (auto s = service_.store().export_swarm(h, now)) {
        replica_.merge_swarm(*s, now);
        replica_seen_[h] = now;
        ++counters_->demoted;
      }
      service_.store().erase_swarm(h);
    }
  }
  settle_replicas_if(moves_epoch_, moves_view_);
}

void ClusterNode::run_drops(TimePoint now, std::size_t& budget) {
  if (drop_queue_.empty()) {
    // A new pass over a stable list of keys (the map may change between ticks). Swarms that
    // reached the replica store without a stamp get one now.
    replica_.for_each_info_hash([&](const InfoHash& h) { replica_seen_.try_emplace(h, now); });
    drop_queue_.reserve(replica_seen_.size());
    for (const auto& e : replica_seen_) drop_queue_.push_back(e.first);
    drops_epoch_ = range_epoch_;
    drops_view_ = range_view();
    return;
  }
  while (budget > 0 && !drop_queue_.empty()) {
    InfoHash h = drop_queue_.back();
    drop_queue_.pop_back();
    --budget;
    auto it = replica_seen_.find(h);
    if (it == replica_seen_.end()) continue;
    if (ownership(h) == Ownership::mine) {
      promote(h, now);
      continue;
    }
    if (it->second + config_.replica_grace <= now) {
      if (replica_.erase_swarm(h)) ++counters_->replica_dropped;
      replica_seen_.erase(it);
    }
  }
  if (drop_queue_.empty()) settle_replicas_if(drops_epoch_, drops_view_);  // a whole pass
}

// ---- time ----------------------------------------------------------------------------------

void ClusterNode::handle_timeout(TimePoint now) {
  last_now_ = now;
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    const auto [at, txid] = deadlines_.top();
    deadlines_.pop();
    Item* it = items_.find(txid);
    if (!it || it->deadline != at) continue;
    if (it->sent_to) suspect(it->sent_to->id, now);
    const std::string_view reason = it->reason;
    if (reason == kMovingReason) {
      ++counters_->not_owner_failures;
    } else {
      ++counters_->timeouts;
    }
    fail_item(txid, reason);
  }
  while (!wakes_.empty() && wakes_.top().first <= now) {
    const auto [at, txid] = wakes_.top();
    wakes_.pop();
    Item* it = items_.find(txid);
    if (!it || it->wake != at) continue;
    it->wake = TimePoint::max();
    if (it->sent_to) {
      on_attempt_timeout(now, txid);
    } else {
      route_remote(now, txid, false);  // a retry wait ended
    }
  }
  if (pull_.active && now >= pull_.deadline) {
    ++counters_->pull_timeouts;
    release_gate(now);
  }
  if (now >= delta_due_) flush_deltas(now);
  resend_deltas(now);
  if (now >= next_sync_) {
    next_sync_ = now + config_.sync_period;
    // A full pass is queued only when the previous one finished: bounded work whatever the size.
    const bool sync_running = std::any_of(transfers_.begin(), transfers_.end(), [](const auto& t) {
      return t.purpose == TransferPurpose::sync;
    });
    if (!sync_running && !last_targets_.empty()) {
      start_sync(now, last_targets_);
      pull_range();
    }
  }
  std::size_t budget = config_.swarms_per_tick;
  run_moves(now, budget);
  run_transfers(now, budget);
  if (now >= next_housekeeping_) {
    next_housekeeping_ = now + kHousekeepingPeriod;
    replica_.sweep(now, config_.swarms_per_tick);
    std::size_t drop_budget = config_.swarms_per_tick;
    run_drops(now, drop_budget);
  }
}

TimePoint ClusterNode::next_timeout() const {
  TimePoint t = TimePoint::max();
  if (!deadlines_.empty()) t = std::min(t, deadlines_.top().first);
  if (!wakes_.empty()) t = std::min(t, wakes_.top().first);
  if (pull_.active) t = std::min(t, pull_.deadline);
  t = std::min(t, delta_due_);
  if (!resends_.empty()) t = std::min(t, resends_.begin()->first);
  t = std::min(t, next_sync_);
  t = std::min(t, next_housekeeping_);
  if (leaving_ && !handoff_acked_) t = std::min(t, handoff_deadline_);
  if (!moves_.empty() || (!transfers_.empty() && outbox_has_room())) t = std::min(t, last_now_);
  if (config_.batch_linger > Duration::zero()) {  // else poll_app() sends them all, always
    for (const auto& o : open_forwards_) t = std::min(t, o.opened + config_.batch_linger);
    for (const auto& o : open_replies_) t = std::min(t, o.opened + config_.batch_linger);
  }
  return t;
}

// ---- output --------------------------------------------------------------------------------

void ClusterNode::send(const dht::NodeRef& to, const ClusterMessage& m) {
  std::string payload = BufferPool::local().take();
  encode_cluster_message(m, payload);
  RT_ASSERT(payload.size() <= ClusterLimits::kPayloadBytesMax);
  send_payload(to, std::move(payload));
}

void ClusterNode::send_payload(const dht::NodeRef& to, std::string payload) {
  if (outbox_.size() >= config_.outbox_max) {
    ++counters_->outbox_dropped;
    return;
  }
  outbox_.push_back(AppTransmit{to, std::move(payload)});
}

namespace {
/// A lingering batch with this many items goes at once: waiting would add latency for little.
constexpr std::size_t kLingerItemsEnough = 32;
/// Outbox entries looked at for payloads to bundle with the first: bounds the work per
/// datagram when a transfer has queued many chunks.
constexpr std::size_t kBundleScanMax = 16;
}  // namespace

bool ClusterNode::batch_due(TimePoint opened, std::size_t items) const {
  return config_.batch_linger <= Duration::zero() || items >= kLingerItemsEnough ||
         last_now_ >= opened + config_.batch_linger;
}

void ClusterNode::flush_open() {
  std::erase_if(open_forwards_, [&](OpenForward& o) {
    if (!batch_due(o.opened, o.batch.items())) return false;
    send_forwards(o);
    return true;
  });
  std::erase_if(open_replies_, [&](OpenReply& o) {
    if (!batch_due(o.opened, o.batch.items())) return false;
    send_replies(o);
    return true;
  });
}

std::optional<AppTransmit> ClusterNode::poll_app() {
  flush_open();
  if (outbox_.empty()) return std::nullopt;
  AppTransmit t = std::move(outbox_.front());
  outbox_.pop_front();
  // Small payloads for the same node leave together (a forward batch and the replies to that
  // node's forwards, an ack...): one datagram, one wake-up, one tag.
  counters_->bundled_messages += bundle_for_node(t, outbox_, kBundleScanMax);
  return t;
}

std::size_t bundle_for_node(AppTransmit& first, std::deque<AppTransmit>& queue,
                            std::size_t scan_max) {
  // First the members and the exact size (one allocation), then the bundle.
  std::vector<std::size_t> members;  // positions in `queue`, ascending
  std::size_t bytes = kBundleHeadBytes + kBundleEntryOverheadBytes + first.payload.size();
  for (std::size_t i = 0; i < queue.size() && i < scan_max; ++i) {
    if (!same_node(queue[i].to, first.to)) continue;
    const std::size_t more = kBundleEntryOverheadBytes + queue[i].payload.size();
    if (bytes + more > kBundleBytesMax) break;
    bytes += more;
    members.push_back(i);
  }
  if (members.empty()) return 0;
  BufferPool& pool = BufferPool::local();
  std::string bundle = pool.take();
  bundle.reserve(bytes);
  append_to_bundle(bundle, first.payload);
  for (const std::size_t i : members) append_to_bundle(bundle, queue[i].payload);
  for (auto i = members.rbegin(); i != members.rend(); ++i) {
    pool.give(std::move(queue[static_cast<std::size_t>(*i)].payload));
    queue.erase(queue.begin() + static_cast<std::ptrdiff_t>(*i));
  }
  pool.give(std::move(first.payload));
  first.payload = std::move(bundle);
  return members.size() + 1;
}

}  // namespace ringtracker::tracker
