// BEP 42 (DHT security extension): node ids bound to the node's external IP, so that a node
// cannot choose where in the id space it sits. Pure functions: the id for an IP and a random
// input, the check of another node's id, and which addresses the rule exempts (local networks).
#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "common/net_address.hpp"
#include "dht/node_id.hpp"

namespace ringtracker::dht {

/// CRC-32C (Castagnoli), as BEP 42 uses it.
std::uint32_t crc32c(std::span<const std::uint8_t> bytes);

/// BEP 42 exempts local networks: 10/8, 172.16/12, 192.168/16, 169.254/16, 127/8, and for IPv6
/// loopback, link-local fe80::/10 and unique-local fc00::/7. The unspecified address is exempt
/// too (there is no IP to bind to).
bool secure_id_exempt(const IpAddress& ip);

/// The BEP 42 id for `external` (an address that is not exempt): the top 21 bits come from
/// crc32c of the masked IP with `r` (0..7) in it, the last byte is `rand` (whose low 3 bits are
/// r), and the rest are taken from `random`.
NodeId secure_node_id(const IpAddress& external, std::uint8_t rand,
                      const std::array<std::uint8_t, NodeId::kBytes>& random);

/// Whether `id` is a valid BEP 42 id for `ip` (true for exempt addresses).
bool secure_id_valid(const NodeId& id, const IpAddress& ip);

}  // namespace ringtracker::dht
