#include "dht/ring_transport.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <cstring>

#include "common/assert.hpp"
#include "common/socket_util.hpp"

namespace ringtracker::dht {

RingTransport::RingTransport(event_base* base, Hooks hooks)
    : base_(base), hooks_(std::move(hooks)), buffer_(kDatagramMax + 1, '\0') {}

RingTransport::~RingTransport() {
  if (read_ev_) event_free(read_ev_);
  if (timer_ev_) event_free(timer_ev_);
  if (fd_ >= 0) ::close(fd_);
}

Expected<SocketAddress, std::string> RingTransport::open(const SocketAddress& bind) {
  auto fd = open_udp_socket(bind, kSocketBufferBytes);
  if (!fd) return Unexpected("ring " + fd.error());
  fd_ = *fd;
  int sndbuf = kSocketBufferBytes;
  (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
  auto bound = local_address(fd_);
  if (!bound) return Unexpected("ring " + bound.error());
  read_ev_ = event_new(base_, fd_, EV_READ | EV_PERSIST, &RingTransport::on_readable, this);
  timer_ev_ = evtimer_new(base_, &RingTransport::on_timer, this);
  if (!read_ev_ || !timer_ev_ || event_add(read_ev_, nullptr) != 0)
    return Unexpected(std::string("ring: cannot register with the event loop"));
  return *bound;
}

namespace {

/// Label that separates the ring key from other uses of the same cluster secret.
constexpr std::string_view kRingKeyLabel = "ringtracker ring message key v1";

/// HMAC-SHA256 of `bytes` under the key `ctx` was initialised with (re-initialised with the
/// same key: no algorithm fetch or key schedule per datagram).
bool tag(EVP_MAC_CTX* ctx, std::span<const std::uint8_t> bytes, std::uint8_t out[32]) {
  std::size_t len = 0;
  return EVP_MAC_init(ctx, nullptr, 0, nullptr) == 1 &&
         EVP_MAC_update(ctx, bytes.data(), bytes.size()) == 1 &&
         EVP_MAC_final(ctx, out, &len, 32) == 1 && len == 32;
}

}  // namespace

bool RingTransport::set_secrets(const std::vector<std::string>& secrets) {
  keys_.clear();
  for (const auto& secret : secrets) {
    std::array<std::uint8_t, 32> key{};
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
              reinterpret_cast<const unsigned char*>(kRingKeyLabel.data()), kRingKeyLabel.size(),
              key.data(), &len) ||
        len != key.size())
      return false;
    if (!mac_) mac_.reset(EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    if (!mac_) return false;
    MacCtxPtr ctx(EVP_MAC_CTX_new(mac_.get()));
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                                 OSSL_PARAM_construct_end()};
    if (!ctx || EVP_MAC_init(ctx.get(), key.data(), key.size(), params) != 1) return false;
    keys_.push_back(std::move(ctx));
  }
  return true;
}

void RingTransport::send(const SocketAddress& to, std::span<const std::uint8_t> bytes) {
  if (!keys_.empty()) {
    std::uint8_t t[32];
    if (!tag(keys_.front().get(), bytes, t)) {
      ++send_failures_;
      return;
    }
    out_.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    out_.append(reinterpret_cast<const char*>(t), kTagBytes);
    bytes = {reinterpret_cast<const std::uint8_t*>(out_.data()), out_.size()};
  }
  sockaddr_storage ss;
  socklen_t len = to_sockaddr(to, ss);
  if (::sendto(fd_, bytes.data(), bytes.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss),
               len) < 0)
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
      ssize_t n = ::recvfrom(self->fd_, self->buffer_.data(), self->buffer_.size(), MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&ss), &slen);
      if (n < 0) return;
      if (static_cast<std::size_t>(n) > kDatagramMax) {
        ++self->oversized_drops_;
        continue;
      }
      auto from = from_sockaddr(ss);
      if (!from) continue;
      std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(self->buffer_.data()),
                                          static_cast<std::size_t>(n));
      if (!self->keys_.empty()) {
        // Check the tag before anything parses the bytes: unauthenticated input costs one HMAC.
        bool ok = false;
        if (bytes.size() > kTagBytes) {
          auto body = bytes.first(bytes.size() - kTagBytes);
          std::uint8_t t[32];
          for (const auto& key : self->keys_) {
            if (tag(key.get(), body, t) &&
                CRYPTO_memcmp(t, bytes.data() + body.size(), kTagBytes) == 0) {
              ok = true;
              break;
            }
          }
          bytes = body;
        }
        if (!ok) {
          ++self->unauthenticated_drops_;
          continue;
        }
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
