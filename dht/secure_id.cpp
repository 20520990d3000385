#include "dht/secure_id.hpp"

#include <cstring>

namespace ringtracker::dht {
namespace {

// BEP 42: the bits of the IP that take part (the rest a node may not control anyway).
constexpr std::uint8_t kMask4[4] = {0x03, 0x0f, 0x3f, 0xff};
constexpr std::uint8_t kMask6[8] = {0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff};

/// crc32c of the masked IP with r in its top bits: the value the id's first 21 bits come from.
std::uint32_t id_crc(const IpAddress& ip, std::uint8_t r) {
  std::uint8_t buf[8];
  const bool v6 = ip.is_v6();
  const std::size_t n = v6 ? 8 : 4;
  for (std::size_t i = 0; i < n; ++i) buf[i] = ip.data()[i] & (v6 ? kMask6[i] : kMask4[i]);
  buf[0] |= static_cast<std::uint8_t>((r & 0x7) << 5);
  return crc32c(std::span<const std::uint8_t>(buf, n));
}

}  // namespace

std::uint32_t crc32c(std::span<const std::uint8_t> bytes) {
  // Bitwise, reflected polynomial 0x82F63B78: ids are made once per start and checked rarely.
  std::uint32_t crc = 0xffffffffU;
  for (std::uint8_t b : bytes) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78U & (0U - (crc & 1U)));
  }
  return ~crc;
}

bool secure_id_exempt(const IpAddress& ip) {
  const std::uint8_t* b = ip.data();
  if (ip.is_unspecified() || ip.is_loopback()) return true;
  if (ip.is_v6()) return (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || (b[0] & 0xfe) == 0xfc;
  return b[0] == 10 || b[0] == 127 || (b[0] == 172 && (b[1] & 0xf0) == 16) ||
         (b[0] == 192 && b[1] == 168) || (b[0] == 169 && b[1] == 254);
}

NodeId secure_node_id(const IpAddress& external, std::uint8_t rand,
                      const std::array<std::uint8_t, NodeId::kBytes>& random) {
  const std::uint32_t crc = id_crc(external, rand & 0x7);
  auto id = random;
  id[0] = static_cast<std::uint8_t>(crc >> 24);
  id[1] = static_cast<std::uint8_t>(crc >> 16);
  id[2] = static_cast<std::uint8_t>(((crc >> 8) & 0xf8) | (random[2] & 0x7));
  id[19] = rand;
  return NodeId(id);
}

bool secure_id_valid(const NodeId& id, const IpAddress& ip) {
  if (secure_id_exempt(ip)) return true;
  const auto& b = id.bytes();
  const std::uint32_t crc = id_crc(ip, b[19] & 0x7);
  return b[0] == static_cast<std::uint8_t>(crc >> 24) &&
         b[1] == static_cast<std::uint8_t>(crc >> 16) &&
         (b[2] & 0xf8) == static_cast<std::uint8_t>((crc >> 8) & 0xf8);
}

}  // namespace ringtracker::dht
