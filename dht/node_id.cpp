// SHA-1 through OpenSSL's EVP interface (the low-level SHA1() is deprecated in OpenSSL 3). The
// digest object is fetched once and a context is kept per thread: ids are hashed on every
// received ring message, so the per-call fetch of EVP_Digest would dominate.
#include "dht/node_id.hpp"

#include <openssl/evp.h>

#include <charconv>
#include <cstring>

#include "common/assert.hpp"

namespace ringtracker::dht {
namespace {

struct Sha1Context {
  EVP_MD* md = nullptr;
  EVP_MD_CTX* ctx = nullptr;
  Sha1Context() {
    md = EVP_MD_fetch(nullptr, "SHA1", nullptr);
    ctx = EVP_MD_CTX_new();
    RT_ASSERT(md != nullptr && ctx != nullptr);
  }
  ~Sha1Context() {
    EVP_MD_CTX_free(ctx);
    EVP_MD_free(md);
  }
  Sha1Context(const Sha1Context&) = delete;
  Sha1Context& operator=(const Sha1Context&) = delete;
};

std::array<std::uint8_t, NodeId::kBytes> sha1(std::string_view text) {
  thread_local Sha1Context c;
  std::array<std::uint8_t, NodeId::kBytes> out{};
  unsigned int len = 0;
  // A failing SHA-1 means a broken crypto library, not bad input: nothing sensible can follow.
  RT_ASSERT(EVP_DigestInit_ex2(c.ctx, c.md, nullptr) == 1);
  RT_ASSERT(EVP_DigestUpdate(c.ctx, text.data(), text.size()) == 1);
  RT_ASSERT(EVP_DigestFinal_ex(c.ctx, out.data(), &len) == 1);
  RT_ASSERT(len == NodeId::kBytes);
  return out;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

NodeId NodeId::from_address(const SocketAddress& address, std::uint16_t vnode) {
  std::string text = address.to_string();
  if (vnode != 0) {
    char buf[8];
    auto [p, ec] = std::to_chars(buf, buf + sizeof buf, vnode);
    (void)ec;
    text.push_back('#');
    text.append(buf, p);
  }
  return NodeId(sha1(text));
}

std::optional<NodeId> NodeId::from_bytes(std::span<const std::uint8_t> bytes) {
  if (bytes.size() != kBytes) return std::nullopt;
  std::array<std::uint8_t, kBytes> a{};
  std::memcpy(a.data(), bytes.data(), kBytes);
  return NodeId(a);
}

std::optional<NodeId> NodeId::from_bytes(std::string_view bytes) {
  return from_bytes(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
}

std::optional<NodeId> NodeId::from_hex(std::string_view hex) {
  if (hex.size() != 2 * kBytes) return std::nullopt;
  std::array<std::uint8_t, kBytes> a{};
  for (std::size_t i = 0; i < kBytes; ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    a[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return NodeId(a);
}

NodeId NodeId::pow2(int i) {
  RT_ASSERT(i >= 0 && i < kBits);
  std::array<std::uint8_t, kBytes> a{};
  a[kBytes - 1 - static_cast<std::size_t>(i / 8)] = static_cast<std::uint8_t>(1u << (i % 8));
  return NodeId(a);
}

std::string NodeId::to_hex() const {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s(2 * kBytes, '0');
  for (std::size_t i = 0; i < kBytes; ++i) {
    s[2 * i] = kDigits[bytes_[i] >> 4];
    s[2 * i + 1] = kDigits[bytes_[i] & 0xf];
  }
  return s;
}

std::uint64_t NodeId::prefix64() const {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = v << 8 | bytes_[i];
  return v;
}

NodeId NodeId::plus(const NodeId& other) const {
  std::array<std::uint8_t, kBytes> a{};
  unsigned carry = 0;
  for (std::size_t i = kBytes; i-- > 0;) {
    unsigned s = unsigned{bytes_[i]} + unsigned{other.bytes_[i]} + carry;
    a[i] = static_cast<std::uint8_t>(s);
    carry = s >> 8;
  }
  return NodeId(a);
}

NodeId NodeId::distance(const NodeId& from, const NodeId& to) {
  std::array<std::uint8_t, kBytes> a{};
  int borrow = 0;
  for (std::size_t i = kBytes; i-- > 0;) {
    int d = int{to.bytes_[i]} - int{from.bytes_[i]} - borrow;
    borrow = d < 0 ? 1 : 0;
    a[i] = static_cast<std::uint8_t>(d + (borrow ? 256 : 0));
  }
  return NodeId(a);
}

int NodeId::log2_floor() const {
  for (std::size_t i = 0; i < kBytes; ++i) {
    if (bytes_[i] != 0) {
      int top = 7;
      while (!(bytes_[i] & (1u << top))) --top;
      return static_cast<int>((kBytes - 1 - i) * 8) + top;
    }
  }
  return -1;
}

bool NodeId::is_zero() const {
  for (auto b : bytes_)
    if (b) return false;
  return true;
}

bool in_open(const NodeId& x, const NodeId& a, const NodeId& b) {
  if (a < b) return a < x && x < b;
  if (a == b) return x != a;
  return a < x || x < b;  // the arc wraps past zero
}

bool in_half_open(const NodeId& x, const NodeId& a, const NodeId& b) {
  if (a < b) return a < x && x <= b;
  if (a == b) return true;
  return a < x || x <= b;
}

bool verify(const NodeId& id, const SocketAddress& address, std::uint16_t vnode) {
  return NodeId::from_address(address, vnode) == id;
}

}  // namespace ringtracker::dht
