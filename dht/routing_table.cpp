#include "dht/routing_table.hpp"

#include <algorithm>
#include <utility>

namespace ringtracker::dht {

bool xor_closer(const NodeId& a, const NodeId& b, const NodeId& target) {
  const auto& x = a.bytes();
  const auto& y = b.bytes();
  const auto& t = target.bytes();
  for (std::size_t i = 0; i < NodeId::kBytes; ++i) {
    const auto dx = static_cast<std::uint8_t>(x[i] ^ t[i]);
    const auto dy = static_cast<std::uint8_t>(y[i] ^ t[i]);
    if (dx != dy) return dx < dy;
  }
  return false;
}

int shared_prefix_bits(const NodeId& a, const NodeId& b) {
  for (std::size_t i = 0; i < NodeId::kBytes; ++i) {
    const auto d = static_cast<unsigned>(a.bytes()[i] ^ b.bytes()[i]);
    if (d != 0) return static_cast<int>(i * 8) + __builtin_clz(d) - 24;
  }
  return NodeId::kBits;
}

RoutingTable::RoutingTable(const NodeId& self, std::size_t bucket_size)
    : self_(self), bucket_size_(bucket_size) {}

std::size_t RoutingTable::bucket_of(const NodeId& id) const {
  return static_cast<std::size_t>(std::min(shared_prefix_bits(id, self_), NodeId::kBits - 1));
}

RoutingTable::Entry* RoutingTable::find(const NodeId& id) {
  return const_cast<Entry*>(std::as_const(*this).find(id));
}

const RoutingTable::Entry* RoutingTable::find(const NodeId& id) const {
  for (const auto& e : buckets_[bucket_of(id)]) {
    if (e.contact.id == id) return &e;
  }
  return nullptr;
}

bool RoutingTable::address_known(const SocketAddress& a) const {
  // At most 160 x k entries, and only answers to our own queries get here: a scan is fine.
  for (const auto& b : buckets_) {
    for (const auto& e : b) {
      if (e.contact.address == a) return true;
    }
  }
  return false;
}

bool RoutingTable::on_answer(const krpc::Contact& c, TimePoint now) {
  if (c.id == self_) return false;
  if (Entry* e = find(c.id)) {
    if (e->contact.address != c.address) return false;  // the id answered from elsewhere
    e->last_heard = now;
    e->failures = 0;
    return true;
  }
  if (address_known(c.address)) return false;  // one entry per address: ids are not free
  auto& bucket = buckets_[bucket_of(c.id)];
  Entry fresh{c, now, 0};
  if (bucket.size() < bucket_size_) {
    bucket.push_back(fresh);
    ++size_;
    return true;
  }
  // BEP 5: a full bucket of good nodes takes no one; a bad node makes room.
  for (auto& e : bucket) {
    if (e.failures >= kFailuresMax) {
      e = fresh;
      return true;
    }
  }
  return false;
}

bool RoutingTable::on_query(const krpc::Contact& c, TimePoint now) {
  if (Entry* e = find(c.id)) {
    if (e->contact.address == c.address) e->last_heard = now;
    return false;
  }
  return would_take(c);
}

bool RoutingTable::would_take(const krpc::Contact& c) const {
  if (c.id == self_ || find(c.id) != nullptr) return false;
  const auto& bucket = buckets_[bucket_of(c.id)];
  const bool room =
      bucket.size() < bucket_size_ ||
      std::any_of(bucket.begin(), bucket.end(),
                  [](const Entry& e) { return e.failures >= kFailuresMax; });
  return room && !address_known(c.address);
}

void RoutingTable::on_timeout(const NodeId& id) {
  if (Entry* e = find(id)) ++e->failures;
}

std::vector<krpc::Contact> RoutingTable::closest(const NodeId& target, std::size_t n) const {
  // Buckets in XOR order, without looking at the rest of the table: with p = the target's
  // bucket (the bits it shares with our id), bucket p's nodes agree with the target on p + 1
  // bits; every node of a bucket above p differs from it at bit p exactly; a node of bucket
  // i < p differs from it at bit i. So: bucket p, then all buckets above p, then p - 1 down
  // to 0, each group sorted, until n are found.
  std::vector<krpc::Contact> out;
  if (n == 0) return out;
  auto by_distance = [&](const krpc::Contact& a, const krpc::Contact& b) {
    return xor_closer(a.id, b.id, target);
  };
  auto take = [&](std::size_t first, std::size_t last) {
    const std::size_t from = out.size();
    for (std::size_t i = first; i <= last; ++i) {
      for (const auto& e : buckets_[i]) {
        if (e.failures < kFailuresMax) out.push_back(e.contact);
      }
    }
    std::sort(out.begin() + static_cast<std::ptrdiff_t>(from), out.end(), by_distance);
  };
  const std::size_t p = bucket_of(target);
  take(p, p);
  if (out.size() < n && p + 1 < buckets_.size()) take(p + 1, buckets_.size() - 1);
  for (std::size_t i = p; i-- > 0 && out.size() < n;) take(i, i);
  if (out.size() > n) out.resize(n);
  return out;
}

std::optional<krpc::Contact> RoutingTable::stalest(TimePoint now) const {
  const Entry* best = nullptr;
  for (const auto& b : buckets_) {
    for (const auto& e : b) {
      if (e.failures >= kFailuresMax || now - e.last_heard < kGoodFor) continue;
      if (best == nullptr || e.last_heard < best->last_heard) best = &e;
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->contact;
}

}  // namespace ringtracker::dht
