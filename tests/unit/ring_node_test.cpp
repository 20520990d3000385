#define BOOST_TEST_MODULE ring_node
#include "dht/ring_node.hpp"

#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>

#include "dht/ring_invariants.hpp"
#include "dht/sim_network.hpp"

using namespace ringtracker;
using namespace ringtracker::dht;
namespace bdata = boost::unit_test::data;

namespace {

const TimePoint kT0 = TimePoint{} + std::chrono::hours(1);

SocketAddress addr(const char* text) { return *SocketAddress::parse(text); }

RingConfig config_for(const char* text) {
  RingConfig c;
  c.self = addr(text);
  return c;
}

std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::vector<RingEvent> drain_events(RingNode& n) {
  std::vector<RingEvent> v;
  while (auto e = n.poll_event()) v.push_back(std::move(*e));
  return v;
}

std::vector<Transmit> drain_transmits(RingNode& n) {
  std::vector<Transmit> v;
  while (auto t = n.poll_transmit()) v.push_back(std::move(*t));
  return v;
}

template <class T>
const T* find_event(const std::vector<RingEvent>& v) {
  for (const auto& e : v)
    if (auto* p = std::get_if<T>(&e)) return p;
  return nullptr;
}

// A request as another node would send it.
std::string request_from(const NodeRef& sender, MessageKind kind, std::uint32_t txid,
                         const NodeId& key = NodeId{}) {
  RingMessage m;
  m.kind = kind;
  m.txid = txid;
  m.sender = sender;
  m.key = key;
  std::string s;
  encode_message(m, s);
  return s;
}

}  // namespace

BOOST_AUTO_TEST_CASE(idle_node_has_no_timer_and_drops_datagrams) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  BOOST_TEST((n.next_timeout() == TimePoint::max()));
  auto other = NodeRef::from_address(addr("10.0.0.2:7000"));
  n.handle_datagram(kT0, other.address, bytes_of(request_from(other, MessageKind::ping, 1)));
  BOOST_TEST(!n.poll_transmit().has_value());
  BOOST_TEST(n.counters().drops[static_cast<std::size_t>(DropReason::not_member)] == 1u);
}

BOOST_AUTO_TEST_CASE(created_node_is_alone_and_owns_every_key) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  auto ev = drain_events(n);
  BOOST_TEST(find_event<ring_event::Joined>(ev) != nullptr);
  auto* range = find_event<ring_event::OwnedRangeChanged>(ev);
  BOOST_REQUIRE(range);
  BOOST_TEST(range->alone);
  BOOST_TEST((n.next_timeout() <= kT0 + Milliseconds(5500)));
  auto id = n.start_lookup(kT0, NodeId::from_address(addr("1.2.3.4:5")));
  ev = drain_events(n);
  auto* done = find_event<ring_event::LookupCompleted>(ev);
  BOOST_REQUIRE(done);
  BOOST_TEST(done->id == id);
  BOOST_REQUIRE(done->owner.has_value());
  BOOST_TEST((done->owner->id == n.self().id));
  BOOST_TEST(done->hops == 0);
}

BOOST_AUTO_TEST_CASE(answers_ping_with_pong_carrying_the_same_txid) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  auto other = NodeRef::from_address(addr("10.0.0.2:7000"));
  n.handle_datagram(kT0, other.address, bytes_of(request_from(other, MessageKind::ping, 77)));
  auto out = drain_transmits(n);
  BOOST_REQUIRE(out.size() == 1u);
  BOOST_TEST((out[0].destination == other.address));
  auto reply = decode_message(bytes_of(out[0].bytes));
  BOOST_REQUIRE(reply.has_value());
  BOOST_TEST(static_cast<int>(reply->kind) == static_cast<int>(MessageKind::pong));
  BOOST_TEST(reply->txid == 77u);
  BOOST_TEST((reply->sender.id == n.self().id));
}

BOOST_AUTO_TEST_CASE(refuses_sender_whose_id_does_not_match_its_address) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  auto liar = NodeRef::from_address(addr("10.0.0.2:7000"));
  liar.id = NodeId::from_address(addr("10.0.0.3:7000"));
  n.handle_datagram(kT0, liar.address, bytes_of(request_from(liar, MessageKind::ping, 1)));
  BOOST_TEST(!n.poll_transmit().has_value());
  BOOST_TEST(n.counters().drops[static_cast<std::size_t>(DropReason::bad_sender_id)] == 1u);
}

