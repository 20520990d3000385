#include "tracker/connection_id.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ringtracker::tracker {

namespace {

constexpr std::uint64_t rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline std::uint64_t load_le64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct SipState {
  std::uint64_t v0, v1, v2, v3;
  void round() {
    v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32);
    v2 += v3; v3 = rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32);
  }
  void compress(std::uint64_t m) {
    v3 ^= m;
    round();  // SipHash-2-4: c = 2 compression rounds
    round();
    v0 ^= m;
  }
};

// The 16 low bits of the issue second sit above the 48 MAC bits.
constexpr int kTimeShift = 48;
constexpr std::uint64_t kMacMask = (std::uint64_t{1} << kTimeShift) - 1;
constexpr std::uint64_t kTimeModulus = std::uint64_t{1} << 16;

}  // namespace

std::uint64_t siphash24(const std::array<std::uint8_t, 16>& key,
                        std::span<const std::uint8_t> data) {
  const std::uint64_t k0 = load_le64(key.data());
  const std::uint64_t k1 = load_le64(key.data() + 8);
  // SipHash paper, section 2: initialisation constants ("somepseudorandomlygeneratedbytes").
  SipState s{k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
             k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
  const std::size_t full = data.size() / 8 * 8;
  for (std::size_t i = 0; i < full; i += 8) s.compress(load_le64(data.data() + i));
  // Last block: remaining bytes little-endian, message length mod 256 in the top byte.
  std::uint64_t b = static_cast<std::uint64_t>(data.size() & 0xff) << 56;
  for (std::size_t i = full; i < data.size(); ++i)
    b |= static_cast<std::uint64_t>(data[i]) << (8 * (i - full));
  s.compress(b);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();  // d = 4 finalization rounds
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

Expected<ConnectionIds, std::string> ConnectionIds::try_from_secrets(
    const std::vector<std::string>& secrets, std::chrono::seconds window) {
  RT_ASSERT(window.count() >= 1 && window <= kWindowMax);
  std::vector<Key> keys;
  if (secrets.empty()) {
    Key k{};
    if (RAND_bytes(k.data(), static_cast<int>(k.size())) != 1)
      return Unexpected(std::string("connection ids: the random generator failed"));
    keys.push_back(k);
    return ConnectionIds(std::move(keys), window);
  }
  for (const auto& secret : secrets) {
    if (secret.empty())
      return Unexpected(std::string("connection ids: a cluster secret is empty"));
    std::array<std::uint8_t, 32> digest{};
    std::size_t digest_len = 0;
    // HMAC-SHA256(secret, label) as a PRF: the secret is the key, so nodes sharing it derive
    // the same id key, and the label keeps this key apart from any other use of the secret.
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, secret.data(), secret.size(),
                  reinterpret_cast<const unsigned char*>(kKeyLabel.data()), kKeyLabel.size(),
                  digest.data(), digest.size(), &digest_len) == nullptr ||
        digest_len != digest.size())
      return Unexpected(std::string("connection ids: key derivation (HMAC-SHA256) failed"));
    Key k{};
    std::memcpy(k.data(), digest.data(), k.size());
    keys.push_back(k);
  }
  return ConnectionIds(std::move(keys), window);
}

ConnectionIds ConnectionIds::from_secrets(const std::vector<std::string>& secrets,
                                          std::chrono::seconds window) {
  auto ids = try_from_secrets(secrets, window);
  if (!ids) {
    std::fprintf(stderr, "%s\n", ids.error().c_str());
    std::exit(EXIT_FAILURE);
  }
  return std::move(ids).value();
}

std::uint64_t ConnectionIds::mac48(const Key& key, const IpAddress& client,
                                   std::int64_t issued_s) {
  // be64(issue second) || IP bytes: at most 8 + 16 bytes, no allocation.
  std::array<std::uint8_t, 24> msg{};
  const auto t = static_cast<std::uint64_t>(issued_s);
  for (int i = 0; i < 8; ++i) msg[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(t >> (56 - 8 * i));
  std::memcpy(msg.data() + 8, client.data(), client.size());
  return siphash24(key, std::span<const std::uint8_t>(msg.data(), 8 + client.size())) & kMacMask;
}

std::uint64_t ConnectionIds::issue(const IpAddress& client, std::int64_t unix_now_s) const {
  const auto low_time = static_cast<std::uint64_t>(unix_now_s) % kTimeModulus;
  return (low_time << kTimeShift) | mac48(keys_.front(), client, unix_now_s);
}

bool ConnectionIds::verify(std::uint64_t id, const IpAddress& client,
                           std::int64_t unix_now_s) const {
  // Rebuild the full issue second: the latest second <= now + skew whose low 16 bits match.
  // kWindowMax keeps [now - window, now + skew] inside one 2^16 cycle, so this is unambiguous.
  const std::uint64_t low_time = id >> kTimeShift;
  const auto latest = static_cast<std::uint64_t>(unix_now_s + kClockSkewMax.count());
  const std::uint64_t back = (latest - low_time) % kTimeModulus;
  const auto issued = static_cast<std::int64_t>(latest - back);
  const std::int64_t age = unix_now_s - issued;
  if (age > window_.count()) return false;  // age >= -skew holds by construction
  const std::uint64_t mac = id & kMacMask;
  for (const auto& key : keys_) {
    if (mac48(key, client, issued) == mac) return true;
  }
  return false;
}

}  // namespace ringtracker::tracker
