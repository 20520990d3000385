// The ringtracker daemon: flags and config, the event loop, the HTTP and UDP front ends, the
// periodic sweep, signals (SIGTERM/SIGINT stop, SIGHUP reloads the access list).
#include <event2/event.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <random>

#include "common/buffer_pool.hpp"
#include "dht/ring_node.hpp"
#include "dht/ring_transport.hpp"
#include "dht/secure_id.hpp"
#include "tracker/cluster_node.hpp"
#include "tracker/config.hpp"
#include "tracker/connection_id.hpp"
#include "tracker/counters.hpp"
#include "tracker/dht_server.hpp"
#include "tracker/http_server.hpp"
#include "tracker/memory_swarm_store.hpp"
#include "tracker/stats.hpp"
#include "tracker/tracker_service.hpp"
#include "tracker/udp_server.hpp"

namespace rt = ringtracker;
namespace tr = ringtracker::tracker;

namespace {

/// Longest wait for neighbours to acknowledge a graceful leave before exiting anyway.
constexpr time_t kLeaveWaitSeconds = 6;
/// How often a leaving node checks whether its range handoff finished.
constexpr rt::Duration kLeavePollInterval = std::chrono::milliseconds(50);
/// A node still not on a ring this long after start (no --join seed answered) says so in the
/// log, and again at this interval while it keeps trying.
constexpr rt::Duration kJoinWarnInterval = std::chrono::seconds(15);

/// Front-end adapter for a ring node: every request may queue ring traffic, so it asks for a
/// ring pump after each call (the front ends know nothing of the ring). The pump runs once the
/// current batch of requests is handled, so requests to one owner share a datagram.
class PumpingHandler final : public tr::RequestHandler {
 public:
  PumpingHandler(tr::RequestHandler& inner, std::function<void()> request_pump)
      : inner_(inner), request_pump_(std::move(request_pump)) {}
  void announce(const tr::AnnounceRequest& req, rt::TimePoint now, AnnounceDone done) override {
    inner_.announce(req, now, std::move(done));
    request_pump_();
  }
  void scrape(const tr::ScrapeRequest& req, rt::TimePoint now, ScrapeDone done) override {
    inner_.scrape(req, now, std::move(done));
    request_pump_();
  }
  void prefetch(std::span<const tr::InfoHash> info_hashes) override {
    inner_.prefetch(info_hashes);
  }

 private:
  tr::RequestHandler& inner_;
  std::function<void()> request_pump_;
};

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
  std::unique_ptr<tr::DhtServer> dht;
  std::vector<EventPtr> events;
  std::string node_id;
  std::string ring_address;
  std::unique_ptr<rt::dht::RingTransport> ring_transport;
  std::unique_ptr<rt::dht::RingNode> ring;
  std::unique_ptr<tr::MemorySwarmStore> replica_store;
  std::unique_ptr<rt::tracker::RingNodeView> ring_view;
  std::unique_ptr<tr::ClusterNode> cluster;
  std::unique_ptr<tr::RequestHandler> front_handler;  // what HTTP and UDP call
  EventPtr pump_event;  // made active by request_pump(): runs pump_ring() once per loop pass
  bool pump_pending = false;
  rt::TimePoint join_warn_at = rt::TimePoint::max();
  bool stopping = false;
  bool leave_sent = false;
  EventPtr stop_deadline;

  /// Schedules pump_ring() after the callbacks of this event-loop pass (a whole recvmmsg
  /// batch of requests, every ring datagram read in one wakeup): their forwards to one owner,
  /// and the owner's replies, then travel together.
  void request_pump() {
    if (pump_pending) return;
    pump_pending = true;
    event_active(pump_event.get(), 0, 0);
  }

  /// Hands the ring's events to the data layer at once, so that its view (ranges, gates,
  /// promotions) never lags the ring's between two datagrams or before the next client
  /// request; only the sending waits for pump_ring().
  void deliver_ring_events(rt::TimePoint now) {
    while (auto e = ring->poll_event()) on_ring_event(now, *e);
  }

