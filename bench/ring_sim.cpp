// ring_sim: runs N real RingNodes on the deterministic SimNetwork under exponential session
// churn and prints lookup hops, lookup success, time to the ideal state, maintenance traffic,
// wall time and peak memory. A measuring tool, not a test: it asserts nothing.
//
//   ring_sim [--nodes N] [--hours H | --seconds S] [--session-mean S] [--stabilize S]
//            [--lookup-rate PER_S] [--r R] [--leave-fraction F] [--loss P] [--seed X]
//            [--id-choices K]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <cstdlib>
#include <cstring>
#include <sys/resource.h>
#include <fstream>
#include <map>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include "dht/ring_invariants.hpp"
#include "dht/sim_network.hpp"

using namespace ringtracker;
using namespace ringtracker::dht;

namespace {

struct Args {
  std::size_t nodes = 10000;
  double seconds = 3600;
  double session_mean = 600;
  double stabilize = 5;
  double lookup_rate = 50;  // lookups per simulated second, whole ring
  std::size_t r = 8;
  double leave_fraction = 0.0;  // share of session ends that are graceful leaves
  double loss = 0.0;
  std::uint64_t seed = 1;
  std::uint16_t id_choices = 1;  // candidate ids per joiner (the daemon's default is 16)
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--nodes") a.nodes = std::strtoull(v, nullptr, 10);
    else if (k == "--hours") a.seconds = std::atof(v) * 3600;
    else if (k == "--seconds") a.seconds = std::atof(v);
    else if (k == "--session-mean") a.session_mean = std::atof(v);
    else if (k == "--stabilize") a.stabilize = std::atof(v);
    else if (k == "--lookup-rate") a.lookup_rate = std::atof(v);
    else if (k == "--r") a.r = std::strtoull(v, nullptr, 10);
    else if (k == "--leave-fraction") a.leave_fraction = std::atof(v);
    else if (k == "--loss") a.loss = std::atof(v);
    else if (k == "--seed") a.seed = std::strtoull(v, nullptr, 10);
    else if (k == "--id-choices")
      a.id_choices = static_cast<std::uint16_t>(std::clamp(std::atoi(v), 1, 256));
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return a;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long vm_hwm_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

Duration seconds_d(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }
double to_s(Duration d) { return std::chrono::duration<double>(d).count(); }

NodeId random_key(Prng& rng) {
  std::array<std::uint8_t, 20> k{};
  for (auto& b : k) b = static_cast<std::uint8_t>(rng.next());
  return NodeId(k);
}

struct LookupStats {
  std::uint64_t started = 0, ok = 0, wrong = 0, failed = 0;
  std::vector<int> hops;
  void reset() { *this = LookupStats{}; }
  double success() const {
    const auto done = ok + wrong + failed;
    return done ? double(ok) / double(done) : 0;
  }
  double mean_hops() const {
    if (hops.empty()) return 0;
    double s = 0;
    for (int h : hops) s += h;
    return s / double(hops.size());
  }
  int p99_hops() {
    if (hops.empty()) return 0;
    std::sort(hops.begin(), hops.end());
    return hops[std::min(hops.size() - 1, hops.size() * 99 / 100)];
  }
};

std::uint64_t total_sent(SimNetwork& net) { return net.stats().sent; }

/// Shares of the key space the members own (each the arc from its predecessor), as multiples
/// of the mean: the largest and the 99th percentile.
std::string key_space_balance(const std::set<NodeId>& members) {
  if (members.size() < 2) return "one member";
  std::vector<double> shares;
  NodeId prev = *members.rbegin();
  for (const auto& id : members) {
    shares.push_back(NodeId::distance(prev, id).fraction() * static_cast<double>(members.size()));
    prev = id;
  }
  std::sort(shares.begin(), shares.end());
  char buf[128];
  std::snprintf(buf, sizeof buf, "largest %.2fx the mean, p99 %.2fx, smallest %.3fx",
                shares.back(), shares[shares.size() * 99 / 100], shares.front());
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  const Args args = parse(argc, argv);
  const auto wall_start = std::chrono::steady_clock::now();
  SimOptions o;
  o.seed = args.seed;
  o.loss = args.loss;
  o.node.successors = args.r;
  o.node.stabilize_period = seconds_d(args.stabilize);
  o.node.id_choices = args.id_choices;
  SimNetwork net(o);
  Prng rng(args.seed * 31 + 7);

  // Live members as the simulator knows them (joined and not yet crashed or left): the truth
  // against which lookups are judged.
  std::set<NodeId> members;
  std::map<NodeId, std::size_t> index_of;
  LookupStats stats;
  std::map<LookupId, std::size_t> user_lookups;
  net.set_event_hook([&](std::size_t i, const RingEvent& e) {
    if (std::holds_alternative<ring_event::Joined>(e)) {
      members.insert(net.node(i).self().id);
      index_of[net.node(i).self().id] = i;
    } else if (std::holds_alternative<ring_event::Left>(e)) {
      members.erase(net.node(i).self().id);
    } else if (auto* l = std::get_if<ring_event::LookupCompleted>(&e)) {
      if (!l->owner) {
        ++stats.failed;
        return;
      }
      auto it = members.lower_bound(l->key);
      if (it == members.end()) it = members.begin();
      if (it != members.end() && *it == l->owner->id) {
        ++stats.ok;
        stats.hops.push_back(l->hops);
      } else {
        ++stats.wrong;
      }
    }
  });

  auto live_index = [&]() -> std::size_t {
    // A uniformly random live member.
    auto it = members.lower_bound(random_key(rng));
    if (it == members.end()) it = members.begin();
    return index_of[*it];
  };
  // A joiner is given kJoinSeeds random members, as an operator lists several --join
  // addresses: with one seed, a joiner whose seed crashes before answering can never join
  // (it knows no other node), and the ring is never "ideal" for the checker.
  constexpr std::size_t kJoinSeeds = 3;
  auto join_via_members = [&](std::size_t node) {
    std::vector<SocketAddress> seeds;
    for (std::size_t k = 0; k < kJoinSeeds; ++k) seeds.push_back(net.address(live_index()));
    net.join(node, std::span<const SocketAddress>(seeds));
  };

  // Phase 1: build the ring. Nodes join through random members at a steady rate.
  const std::size_t n = args.nodes;
  for (std::size_t i = 0; i < n; ++i) net.add_node();
  net.create(0);
  net.run_for(Milliseconds(100));
  const double join_rate = std::max(50.0, double(n) / 120.0);  // joins per second
  for (std::size_t i = 1; i < n; ++i) {
    join_via_members(i);
    net.run_for(seconds_d(1.0 / join_rate));
  }
  const TimePoint built = net.now();
  Duration to_ideal{};
  for (int s = 0; s < 3600; ++s) {
    if (!RingInvariants(net.running_nodes()).check_ideal()) break;
    net.run_for(Seconds(1));
  }
  to_ideal = net.now() - built;
  std::printf("nodes %zu r %zu stabilize %.1fs: ring of %zu built, ideal %.0f s after the last join\n",
              n, args.r, args.stabilize, members.size(), to_ideal / std::chrono::duration<double>(1));
  std::printf("key space after the joins (id choices %u): %s\n", unsigned(args.id_choices),
              key_space_balance(members).c_str());

  // Phase 2: static lookups (hop count in a stable ring) and a quiet traffic baseline.
  {
    stats.reset();
    for (int k = 0; k < 20000; ++k) {
      net.lookup(live_index(), random_key(rng));
      if (k % 100 == 99) net.run_for(Milliseconds(100));
    }
    net.run_for(Seconds(30));
    const double half_log = 0.5 * std::log2(double(members.size()));
    std::printf("stable ring: lookups %llu success %.4f%% mean hops %.2f p99 %d (1/2 log2 N = %.2f, target <= %.2f)\n",
                (unsigned long long)(stats.ok + stats.wrong + stats.failed), 100.0 * stats.success(),
                stats.mean_hops(), stats.p99_hops(), half_log, half_log + 1);
    const auto sent0 = total_sent(net);
    const auto bytes0 = net.stats().bytes;
    const double quiet = 120;
    net.run_for(seconds_d(quiet));
    std::printf("maintenance without churn or lookups: %.3f msg/s/node, %.1f B/s/node\n",
                double(total_sent(net) - sent0) / quiet / double(members.size()),
                double(net.stats().bytes - bytes0) / quiet / double(members.size()));
  }

  // Phase 3: churn. Every member's session ends after Exp(mean); it crashes (or leaves) and a
  // fresh node (new address) joins through a random member at once, keeping N constant.
  stats.reset();
  using Ending = std::pair<TimePoint, std::size_t>;
  std::priority_queue<Ending, std::vector<Ending>, std::greater<Ending>> endings;
  auto session = [&] { return seconds_d(-std::log(1.0 - rng.unit()) * args.session_mean); };
  for (std::size_t i = 0; i < net.size(); ++i)
    if (net.running(i)) endings.push({net.now() + session(), i});
  const TimePoint churn_start = net.now();
  const auto churn_wall_start = std::chrono::steady_clock::now();
  const double churn_cpu_start = cpu_seconds();
  const TimePoint churn_end = churn_start + seconds_d(args.seconds);
  const auto sent0 = total_sent(net);
  const auto bytes0 = net.stats().bytes;
  std::uint64_t crashes = 0, leaves = 0;
  TimePoint next_lookup = churn_start;
  const Duration lookup_gap = seconds_d(1.0 / std::max(args.lookup_rate, 1e-9));
  std::uint64_t user_lookup_msgs = 0;
  TimePoint next_report = churn_start + Seconds(600);
  while (net.now() < churn_end) {
    TimePoint t = std::min({endings.empty() ? churn_end : endings.top().first, next_lookup, churn_end});
    net.run_until(t);
    if (t == next_lookup) {
      if (!members.empty()) {
        net.lookup(live_index(), random_key(rng));
        ++stats.started;
      }
      next_lookup += lookup_gap;
    }
    while (!endings.empty() && endings.top().first <= net.now()) {
      auto i = endings.top().second;
      endings.pop();
      if (!net.running(i)) continue;
      const NodeId id = net.node(i).self().id;
      if (rng.unit() < args.leave_fraction) {
        net.leave(i);
        ++leaves;
      } else {
        members.erase(id);
        net.crash(i);
        ++crashes;
      }
      auto j = net.add_node();
      join_via_members(j);
      endings.push({net.now() + session(), j});
    }
    if (net.now() >= next_report) {
      std::fprintf(stderr, "  t=%.0fs members %zu lookups %llu ok %.4f%% wall %.0fs\n",
                   to_s(net.now() - churn_start), members.size(),
                   (unsigned long long)(stats.ok + stats.wrong + stats.failed), 100 * stats.success(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count());
      next_report += Seconds(600);
    }
  }
  for (int h : stats.hops) user_lookup_msgs += 2 * static_cast<std::uint64_t>(h);
  const double churn_s = args.seconds;
  const double per_node = double(n) * churn_s;
  std::printf("churn: %.0f s simulated, session mean %.0f s, %llu crashes, %llu leaves, %llu joins\n",
              churn_s, args.session_mean, (unsigned long long)crashes, (unsigned long long)leaves,
              (unsigned long long)(crashes + leaves));
  std::printf("churn lookups: %llu, success %.4f%% (wrong owner %llu, failed %llu), mean hops %.2f p99 %d\n",
              (unsigned long long)(stats.ok + stats.wrong + stats.failed), 100.0 * stats.success(),
              (unsigned long long)stats.wrong, (unsigned long long)stats.failed, stats.mean_hops(),
              stats.p99_hops());
  std::printf("churn phase alone: wall %.1f s, cpu %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - churn_wall_start).count(),
              cpu_seconds() - churn_cpu_start);
  const double msgs = double(total_sent(net) - sent0);
  std::printf("traffic during churn: %.3f msg/s/node, %.1f B/s/node (user lookups ~%.1f%% of messages)\n",
              msgs / per_node, double(net.stats().bytes - bytes0) / per_node,
              100.0 * double(user_lookup_msgs) / std::max(msgs, 1.0));

  // Phase 4: churn stops; time until the ideal state.
  const TimePoint quiet_from = net.now();
  bool ideal = false;
  std::optional<std::string> why;
  for (int s = 0; s < 1800 && !ideal; ++s) {
    why = RingInvariants(net.running_nodes()).check_ideal();
    ideal = !why;
    if (!ideal) net.run_for(Seconds(1));
  }
  std::printf("key space after churn: %s\n", key_space_balance(members).c_str());
  std::printf("after churn: %s after %.0f s%s%s\n", ideal ? "ideal state" : "NOT ideal",
              to_s(net.now() - quiet_from), why ? "; first violation: " : "",
              why ? why->c_str() : "");
  std::printf("wall %.1f s (cpu %.1f s), peak memory (VmHWM) %.0f MB, simulated events %llu\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count(),
              cpu_seconds(),
              double(vm_hwm_kb()) / 1024.0, (unsigned long long)net.stats().events);
  return 0;
}
