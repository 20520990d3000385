#include "dht/dht_node.hpp"

#include <algorithm>
#include <cstring>
#include <variant>

#include "common/mix64.hpp"

namespace ringtracker::dht {

namespace {

std::string txid_bytes(std::uint16_t id) {
  return std::string{static_cast<char>(id >> 8), static_cast<char>(id & 0xff)};
}

std::optional<std::uint16_t> txid_value(std::string_view t) {
  if (t.size() != 2) return std::nullopt;
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(t[0]) << 8) |
                                    static_cast<std::uint8_t>(t[1]));
}

}  // namespace

DhtNode::DhtNode(DhtNodeConfig config, TimePoint now)
    : config_(std::move(config)),
      rng_(config_.seed),
      epoch_origin_(now),
      table4_(config_.id, config_.bucket_size),
      table6_(config_.id, config_.bucket_size),
      limiter_(config_.queries_per_ip_per_second != 0 ? kLimiterSlots : 0),
      limiter_key_(rng_.next()),
      next_maintenance_(now),
      next_bootstrap_(now),
      next_refresh_(now + kRefreshPeriod) {}

bool DhtNode::within_rate(const IpAddress& ip, TimePoint now) {
  if (limiter_.empty()) return true;
  std::uint64_t words[2];
  std::memcpy(words, ip.data(), 8);  // IpAddress keeps 16 bytes; IPv4 uses the first 4
  std::memcpy(words + 1, ip.data() + 8, 8);
  const std::uint64_t h = mix64(words[0] ^ limiter_key_) ^ mix64(words[1] + limiter_key_);
  LimiterSlot& slot = limiter_[h & (kLimiterSlots - 1)];
  const std::int64_t second =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  if (slot.ip != ip || slot.second != second) slot = LimiterSlot{ip, second, 0};
  return ++slot.count <= config_.queries_per_ip_per_second;
}

std::string DhtNode::token(const IpAddress& ip, TimePoint now, int epochs_back) const {
  // BEP 5 leaves the token's form to the node: SHA-1 over a per-process secret, the epoch and
  // the asker's IP, truncated. Only this process ever checks it.
  const auto epoch = (now - epoch_origin_) / kTokenEpoch - epochs_back;
  std::string input(reinterpret_cast<const char*>(config_.token_secret.data()),
                    config_.token_secret.size());
  for (int shift = 56; shift >= 0; shift -= 8)
    input.push_back(static_cast<char>((static_cast<std::uint64_t>(epoch) >> shift) & 0xff));
  input.append(reinterpret_cast<const char*>(ip.data()), ip.size());
  return std::string(NodeId::sha1_of(input).as_string_view().substr(0, kTokenBytes));
}

bool DhtNode::token_valid(std::string_view t, const IpAddress& ip, TimePoint now) const {
  if (t == token(ip, now, 0)) return true;
  return now - epoch_origin_ >= kTokenEpoch && t == token(ip, now, 1);
}

krpc::ReplyHead DhtNode::head(std::string_view txid, const SocketAddress& to) const {
  return krpc::ReplyHead{txid, config_.id, to};
}

void DhtNode::queue(const SocketAddress& to, std::string bytes) {
  if (out_.size() >= kTransmitQueueMax) {
    ++counts_.drop_transmit_full;
    return;
  }
  out_.push_back(Transmit{to, std::move(bytes)});
}

void DhtNode::error(const SocketAddress& to, std::string_view txid, krpc::ErrorCode code,
                    std::string_view reason) {
  std::string out;
  krpc::encode_error(out, txid, code, reason);
  ++counts_.errors_sent;
  queue(to, std::move(out));
}

void DhtNode::nodes_for(const NodeId& target, const SocketAddress& asker, bool want_v4,
                        bool want_v6, std::vector<krpc::Contact>& nodes4,
                        std::vector<krpc::Contact>& nodes6) const {
  // BEP 32: without "want", a node answers with nodes of the family the query came over.
  if (!want_v4 && !want_v6) (asker.ip.is_v6() ? want_v6 : want_v4) = true;
  auto pick = [&](const RoutingTable& t, std::vector<krpc::Contact>& out) {
    // One more than needed, in case the asker itself is among them.
    out = t.closest(target, kNodesPerReply + 1);
    std::erase_if(out, [&](const krpc::Contact& c) { return c.address == asker; });
    if (out.size() > kNodesPerReply) out.resize(kNodesPerReply);
  };
  if (want_v4) pick(table4_, nodes4);
  if (want_v6) pick(table6_, nodes6);
}

