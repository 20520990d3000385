// Sim tests of ring formation: mass joins, concurrent joins into one gap, graceful leaves.
#define BOOST_TEST_MODULE ring_join_sim
#include <boost/test/unit_test.hpp>

#include "sim_support.hpp"

using namespace ringtracker;
using namespace ringtracker::dht;
using namespace ringtracker::dht::simtest;

BOOST_AUTO_TEST_CASE(sequential_joins_of_64_nodes_stay_safe_after_every_event) {
  for (auto seed : seeds(12, 100)) {
    Cluster c(default_options(seed));
    c.build(64, Milliseconds(150), true);
    RT_SIM_REQUIRE(!c.violation, seed, "safety: " << *c.violation);
    auto took = c.converge(Seconds(600), true);
    RT_SIM_REQUIRE(!c.violation, seed, "safety: " << *c.violation);
    RT_SIM_REQUIRE(took, seed, "not ideal after 600 s: " << c.ideal_failure());
    BOOST_TEST_MESSAGE("seed " << seed << ": ideal " << seconds_of(*took) << " s after the last join");
    RT_SIM_REQUIRE(c.wrong_lookups(5) == 0, seed, "lookups returned a wrong owner");
  }
}

BOOST_AUTO_TEST_CASE(five_hundred_nodes_joining_at_once_converge_to_one_ideal_ring) {
  for (auto seed : seeds(3, 200)) {
    Cluster c(default_options(seed));
    c.build(500, Duration::zero());
    c.run(Seconds(5), false);
    RT_SIM_REQUIRE(!c.violation, seed, "safety: " << *c.violation);
    auto took = c.converge(Seconds(900));
    RT_SIM_REQUIRE(!c.violation, seed, "safety: " << *c.violation);
    RT_SIM_REQUIRE(took, seed, "not ideal after 900 s: " << c.ideal_failure());
    BOOST_TEST_MESSAGE("seed " << seed << ": 500 simultaneous joins ideal after "
                               << seconds_of(*took) + 5 << " s");
    RT_SIM_REQUIRE(c.wrong_lookups(2) == 0, seed, "lookups returned a wrong owner");
  }
}

BOOST_AUTO_TEST_CASE(concurrent_joins_into_the_same_gap_all_end_up_on_the_ring) {
  for (auto seed : seeds(20, 300)) {
    Cluster c(default_options(seed));
    c.build(16, Milliseconds(100));
    auto took = c.converge(Seconds(600));
    RT_SIM_REQUIRE(took, seed, "base ring not ideal: " << c.ideal_failure());
    // Pick the gap after a random member, and fresh addresses whose ids fall into it.
    const std::size_t ai = c.rng.below(16);
    const NodeId a = c.net.node(ai).self().id;
    const NodeId gap_end = c.net.node(ai).successors()[0].id;
    std::vector<std::size_t> joiners;
    while (joiners.size() < 8) {
      auto i = c.net.add_node();
      if (in_open(NodeId::from_address(c.net.address(i)), a, gap_end)) joiners.push_back(i);
    }
    // Everyone joins at the same instant, through different members.
    for (auto j : joiners) {
      SocketAddress seed_addr = c.net.address(c.rng.below(16));
      c.net.join(j, std::span<const SocketAddress>(&seed_addr, 1));
    }
    c.run(Seconds(60), true);
    RT_SIM_REQUIRE(!c.violation, seed, "safety: " << *c.violation);
    took = c.converge(Seconds(600), true);
    RT_SIM_REQUIRE(!c.violation, seed, "safety: " << *c.violation);
    RT_SIM_REQUIRE(took, seed, "not ideal after 600 s: " << c.ideal_failure());
    RT_SIM_REQUIRE(c.wrong_lookups(5) == 0, seed, "lookups returned a wrong owner");
  }
}

BOOST_AUTO_TEST_CASE(graceful_leaves_keep_the_ring_safe_and_close_gaps) {
  for (auto seed : seeds(12, 400)) {
    Cluster c(default_options(seed));
    c.build(48, Milliseconds(100));
    RT_SIM_REQUIRE(c.converge(Seconds(600)), seed, "base ring not ideal: " << c.ideal_failure());
    // 20 leaves: some alone, some two adjacent at the same instant.
    for (int k = 0; k < 10; ++k) {
      std::size_t i = c.rng.below(c.net.size());
      while (!c.net.running(i)) i = (i + 1) % c.net.size();
      c.net.leave(i);
      if (k % 2 == 0) {
        // Its successor too, simultaneously.
        const NodeId s = c.net.node(i).successors().empty() ? NodeId{} : c.net.node(i).successors()[0].id;
        for (std::size_t j = 0; j < c.net.size(); ++j)
          if (c.net.running(j) && c.net.node(j).self().id == s && c.net.node(j).state() == RingNode::State::member)
            c.net.leave(j);
      }
      c.run(Milliseconds(1500 + c.rng.below(4000)), true);
      RT_SIM_REQUIRE(!c.violation, seed, "safety after leave " << k << ": " << *c.violation);
    }
    auto took = c.converge(Seconds(600), true);
    RT_SIM_REQUIRE(!c.violation, seed, "safety: " << *c.violation);
    RT_SIM_REQUIRE(took, seed, "not ideal after 600 s: " << c.ideal_failure());
    BOOST_TEST_MESSAGE("seed " << seed << ": " << c.running_count() << " left, ideal after "
                               << seconds_of(*took) << " s");
    RT_SIM_REQUIRE(c.wrong_lookups(5) == 0, seed, "lookups returned a wrong owner");
  }
}

// The checker itself must be able to fail, or every test above proves nothing.
BOOST_AUTO_TEST_CASE(invariant_checker_detects_lost_successors_and_non_ideal_rings) {
  const std::uint64_t seed = 1000;
  Cluster c(default_options(seed));
  c.build(20, Milliseconds(100));
  RT_SIM_REQUIRE(c.converge(Seconds(600)), seed, "base ring not ideal: " << c.ideal_failure());
  RT_SIM_REQUIRE(!RingInvariants(c.net.running_nodes()).check_safety(), seed, "ideal ring unsafe");
  // A fresh joiner makes the ring non-ideal until stabilization spreads it.
  auto j = c.net.add_node();
  SocketAddress s = c.net.address(0);
  c.net.join(j, std::span<const SocketAddress>(&s, 1));
  c.net.run_for(Seconds(1));
  RT_SIM_REQUIRE(RingInvariants(c.net.running_nodes()).check_ideal(), seed,
                 "check_ideal accepted a ring one second after a join");
  // Crashing a member's whole successor list breaks Zave's assumption: detected at once.
  std::vector<NodeId> victims;
  for (const auto& n : c.net.node(0).successors()) victims.push_back(n.id);
  for (std::size_t i = 0; i < c.net.size(); ++i)
    if (c.net.running(i) && std::find(victims.begin(), victims.end(), c.net.node(i).self().id) != victims.end())
      c.net.crash(i);
  auto r = RingInvariants(c.net.running_nodes()).check_safety();
  RT_SIM_REQUIRE(r && r->find("no live successor") != std::string::npos, seed,
                 "check_safety missed a member without live successor: " << (r ? *r : "ok"));
}
