// Renders the daemon's state for operators: /stats as JSON (DESIGN section 8) and /metrics as
// Prometheus text. Pure: it formats what it is given and reads nothing itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tracker/counters.hpp"
#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker {

struct NodeRef {
  std::string id_hex;
  std::string ring;  // ip:port of the ring endpoint
};

/// What the ring layer reports; absent on a lone node.
struct RingStatus {
  std::optional<NodeRef> predecessor;
  std::vector<NodeRef> successors;  // nearest first
  std::size_t fingers = 0;
  /// Share of the key space this node owns, (predecessor, self], in millionths (the balance an
  /// operator checks: about 1,000,000 / N each with cluster.id_choices); 0 while not a member
  /// or while the predecessor is unknown.
  std::uint32_t key_space_ppm = 0;
};

struct StatsSnapshot {
  NodeRef node;  // node.ring empty on a lone node
  std::optional<RingStatus> ring;
  StoreStats swarms;
  std::size_t replica_torrents = 0;
  std::size_t replica_peers = 0;
  std::size_t replica_seeders = 0;
  const Counters* counters = nullptr;
  /// Counters from other layers (ring, transport), already named.
  std::vector<std::pair<std::string, std::uint64_t>> extra_counters;
};

std::string render_stats_json(const StatsSnapshot& s);
std::string render_metrics(const StatsSnapshot& s);

}  // namespace ringtracker::tracker
