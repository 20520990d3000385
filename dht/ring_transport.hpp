// The libevent edge of the ring: one UDP socket and one timer. It moves datagrams in and out
// and reads the clock; what the bytes mean and when to wake is the caller's (RingNode and the
// data layer, glued by the daemon). No protocol logic here.
#pragma once

#include <event2/event.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/clock.hpp"
#include "common/event_udp_socket.hpp"
#include "common/expected.hpp"
#include "common/net_address.hpp"
#include "dht/ring_auth.hpp"
#include "dht/yield_governor.hpp"

namespace ringtracker::dht {

class RingTransport {
 public:
  /// Largest datagram accepted (the ring's message limit, MessageLimits::kBytesMax).
  static constexpr std::size_t kDatagramMax = 65507;
  /// Datagrams read per readiness callback before yielding to other events.
  static constexpr int kReadsPerWakeup = 256;
  /// Datagrams read per recvmmsg call (each slot holds a datagram of kDatagramMax bytes).
  static constexpr unsigned kReceiveBatch = 16;
  /// Datagrams queued by queue() before they leave in one sendmmsg without waiting for flush().
  static constexpr unsigned kSendBatch = 64;
  /// Socket buffers: replication bursts must not be dropped by the kernel.
  static constexpr int kSocketBufferBytes = 4 * 1024 * 1024;

  struct Hooks {
    /// A datagram arrived.
    std::function<void(TimePoint now, const SocketAddress& from, std::span<const std::uint8_t>)>
        on_datagram;
    /// The armed timer fired.
    std::function<void(TimePoint now)> on_timer;
  };

  RingTransport(event_base* base, Hooks hooks);
  ~RingTransport();  // flushes what is queued
  RingTransport(const RingTransport&) = delete;
  RingTransport& operator=(const RingTransport&) = delete;

  /// Binds the ring socket (port 0 picks one) and returns the bound address.
  Expected<SocketAddress, std::string> open(const SocketAddress& bind);
  /// Queues one datagram (copied, and signed when secrets are set); it leaves at the next
  /// flush(), or at once with the others queued when kSendBatch are waiting. Failures are
  /// counted, never thrown (the ring retransmits).
  void queue(const SocketAddress& to, std::span<const std::uint8_t> bytes);
  /// Sends every queued datagram, in the order queued, with as few sendmmsg calls as the socket
  /// allows: the datagrams of one event-loop pass leave together, so a node on the same core
  /// that one of them wakes runs once, not once per datagram. A datagram the socket refuses is
  /// counted and skipped; the rest still go. Then, if set_yield_after_send(true), the kernel
  /// took at least one datagram and the YieldGovernor lets it (not paused, or a probe during a
  /// pause), yields the CPU once (sched_yield; see there) and tells the governor how long that
  /// took.
  void flush();
  /// Whether flush() yields the CPU after sending. Nodes that share a core (a ring on one
  /// machine) then take turns a whole event-loop pass each: the nodes just woken answer
  /// everything this pass sent them before this node reads its next requests, so its next
  /// pass has gathered more of them and its forward batches are larger (fewer datagrams, wake-ups
  /// and switches per request). Alone on its core the yield returns at once. Another busy
  /// program on the core is handed it too, for a whole slice: the governor notices those long
  /// yields and pauses yielding until its probes are short again. Off unless set (the daemon
  /// sets it from cluster.yield_after_send, on by default).
  void set_yield_after_send(bool on) { yield_after_send_ = on; }
  /// Times flush() yielded the CPU.
  std::uint64_t yields() const { return yields_; }
  /// Yields that took YieldGovernor::kLongYield or more, pauses they caused, and yields that
  /// were probes during a pause (counted in yields() too).
  std::uint64_t long_yields() const { return governor_.long_yields(); }
  std::uint64_t yield_pauses() const { return governor_.pauses(); }
  std::uint64_t yield_probes() const { return governor_.probes(); }
  /// (Re)arms the single timer for `when` (TimePoint::max() disarms it).
  void arm(TimePoint when);
  /// Authenticates ring traffic with the cluster secrets (RingAuth: a GMAC tag under the first
  /// secret's key on every datagram sent; a datagram received is accepted when its tag verifies
  /// under any secret's key, else dropped and counted). No secrets = no tags (a trusted
  /// network). False when OpenSSL fails.
  bool set_secrets(const std::vector<std::string>& secrets);

  std::uint64_t unauthenticated_drops() const { return unauthenticated_drops_; }

  std::uint64_t send_failures() const { return send_failures_; }
  std::uint64_t oversized_drops() const { return oversized_drops_; }

 private:
  /// Hands the queue to the kernel; returns how many datagrams it took.
  unsigned send_queued();
  static void on_readable(evutil_socket_t fd, short what, void* arg) noexcept;
  static void on_timer(evutil_socket_t fd, short what, void* arg) noexcept;

  event_base* base_;
  Hooks hooks_;
  EventUdpSocket socket_;
  event* timer_ev_ = nullptr;
  TimePoint armed_ = TimePoint::max();
  /// Receive slots for recvmmsg (kDatagramMax + 1 bytes each, so that a longer datagram shows).
  std::vector<std::string> in_;
  std::array<sockaddr_storage, kReceiveBatch> in_addr_{};
  std::array<iovec, kReceiveBatch> in_iov_{};
  std::array<mmsghdr, kReceiveBatch> in_msg_{};
  /// Send queue: datagram bytes (+ nonce and tag) per slot, kept allocated between flushes.
  std::array<std::string, kSendBatch> out_{};
  std::array<sockaddr_storage, kSendBatch> out_addr_{};
  std::array<iovec, kSendBatch> out_iov_{};
  std::array<mmsghdr, kSendBatch> out_msg_{};
  unsigned queued_ = 0;
  bool yield_after_send_ = false;
  YieldGovernor governor_;
  std::uint64_t yields_ = 0;
  std::uint64_t send_failures_ = 0;
  std::uint64_t oversized_drops_ = 0;
  std::uint64_t unauthenticated_drops_ = 0;
  std::optional<RingAuth> auth_;
};

}  // namespace ringtracker::dht
