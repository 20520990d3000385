// Ring identifiers: 160-bit NodeIds derived with SHA-1 from a node's advertised address, the
// wrap-around interval arithmetic of the Chord identifier circle, and NodeRef (id + address).
// Pure values: no I/O, no clock. Deciding who owns what is RingNode's job, not this file's.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/net_address.hpp"

namespace ringtracker::dht {

/// A point on the identifier circle [0, 2^160), stored big-endian (bytes_[0] is most
/// significant), so that byte order is numeric order.
class NodeId {
 public:
  static constexpr std::size_t kBytes = 20;
  static constexpr int kBits = 160;

  NodeId() = default;
  explicit NodeId(const std::array<std::uint8_t, kBytes>& bytes) : bytes_(bytes) {}

  /// SHA-1 of `address.to_string()` (e.g. "127.0.0.1:6969", "[::1]:6969"); with vnode > 0 the
  /// text is suffixed with "#<vnode>". vnode 0 means "no virtual node".
  static NodeId from_address(const SocketAddress& address, std::uint16_t vnode = 0);
  /// SHA-1 of arbitrary bytes (the id rule above hashes the address text this way).
  static NodeId sha1_of(std::string_view bytes);
  /// Exactly 20 bytes, else nullopt.
  static std::optional<NodeId> from_bytes(std::span<const std::uint8_t> bytes);
  static std::optional<NodeId> from_bytes(std::string_view bytes);
  /// Exactly 40 hex digits (either case), else nullopt.
  static std::optional<NodeId> from_hex(std::string_view hex);
  /// 2^i for 0 <= i < 160.
  static NodeId pow2(int i);

  const std::array<std::uint8_t, kBytes>& bytes() const { return bytes_; }
  std::string_view as_string_view() const {
    return {reinterpret_cast<const char*>(bytes_.data()), kBytes};
  }
  std::string to_hex() const;
  /// First 8 bytes as an integer: a hash for containers and a cheap ordering hint.
  std::uint64_t prefix64() const { return be_word(0); }

  /// (this + other) mod 2^160.
  NodeId plus(const NodeId& other) const;
  /// (this + 2^i) mod 2^160: the target of finger i.
  NodeId plus_pow2(int i) const { return plus(pow2(i)); }
  /// Clockwise distance from `from` to `to`: (to - from) mod 2^160.
  static NodeId distance(const NodeId& from, const NodeId& to);
  /// This id as a fraction of the circle, [0, 1) (the top 64 bits: precise enough for shares;
  /// distance(a, b).fraction() is the share of the key space the arc (a, b] holds).
  double fraction() const { return static_cast<double>(prefix64()) * 0x1p-64; }
  /// Index of the highest set bit, or -1 for zero.
  int log2_floor() const;
  bool is_zero() const;

  // Word-wise comparisons: ids are compared on every ring decision, and a 20-byte memcmp call
  // per comparison dominated the simulator's profile.
  friend bool operator==(const NodeId& a, const NodeId& b) {
    return a.word(0) == b.word(0) && a.word(8) == b.word(8) && a.tail() == b.tail();
  }
  friend std::strong_ordering operator<=>(const NodeId& a, const NodeId& b) {
    if (auto c = a.be_word(0) <=> b.be_word(0); c != 0) return c;
    if (auto c = a.be_word(8) <=> b.be_word(8); c != 0) return c;
    return a.be_tail() <=> b.be_tail();
  }

 private:
  std::uint64_t word(std::size_t at) const {
    std::uint64_t w;
    std::memcpy(&w, bytes_.data() + at, 8);
    return w;
  }
  std::uint32_t tail() const {
    std::uint32_t w;
    std::memcpy(&w, bytes_.data() + 16, 4);
    return w;
  }
  std::uint64_t be_word(std::size_t at) const { return __builtin_bswap64(word(at)); }
  std::uint32_t be_tail() const { return __builtin_bswap32(tail()); }
  static NodeId from_words(std::uint64_t hi, std::uint64_t mid, std::uint32_t lo);

  std::array<std::uint8_t, kBytes> bytes_{};
};

/// x in the open arc (a, b) going clockwise from a. a == b means the whole circle except a.
bool in_open(const NodeId& x, const NodeId& a, const NodeId& b);
/// x in the half-open arc (a, b]. a == b means the whole circle (a lone node owns everything).
bool in_half_open(const NodeId& x, const NodeId& a, const NodeId& b);

/// True when `id` is the id that `address` (and vnode) must have. Receivers refuse a node whose
/// id does not match its advertised address.
bool verify(const NodeId& id, const SocketAddress& address, std::uint16_t vnode = 0);

/// A ring member as other nodes know it. Equality is on all three fields.
struct NodeRef {
  NodeId id;
  SocketAddress address;
  std::uint16_t vnode = 0;

  static NodeRef from_address(const SocketAddress& address, std::uint16_t vnode = 0) {
    return NodeRef{NodeId::from_address(address, vnode), address, vnode};
  }
  bool operator==(const NodeRef&) const = default;
};

struct NodeIdHash {
  std::size_t operator()(const NodeId& id) const { return static_cast<std::size_t>(id.prefix64()); }
};

}  // namespace ringtracker::dht
