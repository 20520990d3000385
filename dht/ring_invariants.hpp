// RingInvariants: the checker of ring correctness used by the simulator, in the terms of Zave
// 2017. Safety properties must hold after every simulated event (given her fault assumption:
// no member ever loses every live entry of its successor list); the ideal state must be reached
// once churn stops. It inspects RingNodes read-only and never changes them.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dht/node_id.hpp"
#include "dht/ring_node.hpp"

namespace ringtracker::dht {

class RingInvariants {
 public:
  /// `running` = every node that is alive (crashed ones are simply absent). Members are the
  /// running nodes with is_member(); others (joining) are ignored except where stated.
  explicit RingInvariants(std::span<const RingNode* const> running);

  std::size_t member_count() const { return members_.size(); }

  /// Safety, after every event. Returns the first violation found, or nullopt:
  ///  - every member has a live successor (first live entry of its list; an empty list means
  ///    the member is its own successor);
  ///  - successor lists are ordered clockwise from their owner, without duplicates or self;
  ///  - following first-live successors there is exactly one cycle (one ring), and every
  ///    member reaches it (nodes off the ring reach the ring);
  ///  - the cycle visits identifiers in ring order, wrapping around exactly once.
  std::optional<std::string> check_safety() const;

  /// Ideal state, after churn stops: every running node is a member; pred and succ are mutual;
  /// succ[i] is the i-th next member for i < min(r, N - 1); pred is the previous member.
  std::optional<std::string> check_ideal() const;

  /// The true owner of `key`: the first member at or after it (nullopt when no member).
  std::optional<NodeRef> owner(const NodeId& key) const;

 private:
  bool live(const NodeId& id) const;
  std::vector<const RingNode*> members_;  // sorted by id
  std::size_t running_count_ = 0;
};

}  // namespace ringtracker::dht