BOOST_AUTO_TEST_CASE(refuses_sender_advertising_another_source_address) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  auto other = NodeRef::from_address(addr("10.0.0.2:7000"));
  n.handle_datagram(kT0, addr("10.0.0.9:7000"), bytes_of(request_from(other, MessageKind::ping, 1)));
  BOOST_TEST(!n.poll_transmit().has_value());
  BOOST_TEST(n.counters().drops[static_cast<std::size_t>(DropReason::source_mismatch)] == 1u);
}

BOOST_AUTO_TEST_CASE(drops_response_without_matching_request) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  auto other = NodeRef::from_address(addr("10.0.0.2:7000"));
  n.handle_datagram(kT0, other.address, bytes_of(request_from(other, MessageKind::pong, 5)));
  BOOST_TEST(n.counters().drops[static_cast<std::size_t>(DropReason::unexpected_response)] == 1u);
}

static const std::string kHostile[] = {
    "", "d", "de", "le", "i0e", std::string(70000, 'x'), "d1:q2:pi1:ti1ee",
    "d1:i26:AAAAAAAAAAAAAAAAAAAA\x7f\x00\x00\x01\x1b\x39" "1:q2:zz1:ti1ee",
    std::string("d1:q2:gs1:t") + "i99999999999999999999999ee"};
BOOST_DATA_TEST_CASE(counts_malformed_datagrams_and_sends_nothing, bdata::make(kHostile), bytes) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  drain_events(n);
  n.handle_datagram(kT0, addr("10.0.0.2:7000"), bytes_of(bytes));
  BOOST_TEST(!n.poll_transmit().has_value());
  BOOST_TEST(!n.poll_event().has_value());
  BOOST_TEST(n.counters().drops[static_cast<std::size_t>(DropReason::malformed)] == 1u);
}

BOOST_AUTO_TEST_CASE(find_step_at_lone_node_names_itself_owner) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  auto other = NodeRef::from_address(addr("10.0.0.2:7000"));
  n.handle_datagram(kT0, other.address,
                    bytes_of(request_from(other, MessageKind::find_step, 3, other.id)));
  auto out = drain_transmits(n);
  BOOST_REQUIRE(out.size() == 1u);
  auto reply = decode_message(bytes_of(out[0].bytes));
  BOOST_REQUIRE(reply.has_value());
  BOOST_TEST(static_cast<int>(reply->code) == static_cast<int>(FindCode::self_owner));
}

BOOST_AUTO_TEST_CASE(get_state_with_rectify_makes_sender_predecessor_of_lone_node) {
  RingNode n(config_for("10.0.0.1:7000"), 1);
  n.create(kT0);
  drain_events(n);
  auto other = NodeRef::from_address(addr("10.0.0.2:7000"));
  RingMessage m;
  m.kind = MessageKind::get_state;
  m.txid = 9;
  m.sender = other;
  m.rectify = true;
  std::string s;
  encode_message(m, s);
  n.handle_datagram(kT0, other.address, bytes_of(s));
  BOOST_REQUIRE(n.predecessor().has_value());
  BOOST_TEST((n.predecessor()->id == other.id));
  // The reply already reflects the rectify; the lone node also asks its new predecessor for
  // its state (it is the successor-to-be).
  std::optional<RingMessage> reply, own_request;
  for (auto& t : drain_transmits(n)) {
    auto m2 = decode_message(bytes_of(t.bytes));
    BOOST_REQUIRE(m2.has_value());
    if (m2->kind == MessageKind::state && m2->txid == 9) reply = *m2;
    if (m2->kind == MessageKind::get_state) own_request = *m2;
  }
  BOOST_REQUIRE(reply.has_value());
  BOOST_REQUIRE(reply->predecessor.has_value());
  BOOST_TEST((reply->predecessor->id == other.id));
  BOOST_TEST(own_request.has_value());
  auto events = drain_events(n);
  BOOST_TEST(find_event<ring_event::OwnedRangeChanged>(events) != nullptr);
}

BOOST_AUTO_TEST_CASE(app_payload_arrives_as_event) {
  RingNode a(config_for("10.0.0.1:7000"), 1), b(config_for("10.0.0.2:7000"), 2);
  a.create(kT0);
  b.create(kT0);
  drain_events(b);
  BOOST_TEST(a.send_app(kT0, b.self().address, std::string("\0hello", 6)));
  auto out = drain_transmits(a);
  BOOST_REQUIRE(out.size() == 1u);
  b.handle_datagram(kT0, a.self().address, bytes_of(out[0].bytes));
  auto events = drain_events(b);
  auto* app = find_event<ring_event::AppReceived>(events);
  BOOST_REQUIRE(app);
  BOOST_TEST(app->payload == std::string("\0hello", 6));
  BOOST_TEST((app->from.id == a.self().id));
}

