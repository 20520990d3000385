// Many ring members (RingNode + ClusterNode each) on the seeded SimNetwork: announces and scrapes
// flow during joins, crashes and graceful leaves; afterwards no answered peer is lost, every node
// gives the same scrape answer, and no peer outlives its TTL. A failure prints its seed and the
// command that replays it.
#define BOOST_TEST_MODULE cluster_sim
#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "dht/sim_network.hpp"
#include "tracker/cluster_node.hpp"
#include "tracker/memory_swarm_store.hpp"

using namespace ringtracker;
using namespace ringtracker::tracker;
using dht::SimNetwork;

namespace {

/// The simulation advances in slices; ClusterNode timers and outboxes are served between them.
constexpr Duration kSlice = Milliseconds(10);
constexpr Duration kPeerTtl = Seconds(300);
constexpr std::size_t kReplicas = 3;

/// Seeds run by default; `-- --seed=N` runs only N.
std::vector<std::uint64_t> seeds_to_run(std::uint64_t first, std::size_t count) {
  auto& suite = boost::unit_test::framework::master_test_suite();
  for (int i = 1; i < suite.argc; ++i) {
    std::string a = suite.argv[i];
    if (a.rfind("--seed=", 0) == 0) return {std::strtoull(a.c_str() + 7, nullptr, 10)};
  }
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

/// start_lookup goes through SimNetwork so that the lookup's first datagram leaves at once.
class SimRingView final : public RingView {
 public:
  SimRingView(SimNetwork& net, SimNetwork::NodeIndex i) : net_(net), i_(i), inner_(net.node(i)) {}
  const dht::NodeRef& self() const override { return inner_.self(); }
  Ownership ownership(const dht::NodeId& key) const override { return inner_.ownership(key); }
  std::optional<dht::NodeRef> predecessor() const override { return inner_.predecessor(); }
  std::vector<dht::NodeRef> successors() const override { return inner_.successors(); }
  bool alone() const override { return inner_.alone(); }
  dht::LookupId start_lookup(TimePoint, const dht::NodeId& key) override {
    return net_.lookup(i_, key);
  }
  Duration rto_for(const dht::NodeId& id) const override { return inner_.rto_for(id); }

 private:
  SimNetwork& net_;
  SimNetwork::NodeIndex i_;
  RingNodeView inner_;
};

SwarmLimits sim_limits() {
  SwarmLimits l;
  l.peer_ttl = kPeerTtl;
  return l;
}

/// One member's data layer, built once its RingNode runs.
struct Stack {
  Config cfg;
  MemorySwarmStore owned{sim_limits()};
  MemorySwarmStore replica{sim_limits()};
  tracker::Counters counters;
  TrackerService service;
  SimRingView view;
  ClusterNode node;
  TimePoint next_tick{};

  Stack(SimNetwork& net, SimNetwork::NodeIndex i, const ClusterConfig& cc, std::uint64_t seed)
      : service(cfg, owned, counters, seed), view(net, i), node(cc, view, service, replica) {}
};

struct Member {
  std::unique_ptr<Stack> stack;
  std::vector<dht::RingEvent> inbox;
  bool leaving = false;
};

struct PeerModel {
  InfoHash hash{};
  SocketAddress address;
  bool seeder = false;
  TimePoint last_attempt = TimePoint::min();  // any announce sent (it may have been applied)
  std::optional<TimePoint> answered;          // last successful non-stopped announce
  bool stopped = false;                       // last successful announce was `stopped`
  std::optional<TimePoint> stop_sent;  // a `stopped` was sent (answered or not: it may apply)
};

/// CLUSTER_SIM_TRACE=<hex prefix of an info-hash> prints that swarm's story (debugging aid).
const char* trace_prefix() {
  static const char* p = std::getenv("CLUSTER_SIM_TRACE");
  return p;
}
bool traced(const InfoHash& h) {
  return trace_prefix() && dht::NodeId(h).to_hex().rfind(trace_prefix(), 0) == 0;
}

class Harness {
 public:
  explicit Harness(std::uint64_t seed) : seed_(seed), net_(options(seed)), rng_(seed * 31 + 7) {
    net_.set_event_hook([this](SimNetwork::NodeIndex i, const dht::RingEvent& e) {
      if (i < members_.size()) members_[i].inbox.push_back(e);
    });
    cc_.replicas = kReplicas;
    cc_.peer_ttl = kPeerTtl;
    cc_.sync_period = Seconds(5);
    cc_.replica_grace = Seconds(30);
  }

  static dht::SimOptions options(std::uint64_t seed) {
    dht::SimOptions o;
    o.seed = seed;
    o.node.successors = 4;
    o.node.stabilize_period = Seconds(1);
    o.node.lookup_timeout = Seconds(5);
    o.node.id_choices = 16;  // as the daemon: joiners choose their ids (virtual indexes)
    return o;
  }

  TimePoint now() const { return net_.now(); }
  dht::Prng& rng() { return rng_; }
  std::string replay() const {
    std::ostringstream os;
    os << "seed=" << seed_ << " replay: cluster_sim_test --run_test="
       << boost::unit_test::framework::current_test_case().p_name.get() << " -- --seed=" << seed_;
    return os.str();
  }
  /// How long after its answer a peer may still be lost with its owner: one replication
  /// period, the worst one-way latency to a replica, and the slices that serve the outboxes.
  Duration replication_lag() const {
    auto o = options(seed_);
    return cc_.replicate_period +
           std::chrono::duration_cast<Duration>(o.latency_max * (1.0 + o.latency_jitter)) +
           4 * kSlice;
  }

  // ---- membership --------------------------------------------------------------------------
  SimNetwork::NodeIndex create() {
    auto i = add();
    net_.create(i);
    build(i);
    return i;
  }
  SimNetwork::NodeIndex join() {
    auto i = add();
    std::vector<SocketAddress> seeds;
    for (auto j : running()) {
      if (net_.node(j).is_member()) seeds.push_back(net_.address(j));
      if (seeds.size() == 3) break;
    }
    net_.join(i, seeds);
    if (trace_prefix()) trace("join " + net_.node(i).self().id.to_hex());
    build(i);
    return i;
  }
  void crash(SimNetwork::NodeIndex i) {
    if (trace_prefix()) trace("crash " + net_.node(i).self().id.to_hex());
    net_.crash(i);
    members_[i].stack.reset();
    members_[i].inbox.clear();
    crash_times_.push_back(now());
  }
  void leave(SimNetwork::NodeIndex i) {
    if (trace_prefix()) trace("leave " + net_.node(i).self().id.to_hex());
    members_[i].leaving = true;
    members_[i].stack->node.begin_leave(now());
  }
  std::vector<SimNetwork::NodeIndex> running() const {
    std::vector<SimNetwork::NodeIndex> out;
    for (std::size_t i = 0; i < members_.size(); ++i) {
      if (net_.running(i) && members_[i].stack && !members_[i].leaving) out.push_back(i);
    }
    return out;
  }
  Stack& stack(SimNetwork::NodeIndex i) { return *members_[i].stack; }

  // ---- time ----------------------------------------------------------------------------------
  void run_for(Duration d) {
    const TimePoint end = now() + d;
    while (now() < end) {
      net_.run_for(kSlice);
      settle();
    }
  }

  // ---- clients -------------------------------------------------------------------------------
  std::size_t add_peer(const InfoHash& h, bool seeder) {
    PeerModel p;
    p.hash = h;
    std::uint8_t ip[4] = {100, static_cast<std::uint8_t>(peers_.size() >> 16),
                          static_cast<std::uint8_t>(peers_.size() >> 8),
                          static_cast<std::uint8_t>(peers_.size())};
    p.address.ip = IpAddress::v4(ip);
    p.address.port = 6881;
    p.seeder = seeder;
    peers_.push_back(p);
    by_address_[{h, p.address}] = peers_.size() - 1;
    return peers_.size() - 1;
  }

  void announce(std::size_t peer, AnnounceEvent event) {
    auto nodes = running();
    if (nodes.empty()) return;
    auto at = nodes[rng_.below(nodes.size())];
    auto& p = peers_[peer];
    AnnounceRequest req;
    req.info_hash = p.hash;
    req.peer_id.fill(static_cast<std::uint8_t>(peer));
    req.peer = p.address;
    req.left = p.seeder ? 0 : 1000;
    req.event = event;
    req.numwant = 200;
    p.last_attempt = now();
    if (event == AnnounceEvent::stopped) p.stop_sent = now();
    ++announces_sent_;
    if (traced(p.hash))
      trace("announce " + p.address.to_string() + " event " +
            std::to_string(static_cast<int>(event)) + " at " +
            net_.node(at).self().id.to_hex().substr(0, 8));
    stack(at).node.announce(req, now(), [this, peer, event](auto r) {
      if (traced(peers_[peer].hash))
        trace("answer " + peers_[peer].address.to_string() + (r ? " ok" : " failed: " + r.error()));
      if (!r) {
        ++announces_failed_;
        return;
      }
      ++announces_ok_;
      auto& m = peers_[peer];
      if (event == AnnounceEvent::stopped) {
        m.stopped = true;
      } else {
        m.answered = now();
        m.stopped = false;
      }
      check_served(m.hash, r->result);
    });
  }

  void scrape_random() {
    auto nodes = running();
    if (nodes.empty() || torrents_.empty()) return;
    ScrapeRequest req;
    for (auto k = 1 + rng_.below(5); k > 0; --k)
      req.info_hashes.push_back(torrents_[rng_.below(torrents_.size())]);
    ++scrapes_sent_;
    stack(nodes[rng_.below(nodes.size())]).node.scrape(req, now(), [this](auto r) {
      if (r) ++scrapes_ok_;
    });
  }

  /// Scrapes one info-hash at node `at`; `done` gets the entry or nullopt (a failure reason).
  void scrape_one(SimNetwork::NodeIndex at, const InfoHash& h,
                  std::function<void(std::optional<ScrapeEntry>)> done) {
    ScrapeRequest req;
    req.info_hashes.push_back(h);
    stack(at).node.scrape(req, now(), [done = std::move(done)](auto r) {
      done(r ? std::optional<ScrapeEntry>(r->files.at(0)) : std::nullopt);
    });
  }
  /// Whether any running member's ring state still names `id` (predecessor or successor).
  bool listed_anywhere(const dht::NodeId& id) const {
    for (auto i : running()) {
      const auto& n = net_.node(i);
      if (n.predecessor() && n.predecessor()->id == id) return true;
      for (const auto& s : n.successors())
        if (s.id == id) return true;
    }
    return false;
  }
  const dht::NodeRef& ring_self(SimNetwork::NodeIndex i) { return net_.node(i).self(); }

  std::vector<InfoHash>& torrents() { return torrents_; }
  std::vector<PeerModel>& peers() { return peers_; }

  // ---- checks ----------------------------------------------------------------------------------
  /// The member that owns `key` on the ideal ring of running members.
  SimNetwork::NodeIndex true_owner(const InfoHash& key) const {
    auto nodes = running();
    RT_ASSERT(!nodes.empty());
    const dht::NodeId k(key);
    SimNetwork::NodeIndex best = nodes.front();
    dht::NodeId best_d = dht::NodeId::distance(k, net_.node(best).self().id);
    for (auto i : nodes) {
      auto d = dht::NodeId::distance(k, net_.node(i).self().id);
      if (d < best_d) {
        best = i;
        best_d = d;
      }
    }
    return best;
  }

  /// Whether a crash came too soon after the owner applied an announce answered at `t` for its
  /// delta to reach a replica. The owner applied it before `t` (the reply was in flight), so a
  /// crash shortly BEFORE the answer counts too.
  bool crashed_near(TimePoint t) const {
    return std::any_of(crash_times_.begin(), crash_times_.end(), [&](TimePoint c) {
      return (t <= c && c - t < replication_lag()) || (c < t && t - c < replication_lag());
    });
  }

  /// Every peer answered (and not stopped) long enough before any crash is held by its owner.
  std::size_t check_no_lost_peer(bool owned_only) {
    std::size_t lost = 0, checked = 0;
    for (const auto& p : peers_) {
      if (!p.answered || p.stopped || *p.answered + kPeerTtl <= now()) continue;
      if (crashed_near(*p.answered)) continue;
      // Unless a later announce was answered, a stop that was sent may have been applied.
      if (p.stop_sent && *p.stop_sent + Seconds(2) > *p.answered) continue;
      ++checked;
      auto owner = true_owner(p.hash);
      auto& s = stack(owner);
      auto has = [&](SwarmStore& store) {
        auto snap = store.export_swarm(p.hash, now());
        return snap && std::any_of(snap->peers.begin(), snap->peers.end(),
                                   [&](const SnapshotPeer& x) { return x.address == p.address; });
      };
      if (!has(s.owned) && (owned_only || !has(s.replica))) {
        ++lost;
        if (lost <= 5)
          BOOST_ERROR("lost peer " << p.address.to_string() << " of "
                                   << dht::NodeId(p.hash).to_hex() << " at owner "
                                   << net_.node(owner).self().id.to_hex() << "; " << replay());
      }
    }
    BOOST_TEST_MESSAGE("seed " << seed_ << ": " << checked << " live answered peers checked, "
                               << lost << " lost");
    BOOST_TEST(checked > 0U);
    return lost;
  }

  /// Scrapes every torrent at every node; all answers must agree.
  void check_same_answer_everywhere() {
    auto nodes = running();
    std::map<InfoHash, std::vector<std::optional<ScrapeEntry>>> answers;
    for (const auto& h : torrents_) answers[h].resize(nodes.size());
    for (int attempt = 0; attempt < 3; ++attempt) {
      for (std::size_t n = 0; n < nodes.size(); ++n) {
        for (const auto& h : torrents_) {
          if (answers[h][n]) continue;
          ScrapeRequest req;
          req.info_hashes.push_back(h);
          stack(nodes[n]).node.scrape(req, now(), [&answers, h, n](auto r) {
            if (r) answers[h][n] = r->files.at(0);
          });
        }
      }
      run_for(Seconds(2));
    }
    std::size_t differ = 0;
    for (const auto& [h, list] : answers) {
      for (std::size_t n = 0; n < list.size(); ++n) {
        if (!list[n]) {
          BOOST_ERROR("scrape of " << dht::NodeId(h).to_hex() << " unanswered at node " << n << "; "
                                   << replay());
          continue;
        }
        const auto& a = *list[n];
        const auto& b = *list[0];
        if (list[0] && (a.complete != b.complete || a.incomplete != b.incomplete ||
                        a.downloaded != b.downloaded)) {
          if (++differ <= 5)
            BOOST_ERROR("scrape of " << dht::NodeId(h).to_hex() << " differs between nodes: "
                                     << a.complete << "/" << a.incomplete << " vs " << b.complete
                                     << "/" << b.incomplete << "; " << replay());
        }
      }
    }
  }

  std::size_t ttl_violations() const { return ttl_violations_; }

  void trace(const std::string& what) const {
    BOOST_TEST_MESSAGE(
        "t=" << std::chrono::duration_cast<Milliseconds>(now().time_since_epoch()).count() << "ms "
             << what);
  }
  /// Where a traced swarm is held now, and the ring as its members see it.
  void trace_holders() {
    if (!trace_prefix()) return;
    for (const auto& h : torrents_) {
      if (!traced(h)) continue;
      for (auto i : running()) {
        auto& s = stack(i);
        auto o = s.owned.export_swarm(h, now());
        auto r = s.replica.export_swarm(h, now());
        std::ostringstream os;
        const auto& rn = net_.node(i);
        os << "node " << rn.self().id.to_hex().substr(0, 8) << " pred "
           << (rn.predecessor() ? rn.predecessor()->id.to_hex().substr(0, 8) : "-") << " owned "
           << (o ? o->peers.size() : 0) << " replica " << (r ? r->peers.size() : 0);
        trace(os.str());
      }
    }
  }

  void report() const {
    std::uint64_t timeouts = 0, forwarded = 0, promoted = 0, pulls = 0, attempt_timeouts = 0,
                  rerouted = 0, waits = 0, dropped = 0;
    for (const auto& m : members_) {
      if (!m.stack) continue;
      timeouts += m.stack->node.counter("timeouts");
      attempt_timeouts += m.stack->node.counter("attempt_timeouts");
      rerouted += m.stack->node.counter("rerouted");
      waits += m.stack->node.counter("retry_waits");
      dropped += m.stack->node.counter("owner_cache_dropped");
      forwarded += m.stack->node.counter("announces_forwarded");
      promoted += m.stack->node.counter("promoted");
      pulls += m.stack->node.counter("pulls_completed");
    }
    BOOST_TEST_MESSAGE(
        "seed " << seed_ << ": announces " << announces_sent_ << " sent, " << announces_ok_
                << " ok, " << announces_failed_ << " failed; scrapes " << scrapes_sent_ << " sent, "
                << scrapes_ok_ << " ok; live members' counters: forwarded " << forwarded
                << ", timeouts " << timeouts << ", attempt timeouts " << attempt_timeouts
                << ", rerouted " << rerouted << ", retry waits " << waits
                << ", cache entries dropped " << dropped << ", promoted " << promoted << ", pulls "
                << pulls << "; crashes " << crash_times_.size());
  }
  std::uint64_t announces_ok() const { return announces_ok_; }

 private:
  SimNetwork::NodeIndex add() {
    auto i = net_.add_node();
    members_.resize(net_.size());
    return i;
  }
  void build(SimNetwork::NodeIndex i) {
    members_[i].stack = std::make_unique<Stack>(net_, i, cc_, seed_ * 1000 + i);
    settle();
  }

  /// A served peer must have announced within its TTL (tolerance: the stores' 1 s ticks).
  /// Every peer served (built by the owner's store, or copied compact from its answer) was
  /// announced and is within its TTL.
  void check_served(const InfoHash& h, const AnnounceResult& served) {
    for_each_peer(served, [&](const SocketAddress& address, const PeerId&) {
      auto it = by_address_.find({h, address});
      if (it == by_address_.end()) {
        ++ttl_violations_;
        BOOST_ERROR("served a peer nobody announced: " << address.to_string() << "; " << replay());
        return;
      }
      const auto& p = peers_[it->second];
      if (p.last_attempt + kPeerTtl + Seconds(2) < now()) {
        ++ttl_violations_;
        BOOST_ERROR("served " << address.to_string() << " after its TTL; " << replay());
      }
    });
  }

  /// Feeds queued ring events to the data layer, runs due timers, and sends its payloads,
  /// until nothing moves.
  void settle() {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      for (std::size_t i = 0; i < members_.size(); ++i) {
        auto& m = members_[i];
        if (!m.stack) continue;
        if (!net_.running(i)) {  // left gracefully
          m.stack.reset();
          m.inbox.clear();
          continue;
        }
        auto events = std::move(m.inbox);
        m.inbox.clear();
        for (const auto& e : events) {
          m.stack->node.handle_ring_event(now(), e);
          moved = true;
        }
        if (m.stack->node.next_timeout() <= now()) m.stack->node.handle_timeout(now());
        if (now() >= m.stack->next_tick) {
          m.stack->service.tick(now());
          m.stack->next_tick = now() + Seconds(1);
        }
        if (m.leaving && m.stack->node.leave_ready(now()) && net_.node(i).is_member() &&
            net_.node(i).state() != dht::RingNode::State::leaving) {
          net_.leave(i);
          moved = true;
        }
        while (auto t = m.stack->node.poll_app()) {
          net_.send_app(i, t->to.address, t->payload);
          moved = true;
        }
      }
      if (!moved) return;
    }
  }

  std::uint64_t seed_;
  SimNetwork net_;
  dht::Prng rng_;
  ClusterConfig cc_;
  std::vector<Member> members_;
  std::vector<PeerModel> peers_;
  std::map<std::pair<InfoHash, SocketAddress>, std::size_t> by_address_;
  std::vector<InfoHash> torrents_;
  std::vector<TimePoint> crash_times_;
  std::size_t ttl_violations_ = 0;
  std::uint64_t announces_sent_ = 0, announces_ok_ = 0, announces_failed_ = 0;
  std::uint64_t scrapes_sent_ = 0, scrapes_ok_ = 0;
};

InfoHash random_hash(dht::Prng& rng) {
  InfoHash h{};
  for (auto& b : h) b = static_cast<std::uint8_t>(rng.next());
  return h;
}

void build_ring(Harness& h, std::size_t members) {
  h.create();
  for (std::size_t i = 1; i < members; ++i) {
    h.join();
    h.run_for(Milliseconds(500));
  }
  h.run_for(Seconds(15));
}

void add_torrents(Harness& h, std::size_t torrents, std::size_t peers_each) {
  for (std::size_t t = 0; t < torrents; ++t) {
    h.torrents().push_back(random_hash(h.rng()));
    for (std::size_t k = 0; k < peers_each; ++k)
      h.add_peer(h.torrents().back(), h.rng().below(3) == 0);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(churn_loses_no_answered_peer_and_heals_to_one_answer) {
  for (auto seed : seeds_to_run(1, 4)) {
    Harness h(seed);
    build_ring(h, 10);
    add_torrents(h, 40, 6);
    const std::size_t peer_count = h.peers().size();

    // Churn: 90 s with a membership change every 10 s (crash, join or graceful leave; one at a
    // time, so fewer than r_d consecutive owners are ever down at once), announces and scrapes
    // throughout. Each peer announces once or twice: its data survives only by replication.
    std::vector<std::pair<Duration, std::size_t>> plan;
    for (std::size_t p = 0; p < peer_count; ++p) {
      plan.emplace_back(Milliseconds(h.rng().below(90'000)), p);
      if (h.rng().below(2)) plan.emplace_back(Milliseconds(h.rng().below(90'000)), p);
    }
    std::sort(plan.begin(), plan.end());
    std::vector<std::size_t> stops;
    const TimePoint start = h.now();
    std::size_t next = 0;
    for (int second = 0; second < 90; ++second) {
      if (second % 10 == 5) {
        auto nodes = h.running();
        const auto kind = h.rng().below(3);
        if (kind == 0 && nodes.size() > 7) {
          h.crash(nodes[h.rng().below(nodes.size())]);
        } else if (kind == 1 && nodes.size() > 7) {
          h.leave(nodes[h.rng().below(nodes.size())]);
        } else {
          h.join();
        }
      }
      for (int tenth = 0; tenth < 10; ++tenth) {
        const TimePoint until = start + Seconds(second) + Milliseconds(100 * (tenth + 1));
        while (next < plan.size() && start + plan[next].first < until) {
          const auto p = plan[next++].second;
          const bool stop = h.rng().below(20) == 0;
          h.announce(p, stop ? AnnounceEvent::stopped : AnnounceEvent::started);
        }
        if (h.rng().below(2)) h.scrape_random();
        h.run_for(Milliseconds(100));
      }
    }

    // Heal: no churn, no clients; the ring converges and range sync repairs.
    h.run_for(Seconds(30));
    h.report();
    h.trace_holders();
    BOOST_TEST(h.announces_ok() > peer_count / 2);
    BOOST_TEST(h.check_no_lost_peer(false) == 0U, h.replay());
    h.check_same_answer_everywhere();
    BOOST_TEST(h.ttl_violations() == 0U, h.replay());

    // No peer outlives its TTL anywhere: after it, every node answers zero.
    h.run_for(kPeerTtl);
    for (auto n : h.running()) {
      for (const auto& t : h.torrents()) {
        ScrapeRequest req;
        req.info_hashes.push_back(t);
        std::optional<ScrapeEntry> got;
        h.stack(n).node.scrape(req, h.now(), [&](auto r) {
          if (r) got = r->files.at(0);
        });
        h.run_for(Seconds(2));
        BOOST_REQUIRE_MESSAGE(got.has_value(), "scrape unanswered; " << h.replay());
        BOOST_TEST(got->complete + got->incomplete == 0U, h.replay());
      }
      break;  // one node suffices: the others agree (checked above), and it takes sim time
    }
  }
}

BOOST_AUTO_TEST_CASE(joining_nodes_take_over_their_ranges_without_a_lost_peer) {
  for (auto seed : seeds_to_run(101, 3)) {
    Harness h(seed);
    build_ring(h, 6);
    add_torrents(h, 60, 4);
    for (std::size_t p = 0; p < h.peers().size(); ++p) {
      h.announce(p, AnnounceEvent::started);
      if (p % 20 == 0) h.run_for(Milliseconds(100));
    }
    h.run_for(Seconds(3));
    // Three joins, with announces still arriving while each joiner pulls.
    for (int j = 0; j < 3; ++j) {
      h.join();
      for (std::size_t p = j; p < h.peers().size(); p += 7) {
        h.announce(p, AnnounceEvent::none);
        h.run_for(Milliseconds(20));
      }
      h.run_for(Seconds(5));
    }
    h.run_for(Seconds(10));
    h.report();
    // The new owners hold the swarms in their OWNED store (they answer as owners).
    BOOST_TEST(h.check_no_lost_peer(true) == 0U, h.replay());
    h.check_same_answer_everywhere();
  }
}

BOOST_AUTO_TEST_CASE(owner_crash_fails_no_request_once_the_ring_has_noticed) {
  // Requests at every node keep coming while the owner of many torrents crashes. Until the ring
  // has dropped it (no member lists it any more) some may fail with a reason; after that every
  // one is answered, on the first try, with the swarm the replicas kept (never an empty one).
  constexpr Duration kRequestEvery = Milliseconds(100);
  constexpr Duration kObserveFor = Seconds(10);
  /// Detection takes a stabilize period plus misses_dead RTOs, then the lists spread.
  constexpr Duration kNoticeWithin = Seconds(6);
  for (auto seed : seeds_to_run(201, 6)) {
    Harness h(seed);
    build_ring(h, 8);
    add_torrents(h, 40, 4);
    std::map<InfoHash, std::pair<std::uint32_t, std::uint32_t>> expected;  // complete, incomplete
    for (std::size_t p = 0; p < h.peers().size(); ++p) {
      h.announce(p, AnnounceEvent::started);
      auto& e = expected[h.peers()[p].hash];
      ++(h.peers()[p].seeder ? e.first : e.second);
      h.run_for(Milliseconds(20));
    }
    h.run_for(Seconds(3));
    for (const auto& p : h.peers()) BOOST_REQUIRE_MESSAGE(p.answered.has_value(), h.replay());

    // Every node asks for every torrent once, so each caches the owners.
    for (auto n : h.running())
      for (const auto& t : h.torrents()) h.scrape_one(n, t, [](auto) {});
    h.run_for(Seconds(2));

    // The victim: the owner of the most torrents.
    std::map<SimNetwork::NodeIndex, std::vector<InfoHash>> owned;
    for (const auto& t : h.torrents()) owned[h.true_owner(t)].push_back(t);
    auto victim_it = std::max_element(owned.begin(), owned.end(), [](const auto& a, const auto& b) {
      return a.second.size() < b.second.size();
    });
    const SimNetwork::NodeIndex victim = victim_it->first;
    const std::vector<InfoHash> victims_torrents = victim_it->second;
    const dht::NodeId victim_id = h.ring_self(victim).id;
    h.crash(victim);
    const TimePoint crashed_at = h.now();

    struct Outcome {
      TimePoint sent;
      bool ok = false;
    };
    std::vector<std::shared_ptr<Outcome>> outcomes;
    std::optional<TimePoint> noticed;
    std::size_t wrong = 0;
    auto check = [&](const InfoHash& t, std::uint32_t complete, std::uint32_t incomplete) {
      const auto& e = expected[t];
      if (complete == e.first && incomplete == e.second) return true;
      if (++wrong <= 5)
        BOOST_ERROR("wrong answer for " << dht::NodeId(t).to_hex() << ": " << complete << "/"
                                        << incomplete << " instead of " << e.first << "/"
                                        << e.second << "; " << h.replay());
      return false;
    };
    for (TimePoint until = h.now() + kObserveFor; h.now() < until;) {
      if (!noticed && !h.listed_anywhere(victim_id)) noticed = h.now();
      for (auto n : h.running()) {
        const InfoHash t = victims_torrents[h.rng().below(victims_torrents.size())];
        auto o = std::make_shared<Outcome>();
        o->sent = h.now();
        outcomes.push_back(o);
        if (h.rng().below(2)) {
          h.scrape_one(n, t, [&, o, t](std::optional<ScrapeEntry> r) {
            o->ok = r && check(t, r->complete, r->incomplete);
          });
        } else {
          // A re-announce of a peer already in the swarm: the counts stay the same.
          std::vector<std::size_t> members;
          for (std::size_t p = 0; p < h.peers().size(); ++p)
            if (h.peers()[p].hash == t) members.push_back(p);
          const std::size_t p = members[h.rng().below(members.size())];
          AnnounceRequest req;
          req.info_hash = t;
          req.peer_id.fill(static_cast<std::uint8_t>(p));
          req.peer = h.peers()[p].address;
          req.left = h.peers()[p].seeder ? 0 : 1000;
          req.numwant = 200;
          h.stack(n).node.announce(req, h.now(), [&, o, t](auto r) {
            o->ok = r.has_value() && check(t, r->result.complete, r->result.incomplete);
          });
        }
      }
      h.run_for(kRequestEvery);
    }
    h.run_for(Seconds(3));  // every request has finished by its deadline

    BOOST_REQUIRE_MESSAGE(noticed.has_value(), "the ring never dropped the victim; " << h.replay());
    BOOST_TEST((*noticed - crashed_at < kNoticeWithin), h.replay());
    std::size_t failed_during = 0, sent_during = 0, failed_after = 0, sent_after = 0;
    for (const auto& o : outcomes) {
      const bool after = o->sent >= *noticed;
      (after ? sent_after : sent_during) += 1;
      if (!o->ok) (after ? failed_after : failed_during) += 1;
    }
    BOOST_TEST_MESSAGE(
        "seed " << seed << ": victim owned " << victims_torrents.size()
                << " torrents; noticed after "
                << std::chrono::duration_cast<Milliseconds>(*noticed - crashed_at).count()
                << " ms; failed " << failed_during << " of " << sent_during
                << " requests during detection, " << failed_after << " of " << sent_after
                << " after");
    BOOST_TEST(wrong == 0U, h.replay());
    BOOST_TEST(sent_after > 0U);
    BOOST_TEST(failed_after == 0U, h.replay());
    h.report();
  }
}
