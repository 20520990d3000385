// Invariant checks over a snapshot of running RingNodes; linear or n log n in the member count.
#include "dht/ring_invariants.hpp"

#include <algorithm>
#include <sstream>

namespace ringtracker::dht {
namespace {

std::string short_id(const NodeId& id) { return id.to_hex().substr(0, 8); }

}  // namespace

RingInvariants::RingInvariants(std::span<const RingNode* const> running)
    : running_count_(running.size()) {
  for (const auto* n : running)
    if (n->is_member()) members_.push_back(n);
  std::sort(members_.begin(), members_.end(),
            [](const RingNode* a, const RingNode* b) { return a->self().id < b->self().id; });
}

bool RingInvariants::live(const NodeId& id) const {
  auto it = std::lower_bound(members_.begin(), members_.end(), id,
                             [](const RingNode* n, const NodeId& k) { return n->self().id < k; });
  return it != members_.end() && (*it)->self().id == id;
}

std::optional<NodeRef> RingInvariants::owner(const NodeId& key) const {
  if (members_.empty()) return std::nullopt;
  auto it = std::lower_bound(members_.begin(), members_.end(), key,
                             [](const RingNode* n, const NodeId& k) { return n->self().id < k; });
  if (it == members_.end()) it = members_.begin();
  return (*it)->self();
}

std::optional<std::string> RingInvariants::check_safety() const {
  const std::size_t n = members_.size();
  if (n == 0) return std::nullopt;
  auto index_of = [&](const NodeId& id) -> std::size_t {
    auto it = std::lower_bound(members_.begin(), members_.end(), id,
                               [](const RingNode* m, const NodeId& k) { return m->self().id < k; });
    return static_cast<std::size_t>(it - members_.begin());
  };
  std::vector<std::size_t> next(n);
  for (std::size_t i = 0; i < n; ++i) {
    const RingNode& m = *members_[i];
    const NodeId& self = m.self().id;
    auto succs = m.successors();
    NodeId last;
    for (std::size_t k = 0; k < succs.size(); ++k) {
      const NodeId d = NodeId::distance(self, succs[k].id);
      if (d.is_zero()) return "successor list of " + short_id(self) + " contains itself";
      if (!(d > last))
        return "successor list of " + short_id(self) + " is out of order or has a duplicate at " +
               std::to_string(k);
      last = d;
    }
    std::optional<std::size_t> best;
    if (succs.empty()) {
      best = i;
    } else {
      for (const auto& s : succs)
        if (live(s.id)) {
          best = index_of(s.id);
          break;
        }
    }
    if (!best) return "member " + short_id(self) + " has no live successor";
    next[i] = *best;
  }
  // Cycles of the functional graph i -> next[i]: colour walks, a cycle is found when a walk
  // meets its own colour.
  std::vector<std::size_t> colour(n, 0);
  std::size_t cycles = 0;
  std::size_t cycle_node = 0;
  for (std::size_t start = 0; start < n; ++start) {
    if (colour[start]) continue;
    std::size_t x = start;
    while (!colour[x]) {
      colour[x] = start + 1;
      x = next[x];
    }
    if (colour[x] == start + 1) {
      ++cycles;
      cycle_node = x;
    }
  }
  if (cycles != 1) return "found " + std::to_string(cycles) + " rings among " + std::to_string(n) + " members";
  // Ring order: walking the cycle, ids increase except for exactly one wrap.
  std::size_t wraps = 0, length = 0, x = cycle_node;
  do {
    const std::size_t y = next[x];
    if (!(members_[x]->self().id < members_[y]->self().id)) ++wraps;
    ++length;
    x = y;
  } while (x != cycle_node);
  if (length > 1 && wraps != 1)
    return "ring of " + std::to_string(length) + " members wraps " + std::to_string(wraps) +
           " times (loopy)";
  return std::nullopt;
}

std::optional<std::string> RingInvariants::check_ideal() const {
  const std::size_t n = members_.size();
  if (n != running_count_)
    return std::to_string(running_count_ - n) + " running nodes are not members";
  for (std::size_t i = 0; i < n; ++i) {
    const RingNode& m = *members_[i];
    const std::size_t want = std::min(m.config().successors, n - 1);
    auto succs = m.successors();
    std::ostringstream why;
    if (succs.size() != want) {
      why << short_id(m.self().id) << " has " << succs.size() << " successors, ideal " << want;
      return why.str();
    }
    for (std::size_t k = 0; k < want; ++k) {
      if (succs[k].id != members_[(i + 1 + k) % n]->self().id) {
        why << short_id(m.self().id) << " successor " << k << " is " << short_id(succs[k].id)
            << ", ideal " << short_id(members_[(i + 1 + k) % n]->self().id);
        return why.str();
      }
    }
    const auto& pred = m.predecessor();
    if (n == 1) {
      if (pred) return "lone member " + short_id(m.self().id) + " has a predecessor";
      continue;
    }
    const NodeId& want_pred = members_[(i + n - 1) % n]->self().id;
    if (!pred || pred->id != want_pred) {
      why << short_id(m.self().id) << " predecessor is "
          << (pred ? short_id(pred->id) : std::string("none")) << ", ideal " << short_id(want_pred);
      return why.str();
    }
  }
  return std::nullopt;
}

}  // namespace ringtracker::dht
