// Authentication of ring datagrams with the cluster secrets: AES-256-GMAC tags (AES-GCM over
// the datagram as associated data, nothing encrypted). Pure: no sockets, no clock; the
// transport signs what it sends and verifies what it reads before anything parses it.
//
// Wire: body || nonce (12 bytes) || tag (16 bytes). GMAC hashes ~4x faster than HMAC-SHA256
// on this hardware class (every forwarded announce and its peer list cross it twice), but it
// needs a nonce that never repeats under one key: each RingAuth draws a random 64-bit prefix
// and counts 32 bits behind it, drawing a new prefix before the counter wraps. Two nodes (or
// one node's restarts) repeat a nonce only if they draw the same prefix: odds ~ n^2 / 2^65.
//
// The tag is computed with OpenSSL's GCM128 primitives (GHASH in the CPU's carry-less
// multiply) over an AES-256 block context keyed once: a ring datagram is often a few hundred
// bytes, and re-initialising a generic GMAC object per datagram (parameter lists, lookups by
// name) cost more than hashing it. The output is GMAC's, byte for byte (tested).
#pragma once

#include <openssl/evp.h>
#include <openssl/modes.h>

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
  /// One key: AES-256 in ECB for the block cipher (H and the tag mask, one block per datagram)
  /// and a GCM128 context bound to it, re-used for every datagram.
  struct Key {
    Key() = default;
    Key(const Key&) = delete;
    Key& operator=(const Key&) = delete;
    ~Key();
    EVP_CIPHER_CTX* aes = nullptr;
    GCM128_CONTEXT* gcm = nullptr;
    bool aes_failed = false;  // set by the block function; the tag is then refused
  };

  /// GCM128's block cipher: one AES-256 block through the key's ECB context.
  static void aes_block(const unsigned char in[16], unsigned char out[16], const void* key);
  bool tag(Key& key, const std::uint8_t* nonce, std::span<const std::uint8_t> body,
           std::uint8_t out[kTagBytes]);
  bool next_nonce(std::uint8_t out[kNonceBytes]);

  // First = send key. Boxed: each GCM128 context holds its Key's address.
  std::vector<std::unique_ptr<Key>> keys_;
  std::array<std::uint8_t, 8> prefix_{};
  std::uint32_t counter_ = 0;
  bool prefix_drawn_ = false;
};

}  // namespace ringtracker::dht
