#include "tracker/dht_server.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "common/event_udp_socket.hpp"
#include "common/socket_util.hpp"

namespace ringtracker::tracker {

struct DhtServer::Socket {
  DhtServer* server = nullptr;
  EventUdpSocket io;
  bool v6 = false;
  // A receive batch; a datagram longer than DhtNode accepts arrives truncated (MSG_TRUNC).
  std::array<std::array<char, dht::krpc::kDatagramBytesMax>, kBatch> in{};
  std::array<sockaddr_storage, kBatch> in_addr{};
  std::array<iovec, kBatch> in_iov{};
  std::array<mmsghdr, kBatch> in_msg{};
  // A send batch: its iovecs point into DhtServer::outgoing_.
  std::array<sockaddr_storage, kBatch> out_addr{};
  std::array<iovec, kBatch> out_iov{};
  std::array<mmsghdr, kBatch> out_msg{};
};

DhtServer::DhtServer(event_base* base, RequestHandler& handler, dht::DhtNodeConfig config)
    : base_(base), handler_(handler), node_(std::move(config), Clock::now()) {}

DhtServer::~DhtServer() {
  *alive_ = false;
  if (timer_) event_free(timer_);
}

Expected<SocketAddress, std::string> DhtServer::listen(const SocketAddress& addr,
                                                       int receive_buffer_bytes) {
  for (const auto& other : sockets_) {
    // Replies leave through the socket of their family: a second one would answer twice.
    if (other->v6 == addr.ip.is_v6())
      return Unexpected("dht " + addr.to_string() + ": one listen address per address family");
  }
  auto s = std::make_unique<Socket>();
  s->server = this;
  s->v6 = addr.ip.is_v6();
  auto bound =
      s->io.open(base_, addr, receive_buffer_bytes, &DhtServer::on_readable, s.get(), "dht");
  if (!bound) return Unexpected(bound.error());
  if (!timer_) {
    timer_ = event_new(base_, -1, 0, &DhtServer::on_timer, this);
    if (!timer_) return Unexpected("dht " + addr.to_string() + ": cannot create its timer");
    // The first maintenance (bootstrap) runs once the loop starts.
    const timeval zero{0, 0};
    if (event_add(timer_, &zero) != 0)
      return Unexpected("dht " + addr.to_string() + ": cannot arm its timer");
  }
  sockets_.push_back(std::move(s));
  return *bound;
}

void DhtServer::on_readable(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Socket*>(arg);
  try {
    s->server->drain(*s);
  } catch (...) {
    // Allocation failure at most; never unwind through libevent.
  }
}

void DhtServer::on_timer(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<DhtServer*>(arg);
  try {
    const TimePoint now = Clock::now();
    self->node_.handle_timeout(now);
    self->flush();
    self->arm_timer(now);
  } catch (...) {
  }
}

void DhtServer::arm_timer(TimePoint now) {
  const auto wait = std::max(node_.poll_timeout() - now, Duration::zero());
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(wait).count();
  const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
  event_add(timer_, &tv);
}

void DhtServer::drain(Socket& s) {
  for (unsigned round = 0; round < kBatchesPerWakeup; ++round) {
    for (unsigned i = 0; i < kBatch; ++i)
      point_receive(s.in_msg[i], s.in_addr[i], s.in_iov[i], s.in[i].data(), s.in[i].size());
    const int n = ::recvmmsg(s.io.fd(), s.in_msg.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) break;  // EAGAIN or a transient error: wait for the next readiness
    datagrams_received_ += static_cast<std::uint64_t>(n);
    const TimePoint now = Clock::now();
    in_drain_ = true;
    for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
      if (s.in_msg[i].msg_hdr.msg_flags & MSG_TRUNC) {
        ++drop_oversized_;
        continue;
      }
      auto from = from_sockaddr(s.in_addr[i]);
      if (!from) continue;
      auto q =
          node_.handle_datagram(std::string_view(s.in[i].data(), s.in_msg[i].msg_len), *from, now);
      if (q) run(*q, now);
    }
    in_drain_ = false;
    flush();
    if (static_cast<unsigned>(n) < kBatch) break;  // drained
  }
}

