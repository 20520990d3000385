// SimNetwork implementation: one binary heap of timed events (deliveries and node timers),
// packets in a slab reused through a free list, stale timers skipped by generation.
#include "dht/sim_network.hpp"

#include <algorithm>

#include "common/assert.hpp"
#include "common/mix64.hpp"

namespace ringtracker::dht {

SimNetwork::SimNetwork(const SimOptions& options)
    : options_(options),
      rng_(options.seed),
      now_(TimePoint{} + std::chrono::hours(1)),
      epoch_(now_),
      wheel_(static_cast<std::size_t>(kBuckets)) {}

void SimNetwork::schedule(const Event& e) {
  const std::int64_t b = bucket_of(e.at);
  if (b <= cur_bucket_) {
    current_.push(e);
  } else if (b < cur_bucket_ + kBuckets) {
    wheel_[static_cast<std::size_t>(b % kBuckets)].push_back(e);
    ++wheel_count_;
  } else {
    far_.push(e);
  }
}

bool SimNetwork::load_due(TimePoint limit) {
  const std::int64_t limit_bucket = bucket_of(limit);
  while (current_.empty()) {
    if (cur_bucket_ >= limit_bucket) return false;
    if (wheel_count_ == 0) {
      // Nothing near: jump straight to the first far event (or the limit).
      if (far_.empty()) {
        cur_bucket_ = limit_bucket;
        return false;
      }
      cur_bucket_ = std::min(limit_bucket, std::max(cur_bucket_ + 1, bucket_of(far_.top().at)));
    } else {
      ++cur_bucket_;
    }
    auto& slot = wheel_[static_cast<std::size_t>(cur_bucket_ % kBuckets)];
    for (const auto& e : slot) current_.push(e);
    wheel_count_ -= slot.size();
    slot.clear();
    // Far events now within the wheel's reach move in.
    while (!far_.empty() && bucket_of(far_.top().at) < cur_bucket_ + kBuckets) {
      const Event e = far_.top();
      far_.pop();
      schedule(e);
    }
  }
  return current_.top().at <= limit;
}

SimNetwork::~SimNetwork() = default;

std::uint64_t SimNetwork::key_of(const SocketAddress& a) const {
  std::uint64_t k = a.port;
  for (std::size_t i = 0; i < a.ip.size(); ++i) k = k * 131 + a.ip.data()[i];
  return mix64(k);
}

SimNetwork::NodeIndex SimNetwork::add_node() {
  const auto i = slots_.size();
  RT_ASSERT(i < (1u << 24));
  const std::uint8_t ip[4] = {10, static_cast<std::uint8_t>(i >> 16),
                              static_cast<std::uint8_t>(i >> 8), static_cast<std::uint8_t>(i)};
  Slot s;
  s.address.ip = IpAddress::v4(ip);
  s.address.port = 6881;
  auto key = key_of(s.address);
  auto pos = std::lower_bound(by_address_.begin(), by_address_.end(), std::make_pair(key, 0u));
  by_address_.insert(pos, {key, static_cast<std::uint32_t>(i)});
  slots_.push_back(std::move(s));
  return i;
}

std::optional<SimNetwork::NodeIndex> SimNetwork::index_of(const SocketAddress& a) const {
  // Our own addresses encode their index (10.a.b.c:6881); anything else is searched.
  if (a.ip.is_v4() && a.port == 6881 && a.ip.data()[0] == 10) {
    const std::size_t i = std::size_t{a.ip.data()[1]} << 16 | std::size_t{a.ip.data()[2]} << 8 | a.ip.data()[3];
    if (i < slots_.size()) return i;
    return std::nullopt;
  }
  const auto key = key_of(a);
  auto it = std::lower_bound(by_address_.begin(), by_address_.end(), std::make_pair(key, 0u));
  for (; it != by_address_.end() && it->first == key; ++it)
    if (slots_[it->second].address == a) return it->second;
  return std::nullopt;
}

void SimNetwork::start(NodeIndex i) {
  RT_ASSERT(!running(i));
  RingConfig c = options_.node;
  c.self = slots_[i].address;
  slots_[i].node = std::make_unique<RingNode>(c, mix64(options_.seed * 0x9e3779b97f4a7c15ULL + i +
                                                     (std::uint64_t{slots_[i].generation} << 32)));
  ++slots_[i].generation;
  slots_[i].timer_at = TimePoint::max();
}

void SimNetwork::stop(NodeIndex i) {
  slots_[i].node.reset();
  ++slots_[i].generation;
  slots_[i].timer_at = TimePoint::max();
}

void SimNetwork::create(NodeIndex i) {
  start(i);
  node(i).create(now_);
  pump(i);
}

void SimNetwork::join(NodeIndex i, std::span<const SocketAddress> seeds) {
  start(i);
  node(i).join(now_, seeds);
  pump(i);
}

void SimNetwork::crash(NodeIndex i) {
  if (running(i)) stop(i);
}

void SimNetwork::leave(NodeIndex i) {
  if (!running(i)) return;
  node(i).leave(now_);
  pump(i);
}

LookupId SimNetwork::lookup(NodeIndex i, const NodeId& key) {
  auto id = node(i).start_lookup(now_, key);
  pump(i);
  return id;
}

bool SimNetwork::send_app(NodeIndex i, const SocketAddress& to, std::string_view payload) {
  const bool ok = node(i).send_app(now_, to, payload);
  pump(i);
  return ok;
}

void SimNetwork::partition(const std::vector<std::vector<NodeIndex>>& groups) {
  for (auto& s : slots_) s.group = 0;
  int g = 1;
  for (const auto& group : groups) {
    for (auto i : group) slots_[i].group = g;
    ++g;
  }
  partitioned_ = true;
}

void SimNetwork::heal() {
  for (auto& s : slots_) s.group = 0;
  partitioned_ = false;
}

std::vector<const RingNode*> SimNetwork::running_nodes() const {
  std::vector<const RingNode*> v;
  v.reserve(slots_.size());
  for (const auto& s : slots_)
    if (s.node) v.push_back(s.node.get());
  return v;
}

Duration SimNetwork::link_latency(std::uint32_t from, std::uint32_t to) {
  const std::uint64_t h = mix64(options_.seed ^ (std::uint64_t{from} << 32 | to));
  const double u = static_cast<double>(h >> 11) * 0x1.0p-53;
  const auto span = options_.latency_max - options_.latency_min;
  const auto base = options_.latency_min + std::chrono::duration_cast<Duration>(span * u);
  return base + std::chrono::duration_cast<Duration>(base * (options_.latency_jitter * rng_.unit()));
}

void SimNetwork::pump(NodeIndex i) {
  auto& slot = slots_[i];
  if (!slot.node) return;
  RingNode& n = *slot.node;
  while (auto t = n.poll_transmit()) {
    ++stats_.sent;
    stats_.bytes += t->bytes.size();
    if (options_.loss > 0 && rng_.unit() < options_.loss) {
      ++stats_.lost;
      continue;
    }
    auto to = index_of(t->destination);
    if (!to) {
      ++stats_.to_dead;
      continue;
    }
    std::uint32_t p;
    if (!free_packets_.empty()) {
      p = free_packets_.back();
      free_packets_.pop_back();
    } else {
      p = static_cast<std::uint32_t>(packets_.size());
      packets_.emplace_back();
    }
    packets_[p].from = static_cast<std::uint32_t>(i);
    packets_[p].to = static_cast<std::uint32_t>(*to);
    packets_[p].bytes = std::move(t->bytes);
    schedule(Event{now_ + link_latency(static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(*to)),
                   seq_++, p, 0, false});
  }
  bool stop_after = false;
  while (auto e = n.poll_event()) {
    if (std::holds_alternative<ring_event::Left>(*e)) stop_after = true;
    if (hook_) hook_(i, *e);
  }
  if (stop_after) {
    stop(i);
    return;
  }
  TimePoint t = n.next_timeout();
  if (t != TimePoint::max()) t = std::max(t, now_);  // overdue work runs now
  if (t != slot.timer_at) {
    slot.timer_at = t;
    if (t != TimePoint::max())
      schedule(Event{t, seq_++, static_cast<std::uint32_t>(i), slot.generation, true});
  }
}

bool SimNetwork::step() { return step_until(TimePoint::max()); }

bool SimNetwork::step_until(TimePoint limit) {
  while (load_due(limit)) {
    const Event e = current_.top();
    current_.pop();
    now_ = std::max(now_, e.at);
    if (e.is_timer) {
      auto& slot = slots_[e.node];
      if (!slot.node || slot.generation != e.generation || slot.timer_at != e.at) continue;  // stale
      slot.timer_at = TimePoint::max();
      ++stats_.events;
      slot.node->handle_timeout(now_);
      pump(e.node);
      return true;
    }
    Packet& p = packets_[e.node];
    const std::uint32_t to = p.to, from = p.from;
    ++stats_.events;
    if (partitioned_ && slots_[from].group != slots_[to].group) {
      ++stats_.partitioned;
    } else if (!slots_[to].node) {
      ++stats_.to_dead;
    } else {
      ++stats_.delivered;
      slots_[to].node->handle_datagram(
          now_, slots_[from].address,
          std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(p.bytes.data()),
                                        p.bytes.size()));
    }
    p.bytes.clear();
    free_packets_.push_back(e.node);
    pump(to);
    return true;
  }
  return false;
}

void SimNetwork::run_until(TimePoint t, const std::function<bool()>& after_event) {
  while (true) {
    if (!step_until(t)) break;
    if (after_event && !after_event()) return;
  }
  now_ = std::max(now_, t);
}

}  // namespace ringtracker::dht