std::optional<DhtNode::PeerQuery> DhtNode::handle_datagram(std::string_view bytes,
                                                           const SocketAddress& from,
                                                           TimePoint now) {
  // Cheap checks first: a flooding source costs a table lookup per datagram, nothing more.
  if (!within_rate(from.ip, now)) {
    ++counts_.drop_rate_limited;
    return std::nullopt;
  }
  auto m = krpc::decode(bytes);
  if (!m) {
    if (m.error().answerable) {
      error(from, m.error().transaction_id, m.error().code, m.error().reason);
    } else {
      ++counts_.drop_malformed;
    }
    return std::nullopt;
  }
  if (auto* r = std::get_if<krpc::Response>(&*m)) {
    on_response(*r, from, now);
    return std::nullopt;
  }
  if (auto* e = std::get_if<krpc::Error>(&*m)) {
    // An error to one of our queries: the node is alive but said no. Forget the query.
    auto id = txid_value(e->transaction_id);
    auto p = id ? pending_.find(*id) : pending_.end();
    if (p != pending_.end() && p->second.to == from) {
      pending_.erase(p);
      ++counts_.errors_received;
    } else {
      ++counts_.drop_unexpected_response;
    }
    return std::nullopt;
  }
  const auto& q = std::get<krpc::Query>(*m);
  auto peer_query = answer_query(q, from, now);
  on_query(q, from, now);  // after the answer: a ping back must not delay it
  return peer_query;
}

std::optional<DhtNode::PeerQuery> DhtNode::answer_query(const krpc::Query& q,
                                                        const SocketAddress& from, TimePoint now) {
  switch (q.method) {
    case krpc::Method::ping: {
      ++counts_.queries_ping;
      std::string out;
      krpc::encode_id_reply(out, head(q.transaction_id, from));
      queue(from, std::move(out));
      return std::nullopt;
    }
    case krpc::Method::find_node: {
      ++counts_.queries_find_node;
      std::vector<krpc::Contact> n4, n6;
      nodes_for(q.target, from, q.want_v4, q.want_v6, n4, n6);
      std::string out;
      krpc::encode_nodes_reply(out, head(q.transaction_id, from), n4, n6);
      queue(from, std::move(out));
      return std::nullopt;
    }
    case krpc::Method::get_peers: {
      ++counts_.queries_get_peers;
      PeerQuery pq;
      pq.transaction_id = q.transaction_id;
      pq.from = from;
      pq.info_hash = q.target;
      pq.peer = from;
      pq.noseed = q.noseed;
      pq.want_v4 = q.want_v4;
      pq.want_v6 = q.want_v6;
      pq.token = token(from.ip, now, 0);
      return pq;
    }
    case krpc::Method::announce_peer: {
      ++counts_.queries_announce_peer;
      if (!token_valid(q.token, from.ip, now)) {
        ++counts_.bad_tokens;
        error(from, q.transaction_id, krpc::ErrorCode::protocol, "bad token");
        return std::nullopt;
      }
      PeerQuery pq;
      pq.announce = true;
      pq.transaction_id = q.transaction_id;
      pq.from = from;
      pq.info_hash = q.target;
      // BEP 5: implied_port means the source port of the datagram (peers behind NAT that use
      // one port for DHT and peer traffic).
      pq.peer = SocketAddress{from.ip, q.implied_port ? from.port : q.port};
      pq.seed = q.seed;
      return pq;
    }
    case krpc::Method::unknown:
      ++counts_.queries_unknown;
      error(from, q.transaction_id, krpc::ErrorCode::method_unknown, "method unknown");
      return std::nullopt;
  }
  return std::nullopt;
}

void DhtNode::on_query(const krpc::Query& q, const SocketAddress& from, TimePoint now) {
  // BEP 43: read-only nodes answer nothing, so they never enter the table.
  if (q.read_only) return;
  const krpc::Contact c{q.sender, from};
  if (table(from.ip.is_v6()).on_query(c, now)) send_query(from, q.sender, Sent::ping, {}, now);
}

void DhtNode::on_response(const krpc::Response& r, const SocketAddress& from, TimePoint now) {
  auto id = txid_value(r.transaction_id);
  auto p = id ? pending_.find(*id) : pending_.end();
  if (p == pending_.end() || p->second.to != from ||
      (!p->second.expected.is_zero() && p->second.expected != r.sender)) {
    ++counts_.drop_unexpected_response;
    return;
  }
  const Sent kind = p->second.kind;
  pending_.erase(p);
  ++counts_.answers_received;
  table(from.ip.is_v6()).on_answer(krpc::Contact{r.sender, from}, now);
  if (kind != Sent::find_node) return;
  // Nodes learned second hand are pinged first: only an answer makes a node good.
  for (const auto& c : r.nodes) {
    if (table(c.address.ip.is_v6()).would_take(c)) send_query(c.address, c.id, Sent::ping, {}, now);
  }
}

