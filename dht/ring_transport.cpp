#include "dht/ring_transport.hpp"

#include <sched.h>
#include <sys/socket.h>

#include <cstring>

#include "common/assert.hpp"
#include "common/socket_util.hpp"

namespace ringtracker::dht {

RingTransport::RingTransport(event_base* base, Hooks hooks)
    : base_(base),
      hooks_(std::move(hooks)),
      in_(kReceiveBatch, std::string(kDatagramMax + 1, '\0')) {}

RingTransport::~RingTransport() {
  if (socket_.fd() >= 0) send_queued();
  if (timer_ev_) event_free(timer_ev_);
}

Expected<SocketAddress, std::string> RingTransport::open(const SocketAddress& bind) {
  auto bound =
      socket_.open(base_, bind, kSocketBufferBytes, &RingTransport::on_readable, this, "udp");
  if (!bound) return Unexpected("ring " + bound.error());
  int sndbuf = kSocketBufferBytes;
  (void)::setsockopt(socket_.fd(), SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  timer_ev_ = evtimer_new(base_, &RingTransport::on_timer, this);
  if (!timer_ev_) return Unexpected(std::string("ring: cannot register with the event loop"));
  return *bound;
}

bool RingTransport::set_secrets(const std::vector<std::string>& secrets) {
  auth_.reset();
  if (secrets.empty()) return true;
  auth_ = RingAuth::make(secrets);
  return auth_.has_value();
}

void RingTransport::queue(const SocketAddress& to, std::span<const std::uint8_t> bytes) {
  if (queued_ == kSendBatch) send_queued();
  std::string& out = out_[queued_];
  out.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  if (auth_ && !auth_->sign(bytes, out)) {
    ++send_failures_;
    return;
  }
  const socklen_t len = to_sockaddr(to, out_addr_[queued_]);
  out_iov_[queued_] = {out.data(), out.size()};
  point_msg(out_msg_[queued_], out_addr_[queued_], len, out_iov_[queued_]);
  ++queued_;
}

unsigned RingTransport::send_queued() {
  unsigned done = 0;
  unsigned accepted = 0;
  while (done < queued_) {
    const int m = ::sendmmsg(socket_.fd(), out_msg_.data() + done, queued_ - done, MSG_DONTWAIT);
    if (m > 0) {
      done += static_cast<unsigned>(m);
      accepted += static_cast<unsigned>(m);
    } else {
      ++send_failures_;  // the first remaining datagram was refused: skip it, send the others
      ++done;
    }
  }
  queued_ = 0;
  return accepted;
}

void RingTransport::flush() {
  const unsigned accepted = send_queued();
  if (!yield_after_send_ || accepted == 0) return;
  const TimePoint before = Clock::now();
  if (!governor_.should_yield(before)) return;
  ::sched_yield();
  ++yields_;
  const TimePoint after = Clock::now();
  governor_.record(after - before, after);
}

void RingTransport::arm(TimePoint when) {
  if (!timer_ev_) return;
  if (when == armed_ && evtimer_pending(timer_ev_, nullptr)) return;
  armed_ = when;
  if (when == TimePoint::max()) {
    evtimer_del(timer_ev_);
    return;
  }
  auto delay = when - Clock::now();
  if (delay < Duration::zero()) delay = Duration::zero();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(delay).count();
  timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
  evtimer_add(timer_ev_, &tv);
}

void RingTransport::on_readable(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<RingTransport*>(arg);
  try {
    for (int read = 0; read < kReadsPerWakeup;) {
      for (unsigned i = 0; i < kReceiveBatch; ++i)
        point_receive(self->in_msg_[i], self->in_addr_[i], self->in_iov_[i], self->in_[i].data(),
                      self->in_[i].size());
      const int n = ::recvmmsg(self->socket_.fd(), self->in_msg_.data(), kReceiveBatch,
                               MSG_DONTWAIT, nullptr);
      if (n <= 0) return;
      read += n;
      const TimePoint now = Clock::now();
      for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
        const mmsghdr& m = self->in_msg_[i];
        if (m.msg_len > kDatagramMax || (m.msg_hdr.msg_flags & MSG_TRUNC)) {
          ++self->oversized_drops_;
          continue;
        }
        auto from = from_sockaddr(self->in_addr_[i]);
        if (!from) continue;
        std::span<const std::uint8_t> bytes(
            reinterpret_cast<const std::uint8_t*>(self->in_[i].data()), m.msg_len);
        if (self->auth_) {
          // Checked before anything parses the bytes: unauthenticated input costs one tag.
          auto body = self->auth_->verify(bytes);
          if (!body) {
            ++self->unauthenticated_drops_;
            continue;
          }
          bytes = *body;
        }
        self->hooks_.on_datagram(now, *from, bytes);
      }
      if (static_cast<unsigned>(n) < kReceiveBatch) return;
    }
  } catch (...) {
    // Never unwind through libevent; the ring tolerates a lost datagram.
  }
}

void RingTransport::on_timer(evutil_socket_t, short, void* arg) noexcept {
  auto* self = static_cast<RingTransport*>(arg);
  self->armed_ = TimePoint::max();
  try {
    self->hooks_.on_timer(Clock::now());
  } catch (...) {
  }
}

}  // namespace ringtracker::dht
