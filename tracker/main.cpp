// The ringtracker daemon: flags and config, the event loop, the HTTP and UDP front ends, the
// periodic sweep, signals (SIGTERM/SIGINT stop, SIGHUP reloads the access list).
#include <event2/event.h>
#include <openssl/evp.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <random>

#include "tracker/config.hpp"
#include "tracker/connection_id.hpp"
#include "tracker/counters.hpp"
#include "tracker/http_server.hpp"
#include "tracker/memory_swarm_store.hpp"
#include "tracker/stats.hpp"
#include "tracker/tracker_service.hpp"
#include "tracker/udp_server.hpp"

namespace rt = ringtracker;
namespace tr = ringtracker::tracker;

namespace {

struct EventBaseDeleter {
  void operator()(event_base* b) const { event_base_free(b); }
};
struct EventDeleter {
  void operator()(event* e) const { event_free(e); }
};
using EventPtr = std::unique_ptr<event, EventDeleter>;

std::string sha1_hex(std::string_view text) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(text.data(), text.size(), md, &len, EVP_sha1(), nullptr) != 1) return "";
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 15]);
  }
  return out;
}

struct Daemon {
  tr::Config cfg;
  std::unique_ptr<event_base, EventBaseDeleter> base;
  tr::Counters counters;
  std::unique_ptr<tr::MemorySwarmStore> store;
  std::unique_ptr<tr::TrackerService> service;
  std::unique_ptr<tr::ConnectionIds> ids;
  std::unique_ptr<tr::HttpServer> http;
  std::unique_ptr<tr::UdpServer> udp;
  std::vector<EventPtr> events;
  std::string node_id;

  void reload_access_list() {
    if (cfg.access_mode == tr::AccessMode::off) return;
    auto list = tr::AccessList::load(cfg.access_mode, cfg.access_file);
    if (!list) {
      counters.inc(tr::Counter::access_list_reload_failures);
      spdlog::error("access list not reloaded: {}", list.error());
      return;
    }
    counters.inc(tr::Counter::access_list_reloads);
    spdlog::info("access list: {} hashes ({})", list->size(),
                 cfg.access_mode == tr::AccessMode::allow ? "allow" : "deny");
    service->set_access_list(std::move(*list));
  }

  tr::StatsSnapshot stats() const {
    tr::StatsSnapshot s;
    s.node = tr::NodeRef{node_id, ""};
    s.swarms = store->stats();
    s.counters = &counters;
    return s;
  }
};

void on_stop_signal(evutil_socket_t, short, void* arg) noexcept {
  auto* d = static_cast<Daemon*>(arg);
  spdlog::info("stopping");
  event_base_loopexit(d->base.get(), nullptr);
}

void on_hup(evutil_socket_t, short, void* arg) noexcept {
  auto* d = static_cast<Daemon*>(arg);
  try {
    d->reload_access_list();
  } catch (...) {
    spdlog::error("access list reload failed");
  }
}

void on_sweep(evutil_socket_t, short, void* arg) noexcept {
  auto* d = static_cast<Daemon*>(arg);
  try {
    d->service->tick(rt::Clock::now());
  } catch (...) {
    spdlog::error("sweep failed");
  }
}

