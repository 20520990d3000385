#include "tracker/udp_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <variant>

#include "common/event_udp_socket.hpp"
#include "common/socket_util.hpp"
#include "tracker/swarm_store.hpp"
#include "tracker/udp_codec.hpp"

namespace ringtracker::tracker {

struct UdpServer::Socket {
  UdpServer* server = nullptr;
  EventUdpSocket io;
  bool v6 = false;
  // Receive and send batches live with the socket: no allocation per datagram.
  std::array<std::array<std::uint8_t, 2048>, kBatch> in{};
  std::array<std::array<std::uint8_t, udp::kDatagramMax>, kBatch> out{};
  std::array<sockaddr_storage, kBatch> in_addr{};
  std::array<sockaddr_storage, kBatch> out_addr{};
  std::array<iovec, kBatch> in_iov{};
  std::array<iovec, kBatch> out_iov{};
  std::array<mmsghdr, kBatch> in_msg{};
  std::array<mmsghdr, kBatch> out_msg{};
  // Replies that complete after their batch was sent (answers from the ring) gather here and
  // leave in one sendmmsg once the event-loop pass that produced them ends.
  std::array<std::array<std::uint8_t, udp::kDatagramMax>, kBatch> late{};
  std::array<sockaddr_storage, kBatch> late_addr{};
  std::array<iovec, kBatch> late_iov{};
  std::array<mmsghdr, kBatch> late_msg{};
  unsigned late_count = 0;
  event* late_ev = nullptr;

