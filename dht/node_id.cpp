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

NodeId NodeId::sha1_of(std::string_view bytes) { return NodeId(sha1(bytes)); }

NodeId NodeId::from_address(const SocketAddress& address, std::uint16_t vnode) {
  // The text is exactly SocketAddress::to_string(); IPv4 is formatted here without the
  // inet_ntop/sprintf round trip because every received ring message is verified with it.
  std::array<char, 64> buf{};
  std::size_t len = 0;
  auto put = [&](char c) {
    if (len < buf.size()) buf[len++] = c;
  };
  auto put_uint = [&](unsigned v) {
    char digits[8];
    std::size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0 && n < sizeof digits);
    while (n > 0) put(digits[--n]);
  };
  if (address.ip.is_v4()) {
    for (std::size_t i = 0; i < 4; ++i) {
      if (i) put('.');
      put_uint(address.ip.data()[i]);
    }
    put(':');
    put_uint(address.port);
  } else {
    for (char c : address.to_string()) put(c);
  }
  if (vnode != 0) {
    put('#');
    put_uint(vnode);
  }
  RT_ASSERT(len < buf.size());
  return NodeId(sha1(std::string_view(buf.data(), len)));
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


NodeId NodeId::from_words(std::uint64_t hi, std::uint64_t mid, std::uint32_t lo) {
  NodeId r;
  hi = __builtin_bswap64(hi);
  mid = __builtin_bswap64(mid);
  lo = __builtin_bswap32(lo);
  std::memcpy(r.bytes_.data(), &hi, 8);
  std::memcpy(r.bytes_.data() + 8, &mid, 8);
  std::memcpy(r.bytes_.data() + 16, &lo, 4);
  return r;
}

// 160-bit arithmetic on (64, 64, 32)-bit big-endian limbs.
NodeId NodeId::plus(const NodeId& other) const {
  const std::uint64_t lo = std::uint64_t{be_tail()} + other.be_tail();
  const std::uint64_t mid = be_word(8) + other.be_word(8);
  const std::uint64_t carry_mid = (mid < be_word(8)) ? 1 : 0;
  const std::uint64_t mid2 = mid + (lo >> 32);
  const std::uint64_t carry_hi = carry_mid + ((mid2 < mid) ? 1 : 0);
  const std::uint64_t hi = be_word(0) + other.be_word(0) + carry_hi;
  return from_words(hi, mid2, static_cast<std::uint32_t>(lo));
}

NodeId NodeId::distance(const NodeId& from, const NodeId& to) {
  const std::uint32_t a_lo = to.be_tail(), b_lo = from.be_tail();
  const std::uint32_t lo = a_lo - b_lo;
  const std::uint64_t borrow_lo = a_lo < b_lo ? 1 : 0;
  const std::uint64_t a_mid = to.be_word(8), b_mid = from.be_word(8);
  const std::uint64_t mid = a_mid - b_mid - borrow_lo;
  const std::uint64_t borrow_mid = (a_mid < b_mid || (a_mid == b_mid && borrow_lo)) ? 1 : 0;
  const std::uint64_t hi = to.be_word(0) - from.be_word(0) - borrow_mid;
  return from_words(hi, mid, lo);
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
  // Memoised per thread: the id of an address never changes, and a node verifies the same
  // few neighbours on every message. Direct-mapped; a collision just recomputes.
  struct Entry {
    SocketAddress address;
    std::uint16_t vnode = 0;
    bool used = false;
    NodeId id;
  };
  static constexpr std::size_t kEntries = 16384;  // 16384 x 48 B per thread
  thread_local std::array<Entry, kEntries> cache{};
  std::uint64_t h = address.port * 0x9e3779b97f4a7c15ULL ^ vnode;
  for (std::size_t i = 0; i < address.ip.size(); ++i) h = (h ^ address.ip.data()[i]) * 0x100000001b3ULL;
  Entry& e = cache[(h ^ (h >> 29)) % kEntries];
  if (!e.used || e.vnode != vnode || e.address != address) {
    e.address = address;
    e.vnode = vnode;
    e.id = NodeId::from_address(address, vnode);
    e.used = true;
  }
  return e.id == id;
}

}  // namespace ringtracker::dht