BOOST_AUTO_TEST_CASE(rejects_app_payload_over_the_message_limit) {
  RingNode a(config_for("10.0.0.1:7000"), 1);
  a.create(kT0);
  BOOST_TEST(!a.send_app(kT0, addr("10.0.0.2:7000"), std::string(MessageLimits::kBytesMax, 'x')));
  BOOST_TEST(!a.poll_transmit().has_value());
}

// --- several nodes on the simulated network --------------------------------------------------

namespace {
SimOptions sim_options(std::uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.latency_min = Milliseconds(10);
  o.latency_max = Milliseconds(30);
  return o;
}

void build_ring(SimNetwork& net, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) net.add_node();
  net.create(0);
  std::vector<SocketAddress> seeds{net.address(0)};
  for (std::size_t i = 1; i < n; ++i) {
    net.join(i, seeds);
    net.run_for(Milliseconds(200));
  }
  for (int s = 0; s < 300; ++s) {
    if (!RingInvariants(net.running_nodes()).check_ideal()) return;
    net.run_for(Seconds(1));
  }
  BOOST_FAIL("ring did not reach the ideal state: "
             << *RingInvariants(net.running_nodes()).check_ideal());
}

std::size_t index_by_id(SimNetwork& net, const NodeId& id) {
  for (std::size_t i = 0; i < net.size(); ++i)
    if (net.running(i) && net.node(i).self().id == id) return i;
  BOOST_FAIL("no such node");
  return 0;
}
}  // namespace

BOOST_AUTO_TEST_CASE(two_nodes_become_each_others_successor_and_predecessor) {
  SimNetwork net(sim_options(1));
  build_ring(net, 2);
  const auto& a = net.node(0);
  const auto& b = net.node(1);
  BOOST_REQUIRE(a.successors().size() == 1u);
  BOOST_TEST((a.successors()[0].id == b.self().id));
  BOOST_TEST((b.predecessor()->id == a.self().id));
  BOOST_TEST((a.predecessor()->id == b.self().id));
}

BOOST_AUTO_TEST_CASE(successor_failure_is_repaired_within_two_rto_and_one_period) {
  SimNetwork net(sim_options(2));
  build_ring(net, 12);
  const std::size_t a = 3;
  const NodeId dead_id = net.node(a).successors()[0].id;
  const NodeId next_id = net.node(a).successors()[1].id;
  const auto& cfg = net.node(a).config();
  const Duration bound =
      2 * net.node(a).rto_for(dead_id) +
      std::chrono::duration_cast<Duration>(cfg.stabilize_period * (1 + cfg.stabilize_jitter));
  net.crash(index_by_id(net, dead_id));
  const TimePoint crashed = net.now();
  while (net.node(a).successors()[0].id != next_id && net.now() - crashed < Seconds(60))
    net.run_for(Milliseconds(10));
  const Duration took = net.now() - crashed;
  BOOST_TEST_MESSAGE("repair took " << std::chrono::duration_cast<Milliseconds>(took).count()
                                    << " ms, bound "
                                    << std::chrono::duration_cast<Milliseconds>(bound).count());
  BOOST_TEST((net.node(a).successors()[0].id == next_id));
  BOOST_TEST((took <= bound + Milliseconds(100)));  // + one network delivery
}

BOOST_AUTO_TEST_CASE(graceful_leave_makes_neighbours_adopt_each_other_at_once) {
  SimNetwork net(sim_options(3));
  build_ring(net, 10);
  const std::size_t leaver = 4;
  const NodeId pred_id = net.node(leaver).predecessor()->id;
  const NodeId succ_id = net.node(leaver).successors()[0].id;
  net.leave(leaver);
  net.run_for(Seconds(1));  // far less than a stabilize period
  BOOST_TEST(!net.running(leaver));
  const auto& p = net.node(index_by_id(net, pred_id));
  const auto& s = net.node(index_by_id(net, succ_id));
  BOOST_TEST((p.successors()[0].id == succ_id));
  BOOST_TEST((s.predecessor()->id == pred_id));
}

