// Shared scaffolding of the ring simulation tests: seeds (RT_SIM_SEED replays one), the replay
// line printed on failure, a cluster wrapper over SimNetwork with invariant checks, convergence
// and whole-ring lookup checks. Test support only.
#pragma once

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dht/ring_invariants.hpp"
#include "dht/sim_network.hpp"

namespace ringtracker::dht::simtest {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif

/// Seeds to run: RT_SIM_SEED if set (replay), else `count` seeds from `base` (a quarter of them
/// under the sanitizers, which run ~10x slower; said loudly, not hidden).
inline std::vector<std::uint64_t> seeds(std::size_t count, std::uint64_t base) {
  if (const char* s = std::getenv("RT_SIM_SEED")) return {std::strtoull(s, nullptr, 10)};
  if (kSanitized) {
    BOOST_TEST_MESSAGE("sanitizer build: running " << (count + 3) / 4 << " of " << count << " seeds");
    count = (count + 3) / 4;
  }
  std::vector<std::uint64_t> v;
  for (std::size_t i = 0; i < count; ++i) v.push_back(base + i);
  return v;
}

/// "seed N; replay: RT_SIM_SEED=N <binary> --run_test=<case>"
inline std::string replay(std::uint64_t seed) {
  const auto& suite = boost::unit_test::framework::master_test_suite();
  std::ostringstream os;
  os << "seed " << seed << "; replay: RT_SIM_SEED=" << seed << " "
     << (suite.argc > 0 ? suite.argv[0] : "<test binary>") << " --run_test="
     << boost::unit_test::framework::current_test_case().p_name.get();
  return os.str();
}

#define RT_SIM_REQUIRE(cond, seed, what)                                                   \
  do {                                                                                     \
    const bool rt_sim_ok_ = static_cast<bool>(cond);                                       \
    std::ostringstream rt_sim_os_;                                                         \
    if (!rt_sim_ok_) rt_sim_os_ << what << " [" << ::ringtracker::dht::simtest::replay(seed) << "]"; \
    BOOST_REQUIRE_MESSAGE(rt_sim_ok_, rt_sim_os_.str());                                   \
  } while (0)

inline SimOptions default_options(std::uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.latency_min = Milliseconds(5);
  o.latency_max = Milliseconds(80);
  return o;
}

inline NodeId random_id(Prng& rng) {
  std::array<std::uint8_t, 20> k{};
  for (auto& b : k) b = static_cast<std::uint8_t>(rng.next());
  return NodeId(k);
}

/// A SimNetwork plus the checks every scenario needs.
class Cluster {
 public:
  explicit Cluster(const SimOptions& o) : net(o), rng(o.seed * 977 + 3) {}

  SimNetwork net;
  Prng rng;
  std::optional<std::string> violation;  // first safety violation seen
  bool checking = true;                  // safety checks on (off while partitioned)

  /// After-event hook for run_until: safety check; stops the run at the first violation.
  /// Under the sanitizers (whose job is memory errors) it checks at most every 100 ms of
  /// simulated time instead of after every event.
  std::function<bool()> safety_hook() {
    if (kSanitized && !sampled_notice_) {
      sampled_notice_ = true;
      BOOST_TEST_MESSAGE("sanitizer build: safety checked every 100 ms, not after every event");
    }
    return [this] {
      if (!checking) return true;
      if (kSanitized) {
        if (net.now() - last_check_ < Milliseconds(100)) return true;
        last_check_ = net.now();
      }
      auto r = RingInvariants(net.running_nodes()).check_safety();
      if (r) {
        violation = *r;
        return false;
      }
      return true;
    };
  }
  /// Runs for `d`, checking safety after every event (every_event) or every 100 ms.
  void run(Duration d, bool every_event = true) {
    if (every_event) {
      net.run_for(d, safety_hook());
      return;
    }
    const TimePoint end = net.now() + d;
    auto hook = safety_hook();
    while (net.now() < end && !violation) {
      net.run_until(std::min(end, net.now() + Milliseconds(100)));
      hook();
    }
  }
  /// Runs until the ideal state or `bound`; returns the time it took, or nullopt.
  std::optional<Duration> converge(Duration bound, bool every_event = false) {
    const TimePoint start = net.now();
    while (net.now() - start <= bound) {
      if (!RingInvariants(net.running_nodes()).check_ideal()) return net.now() - start;
      run(Milliseconds(500), every_event);
      if (violation) return std::nullopt;
    }
    return std::nullopt;
  }
  std::string ideal_failure() const {
    auto r = RingInvariants(net.running_nodes()).check_ideal();
    return r ? *r : "ideal";
  }
  /// Creates node 0 and joins n - 1 more through it, `gap` apart (zero: all at once).
  void build(std::size_t n, Duration gap, bool every_event = false) {
    while (net.size() < n) net.add_node();
    net.create(0);
    run(Milliseconds(10), every_event);
    std::vector<SocketAddress> seeds{net.address(0)};
    for (std::size_t i = 1; i < n; ++i) {
      net.join(i, seeds);
      if (gap > Duration::zero()) run(gap, every_event);
    }
  }
  /// `per_node` lookups of random keys from every member; returns the number whose owner is
  /// not the true owner (or that failed).
  std::size_t wrong_lookups(std::size_t per_node) {
    RingInvariants inv(net.running_nodes());
    std::size_t wrong = 0, done = 0;
    std::set<std::pair<std::size_t, LookupId>> mine;
    net.set_event_hook([&](std::size_t at, const RingEvent& e) {
      if (auto* l = std::get_if<ring_event::LookupCompleted>(&e)) {
        if (!mine.erase({at, l->id})) return;  // an older lookup, not one of ours
        ++done;
        auto want = inv.owner(l->key);
        if (!l->owner || !want || l->owner->id != want->id) {
          ++wrong;
          BOOST_TEST_MESSAGE("lookup from " << net.node(at).self().id.to_hex().substr(0, 8)
                                            << " key " << l->key.to_hex().substr(0, 8) << " got "
                                            << (l->owner ? l->owner->id.to_hex().substr(0, 8) : "none")
                                            << " want " << want->id.to_hex().substr(0, 8)
                                            << " hops " << l->hops);
        }
      }
    });
    std::size_t started = 0;
    for (std::size_t i = 0; i < net.size(); ++i) {
      if (!net.running(i) || !net.node(i).is_member()) continue;
      for (std::size_t k = 0; k < per_node; ++k, ++started) {
        // Lookup ids are per node; register before starting (completion may be immediate).
        const NodeId key = random_id(rng);
        mine.insert({i, net.node(i).next_lookup_id_for_test()});
        net.lookup(i, key);
      }
    }
    net.run_for(Seconds(30));
    net.set_event_hook({});
    if (started != done) BOOST_TEST_MESSAGE(started - done << " of " << started << " lookups did not complete");
    return wrong + (started - done);
  }
  TimePoint last_check_{};
  bool sampled_notice_ = false;

  std::size_t running_count() const {
    std::size_t c = 0;
    for (std::size_t i = 0; i < net.size(); ++i) c += net.running(i) ? 1 : 0;
    return c;
  }
};

inline double seconds_of(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace ringtracker::dht::simtest
