// IP addresses and ip:port endpoints as plain values (IPv4 or IPv6), with parsing and printing.
// Pure: no sockets, no name resolution. Used by the tracker (peers) and the ring (node addresses).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace ringtracker {

/// An IPv4 or IPv6 address. IPv4 uses bytes_[0..3]; the rest stay zero so that comparison and
/// hashing are plain byte operations. IPv4-mapped IPv6 (::ffff:a.b.c.d) is normalised to IPv4.
class IpAddress {
 public:
  IpAddress() = default;
  static IpAddress v4(const std::uint8_t* four_bytes) {  // inline: hot in every codec
    IpAddress a;
    std::memcpy(a.bytes_.data(), four_bytes, 4);
    return a;
  }
  static IpAddress v6(const std::uint8_t* sixteen_bytes);  // normalises v4-mapped
  /// Parses dotted IPv4 or textual IPv6 (no brackets). nullopt on anything else.
  static std::optional<IpAddress> parse(std::string_view text);

  bool is_v6() const { return v6_; }
  bool is_v4() const { return !v6_; }
  /// 4 bytes for IPv4, 16 for IPv6.
  std::size_t size() const { return v6_ ? 16 : 4; }
  const std::uint8_t* data() const { return bytes_.data(); }
  bool is_loopback() const;
  bool is_unspecified() const;
  std::string to_string() const;

  auto operator<=>(const IpAddress&) const = default;
  bool operator==(const IpAddress&) const = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
  bool v6_ = false;
};

/// A CIDR network (e.g. 10.0.0.0/8, fd00::/8) for trusted-proxy lists.
struct IpNetwork {
  IpAddress base;
  unsigned prefix_bits = 0;
  static std::optional<IpNetwork> parse(std::string_view text);
  bool contains(const IpAddress& a) const;
};

/// ip:port. Printed as `1.2.3.4:80` or `[::1]:80`; parsed from the same forms.
struct SocketAddress {
  IpAddress ip;
  std::uint16_t port = 0;
  static std::optional<SocketAddress> parse(std::string_view text);
  std::string to_string() const;
  auto operator<=>(const SocketAddress&) const = default;
  bool operator==(const SocketAddress&) const = default;
};

}  // namespace ringtracker
