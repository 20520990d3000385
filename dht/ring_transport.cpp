#include "dht/ring_transport.hpp"

#include <sys/socket.h>

#include <cstring>

#include "common/assert.hpp"
#include "common/socket_util.hpp"

namespace ringtracker::dht {

RingTransport::RingTransport(event_base* base, Hooks hooks)
    : base_(base), hooks_(std::move(hooks)), buffer_(kDatagramMax + 1, '\0') {}

RingTransport::~RingTransport() {
  if (timer_ev_) event_free(timer_ev_);
}

Expected<SocketAddress, std::string> RingTransport::open(const SocketAddress& bind) {
  auto bound = socket_.open(base_, bind, kSocketBufferBytes, &RingTransport::on_readable, this,
                            "udp");
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

void RingTransport::send(const SocketAddress& to, std::span<const std::uint8_t> bytes) {
  if (auth_) {
    out_.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (!auth_->sign(bytes, out_)) {
      ++send_failures_;
      return;
    }
    bytes = {reinterpret_cast<const std::uint8_t*>(out_.data()), out_.size()};
  }
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(to, ss);
  if (::sendto(socket_.fd(), bytes.data(), bytes.size(), MSG_DONTWAIT,
               reinterpret_cast<sockaddr*>(&ss), len) < 0)
    ++send_failures_;
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
    for (int i = 0; i < kReadsPerWakeup; ++i) {
      sockaddr_storage ss;
      socklen_t slen = sizeof ss;
      ssize_t n = ::recvfrom(self->socket_.fd(), self->buffer_.data(), self->buffer_.size(),
                             MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), &slen);
      if (n < 0) return;
      if (static_cast<std::size_t>(n) > kDatagramMax) {
        ++self->oversized_drops_;
        continue;
      }
      auto from = from_sockaddr(ss);
      if (!from) continue;
      std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(self->buffer_.data()),
                                          static_cast<std::size_t>(n));
      if (self->auth_) {
        // Checked before anything parses the bytes: unauthenticated input costs one tag.
        auto body = self->auth_->verify(bytes);
        if (!body) {
          ++self->unauthenticated_drops_;
          continue;
        }
        bytes = *body;
      }
      self->hooks_.on_datagram(Clock::now(), *from, bytes);
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