void DhtNode::send_query(const SocketAddress& to, const NodeId& expected, Sent kind,
                         const NodeId& target, TimePoint now) {
  if (pending_.size() >= kPendingQueriesMax) {
    ++counts_.pings_skipped_pending_full;
    return;
  }
  for (const auto& [id, p] : pending_) {
    if (p.to == to) return;  // one query at a time per node
  }
  while (pending_.count(next_txid_) != 0) ++next_txid_;
  const std::uint16_t id = next_txid_++;
  pending_.emplace(id, Pending{to, expected, kind, now + kQueryTimeout});
  std::string out;
  if (kind == Sent::ping) {
    krpc::encode_ping_query(out, txid_bytes(id), config_.id);
  } else {
    krpc::encode_find_node_query(out, txid_bytes(id), config_.id, target);
  }
  ++counts_.queries_sent;
  queue(to, std::move(out));
}

void DhtNode::complete_get_peers(const PeerQuery& q, const std::vector<SocketAddress>& peers) {
  std::vector<krpc::Contact> n4, n6;
  nodes_for(q.info_hash, q.from, q.want_v4, q.want_v6, n4, n6);
  // BEP 32: "values" carries peers of the family the query came over.
  std::vector<SocketAddress> values;
  for (const auto& p : peers) {
    if (values.size() == kValuesMax) break;
    if (p.ip.is_v6() == q.from.ip.is_v6() && p != q.from) values.push_back(p);
  }
  std::string out;
  krpc::encode_get_peers_reply(out, head(q.transaction_id, q.from), q.token, n4, n6, values);
  queue(q.from, std::move(out));
}

void DhtNode::complete_announce(const PeerQuery& q) {
  std::string out;
  krpc::encode_id_reply(out, head(q.transaction_id, q.from));
  queue(q.from, std::move(out));
}

void DhtNode::fail(const PeerQuery& q, krpc::ErrorCode code, std::string_view reason) {
  error(q.from, q.transaction_id, code, reason);
}

void DhtNode::handle_timeout(TimePoint now) {
  if (now < next_maintenance_) return;
  next_maintenance_ = now + kMaintenancePeriod;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    ++counts_.query_timeouts;
    if (!it->second.expected.is_zero())
      table(it->second.to.ip.is_v6()).on_timeout(it->second.expected);
    it = pending_.erase(it);
  }
  // BEP 5: a questionable node is pinged; two unanswered pings make it bad (replaceable).
  for (bool v6 : {false, true}) {
    if (auto c = table(v6).stalest(now)) send_query(c->address, c->id, Sent::ping, {}, now);
  }
  if (now >= next_bootstrap_ && table4_.size() + table6_.size() < config_.bucket_size) {
    next_bootstrap_ = now + kBootstrapRetry;
    for (const auto& b : config_.bootstrap) send_query(b, NodeId{}, Sent::find_node, config_.id, now);
  }
  if (now >= next_refresh_) {
    next_refresh_ = now + kRefreshPeriod;
    // A random id in our own neighbourhood: the top half of our id, the rest random.
    auto bytes = config_.id.bytes();
    for (std::size_t i = NodeId::kBytes / 2; i < NodeId::kBytes; ++i)
      bytes[i] = static_cast<std::uint8_t>(rng_.next());
    const NodeId target(bytes);
    for (bool v6 : {false, true}) {
      for (const auto& c : table(v6).closest(target, 3))
        send_query(c.address, c.id, Sent::find_node, target, now);
    }
  }
}

std::optional<DhtNode::Transmit> DhtNode::poll_transmit() {
  if (out_.empty()) return std::nullopt;
  Transmit t = std::move(out_.front());
  out_.pop_front();
  return t;
}

std::vector<std::pair<std::string_view, std::uint64_t>> DhtNode::counters() const {
  const auto& c = counts_;
  return {{"queries_ping", c.queries_ping},
          {"queries_find_node", c.queries_find_node},
          {"queries_get_peers", c.queries_get_peers},
          {"queries_announce_peer", c.queries_announce_peer},
          {"queries_unknown", c.queries_unknown},
          {"errors_sent", c.errors_sent},
          {"bad_tokens", c.bad_tokens},
          {"drop_malformed", c.drop_malformed},
          {"drop_rate_limited", c.drop_rate_limited},
          {"drop_unexpected_response", c.drop_unexpected_response},
          {"drop_transmit_full", c.drop_transmit_full},
          {"queries_sent", c.queries_sent},
          {"answers_received", c.answers_received},
          {"errors_received", c.errors_received},
          {"query_timeouts", c.query_timeouts},
          {"pings_skipped_pending_full", c.pings_skipped_pending_full},
          {"nodes_v4", table4_.size()},
          {"nodes_v6", table6_.size()}};
}

}  // namespace ringtracker::dht
