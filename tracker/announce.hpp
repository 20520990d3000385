// Protocol-neutral announce and scrape requests and results. HTTP and UDP codecs produce and
// consume these; the swarm store and the ring service never see protocol bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/net_address.hpp"

namespace ringtracker::tracker {

using InfoHash = std::array<std::uint8_t, 20>;
using PeerId = std::array<std::uint8_t, 20>;

enum class AnnounceEvent : std::uint8_t { none = 0, completed = 1, started = 2, stopped = 3 };

/// Which address families the caller wants peers of (UDP over IPv4 wants v4 only, etc.).
enum class PeerFamilies : std::uint8_t { v4 = 1, v6 = 2, both = 3 };

/// Default numwant when the client sends none or a negative value (BEP 3 says 50 is typical).
inline constexpr std::int32_t kNumwantDefault = 50;

struct AnnounceRequest {
  InfoHash info_hash{};
  PeerId peer_id{};
  /// The address other peers should connect to (after proxy/ip= rules were applied).
  SocketAddress peer;
  std::uint64_t uploaded = 0;
  std::uint64_t downloaded = 0;
  std::uint64_t left = 0;
  AnnounceEvent event = AnnounceEvent::none;
  /// Raw numwant from the client: negative means "default", 0 means "no peers".
  std::int32_t numwant = -1;
  std::uint32_t key = 0;
  PeerFamilies families = PeerFamilies::both;
  /// Only ask: counts and peers as for an announce, but `peer` is neither added nor refreshed
  /// and no swarm is created (a DHT get_peers). `event` is ignored.
  bool lookup_only = false;
};

struct PeerInfo {
  SocketAddress address;
  PeerId peer_id{};
};

/// Bytes of one compact peer (BEP 23: IPv4 + port; BEP 7: IPv6 + port), network order.
inline constexpr std::size_t kCompactPeer4Bytes = 4 + 2;
inline constexpr std::size_t kCompactPeer6Bytes = 16 + 2;

/// What the swarm knows after applying an announce.
struct AnnounceResult {
  std::uint32_t complete = 0;    // seeders
  std::uint32_t incomplete = 0;  // leechers
  std::uint32_t downloaded = 0;  // completed events counted
  std::vector<PeerInfo> peers;   // peers with an id, both families mixed; codecs split them
  /// Peers without an id, already in compact form: kCompactPeer4Bytes each in `compact4`,
  /// kCompactPeer6Bytes each in `compact6`. The memory store writes its answer here (it keeps
  /// no ids), and a ring node that got the answer from the owner keeps the owner's bytes as they
  /// came. Codecs hand out both (for_each_peer, peer_count).
  std::string compact4;
  std::string compact6;
};

inline std::size_t peer_count(const AnnounceResult& r) {
  return r.peers.size() + r.compact4.size() / kCompactPeer4Bytes +
         r.compact6.size() / kCompactPeer6Bytes;
}

/// Calls f(const SocketAddress&, const PeerId&) for every peer of `r`: `peers` first, then the
/// compact ones (all-zero id).
template <class F>
void for_each_peer(const AnnounceResult& r, F&& f) {
  for (const PeerInfo& p : r.peers) f(p.address, p.peer_id);
  static constexpr PeerId kNoId{};
  auto compact = [&](const std::string& bytes, std::size_t each, bool v6) {
    const auto* b = reinterpret_cast<const std::uint8_t*>(bytes.data());
    for (std::size_t i = 0; i + each <= bytes.size(); i += each) {
      SocketAddress a;
      a.ip = v6 ? IpAddress::v6(b + i) : IpAddress::v4(b + i);
      const std::uint8_t* port = b + i + (each - 2);
      a.port = static_cast<std::uint16_t>((port[0] << 8) | port[1]);
      f(static_cast<const SocketAddress&>(a), kNoId);
    }
  };
  compact(r.compact4, kCompactPeer4Bytes, false);
  compact(r.compact6, kCompactPeer6Bytes, true);
}

/// A full answer to the client (result plus the intervals the service chose).
struct AnnounceResponse {
  AnnounceResult result;
  std::uint32_t interval_s = 1800;
  std::uint32_t min_interval_s = 900;
};

struct ScrapeEntry {
  InfoHash info_hash{};
  std::uint32_t complete = 0;
  std::uint32_t downloaded = 0;
  std::uint32_t incomplete = 0;
};

struct ScrapeRequest {
  std::vector<InfoHash> info_hashes;  // repeats allowed (BEP 48 answers each once)
};

struct ScrapeResponse {
  std::vector<ScrapeEntry> files;  // in request order for UDP; HTTP codec sorts
};

}  // namespace ringtracker::tracker
