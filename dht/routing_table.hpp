// The Kademlia routing table of the DHT front end (BEP 5) for one address family: up to k
// contacts per bucket, bucket i holding the nodes whose id shares exactly i leading bits with
// this node's id (the table BEP 5's splitting converges to: room for more nodes near our own
// id). It decides who is good, questionable or bad; it sends nothing (DhtNode pings).
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <vector>

#include "common/clock.hpp"
#include "dht/krpc.hpp"
#include "dht/node_id.hpp"

namespace ringtracker::dht {

/// (a XOR target) < (b XOR target): a is closer to target in Kademlia's metric.
bool xor_closer(const NodeId& a, const NodeId& b, const NodeId& target);
/// Leading bits `a` and `b` share (160 when equal).
int shared_prefix_bits(const NodeId& a, const NodeId& b);

class RoutingTable {
 public:
  /// BEP 5's K.
  static constexpr std::size_t kBucketSizeDefault = 8;
  /// BEP 5: a node is good while it was heard from (answered, or queried us after having
  /// answered once) within the last 15 minutes; after that it is questionable.
  static constexpr Duration kGoodFor = std::chrono::minutes(15);
  /// Queries in a row a contact left unanswered before it counts as bad (replaceable, never
  /// handed out).
  static constexpr int kFailuresMax = 2;

  struct Entry {
    krpc::Contact contact;
    TimePoint last_heard{};
    int failures = 0;
  };

  explicit RoutingTable(const NodeId& self, std::size_t bucket_size = kBucketSizeDefault);

  /// A node answered one of our queries: it is refreshed if known, else added when its bucket
  /// has room or holds a bad contact (which it replaces). A node whose id or address is already
  /// in the table under the other's partner is not taken (one entry per id and per address).
  /// Returns whether the node is in the table afterwards.
  bool on_answer(const krpc::Contact& c, TimePoint now);
  /// A node queried us. Known (same id and address): refreshed, returns false. Unknown: returns
  /// whether its bucket could take it, i.e. whether the caller should ping it (BEP 5 counts a
  /// node good only after it answered a query of ours).
  bool on_query(const krpc::Contact& c, TimePoint now);
  /// Whether an unknown node would be taken if it answered (its bucket has room or a bad
  /// contact, and neither its id nor its address is in the table).
  bool would_take(const krpc::Contact& c) const;
  /// A query to `id` went unanswered.
  void on_timeout(const NodeId& id);

  /// Up to `n` good or questionable contacts closest to `target` by XOR, closest first.
  std::vector<krpc::Contact> closest(const NodeId& target, std::size_t n) const;
  /// The questionable contact heard from longest ago (the next to ping), if any.
  std::optional<krpc::Contact> stalest(TimePoint now) const;

  std::size_t size() const { return size_; }
  const NodeId& self() const { return self_; }

 private:
  std::size_t bucket_of(const NodeId& id) const;
  Entry* find(const NodeId& id);
  const Entry* find(const NodeId& id) const;
  bool address_known(const SocketAddress& a) const;

  NodeId self_;
  std::size_t bucket_size_;
  std::array<std::vector<Entry>, NodeId::kBits> buckets_;
  std::size_t size_ = 0;
};

}  // namespace ringtracker::dht
