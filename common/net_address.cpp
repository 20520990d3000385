// Textual forms of addresses via inet_pton/inet_ntop (pure libc, no I/O).
#include "common/net_address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace ringtracker {

IpAddress IpAddress::v6(const std::uint8_t* sixteen_bytes) {
  static constexpr std::uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(sixteen_bytes, kMappedPrefix, 12) == 0) return v4(sixteen_bytes + 12);
  IpAddress a;
  std::memcpy(a.bytes_.data(), sixteen_bytes, 16);
  a.v6_ = true;
  return a;
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  std::uint8_t raw[16];
  if (inet_pton(AF_INET, buf, raw) == 1) return v4(raw);
  if (inet_pton(AF_INET6, buf, raw) == 1) return v6(raw);
  return std::nullopt;
}

bool IpAddress::is_loopback() const {
  if (!v6_) return bytes_[0] == 127;
  static constexpr std::array<std::uint8_t, 16> kLoop = {0, 0, 0, 0, 0, 0, 0, 0,
                                                         0, 0, 0, 0, 0, 0, 0, 1};
  return bytes_ == kLoop;
}

bool IpAddress::is_unspecified() const {
  for (auto b : bytes_)
    if (b) return false;
  return true;
}

std::string IpAddress::to_string() const {
  char buf[INET6_ADDRSTRLEN];
  if (!inet_ntop(v6_ ? AF_INET6 : AF_INET, bytes_.data(), buf, sizeof buf)) return "?";
  return buf;
}

std::optional<IpNetwork> IpNetwork::parse(std::string_view text) {
  IpNetwork n;
  auto slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  n.base = *ip;
  unsigned max_bits = ip->is_v6() ? 128 : 32;
  n.prefix_bits = max_bits;
  if (slash != std::string_view::npos) {
    auto bits = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(bits.data(), bits.data() + bits.size(), n.prefix_bits);
    if (ec != std::errc() || p != bits.data() + bits.size() || n.prefix_bits > max_bits)
      return std::nullopt;
  }
  return n;
}

bool IpNetwork::contains(const IpAddress& a) const {
  if (a.is_v6() != base.is_v6()) return false;
  unsigned full = prefix_bits / 8, rest = prefix_bits % 8;
  if (std::memcmp(a.data(), base.data(), full) != 0) return false;
  if (rest == 0) return true;
  std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (a.data()[full] & mask) == (base.data()[full] & mask);
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // v6 needs brackets
  }
  auto ip = IpAddress::parse(host);
  if (!ip || port.empty()) return std::nullopt;
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || p != port.data() + port.size() || value > 65535) return std::nullopt;
  return SocketAddress{*ip, static_cast<std::uint16_t>(value)};
}

std::string SocketAddress::to_string() const {
  // Built by appends: GCC 12 at -O3 warns falsely (-Wrestrict) on chained operator+.
  std::string out;
  out.reserve(INET6_ADDRSTRLEN + 8);
  if (ip.is_v6()) out.push_back('[');
  out.append(ip.to_string());
  if (ip.is_v6()) out.push_back(']');
  out.push_back(':');
  out.append(std::to_string(port));
  return out;
}

}  // namespace ringtracker