void DhtServer::run(const dht::DhtNode::PeerQuery& q, TimePoint now) {
  if (in_flight_ >= kPeerQueriesInFlightMax) {
    ++refused_busy_;
    node_.fail(q, dht::krpc::ErrorCode::server, "busy, try later");
    return;
  }
  AnnounceRequest req;
  std::memcpy(req.info_hash.data(), q.info_hash.bytes().data(), req.info_hash.size());
  req.peer = q.peer;
  // DHT peers send no peer id; the store keys peers by address anyway.
  req.families = q.from.ip.is_v6() ? PeerFamilies::v6 : PeerFamilies::v4;
  if (q.announce) {
    // BEP 33: "seed" marks a seed; without it the peer counts as a leecher. The peer's own
    // re-announces (every 15 to 30 minutes) keep it alive within the tracker's TTL.
    req.left = q.seed ? 0 : 1;
    req.numwant = 0;
  } else {
    req.lookup_only = true;
    // BEP 33 "noseed": ask as a seed does, for leechers only.
    req.left = q.noseed ? 0 : 1;
    req.numwant = static_cast<std::int32_t>(dht::DhtNode::kValuesMax);
  }
  ++in_flight_;
  std::weak_ptr<bool> alive = alive_;
  handler_.announce(req, now, [this, alive, q](Expected<AnnounceResponse, std::string>&& r) {
    auto token = alive.lock();
    if (!token || !*token) return;
    --in_flight_;
    if (!r) {
      ++peer_queries_failed_;
      node_.fail(q, dht::krpc::ErrorCode::generic, r.error());
    } else if (q.announce) {
      node_.complete_announce(q);
    } else {
      std::vector<SocketAddress> peers;
      peers.reserve(peer_count(r->result));
      for_each_peer(r->result, [&](const SocketAddress& a, const PeerId&) { peers.push_back(a); });
      node_.complete_get_peers(q, peers);
    }
    // An answer given at once joins the batch being read; a later one (from the ring) goes now.
    if (!in_drain_) flush();
  });
}

void DhtServer::flush() {
  outgoing_.clear();
  while (auto t = node_.poll_transmit()) outgoing_.push_back(std::move(*t));
  std::size_t routed = 0;  // one socket per family: each datagram matches at most one
  for (const auto& sock : sockets_) {
    Socket& s = *sock;
    unsigned count = 0;
    for (auto& t : outgoing_) {
      if (t.to.ip.is_v6() != s.v6) continue;
      ++routed;
      s.out_iov[count] = {t.bytes.data(), t.bytes.size()};
      point_msg(s.out_msg[count], s.out_addr[count], to_sockaddr(t.to, s.out_addr[count]),
                s.out_iov[count]);
      if (++count == kBatch) {
        send_failures_ += send_all(s.io.fd(), s.out_msg.data(), count);
        count = 0;
      }
    }
    if (count != 0) send_failures_ += send_all(s.io.fd(), s.out_msg.data(), count);
  }
  // Datagrams of a family no socket serves (a contact learned from a "nodes6" list while only
  // IPv4 is served, say) are dropped and counted.
  drop_no_socket_ += outgoing_.size() - routed;
}

std::vector<std::pair<std::string, std::uint64_t>> DhtServer::counters() const {
  std::vector<std::pair<std::string, std::uint64_t>> out{
      {"dht_datagrams_received", datagrams_received_},
      {"dht_drop_oversized", drop_oversized_},
      {"dht_drop_no_socket", drop_no_socket_},
      {"dht_send_failures", send_failures_},
      {"dht_refused_busy", refused_busy_},
      {"dht_peer_queries_failed", peer_queries_failed_}};
  for (const auto& [name, v] : node_.counters()) out.emplace_back("dht_" + std::string(name), v);
  return out;
}

}  // namespace ringtracker::tracker
