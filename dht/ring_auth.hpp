// Authentication of ring datagrams with the cluster secrets: AES-256-GMAC tags (AES-GCM over
// the datagram as associated data, nothing encrypted). Pure: no sockets, no clock; the
// transport signs what it sends and verifies what it reads before anything parses it.
//
// Wire: body || nonce (12 bytes) || tag (16 bytes). GMAC hashes ~4x faster than HMAC-SHA256
// on this hardware class (every forwarded announce and its peer list cross it twice), but it
// needs a nonce that never repeats under one key: each RingAuth draws a random 64-bit prefix
// and counts 32 bits behind it, drawing a new prefix before the counter wraps. Two nodes (or
// one node's restarts) repeat a nonce only if they draw the same prefix: odds ~ n^2 / 2^65.
#pragma once

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace ringtracker::dht {

class RingAuth {
 public:
  static constexpr std::size_t kNonceBytes = 12;
  static constexpr std::size_t kTagBytes = 16;  // 128-bit tag: forgery odds 2^-128 per try
  static constexpr std::size_t kOverheadBytes = kNonceBytes + kTagBytes;

  /// Keys from the cluster secrets; the first signs, every one verifies (rotation with
  /// overlap). nullopt when OpenSSL fails or `secrets` is empty.
  static std::optional<RingAuth> make(const std::vector<std::string>& secrets);

  /// Appends nonce and tag of `body` to `out` (which must already hold `body` at its end or
  /// elsewhere: only the tag's input is `body`). False on an OpenSSL failure.
  bool sign(std::span<const std::uint8_t> body, std::string& out);
  /// The body of an authentic datagram, or nullopt (too short, or no key's tag matches).
  std::optional<std::span<const std::uint8_t>> verify(std::span<const std::uint8_t> datagram);

 private:
  struct CtxFree {
    void operator()(EVP_MAC_CTX* c) const { EVP_MAC_CTX_free(c); }
  };
  using CtxPtr = std::unique_ptr<EVP_MAC_CTX, CtxFree>;

  bool tag(EVP_MAC_CTX* ctx, const std::uint8_t* nonce, std::span<const std::uint8_t> body,
           std::uint8_t out[kTagBytes]);
  bool next_nonce(std::uint8_t out[kNonceBytes]);

  std::vector<CtxPtr> keys_;  // first = send key
  std::array<std::uint8_t, 8> prefix_{};
  std::uint32_t counter_ = 0;
  bool prefix_drawn_ = false;
};

}  // namespace ringtracker::dht