  /// Handles one event; an app payload's buffer goes back to the pool, where the ring takes
  /// it for the next one.
  void on_ring_event(rt::TimePoint now, rt::dht::RingEvent& e) {
    handle_ring_event(now, e);
    if (auto* app = std::get_if<rt::dht::ring_event::AppReceived>(&e))
      rt::BufferPool::local().give(std::move(app->payload));
  }

  void handle_ring_event(rt::TimePoint now, const rt::dht::RingEvent& e) {
    if (std::holds_alternative<rt::dht::ring_event::Joined>(e)) {
      node_id = ring->self().id.to_hex();  // a joiner chooses its id among id_choices
      spdlog::info("joined the ring as {}", node_id);
    } else if (std::holds_alternative<rt::dht::ring_event::Left>(e)) {
      spdlog::info("left the ring");
      if (stopping) event_base_loopexit(base.get(), nullptr);
    }
    if (cluster) cluster->handle_ring_event(now, e);
  }

  /// Moves everything the ring and the data layer produced: app payloads into the ring,
  /// datagrams onto the socket, ring events into the data layer, until nothing moves; then
  /// re-arms the one timer. Runs from the timer and once per event-loop pass (request_pump).
  void pump_ring(rt::TimePoint now) {
    pump_pending = false;
    // Each payload and datagram is copied on: its buffer goes back for the next one.
    rt::BufferPool& pool = rt::BufferPool::local();
    for (bool moved = true; moved;) {
      moved = false;
      if (cluster) {
        while (auto a = cluster->poll_app()) {
          ring->send_app(now, a->to.address, a->payload);
          pool.give(std::move(a->payload));
          moved = true;
        }
      }
      while (auto t = ring->poll_transmit()) {
        ring_transport->queue(t->destination, {reinterpret_cast<const std::uint8_t*>(t->bytes.data()),
                                              t->bytes.size()});
        pool.give(std::move(t->bytes));
        moved = true;
      }
      while (auto e = ring->poll_event()) {
        moved = true;
        on_ring_event(now, *e);
      }
      // Graceful leave, second step: the range is handed over, now leave the ring itself.
      if (stopping && !leave_sent && cluster && cluster->leave_ready(now)) {
        leave_sent = true;
        ring->leave(now);
        moved = true;
      }
    }
    // Clients' answers from the ring first (the flush may yield the CPU for a while), then
    // this pass's ring datagrams, together.
    if (udp) udp->flush_answers();
    ring_transport->flush();
    auto wake = ring->next_timeout();
    if (cluster) wake = std::min(wake, cluster->next_timeout());
    if (stopping && !leave_sent) wake = std::min(wake, now + kLeavePollInterval);
    ring_transport->arm(wake);
  }

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
    s.node = tr::NodeRef{node_id, ring_address};
    s.swarms = store->stats();
    s.counters = &counters;
    if (ring) {
      auto ref = [](const rt::dht::NodeRef& n) {
        return tr::NodeRef{n.id.to_hex(), n.address.to_string()};
      };
      tr::RingStatus rs;
      if (ring->predecessor()) rs.predecessor = ref(*ring->predecessor());
      for (const auto& n : ring->successors()) rs.successors.push_back(ref(n));
      rs.fingers = ring->finger_count();
      // (pred, self]: the whole circle while alone, nothing before joining or while the
      // predecessor is unknown (the range this node answers for is unknown then too).
      if (ring->is_member() && ring->successors().empty()) {
        rs.key_space_ppm = 1'000'000;
      } else if (ring->is_member() && ring->predecessor() &&
                 ring->predecessor()->id != ring->self().id) {
        rs.key_space_ppm = static_cast<std::uint32_t>(
            rt::dht::NodeId::distance(ring->predecessor()->id, ring->self().id).fraction() * 1e6);
      }
      s.ring = std::move(rs);
      const auto& c = ring->counters();
      for (std::size_t k = 0; k < rt::dht::kMessageKindCount; ++k) {
        auto name = std::string(rt::dht::to_string(static_cast<rt::dht::MessageKind>(k)));
        s.extra_counters.emplace_back("ring_sent_" + name, c.sent[k]);
        s.extra_counters.emplace_back("ring_received_" + name, c.received[k]);
      }
      for (std::size_t k = 0; k < rt::dht::kDropReasonCount; ++k)
        s.extra_counters.emplace_back(
            "ring_drop_" + std::string(rt::dht::to_string(static_cast<rt::dht::DropReason>(k))),
            c.drops[k]);
      s.extra_counters.emplace_back("ring_bytes_sent", c.bytes_sent);
      s.extra_counters.emplace_back("ring_bytes_received", c.bytes_received);
      s.extra_counters.emplace_back("ring_retransmits", c.retransmits);
      s.extra_counters.emplace_back("ring_nodes_declared_dead", c.nodes_declared_dead);
      s.extra_counters.emplace_back("ring_lookups_started", c.lookups_started);
      s.extra_counters.emplace_back("ring_lookups_failed", c.lookups_failed);
      s.extra_counters.emplace_back("ring_rejoins", c.rejoins);
      s.extra_counters.emplace_back("ring_send_failures", ring_transport->send_failures());
      s.extra_counters.emplace_back("ring_drop_unauthenticated",
                                    ring_transport->unauthenticated_drops());
      s.extra_counters.emplace_back("ring_yields", ring_transport->yields());
      s.extra_counters.emplace_back("ring_long_yields", ring_transport->long_yields());
      s.extra_counters.emplace_back("ring_yield_pauses", ring_transport->yield_pauses());
      s.extra_counters.emplace_back("ring_yield_probes", ring_transport->yield_probes());
    }
    if (dht) {
      for (auto& [name, v] : dht->counters()) s.extra_counters.emplace_back(name, v);
    }
    if (cluster) {
      const auto r = replica_store->stats();
      s.replica_torrents = r.torrents;
      s.replica_peers = r.peers;
      s.replica_seeders = r.seeders;
      for (auto& [name, v] : cluster->counters())
        s.extra_counters.emplace_back("cluster_" + std::string(name), v);
    }
    return s;
  }
};