BOOST_AUTO_TEST_CASE(rto_follows_measured_round_trips) {
  SimNetwork net(sim_options(4));
  build_ring(net, 3);
  const auto& n = net.node(0);
  const Duration rto = n.rto_for(n.successors()[0].id);
  // RTTs are 20..72 ms here, so SRTT + 4 RTTVAR sits at the configured floor.
  BOOST_TEST((rto == n.config().rto_min));
  BOOST_TEST((n.rto_for(NodeId::from_address(addr("1.1.1.1:1"))) == n.config().rto_initial));
}

BOOST_AUTO_TEST_CASE(fingers_are_refreshed_and_distinct) {
  SimNetwork net(sim_options(5));
  build_ring(net, 40);
  net.run_for(Seconds(300));
  std::size_t total = 0;
  for (std::size_t i = 0; i < net.size(); ++i) total += net.node(i).finger_count();
  // log2(40) ~ 5.3 distinct fingers beyond the first successor.
  BOOST_TEST(total / net.size() >= 3u);
}

BOOST_AUTO_TEST_CASE(lookups_from_every_node_return_the_true_owner) {
  SimNetwork net(sim_options(6));
  build_ring(net, 30);
  RingInvariants inv(net.running_nodes());
  int good = 0, bad = 0;
  net.set_event_hook([&](std::size_t, const RingEvent& e) {
    if (auto* l = std::get_if<ring_event::LookupCompleted>(&e)) {
      auto want = inv.owner(l->key);
      (l->owner && l->owner->id == want->id) ? ++good : ++bad;
    }
  });
  Prng rng(6);
  for (std::size_t i = 0; i < net.size(); ++i) {
    for (int k = 0; k < 10; ++k) {
      std::array<std::uint8_t, 20> key{};
      for (auto& b : key) b = static_cast<std::uint8_t>(rng.next());
      net.lookup(i, NodeId(key));
    }
  }
  net.run_for(Seconds(10));
  BOOST_TEST(good == 300);
  BOOST_TEST(bad == 0);
}

BOOST_AUTO_TEST_CASE(joiner_through_a_dead_seed_tries_the_next_seed) {
  SimNetwork net(sim_options(7));
  build_ring(net, 3);
  auto dead = net.add_node();  // never started
  auto j = net.add_node();
  std::vector<SocketAddress> seeds{net.address(dead), net.address(1)};
  net.join(j, seeds);
  net.run_for(Seconds(30));
  BOOST_TEST(net.node(j).is_member());
}

// --- choosing a ring position among id_choices ------------------------------------------------

namespace {
/// The smaller of the two pieces `c` cuts the gap (lower, upper] into; lower == upper is the
/// whole circle.
NodeId smaller_piece(const NodeId& lower, const NodeId& c, const NodeId& upper) {
  return std::min(NodeId::distance(lower, c), NodeId::distance(c, upper));
}

/// A network of `nodes` nodes (not started) that choose among `choices` ids, stabilizing
/// every second.
std::unique_ptr<SimNetwork> choosing_network(std::uint64_t seed, std::uint16_t choices,
                                             std::size_t nodes, Duration latency_min,
                                             Duration latency_max) {
  SimOptions o = sim_options(seed);
  o.node.id_choices = choices;
  o.node.stabilize_period = Seconds(1);
  o.latency_min = latency_min;
  o.latency_max = latency_max;
  auto net = std::make_unique<SimNetwork>(o);
  for (std::size_t i = 0; i < nodes; ++i) net->add_node();
  return net;
}

/// Runs until the ring is ideal, at most `seconds_max` simulated seconds; true if it is.
bool run_until_ideal(SimNetwork& net, int seconds_max) {
  for (int s = 0; s < seconds_max; ++s) {
    if (!RingInvariants(net.running_nodes()).check_ideal()) return true;
    net.run_for(Seconds(1));
  }
  return !RingInvariants(net.running_nodes()).check_ideal();
}

/// Largest share of the key space any running node owns, as a multiple of the mean.
double max_share_over_mean(SimNetwork& net) {
  std::vector<NodeId> ids;
  for (std::size_t i = 0; i < net.size(); ++i)
    if (net.running(i)) ids.push_back(net.node(i).self().id);
  std::sort(ids.begin(), ids.end());
  double worst = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const NodeId gap = NodeId::distance(ids[(i + ids.size() - 1) % ids.size()], ids[i]);
    worst = std::max(worst, gap.fraction());
  }
  return worst * static_cast<double>(ids.size());
}
}  // namespace