  ~Socket() {
    if (late_ev) event_free(late_ev);
  }
};

UdpServer::UdpServer(event_base* base, RequestHandler& service, const ConnectionIds& ids,
                     Counters& counters)
    : base_(base), service_(service), ids_(ids), counters_(counters) {}

UdpServer::~UdpServer() = default;

Expected<SocketAddress, std::string> UdpServer::listen(const SocketAddress& addr,
                                                       int receive_buffer_bytes) {
  auto s = std::make_unique<Socket>();
  s->server = this;
  s->v6 = addr.ip.is_v6();
  auto bound =
      s->io.open(base_, addr, receive_buffer_bytes, &UdpServer::on_readable, s.get(), "udp");
  if (!bound) return Unexpected(bound.error());
  s->late_ev = event_new(base_, -1, 0, &UdpServer::on_late_flush, s.get());
  if (!s->late_ev)
    return Unexpected("udp " + addr.to_string() + ": cannot register with the event loop");
  sockets_.push_back(std::move(s));
  return *bound;
}

void UdpServer::on_readable(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Socket*>(arg);
  try {
    s->server->drain(*s);
  } catch (...) {
    // Nothing in drain is expected to throw (allocation failure at most); never let it
    // unwind through libevent.
  }
}

void UdpServer::drain(Socket& s) {
  for (unsigned round = 0; round < kBatchesPerWakeup; ++round) {
    for (unsigned i = 0; i < kBatch; ++i)
      point_receive(s.in_msg[i], s.in_addr[i], s.in_iov[i], s.in[i].data(), s.in[i].size());
    int n = ::recvmmsg(s.io.fd(), s.in_msg.data(), kBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // EAGAIN or a transient error: wait for the next readiness
    counters_.inc(Counter::udp_packets_received, static_cast<std::uint64_t>(n));

    const TimePoint now = Clock::now();
    const std::int64_t unix_now = static_cast<std::int64_t>(std::time(nullptr));
    unsigned replies = 0;
    for (int i = 0; i < n; ++i) {
      if (i % SwarmStore::kPrefetchBatch == 0) hint_swarms(s, i, n);
      auto from = from_sockaddr(s.in_addr[static_cast<unsigned>(i)]);
      if (!from) continue;
      std::span<const std::uint8_t> dgram(s.in[static_cast<unsigned>(i)].data(),
                                          s.in_msg[static_cast<unsigned>(i)].msg_len);
      if (s.in_msg[static_cast<unsigned>(i)].msg_hdr.msg_flags & MSG_TRUNC) {
        counters_.inc(Counter::udp_drop_oversized);
        continue;
      }
      std::span<std::uint8_t> out(s.out[replies].data(), s.out[replies].size());
      std::size_t len = 0;
      auto parsed = udp::parse_request(dgram);
      if (!parsed) {
        const auto& err = parsed.error();
        switch (err.kind) {
          case udp::ParseErrorKind::too_short:
            counters_.inc(Counter::udp_drop_too_short);
            break;
          case udp::ParseErrorKind::bad_protocol_id:
            counters_.inc(Counter::udp_drop_bad_protocol_id);
            break;
          case udp::ParseErrorKind::unknown_action:
            counters_.inc(Counter::udp_drop_unknown_action);
            break;
          case udp::ParseErrorKind::bad_scrape_length:
            counters_.inc(Counter::udp_drop_bad_scrape_length);
            break;
          case udp::ParseErrorKind::too_many_hashes:
            counters_.inc(Counter::udp_drop_too_many_hashes);
            break;
          case udp::ParseErrorKind::bad_option:
            counters_.inc(Counter::udp_drop_bad_option);
            break;
          case udp::ParseErrorKind::bad_event:
            counters_.inc(Counter::udp_drop_bad_event);
            break;
        }
        // BEP 15 errors go only to clients that proved their address with a valid id; an
        // unverified source gets nothing (no reflection, no amplification).
        if (err.transaction_id && err.connection_id &&
            ids_.verify(*err.connection_id, from->ip, unix_now)) {
          len =
              udp::write_error(*err.transaction_id,
                               "malformed request: " + std::string(udp::to_string(err.kind)), out);
          counters_.inc(Counter::udp_errors_sent);
        } else if (err.transaction_id && err.connection_id) {
          counters_.inc(Counter::udp_drop_unverified_error);
        }
      } else if (auto* c = std::get_if<udp::ConnectRequest>(&*parsed)) {
        counters_.inc(Counter::udp_connects);
        len = udp::write_connect(c->transaction_id, ids_.issue(from->ip, unix_now), out);
      } else if (auto* a = std::get_if<udp::AnnouncePacket>(&*parsed)) {
        if (!ids_.verify(a->connection_id, from->ip, unix_now)) {
          counters_.inc(Counter::udp_drop_bad_connection_id);
          continue;
        }
        counters_.inc(Counter::udp_announces);
        // BEP 15's ip field is ignored: the source address is the only one a UDP tracker can
        // trust without a proxy in front of it.
        a->request.peer.ip = from->ip;
        a->request.families = s.v6 ? PeerFamilies::v6 : PeerFamilies::v4;
        sync_out_ = out;
        sync_len_ = 0;
        in_batch_ = true;
        ++call_seq_;
        service_.announce(a->request, now,
                          [this, sp = &s, tid = a->transaction_id, to = *from,
                           seq = call_seq_](Expected<AnnounceResponse, std::string>&& r) {
                            complete(*sp, to, seq, [&](std::span<std::uint8_t> dst) {
                              if (r) return udp::write_announce(tid, *r, sp->v6, dst);
                              counters_.inc(Counter::udp_errors_sent);
                              return udp::write_error(tid, r.error(), dst);
                            });
                          });
        in_batch_ = false;
        len = sync_len_;
      } else if (auto* sc = std::get_if<udp::ScrapePacket>(&*parsed)) {
        if (!ids_.verify(sc->connection_id, from->ip, unix_now)) {
          counters_.inc(Counter::udp_drop_bad_connection_id);
          continue;
        }
        counters_.inc(Counter::udp_scrapes);
        ScrapeRequest req;
        req.info_hashes = std::move(sc->info_hashes);
        sync_out_ = out;
        sync_len_ = 0;
        in_batch_ = true;
        ++call_seq_;
        service_.scrape(req, now,
                        [this, sp = &s, tid = sc->transaction_id, to = *from,
                         seq = call_seq_](Expected<ScrapeResponse, std::string> r) {
                          complete(*sp, to, seq, [&](std::span<std::uint8_t> dst) {
                            return r ? udp::write_scrape(tid, *r, dst)
                                     : udp::write_error(tid, r.error(), dst);
                          });
                        });
        in_batch_ = false;
        len = sync_len_;
      }
      if (len == 0) continue;
      s.out_addr[replies] = s.in_addr[static_cast<unsigned>(i)];
      s.out_iov[replies] = {s.out[replies].data(), len};
      point_msg(s.out_msg[replies], s.out_addr[replies],
                s.in_msg[static_cast<unsigned>(i)].msg_hdr.msg_namelen, s.out_iov[replies]);
      ++replies;
    }
    send_batch(s, s.out_msg.data(), replies);
    if (static_cast<unsigned>(n) < kBatch) return;
  }
}

void UdpServer::hint_swarms(const Socket& s, int from, int n) {
  std::array<InfoHash, SwarmStore::kPrefetchBatch> hashes;
  std::size_t count = 0;
  const int end = std::min<int>(n, from + static_cast<int>(SwarmStore::kPrefetchBatch));
  for (int i = from; i < end; ++i) {
    const auto u = static_cast<unsigned>(i);
    if (auto h = udp::peek_announce_info_hash({s.in[u].data(), s.in_msg[u].msg_len}))
      hashes[count++] = *h;
  }
  if (count > 1) service_.prefetch({hashes.data(), count});
}

std::span<std::uint8_t> UdpServer::late_slot(Socket& s) {
  if (s.late_count == kBatch) flush_late(s);  // full: send what is there, reuse the slots
  return {s.late[s.late_count].data(), s.late[s.late_count].size()};
}

void UdpServer::queue_late(Socket& s, const SocketAddress& to, std::size_t len) {
  const unsigned i = s.late_count;
  const socklen_t namelen = to_sockaddr(to, s.late_addr[i]);
  s.late_iov[i] = {s.late[i].data(), len};
  point_msg(s.late_msg[i], s.late_addr[i], namelen, s.late_iov[i]);
  if (s.late_count++ == 0) event_active(s.late_ev, 0, 0);
}

void UdpServer::flush_answers() {
  for (auto& s : sockets_)
    if (s->late_count != 0) flush_late(*s);
}

void UdpServer::flush_late(Socket& s) {
  send_batch(s, s.late_msg.data(), s.late_count);
  s.late_count = 0;
}

void UdpServer::send_batch(Socket& s, mmsghdr* msgs, unsigned count) {
  // A full send buffer drops the rest of this batch; clients retry (BEP 15 timeouts).
  if (const unsigned dropped = send_all(s.io.fd(), msgs, count); dropped != 0)
    counters_.inc(Counter::udp_send_failures, dropped);
}

void UdpServer::on_late_flush(evutil_socket_t, short, void* arg) noexcept {
  auto* s = static_cast<Socket*>(arg);
  s->server->flush_late(*s);
}

}  // namespace ringtracker::tracker
