#include "dht/ring_auth.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <cstring>
#include <string_view>

namespace ringtracker::dht {

namespace {

/// Separates the ring key from other uses of the same cluster secret (connection ids). v2:
/// the GMAC format; v1 keys (HMAC-SHA256 tags) are never accepted by v2 nodes and vice versa.
constexpr std::string_view kRingKeyLabel = "ringtracker ring message key v2";

struct MacFree {
  void operator()(EVP_MAC* m) const { EVP_MAC_free(m); }
};

}  // namespace

std::optional<RingAuth> RingAuth::make(const std::vector<std::string>& secrets) {
  if (secrets.empty()) return std::nullopt;
  std::unique_ptr<EVP_MAC, MacFree> mac(EVP_MAC_fetch(nullptr, "GMAC", nullptr));
  if (!mac) return std::nullopt;
  RingAuth auth;
  for (const auto& secret : secrets) {
    std::array<std::uint8_t, 32> key{};
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
              reinterpret_cast<const unsigned char*>(kRingKeyLabel.data()), kRingKeyLabel.size(),
              key.data(), &len) ||
        len != key.size())
      return std::nullopt;
    CtxPtr ctx(EVP_MAC_CTX_new(mac.get()));
    char cipher[] = "AES-256-GCM";
    std::uint8_t nonce[kNonceBytes] = {};
    const OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER, cipher, 0),
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_IV, nonce, sizeof nonce),
        OSSL_PARAM_construct_end()};
    const bool ok = ctx && EVP_MAC_init(ctx.get(), key.data(), key.size(), params) == 1;
    OPENSSL_cleanse(key.data(), key.size());
    if (!ok) return std::nullopt;
    auth.keys_.push_back(std::move(ctx));
  }
  return auth;
}

bool RingAuth::tag(EVP_MAC_CTX* ctx, const std::uint8_t* nonce,
                   std::span<const std::uint8_t> body, std::uint8_t out[kTagBytes]) {
  // Re-initialised with a new nonce only: the AES key schedule and GHASH tables stay.
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_IV, const_cast<std::uint8_t*>(nonce),
                                        kNonceBytes),
      OSSL_PARAM_construct_end()};
  std::size_t len = 0;
  return EVP_MAC_init(ctx, nullptr, 0, params) == 1 &&
         EVP_MAC_update(ctx, body.data(), body.size()) == 1 &&
         EVP_MAC_final(ctx, out, &len, kTagBytes) == 1 && len == kTagBytes;
}

bool RingAuth::next_nonce(std::uint8_t out[kNonceBytes]) {
  if (!prefix_drawn_ || counter_ == 0xffffffffU) {
    if (RAND_bytes(prefix_.data(), static_cast<int>(prefix_.size())) != 1) return false;
    prefix_drawn_ = true;
    counter_ = 0;
  }
  ++counter_;
  std::memcpy(out, prefix_.data(), prefix_.size());
  out[8] = static_cast<std::uint8_t>(counter_ >> 24);
  out[9] = static_cast<std::uint8_t>(counter_ >> 16);
  out[10] = static_cast<std::uint8_t>(counter_ >> 8);
  out[11] = static_cast<std::uint8_t>(counter_);
  return true;
}

bool RingAuth::sign(std::span<const std::uint8_t> body, std::string& out) {
  std::uint8_t trailer[kOverheadBytes];
  if (!next_nonce(trailer) || !tag(keys_.front().get(), trailer, body, trailer + kNonceBytes))
    return false;
  out.append(reinterpret_cast<const char*>(trailer), sizeof trailer);
  return true;
}

std::optional<std::span<const std::uint8_t>> RingAuth::verify(
    std::span<const std::uint8_t> datagram) {
  if (datagram.size() <= kOverheadBytes) return std::nullopt;
  const auto body = datagram.first(datagram.size() - kOverheadBytes);
  const std::uint8_t* nonce = datagram.data() + body.size();
  const std::uint8_t* expected = nonce + kNonceBytes;
  std::uint8_t t[kTagBytes];
  for (const auto& key : keys_) {
    if (tag(key.get(), nonce, body, t) && CRYPTO_memcmp(t, expected, kTagBytes) == 0) return body;
  }
  return std::nullopt;
}

}  // namespace ringtracker::dht