BOOST_AUTO_TEST_CASE(joiner_takes_the_candidate_id_that_halves_its_gap_best) {
  SimOptions o = sim_options(11);
  o.node.id_choices = 8;
  SimNetwork net(o);
  auto a = net.add_node();
  auto b = net.add_node();
  net.create(a);
  std::vector<SocketAddress> seeds{net.address(a)};
  net.join(b, seeds);
  net.run_for(Seconds(5));
  BOOST_REQUIRE(net.node(b).is_member());

  // The creator keeps its plain id; the joiner's gap is the whole circle around it.
  const NodeId lone = net.node(a).self().id;
  BOOST_TEST((lone == NodeId::from_address(net.address(a))));
  std::uint16_t want = 0;
  for (std::uint16_t v = 1; v < 8; ++v) {
    const NodeId c = NodeId::from_address(net.address(b), v);
    const NodeId best = NodeId::from_address(net.address(b), want);
    if (smaller_piece(lone, c, lone) > smaller_piece(lone, best, lone)) want = v;
  }
  BOOST_TEST(net.node(b).self().vnode == want);
  BOOST_TEST((net.node(b).self().id == NodeId::from_address(net.address(b), want)));
  BOOST_REQUIRE(!net.node(a).successors().empty());
  BOOST_TEST((net.node(a).successors()[0].id == net.node(b).self().id));
  BOOST_TEST(!RingInvariants(net.running_nodes()).check_ideal());
}

BOOST_AUTO_TEST_CASE(id_choices_spread_the_key_space_evenly_and_seeds_with_virtual_ids_work) {
  constexpr std::size_t kNodes = 40;
  auto build = [](std::uint16_t choices) {
    auto net = choosing_network(12, choices, kNodes, Milliseconds(10), Milliseconds(30));
    net->create(0);
    std::size_t virtual_seeds = 0;
    for (std::size_t i = 1; i < kNodes; ++i) {
      // Through the previous joiner: its id usually carries a virtual index, which the joiner
      // cannot know from the address it was given.
      std::vector<SocketAddress> seeds{net->address(i - 1)};
      if (net->node(i - 1).self().vnode != 0) ++virtual_seeds;
      net->join(i, seeds);
      net->run_for(Seconds(3));
      BOOST_REQUIRE_MESSAGE(net->node(i).is_member(), "node " << i << " did not join");
    }
    BOOST_TEST(run_until_ideal(*net, 120));
    return std::make_pair(std::move(net), virtual_seeds);
  };
  auto [plain, plain_virtual] = build(1);
  auto [chosen, chosen_virtual] = build(16);
  BOOST_TEST(plain_virtual == 0u);
  BOOST_TEST(chosen_virtual > kNodes / 2);
  const double plain_max = max_share_over_mean(*plain);
  const double chosen_max = max_share_over_mean(*chosen);
  BOOST_TEST_MESSAGE("largest share / mean: plain ids " << plain_max << ", 16 choices "
                                                         << chosen_max);
  // One id per node leaves the largest gap near ln N = 3.7 times the mean; choosing among 16
  // keeps it near 2 (about 1.6 median, 1.8 at the 90th percentile for 40 nodes).
  BOOST_TEST(chosen_max < 2.5);
  BOOST_TEST(chosen_max < plain_max);
}

BOOST_AUTO_TEST_CASE(joiners_started_at_the_same_instant_still_spread_over_the_key_space) {
  // An operator's script starts every node at once: without the random start and the gap
  // confirmation, all of them would probe the lone first node and split its circle at the
  // same place (measured: the largest share 10.7x the mean, a node at 0.005x).
  constexpr std::size_t kNodes = 24;
  auto build = [](std::uint16_t choices) {
    auto net = choosing_network(5, choices, kNodes, Microseconds(200), Microseconds(600));
    net->create(0);
    net->run_for(Milliseconds(300));
    std::vector<SocketAddress> seeds{net->address(0)};
    for (std::size_t i = 1; i < kNodes; ++i) net->join(i, seeds);
    BOOST_TEST(run_until_ideal(*net, 60));
    return net;
  };
  auto plain = build(1);
  auto chosen = build(16);
  const double plain_max = max_share_over_mean(*plain);
  const double chosen_max = max_share_over_mean(*chosen);
  BOOST_TEST_MESSAGE("simultaneous joins, largest share / mean: plain ids " << plain_max
                     << ", 16 choices " << chosen_max);
  BOOST_TEST(chosen_max < 2.5);  // measured 2.04 (plain ids: 3.78)
  BOOST_TEST(chosen_max < plain_max);
}
