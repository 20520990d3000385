// The BEP 15 front end: non-blocking UDP sockets on a libevent loop, batched with
// recvmmsg/sendmmsg. It owns sockets and the per-batch clock reading; parsing is udp_codec's,
// logic is the RequestHandler's. Every datagram either gets its answer or is a counted drop.
#pragma once

#include <event2/event.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "tracker/connection_id.hpp"
#include "tracker/counters.hpp"
#include "tracker/request_handler.hpp"

namespace ringtracker::tracker {

class UdpServer {
 public:
  /// Datagrams read per recvmmsg call; also the reply batch for sendmmsg.
  static constexpr unsigned kBatch = 64;
  /// Batches handled per readiness callback before yielding to other events (fairness).
  static constexpr unsigned kBatchesPerWakeup = 16;

  UdpServer(event_base* base, RequestHandler& service, const ConnectionIds& ids,
            Counters& counters);
  ~UdpServer();
  UdpServer(const UdpServer&) = delete;
  UdpServer& operator=(const UdpServer&) = delete;

  /// Binds one socket (port 0 picks a free port) and returns the bound address.
  Expected<SocketAddress, std::string> listen(const SocketAddress& addr, int receive_buffer_bytes);

  /// Sends the late answers (those from the ring) queued so far now, instead of at the end of
  /// the event-loop pass: a ring node about to hand the CPU to its owners lets its clients'
  /// answers leave first, so that their next requests are there when it runs again.
  void flush_answers();

 private:
  struct Socket;
  static void on_readable(evutil_socket_t fd, short what, void* arg) noexcept;
  void drain(Socket& s);
  /// Tells the handler the info-hashes of the announces among datagrams [from, from +
  /// SwarmStore::kPrefetchBatch) of this batch (only when there are several to overlap).
  void hint_swarms(const Socket& s, int from, int n);
  /// A completion writes its reply into the current batch while the handler answers
  /// synchronously; a late one (an answer from the ring) into late_slot(), then queue_late()
  /// adds it to the socket's late batch, sent by flush_late() at the end of the loop pass (or
  /// at once when the batch is full).
  template <class Write>
  void complete(Socket& s, const SocketAddress& to, std::uint64_t seq, Write write) {
    const bool now_in_batch = in_batch_ && seq == call_seq_;
    const std::size_t written = write(now_in_batch ? sync_out_ : late_slot(s));
    if (now_in_batch) {
      sync_len_ = written;
    } else {
      queue_late(s, to, written);
    }
  }
  std::span<std::uint8_t> late_slot(Socket& s);
  void queue_late(Socket& s, const SocketAddress& to, std::size_t len);
  void flush_late(Socket& s);
  static void on_late_flush(evutil_socket_t fd, short what, void* arg) noexcept;
  /// sendmmsg until all are out; a failure drops (and counts) the rest.
  void send_batch(Socket& s, mmsghdr* msgs, unsigned count);
  std::span<std::uint8_t> sync_out_;
  std::size_t sync_len_ = 0;
  bool in_batch_ = false;
  std::uint64_t call_seq_ = 0;  // tells a completion for this call from a late one

  event_base* base_;
  RequestHandler& service_;
  const ConnectionIds& ids_;
  Counters& counters_;
  std::vector<std::unique_ptr<Socket>> sockets_;
};

}  // namespace ringtracker::tracker