int fail(const std::string& msg) {
  std::fprintf(stderr, "ringtracker: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ringtracker: a BitTorrent tracker that runs alone or as a ring of nodes"};
  std::string config_path;
  std::vector<std::string> http_flags, udp_flags, join_flags;
  std::string ring_flag, log_level;
  app.add_option("--config", config_path, "TOML config file (defaults are built in)");
  app.add_option("--http", http_flags, "HTTP listen ADDR:PORT (repeatable; port 0 = any free)");
  app.add_option("--udp", udp_flags, "UDP listen ADDR:PORT (repeatable; port 0 = any free)");
  app.add_option("--ring", ring_flag, "ring endpoint ADDR:PORT (enables the ring)");
  app.add_option("--join", join_flags, "ring member ADDR:PORT to join through (repeatable)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off");
  CLI11_PARSE(app, argc, argv);

  Daemon d;
  if (!config_path.empty()) {
    if (auto r = tr::load_config_file(config_path, d.cfg); !r) return fail(r.error());
  } else {
    auto def = *rt::SocketAddress::parse("127.0.0.1:6969");
    d.cfg.http_listen = {def};
    d.cfg.udp_listen = {def};
  }
  // Listen flags replace the config's addresses for both protocols: a protocol not given on
  // the command line is then not served.
  if (!http_flags.empty() || !udp_flags.empty()) {
    d.cfg.http_listen.clear();
    d.cfg.udp_listen.clear();
    for (auto& f : http_flags) {
      auto a = rt::SocketAddress::parse(f);
      if (!a) return fail("--http " + f + ": expected ADDR:PORT ([v6]:PORT for IPv6)");
      d.cfg.http_listen.push_back(*a);
    }
    for (auto& f : udp_flags) {
      auto a = rt::SocketAddress::parse(f);
      if (!a) return fail("--udp " + f + ": expected ADDR:PORT ([v6]:PORT for IPv6)");
      d.cfg.udp_listen.push_back(*a);
    }
  }
  if (!ring_flag.empty()) {
    auto a = rt::SocketAddress::parse(ring_flag);
    if (!a) return fail("--ring " + ring_flag + ": expected ADDR:PORT");
    d.cfg.ring_listen = *a;
  }
  for (auto& f : join_flags) {
    auto a = rt::SocketAddress::parse(f);
    if (!a) return fail("--join " + f + ": expected ADDR:PORT");
    d.cfg.ring_join.push_back(*a);
  }
  if (!log_level.empty()) d.cfg.log_level = log_level;
  if (auto r = d.cfg.validate(); !r) return fail(r.error());

  auto logger = spdlog::stderr_color_mt("ringtracker");
  spdlog::set_default_logger(logger);
  auto level = spdlog::level::from_str(d.cfg.log_level);
  if (level == spdlog::level::off && d.cfg.log_level != "off")
    return fail("unknown log level '" + d.cfg.log_level + "'");
  spdlog::set_level(level);

  d.base.reset(event_base_new());
  if (!d.base) return fail("cannot create the event loop");

  std::random_device rd;
  std::uint64_t seed = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  d.store = std::make_unique<tr::MemorySwarmStore>(d.cfg.limits, seed);
  d.service = std::make_unique<tr::TrackerService>(d.cfg, *d.store, d.counters, seed ^ 0x5eed);
  if (d.cfg.access_mode != tr::AccessMode::off) {
    auto list = tr::AccessList::load(d.cfg.access_mode, d.cfg.access_file);
    if (!list) return fail(list.error());
    d.service->set_access_list(std::move(*list));
  }
  auto ids = tr::ConnectionIds::try_from_secrets(d.cfg.secrets, d.cfg.connection_id_window);
  if (!ids) return fail(ids.error());
  d.ids = std::make_unique<tr::ConnectionIds>(std::move(*ids));

  std::string line = "listening";
  std::string first_addr;
  if (!d.cfg.http_listen.empty()) {
    d.http = std::make_unique<tr::HttpServer>(d.base.get(), d.cfg, *d.service, d.counters,
                                              [&d] { return d.stats(); });
    for (auto& a : d.cfg.http_listen) {
      auto bound = d.http->listen(a);
      if (!bound) return fail(bound.error());
      line += " http=" + bound->to_string();
      if (first_addr.empty()) first_addr = bound->to_string();
    }
  }
  if (!d.cfg.udp_listen.empty()) {
    d.udp = std::make_unique<tr::UdpServer>(d.base.get(), *d.service, *d.ids, d.counters);
    for (auto& a : d.cfg.udp_listen) {
      auto bound = d.udp->listen(a, d.cfg.udp_receive_buffer_bytes);
      if (!bound) return fail(bound.error());
      line += " udp=" + bound->to_string();
      if (first_addr.empty()) first_addr = bound->to_string();
    }
  }
  // A lone node's id is derived like a ring node's: SHA-1 of its first advertised endpoint.
  d.node_id = sha1_hex(first_addr);
  line += " node=" + d.node_id;

  auto add_event = [&](evutil_socket_t fd, short what, event_callback_fn cb,
                       const timeval* tv) -> bool {
    EventPtr ev(event_new(d.base.get(), fd, what, cb, &d));
    if (!ev || event_add(ev.get(), tv) != 0) return false;
    d.events.push_back(std::move(ev));
    return true;
  };
  timeval sweep_tv{0, static_cast<suseconds_t>(
                          std::chrono::duration_cast<std::chrono::microseconds>(d.cfg.sweep_tick)
                              .count())};
  if (!add_event(SIGTERM, EV_SIGNAL | EV_PERSIST, on_stop_signal, nullptr) ||
      !add_event(SIGINT, EV_SIGNAL | EV_PERSIST, on_stop_signal, nullptr) ||
      !add_event(SIGHUP, EV_SIGNAL | EV_PERSIST, on_hup, nullptr) ||
      !add_event(-1, EV_PERSIST, on_sweep, &sweep_tv))
    return fail("cannot register signal and timer events");

  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  spdlog::info("{}", line);

  if (event_base_dispatch(d.base.get()) < 0) return fail("event loop failed");
  spdlog::info("stopped");
  return 0;
}