void on_stop_deadline(evutil_socket_t, short, void* arg) noexcept {
  auto* d = static_cast<Daemon*>(arg);
  spdlog::warn("leave not acknowledged in time; stopping anyway");
  event_base_loopexit(d->base.get(), nullptr);
}

void on_stop_signal(evutil_socket_t, short, void* arg) noexcept {
  auto* d = static_cast<Daemon*>(arg);
  try {
    if (d->stopping) return;
    d->stopping = true;
    spdlog::info("stopping");
    if (d->ring && d->ring->is_member()) {
      // Graceful leave: push the owned range to the successor, then leave the ring (neighbours
      // adopt each other at once); exit on Left or after a bound.
      auto now = rt::Clock::now();
      d->cluster->begin_leave(now);
      d->pump_ring(now);
      d->stop_deadline.reset(evtimer_new(d->base.get(), on_stop_deadline, d));
      timeval tv{kLeaveWaitSeconds, 0};
      if (d->stop_deadline && evtimer_add(d->stop_deadline.get(), &tv) == 0) return;
    }
  } catch (...) {
  }
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
    const auto now = rt::Clock::now();
    d->service->tick(now);
    if (d->ring && !d->stopping && now >= d->join_warn_at) {
      if (d->ring->is_member()) {
        d->join_warn_at = rt::TimePoint::max();
      } else {
        spdlog::warn("not on a ring yet: no join address (--join, cluster.join) has answered; still trying");
        d->join_warn_at = now + kJoinWarnInterval;
      }
    }
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
  std::vector<std::string> http_flags, udp_flags, join_flags, dht_flags, dht_bootstrap_flags;
  std::string ring_flag, log_level;
  app.add_option("--config", config_path, "TOML config file (defaults are built in)");
  app.add_option("--http", http_flags, "HTTP listen ADDR:PORT (repeatable; port 0 = any free)");
  app.add_option("--udp", udp_flags, "UDP listen ADDR:PORT (repeatable; port 0 = any free)");
  app.add_option("--dht", dht_flags, "DHT (BEP 5) listen ADDR:PORT (repeatable; enables the DHT)");
  app.add_option("--dht-bootstrap", dht_bootstrap_flags,
                 "DHT node ADDR:PORT to ask for neighbours at start (repeatable)");
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
  auto parse_all = [](const std::vector<std::string>& flags, const char* name,
                      std::vector<rt::SocketAddress>& out) -> std::string {
    if (flags.empty()) return {};
    out.clear();
    for (auto& f : flags) {
      auto a = rt::SocketAddress::parse(f);
      if (!a) return std::string(name) + " " + f + ": expected ADDR:PORT ([v6]:PORT for IPv6)";
      out.push_back(*a);
    }
    return {};
  };
  if (auto e = parse_all(dht_flags, "--dht", d.cfg.dht_listen); !e.empty()) return fail(e);
  if (auto e = parse_all(dht_bootstrap_flags, "--dht-bootstrap", d.cfg.dht_bootstrap); !e.empty())
    return fail(e);
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

  std::string ring_part;
  std::string listed_id;  // in the "listening" line, when not yet d.node_id
  if (d.cfg.ring_listen) {
    if (d.cfg.ring_listen->ip.is_unspecified())
      return fail("--ring needs the address other nodes reach this one at, not " +
                  d.cfg.ring_listen->to_string());
    d.ring_transport = std::make_unique<rt::dht::RingTransport>(
        d.base.get(),
        rt::dht::RingTransport::Hooks{
            [&d](rt::TimePoint now, const rt::SocketAddress& from,
                 std::span<const std::uint8_t> bytes) {
              d.ring->handle_datagram(now, from, bytes);
              d.deliver_ring_events(now);
              d.request_pump();
            },
            [&d](rt::TimePoint now) {
              d.ring->handle_timeout(now);
              d.cluster->handle_timeout(now);
              d.pump_ring(now);
            }});
    auto bound = d.ring_transport->open(*d.cfg.ring_listen);
    if (!bound) return fail(bound.error());
    if (!d.ring_transport->set_secrets(d.cfg.secrets))
      return fail("cannot derive the ring key from cluster.secrets");
    d.ring_transport->set_yield_after_send(d.cfg.yield_after_send);
    rt::dht::RingConfig rc;
    rc.self = *bound;
    rc.successors = d.cfg.ring_successors;
    rc.stabilize_period = d.cfg.stabilize_period;
    rc.seed_check_period = d.cfg.seed_check_period;
    rc.id_choices = static_cast<std::uint16_t>(d.cfg.id_choices);
    d.ring = std::make_unique<rt::dht::RingNode>(rc, seed ^ 0x51f6);
    d.ring_address = bound->to_string();
    d.node_id = d.ring->self().id.to_hex();
    ring_part = " ring=" + d.ring_address;
    // A joiner's id is one of its candidates until the join decides (logged then; /stats
    // shows the first candidate until then).
    if (!d.cfg.ring_join.empty() && d.cfg.id_choices > 1) listed_id = "chosen-at-join";
    d.replica_store = std::make_unique<tr::MemorySwarmStore>(d.cfg.limits, seed ^ 0xc0b1);
    d.ring_view = std::make_unique<rt::tracker::RingNodeView>(*d.ring);
    tr::ClusterConfig cc;
    cc.replicas = d.cfg.replicas;
    cc.peer_ttl = d.cfg.limits.peer_ttl;
    cc.request_deadline = d.cfg.request_deadline;
    cc.attempt_timeout_min = d.cfg.attempt_timeout_min;
    cc.attempt_timeout_max = d.cfg.attempt_timeout_max;
    cc.retry_backoff = d.cfg.retry_backoff;
    cc.replicate_period = d.cfg.replicate_period;
    cc.sync_period = d.cfg.sync_period;
    cc.batch_linger = d.cfg.batch_linger;
    cc.hash_seed = seed ^ 0xc1a5;
    d.cluster = std::make_unique<tr::ClusterNode>(cc, *d.ring_view, *d.service, *d.replica_store);
    d.pump_event.reset(event_new(
        d.base.get(), -1, 0,
        [](evutil_socket_t, short, void* arg) {
          auto* dm = static_cast<Daemon*>(arg);
          dm->pump_ring(rt::Clock::now());
        },
        &d));
    if (!d.pump_event) return fail("cannot create the ring pump event");
    d.front_handler = std::make_unique<PumpingHandler>(*d.cluster, [&d] { d.request_pump(); });
    auto now = rt::Clock::now();
    if (d.cfg.ring_join.empty()) {
      d.ring->create(now);
    } else {
      d.ring->join(now, d.cfg.ring_join);
      d.join_warn_at = now + kJoinWarnInterval;
    }
    d.pump_ring(now);
  }
  tr::RequestHandler& handler =
      d.front_handler ? *d.front_handler : static_cast<tr::RequestHandler&>(*d.service);
  std::string line = "listening";
  std::string first_addr;
  if (!d.cfg.http_listen.empty()) {
    d.http = std::make_unique<tr::HttpServer>(d.base.get(), d.cfg, handler, d.counters,
                                              [&d] { return d.stats(); });
    for (auto& a : d.cfg.http_listen) {
      auto bound = d.http->listen(a);
      if (!bound) return fail(bound.error());
      line += " http=" + bound->to_string();
      if (first_addr.empty()) first_addr = bound->to_string();
    }
  }
  if (!d.cfg.udp_listen.empty()) {
    d.udp = std::make_unique<tr::UdpServer>(d.base.get(), handler, *d.ids, d.counters);
    for (auto& a : d.cfg.udp_listen) {
      auto bound = d.udp->listen(a, d.cfg.udp_receive_buffer_bytes);
      if (!bound) return fail(bound.error());
      line += " udp=" + bound->to_string();
      if (first_addr.empty()) first_addr = bound->to_string();
    }
  }
  if (!d.cfg.dht_listen.empty()) {
    rt::dht::DhtNodeConfig dc;
    std::array<std::uint8_t, rt::dht::NodeId::kBytes> id{};
    // Random bytes for the DHT id (kept for the process's life) and the token secret (only
    // this process checks its tokens).
    if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1 ||
        RAND_bytes(dc.token_secret.data(), static_cast<int>(dc.token_secret.size())) != 1)
      return fail("cannot draw the DHT node id (OpenSSL RAND_bytes failed)");
    // BEP 42: an id bound to the external IP, so that clients enforcing it keep this node.
    std::optional<rt::IpAddress> external = d.cfg.dht_external_ip;
    if (!external && !rt::dht::secure_id_exempt(d.cfg.dht_listen.front().ip))
      external = d.cfg.dht_listen.front().ip;
    dc.id = external && !rt::dht::secure_id_exempt(*external)
                ? rt::dht::secure_node_id(*external, id[19], id)
                : rt::dht::NodeId(id);
    dc.bootstrap = d.cfg.dht_bootstrap;
    dc.queries_per_ip_per_second = d.cfg.dht_queries_per_ip_per_second;
    dc.seed = seed ^ 0xd47;
    d.dht = std::make_unique<tr::DhtServer>(d.base.get(), handler, std::move(dc));
    for (auto& a : d.cfg.dht_listen) {
      // Bursts are absorbed in the socket buffer, as on the tracker's UDP port.
      auto bound = d.dht->listen(a, d.cfg.udp_receive_buffer_bytes);
      if (!bound) return fail(bound.error());
      line += " dht=" + bound->to_string();
    }
    spdlog::info("DHT node id {}", d.dht->id().to_hex());
  }
  // A lone node's id is derived like a ring node's: SHA-1 of its first advertised endpoint.
  if (d.node_id.empty()) d.node_id = sha1_hex(first_addr);
  line += ring_part + " node=" + (listed_id.empty() ? d.node_id : listed_id);

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
