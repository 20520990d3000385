#include "tracker/stats.hpp"

namespace ringtracker::tracker {
namespace {

// Values here are hex ids, ip:port and counter names: no character needs escaping beyond
// quotes and backslashes, which are escaped anyway for safety.
void json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out.push_back(c);
  }
  out.push_back('"');
}

void json_node(std::string& out, const NodeRef& n) {
  out += "{\"id\":";
  json_string(out, n.id_hex);
  if (!n.ring.empty()) {
    out += ",\"ring\":";
    json_string(out, n.ring);
  }
  out += "}";
}

}  // namespace

std::string render_stats_json(const StatsSnapshot& s) {
  std::string out;
  out.reserve(2048);
  out += "{\"node\":";
  json_node(out, s.node);
  out += ",\"predecessor\":";
  if (s.ring && s.ring->predecessor) {
    json_node(out, *s.ring->predecessor);
  } else {
    out += "null";
  }
  out += ",\"successors\":[";
  if (s.ring) {
    for (std::size_t i = 0; i < s.ring->successors.size(); ++i) {
      if (i) out += ",";
      json_node(out, s.ring->successors[i]);
    }
  }
  out += "],\"fingers\":" + std::to_string(s.ring ? s.ring->fingers : 0);
  if (s.ring) out += ",\"key_space_ppm\":" + std::to_string(s.ring->key_space_ppm);
  out += ",\"swarms\":{\"torrents\":" + std::to_string(s.swarms.torrents) +
         ",\"peers\":" + std::to_string(s.swarms.peers) +
         ",\"seeders\":" + std::to_string(s.swarms.seeders) +
         ",\"leechers\":" + std::to_string(s.swarms.leechers) +
         ",\"replica_torrents\":" + std::to_string(s.replica_torrents) +
         ",\"replica_peers\":" + std::to_string(s.replica_peers) +
         ",\"replica_seeders\":" + std::to_string(s.replica_seeders) + "}";
  out += ",\"counters\":{";
  bool first = true;
  auto add = [&](std::string_view name, std::uint64_t v) {
    if (!first) out += ",";
    first = false;
    json_string(out, name);
    out += ":" + std::to_string(v);
  };
  if (s.counters) {
    for (std::size_t i = 0; i < Counters::size(); ++i) {
      auto c = static_cast<Counter>(i);
      add(counter_name(c), s.counters->get(c));
    }
  }
  for (auto& [name, v] : s.extra_counters) add(name, v);
  out += "}}\n";
  return out;
}

std::string render_metrics(const StatsSnapshot& s) {
  std::string out;
  out.reserve(4096);
  auto gauge = [&](std::string_view name, std::string_view help, std::uint64_t v) {
    out += "# HELP ringtracker_" + std::string(name) + " " + std::string(help) + "\n";
    out += "# TYPE ringtracker_" + std::string(name) + " gauge\n";
    out += "ringtracker_" + std::string(name) + " " + std::to_string(v) + "\n";
  };
  gauge("torrents", "Swarms this node owns.", s.swarms.torrents);
  gauge("peers", "Live peers in owned swarms.", s.swarms.peers);
  gauge("seeders", "Live seeders in owned swarms.", s.swarms.seeders);
  gauge("leechers", "Live leechers in owned swarms.", s.swarms.leechers);
  gauge("replica_torrents", "Swarms held as replicas for other owners.", s.replica_torrents);
  gauge("replica_peers", "Live peers in replica swarms.", s.replica_peers);
  gauge("replica_seeders", "Live seeders in replica swarms.", s.replica_seeders);
  gauge("ring_successors", "Length of the successor list.", s.ring ? s.ring->successors.size() : 0);
  gauge("ring_fingers", "Distinct fingers.", s.ring ? s.ring->fingers : 0);
  if (s.ring)
    gauge("ring_key_space_ppm", "Share of the key space this node owns, in millionths.",
          s.ring->key_space_ppm);
  out += "# HELP ringtracker_events_total Events by name (requests, answers, drops by reason).\n";
  out += "# TYPE ringtracker_events_total counter\n";
  auto counter = [&](std::string_view name, std::uint64_t v) {
    out += "ringtracker_events_total{event=\"" + std::string(name) + "\"} " + std::to_string(v) + "\n";
  };
  if (s.counters) {
    for (std::size_t i = 0; i < Counters::size(); ++i) {
      auto c = static_cast<Counter>(i);
      counter(counter_name(c), s.counters->get(c));
    }
  }
  for (auto& [name, v] : s.extra_counters) counter(name, v);
  return out;
}

}  // namespace ringtracker::tracker
