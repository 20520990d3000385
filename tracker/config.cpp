// TOML via toml++ in header-only, no-exceptions mode: parse errors come back as values, matching the
// project rule that outside bytes never throw.
#include "tracker/config.hpp"

#define TOML_EXCEPTIONS 0
#define TOML_HEADER_ONLY 1  // the packaged library is built with exceptions; compile our own
#include <toml++/toml.h>

#include <set>

namespace ringtracker::tracker {
namespace {

using Error = std::string;

struct Reader {
  const toml::table& root;
  std::string error;
  std::set<std::string> known;

  const toml::node* get(std::string_view section, std::string_view key) {
    known.insert(std::string(section) + "." + std::string(key));
    auto* tbl = root[section].as_table();
    if (!tbl) return nullptr;
    return tbl->get(key);
  }
  void fail(std::string_view section, std::string_view key, std::string_view what) {
    if (error.empty()) error = std::string(section) + "." + std::string(key) + ": " + std::string(what);
  }
  template <class T>
  void integer(std::string_view s, std::string_view k, T& out, std::int64_t lo, std::int64_t hi) {
    auto* n = get(s, k);
    if (!n) return;
    auto v = n->value<std::int64_t>();
    if (!v || !n->is_integer()) return fail(s, k, "must be an integer");
    if (*v < lo || *v > hi)
      return fail(s, k, "must be in " + std::to_string(lo) + ".." + std::to_string(hi));
    out = static_cast<T>(*v);
  }
  template <class Rep, class Period>
  void duration(std::string_view s, std::string_view k, std::chrono::duration<Rep, Period>& out,
                std::int64_t lo, std::int64_t hi) {
    std::int64_t v = out.count();
    integer(s, k, v, lo, hi);
    out = std::chrono::duration<Rep, Period>(v);
  }
  void boolean(std::string_view s, std::string_view k, bool& out) {
    auto* n = get(s, k);
    if (!n) return;
    if (!n->is_boolean()) return fail(s, k, "must be true or false");
    out = *n->value<bool>();
  }
  void string(std::string_view s, std::string_view k, std::string& out) {
    auto* n = get(s, k);
    if (!n) return;
    if (!n->is_string()) return fail(s, k, "must be a string");
    out = *n->value<std::string>();
  }
  void strings(std::string_view s, std::string_view k, std::vector<std::string>& out) {
    auto* n = get(s, k);
    if (!n) return;
    auto* arr = n->as_array();
    if (!arr) return fail(s, k, "must be an array of strings");
    out.clear();
    for (auto& e : *arr) {
      if (!e.is_string()) return fail(s, k, "must be an array of strings");
      out.push_back(*e.value<std::string>());
    }
  }
  void addresses(std::string_view s, std::string_view k, std::vector<SocketAddress>& out) {
    std::vector<std::string> texts;
    auto* n = get(s, k);
    if (!n) return;
    strings(s, k, texts);
    out.clear();
    for (auto& t : texts) {
      auto a = SocketAddress::parse(t);
      if (!a) return fail(s, k, "'" + t + "' is not ip:port ([v6]:port for IPv6)");
      out.push_back(*a);
    }
  }
};

}  // namespace

Expected<void, std::string> Config::validate() {
  if (interval < kIntervalFloor) interval = kIntervalFloor;
  if (interval > kIntervalCeiling) interval = kIntervalCeiling;
  if (min_interval > interval) min_interval = interval;
  if (interval_jitter > interval / 2) interval_jitter = interval / 2;
  // Soft state lives 1.5 x the announce interval (DESIGN section 5), counting the jitter.
  limits.peer_ttl = std::chrono::duration_cast<Duration>((interval + interval_jitter) * 3 / 2);
  if (http_listen.empty() && udp_listen.empty())
    return Unexpected(std::string("nothing to listen on: give http or udp addresses"));
  if (access_mode != AccessMode::off && access_file.empty())
    return Unexpected(std::string("access.mode needs access.file"));
  if (replicas == 0) return Unexpected(std::string("cluster.replicas must be >= 1"));
  if (attempt_timeout_min > attempt_timeout_max)
    return Unexpected(std::string("cluster.attempt_timeout_min_ms must not exceed attempt_timeout_max_ms"));
  if (request_deadline <= attempt_timeout_max)
    return Unexpected(std::string("cluster.request_deadline_ms must exceed attempt_timeout_max_ms"));
  return {};
}

Expected<void, std::string> load_config_file(const std::string& path, Config& cfg) {
  toml::parse_result parsed = toml::parse_file(path);
  if (!parsed) {
    const auto& err = parsed.error();
    return Unexpected(path + ":" + std::to_string(err.source().begin.line) + ": " +
                      std::string(err.description()));
  }
  const toml::table& root = parsed.table();
  Reader r{root, {}, {}};

  r.duration("tracker", "interval", cfg.interval, 1, 86400);
  r.duration("tracker", "interval_jitter", cfg.interval_jitter, 0, 86400);
  r.duration("tracker", "min_interval", cfg.min_interval, 0, 86400);
  r.integer("tracker", "numwant_max", cfg.limits.numwant_max, 0, 10000);
  r.integer("tracker", "torrents_max", cfg.limits.torrents_max, 1, 1'000'000'000);
  r.integer("tracker", "peers_per_torrent_max", cfg.limits.peers_per_torrent_max, 1, 100'000'000);
  r.integer("tracker", "sweep_swarms_per_tick", cfg.sweep_swarms_per_tick, 1, 10'000'000);

  r.addresses("http", "listen", cfg.http_listen);
  r.boolean("http", "keep_alive", cfg.http_keep_alive);
  r.integer("http", "header_bytes_max", cfg.http_header_bytes_max, 512, 1 << 20);
  r.duration("http", "timeout", cfg.http_timeout, 1, 3600);
  std::vector<std::string> proxies;
  r.strings("http", "trusted_proxies", proxies);
  for (auto& p : proxies) {
    auto n = IpNetwork::parse(p);
    if (!n) {
      r.fail("http", "trusted_proxies", "'" + p + "' is not a network (10.0.0.0/8)");
      break;
    }
    cfg.trusted_proxies.push_back(*n);
  }

  r.addresses("udp", "listen", cfg.udp_listen);
  r.integer("udp", "receive_buffer_bytes", cfg.udp_receive_buffer_bytes, 0, 1 << 30);
  r.duration("udp", "connection_id_window", cfg.connection_id_window, 10, 3600);

  r.strings("cluster", "secrets", cfg.secrets);
  std::vector<SocketAddress> ring;
  r.addresses("cluster", "ring", ring);
  if (!ring.empty()) cfg.ring_listen = ring.front();
  r.addresses("cluster", "join", cfg.ring_join);
  r.integer("cluster", "successors", cfg.ring_successors, 1, 64);
  r.integer("cluster", "id_choices", cfg.id_choices, 1, Config::kIdChoicesMax);
  r.integer("cluster", "replicas", cfg.replicas, 1, 16);
  r.duration("cluster", "stabilize_period_ms", cfg.stabilize_period, 100, 600'000);
  r.duration("cluster", "seed_check_period_ms", cfg.seed_check_period, 100, 3'600'000);
  r.duration("cluster", "request_deadline_ms", cfg.request_deadline, 100, 60'000);
  r.duration("cluster", "attempt_timeout_min_ms", cfg.attempt_timeout_min, 10, 30'000);
  r.duration("cluster", "attempt_timeout_max_ms", cfg.attempt_timeout_max, 10, 30'000);
  r.duration("cluster", "retry_backoff_ms", cfg.retry_backoff, 1, 10'000);
  r.duration("cluster", "replicate_period_ms", cfg.replicate_period, 10, 10'000);
  // The replica store forgets swarms not refreshed for 120 s: syncs must come well before.
  r.duration("cluster", "sync_period_s", cfg.sync_period, 5, 60);
  r.duration("cluster", "batch_linger_us", cfg.batch_linger, 0, 10'000);
  r.boolean("cluster", "yield_after_send", cfg.yield_after_send);

  r.addresses("dht", "listen", cfg.dht_listen);
  r.addresses("dht", "bootstrap", cfg.dht_bootstrap);
  r.integer("dht", "queries_per_ip_per_second", cfg.dht_queries_per_ip_per_second, 0, 10'000'000);
  std::string external;
  r.string("dht", "external_ip", external);
  if (!external.empty()) {
    cfg.dht_external_ip = IpAddress::parse(external);
    if (!cfg.dht_external_ip) r.fail("dht", "external_ip", "'" + external + "' is not an IP address");
  }

  std::string mode = "off";
  r.string("access", "mode", mode);
  if (auto m = parse_access_mode(mode)) {
    cfg.access_mode = *m;
  } else {
    r.fail("access", "mode", m.error());
  }
  r.string("access", "file", cfg.access_file);

  r.string("log", "level", cfg.log_level);

  if (!r.error.empty()) return Unexpected(path + ": " + r.error);
  for (auto&& [section, node] : root) {
    auto* tbl = node.as_table();
    if (!tbl) return Unexpected(path + ": unknown top-level key '" + std::string(section.str()) + "'");
    for (auto&& [key, value] : *tbl) {
      (void)value;
      std::string full = std::string(section.str()) + "." + std::string(key.str());
      if (!r.known.count(full)) return Unexpected(path + ": unknown key '" + full + "'");
    }
  }
  return {};
}

}  // namespace ringtracker::tracker
