#include "dht/ring_auth.hpp"

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>
#include <string_view>

namespace ringtracker::dht {

namespace {

/// Separates the ring key from other uses of the same cluster secret (connection ids). v2:
/// the GMAC format; v1 keys (HMAC-SHA256 tags) are never accepted by v2 nodes and vice versa.
constexpr std::string_view kRingKeyLabel = "ringtracker ring message key v2";
constexpr std::size_t kBlockBytes = 16;

}  // namespace

RingAuth::Key::~Key() {
  if (gcm) CRYPTO_gcm128_release(gcm);
  if (aes) EVP_CIPHER_CTX_free(aes);
}

void RingAuth::aes_block(const unsigned char in[16], unsigned char out[16], const void* key) {
  // GCM128 hands back the pointer it was given: a Key owned by a RingAuth, never const.
  auto* k = static_cast<Key*>(const_cast<void*>(key));
  int len = 0;
  if (EVP_EncryptUpdate(k->aes, out, &len, in, static_cast<int>(kBlockBytes)) != 1 ||
      len != static_cast<int>(kBlockBytes))
    k->aes_failed = true;
}

std::optional<RingAuth> RingAuth::make(const std::vector<std::string>& secrets) {
  if (secrets.empty()) return std::nullopt;
  RingAuth auth;
  for (const auto& secret : secrets) {
    std::array<std::uint8_t, 32> key{};
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
              reinterpret_cast<const unsigned char*>(kRingKeyLabel.data()), kRingKeyLabel.size(),
              key.data(), &len) ||
        len != key.size())
      return std::nullopt;
    auto k = std::make_unique<Key>();
    k->aes = EVP_CIPHER_CTX_new();
    bool ok = k->aes != nullptr &&
              EVP_EncryptInit_ex(k->aes, EVP_aes_256_ecb(), nullptr, key.data(), nullptr) == 1 &&
              EVP_CIPHER_CTX_set_padding(k->aes, 0) == 1;
    OPENSSL_cleanse(key.data(), key.size());
    if (ok) k->gcm = CRYPTO_gcm128_new(k.get(), &RingAuth::aes_block);
    if (!ok || !k->gcm || k->aes_failed) return std::nullopt;
    auth.keys_.push_back(std::move(k));
  }
  return auth;
}

bool RingAuth::tag(Key& key, const std::uint8_t* nonce, std::span<const std::uint8_t> body,
                   std::uint8_t out[kTagBytes]) {
  // GMAC: GCM with the body as associated data and nothing to encrypt.
  key.aes_failed = false;
  CRYPTO_gcm128_setiv(key.gcm, nonce, kNonceBytes);
  if (CRYPTO_gcm128_aad(key.gcm, body.data(), body.size()) != 0) return false;
  CRYPTO_gcm128_tag(key.gcm, out, kTagBytes);
  return !key.aes_failed;
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
  if (!next_nonce(trailer) || !tag(*keys_.front(), trailer, body, trailer + kNonceBytes))
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
    if (tag(*key, nonce, body, t) && CRYPTO_memcmp(t, expected, kTagBytes) == 0) return body;
  }
  return std::nullopt;
}

}  // namespace ringtracker::dht
