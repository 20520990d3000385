// ClusterNode against a fake ring: local and forwarded answers, deadlines, "not mine" retries,
// failover after an owner's crash (attempt timeouts, owner-cache invalidation), batching, scrape
// split and merge, replication targets, promotion, join pull, graceful leave.
// Remote owners are real ClusterNodes; payloads are moved between them by hand.
#define BOOST_TEST_MODULE cluster_node
#include "tracker/cluster_node.hpp"

#include <boost/test/unit_test.hpp>
#include <map>
#include <set>

#include "tracker/memory_swarm_store.hpp"

using namespace ringtracker;
using namespace ringtracker::tracker;

namespace {

const TimePoint kT0 = TimePoint{} + Seconds(1000);

dht::NodeId id_at(std::uint8_t top) {
  std::array<std::uint8_t, 20> b{};
  b[0] = top;
  return dht::NodeId(b);
}

dht::NodeRef node_at(std::uint8_t top) {
  dht::NodeRef n;
  n.id = id_at(top);
  std::uint8_t ip[4] = {10, 0, 0, top};
  n.address.ip = IpAddress::v4(ip);
  n.address.port = 6881;
  return n;
}

InfoHash hash_at(std::uint8_t top, std::uint8_t low = 1) {
  InfoHash h{};
  h[0] = top;
  h[19] = low;
  return h;
}

class FakeRing final : public RingView {
 public:
  dht::NodeRef me;
  std::optional<dht::NodeRef> pred;
  std::vector<dht::NodeRef> succ;
  bool is_alone = false;
  std::vector<std::pair<dht::LookupId, dht::NodeId>> lookups;

  const dht::NodeRef& self() const override { return me; }
  Ownership ownership(const dht::NodeId& key) const override {
    if (is_alone) return Ownership::mine;
    if (!pred) return Ownership::unknown;
    return dht::in_half_open(key, pred->id, me.id) ? Ownership::mine : Ownership::not_mine;
  }
  std::optional<dht::NodeRef> predecessor() const override { return pred; }
  std::vector<dht::NodeRef> successors() const override { return succ; }
  bool alone() const override { return is_alone; }
  dht::LookupId start_lookup(TimePoint, const dht::NodeId& key) override {
    lookups.emplace_back(next_++, key);
    return lookups.back().first;
  }
  /// RingNode's RTO for a node without RTT samples: clamped to attempt_timeout_max.
  Duration rto = Seconds(1);
  Duration rto_for(const dht::NodeId&) const override { return rto; }

 private:
  dht::LookupId next_ = 100;
};

/// One ring member's data layer with its stores.
struct TestNode {
  FakeRing ring;
  Config cfg;
  MemorySwarmStore owned;
  MemorySwarmStore replica;
  tracker::Counters counters;
  TrackerService service;
  ClusterNode node;

  /// `joining`: the node just joined (it pulls its range). Otherwise it has been a member for
  /// a while (it started the ring alone, so it pulls nothing).
  TestNode(std::uint8_t self, std::uint8_t pred, std::vector<std::uint8_t> succ,
           ClusterConfig cc = {}, bool joining = false)
      : owned(SwarmLimits{}),
        replica(SwarmLimits{}),
        service(cfg, owned, counters, 1),
        node(cc, ring, service, replica) {
    ring.me = node_at(self);
    if (!joining) {
      ring.is_alone = true;
      node.handle_ring_change(kT0);
      ring.is_alone = false;
    }
    ring.pred = node_at(pred);
    for (auto s : succ) ring.succ.push_back(node_at(s));
    node.handle_ring_change(kT0);
    if (!joining) drain();
  }

  /// Every message the node sends now, one per entry: bundles (several messages for one node
  /// in one datagram, tested on their own) are split, so tests count and read messages.
  std::vector<AppTransmit> drain() {
    std::vector<AppTransmit> out;
    while (auto t = node.poll_app()) {
      if (!is_bundle(t->payload)) {
        out.push_back(std::move(*t));
        continue;
      }
      std::vector<std::string_view> parts;
      BOOST_REQUIRE(split_bundle(t->payload, parts).has_value());
      for (auto part : parts) out.push_back(AppTransmit{t->to, std::string(part)});
    }
    return out;
  }
};

/// The peers of an answer as "ip:port", in order: those built here, then those that came
/// compact from the owner.
std::vector<std::string> peers_of(const AnnounceResponse& r) {
  std::vector<std::string> out;
  for_each_peer(r.result,
                [&](const SocketAddress& a, const PeerId&) { out.push_back(a.to_string()); });
  return out;
}

AnnounceRequest announce_of(const InfoHash& h, std::uint8_t peer, std::uint64_t left = 100) {
  AnnounceRequest r;
  r.info_hash = h;
  r.peer_id.fill(peer);
  std::uint8_t ip[4] = {192, 168, 0, peer};
  r.peer.ip = IpAddress::v4(ip);
  r.peer.port = 6000;
  r.left = left;
  r.numwant = 50;
  return r;
}

AnnounceRequest stopped_of(const InfoHash& h, std::uint8_t peer) {
  AnnounceRequest r = announce_of(h, peer);
  r.event = AnnounceEvent::stopped;
  return r;
}

struct AnnounceResult_ {
  bool called = false;
  std::optional<AnnounceResponse> ok;
  std::string failure;
};

RequestHandler::AnnounceDone capture(AnnounceResult_& r) {
  return [&r](Expected<AnnounceResponse, std::string>&& e) {
    BOOST_REQUIRE(!r.called);  // exactly once
    r.called = true;
    if (e) {
      r.ok = *e;
    } else {
      r.failure = e.error();
    }
  };
}

template <class T>
T decode_as(const std::string& payload) {
  auto m = decode_cluster_message(payload);
  BOOST_REQUIRE(m.has_value());
  BOOST_REQUIRE(std::holds_alternative<T>(*m));
  return std::get<T>(*m);
}

/// The id of `n`'s i-th lookup (which must exist).
dht::LookupId lookup_at(const TestNode& n, std::size_t i) {
  BOOST_REQUIRE_GT(n.ring.lookups.size(), i);
  return n.ring.lookups[i].first;
}

/// Delivers every payload of `from` to the nodes in `to` (by id); returns how many were
/// delivered.
std::size_t deliver(TestNode& from, std::map<std::uint8_t, TestNode*> to, TimePoint now) {
  std::size_t n = 0;
  for (auto& t : from.drain()) {
    auto it = to.find(t.to.id.bytes()[0]);
    if (it == to.end()) continue;
    it->second->node.handle_app(now, from.ring.me, t.payload);
    ++n;
  }
  return n;
}

}  // namespace

BOOST_AUTO_TEST_CASE(owner_answers_announce_before_returning) {
  TestNode a(0x80, 0x40, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x60), 1), kT0, capture(r));
  BOOST_TEST(r.called);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(r.ok->result.incomplete == 1U);
  BOOST_TEST(a.node.counter("announces_local") == 1U);
  BOOST_TEST(a.ring.lookups.empty());
  BOOST_TEST(a.drain().empty());
}

BOOST_AUTO_TEST_CASE(forwarded_announce_is_answered_with_the_owners_peers) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode b(0x30, 0x10, {0x40});
  // A peer already in the swarm at its owner B.
  AnnounceResult_ seed;
  b.node.announce(announce_of(hash_at(0x20), 7), kT0, capture(seed));
  BOOST_REQUIRE(seed.ok.has_value());
  b.drain();

  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  BOOST_TEST(!r.called);
  BOOST_REQUIRE(a.ring.lookups.size() == 1U);
  BOOST_TEST((a.ring.lookups[0].second == dht::NodeId(hash_at(0x20))));
  a.node.handle_lookup(kT0, lookup_at(a, 0), b.ring.me);
  BOOST_TEST(deliver(a, {{0x30, &b}}, kT0) == 1U);
  BOOST_TEST(!r.called);
  BOOST_TEST(deliver(b, {{0x80, &a}}, kT0) == 1U);
  BOOST_REQUIRE(r.called);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(r.ok->result.incomplete == 2U);
  BOOST_TEST(peers_of(*r.ok) == std::vector<std::string>{"192.168.0.7:6000"});
  BOOST_TEST(a.node.counter("answered_remote") == 1U);
  BOOST_TEST(b.node.counter("served_for_others") == 1U);
  // Stored at the owner only.
  BOOST_TEST(b.owned.scrape(hash_at(0x20), kT0).incomplete == 2U);
  BOOST_TEST(a.owned.scrape(hash_at(0x20), kT0).incomplete == 0U);
  BOOST_TEST(a.node.pending_count() == 0U);
}

BOOST_AUTO_TEST_CASE(batch_linger_holds_a_small_batch_until_due_and_a_full_one_not_at_all) {
  ClusterConfig cc;
  cc.batch_linger = Microseconds(500);
  TestNode a(0x80, 0x40, {0x90, 0xa0}, cc);
  TestNode owner(0xa0, 0x90, {0x10}, cc);
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x95), 1), kT0, capture(r));
  BOOST_TEST(a.drain().empty());  // waits for company
  BOOST_TEST((a.node.next_timeout() == kT0 + Microseconds(500)));
  a.node.handle_timeout(kT0 + Microseconds(499));
  BOOST_TEST(a.drain().empty());
  a.node.handle_timeout(kT0 + Microseconds(500));
  BOOST_TEST(deliver(a, {{0xa0, &owner}}, kT0 + Microseconds(500)) == 1U);
  // The owner's reply lingers the same way.
  BOOST_TEST(owner.drain().empty());
  owner.node.handle_timeout(kT0 + Microseconds(1000));
  BOOST_TEST(deliver(owner, {{0x80, &a}}, kT0 + Microseconds(1000)) == 1U);
  BOOST_REQUIRE(r.ok.has_value());
  // Enough requests for one owner go at once, in one datagram.
  std::vector<AnnounceResult_> rs(32);
  for (std::uint8_t i = 0; i < 32; ++i)
    a.node.announce(announce_of(hash_at(0x91 + (i % 8), i), 2 + i), kT0 + Seconds(1),
                    capture(rs[i]));
  auto out = a.drain();
  BOOST_REQUIRE(out.size() == 1U);
  BOOST_TEST(decode_as<ForwardBatch>(out[0].payload).announces.size() == 32U);
}

BOOST_AUTO_TEST_CASE(second_request_uses_the_owner_cache) {
  TestNode a(0x80, 0x40, {});
  TestNode b(0x30, 0x10, {});
  AnnounceResult_ r1, r2;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r1));
  a.node.handle_lookup(kT0, lookup_at(a, 0), b.ring.me);
  deliver(a, {{0x30, &b}}, kT0);
  deliver(b, {{0x80, &a}}, kT0);
  a.node.announce(announce_of(hash_at(0x20), 2), kT0, capture(r2));
  BOOST_TEST(a.ring.lookups.size() == 1U);
  BOOST_TEST(a.node.counter("owner_cache_hits") == 1U);
  deliver(a, {{0x30, &b}}, kT0);
  deliver(b, {{0x80, &a}}, kT0);
  BOOST_TEST(r2.ok.has_value());
}

BOOST_AUTO_TEST_CASE(unanswered_request_fails_at_its_deadline_with_a_reason) {
  TestNode a(0x80, 0x40, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  const auto deadline = kT0 + ClusterConfig{}.request_deadline;
  // Every lookup names the same silent node; each attempt times out and is looked up again.
  std::size_t answered = 0;
  for (TimePoint t = kT0; t < deadline; t += Milliseconds(10)) {
    a.node.handle_timeout(t);
    while (answered < a.ring.lookups.size())
      a.node.handle_lookup(t, lookup_at(a, answered++), node_at(0x30));
    a.drain();
    BOOST_TEST(!r.called);
  }
  BOOST_TEST((a.node.next_timeout() <= deadline));
  a.node.handle_timeout(deadline);
  BOOST_REQUIRE(r.called);
  BOOST_TEST(!r.ok.has_value());
  BOOST_TEST(r.failure == std::string(ClusterNode::kTimeoutReason));
  BOOST_TEST(a.node.counter("timeouts") == 1U);
  // 1.5 s of 400 ms attempts: the first send and three more.
  BOOST_TEST(a.node.counter("attempt_timeouts") == 3U);
  BOOST_TEST(a.ring.lookups.size() == 4U);
  // The silent owner is not used from the cache any more: the next request looks up again.
  AnnounceResult_ r2;
  a.node.announce(announce_of(hash_at(0x20), 1), deadline, capture(r2));
  BOOST_TEST(a.ring.lookups.size() == 5U);
}

BOOST_AUTO_TEST_CASE(silent_owner_is_retried_through_a_new_lookup_and_answered_correctly) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode s(0x38, 0x10, {0x40});  // took over (0x10, 0x38] after 0x30 crashed
  const InfoHash h = hash_at(0x20);
  AnnounceResult_ seed;
  s.node.announce(announce_of(h, 7), kT0, capture(seed));
  BOOST_REQUIRE(seed.ok.has_value());
  s.drain();

  AnnounceResult_ r;
  a.node.announce(announce_of(h, 1), kT0, capture(r));
  a.node.handle_lookup(kT0, lookup_at(a, 0), node_at(0x30));  // the old owner, now dead
  BOOST_TEST(a.drain().size() == 1U);                         // lost
  const Duration attempt = ClusterConfig{}.attempt_timeout_max;
  BOOST_TEST((a.node.next_timeout() == kT0 + attempt));
  a.node.handle_timeout(kT0 + attempt - Milliseconds(1));
  BOOST_TEST(a.ring.lookups.size() == 1U);
  a.node.handle_timeout(kT0 + attempt);
  BOOST_TEST(a.node.counter("attempt_timeouts") == 1U);
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);  // a fresh lookup, not the cache
  const TimePoint t = kT0 + attempt + Milliseconds(50);
  a.node.handle_lookup(t, lookup_at(a, 1), s.ring.me);
  BOOST_TEST(deliver(a, {{0x38, &s}}, t) == 1U);
  BOOST_TEST(deliver(s, {{0x80, &a}}, t) == 1U);
  BOOST_REQUIRE(r.called);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(r.ok->result.incomplete == 2U);  // the peer the new owner holds, not an empty swarm
  BOOST_TEST(peers_of(*r.ok) == std::vector<std::string>{"192.168.0.7:6000"});
  BOOST_TEST(a.node.counter("timeouts") == 0U);
  // The new owner is cached; the dead one is not tried again.
  AnnounceResult_ r2;
  a.node.announce(announce_of(h, 2), t, capture(r2));
  BOOST_TEST(a.node.counter("owner_cache_hits") == 1U);
  auto out = a.drain();
  BOOST_REQUIRE(out.size() == 1U);
  BOOST_TEST((out[0].to.id == s.ring.me.id));
}

BOOST_AUTO_TEST_CASE(late_reply_from_the_silent_owner_after_the_retry_is_ignored) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode old_owner(0x30, 0x10, {0x40});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  a.node.handle_lookup(kT0, lookup_at(a, 0), old_owner.ring.me);
  auto sent = a.drain();
  BOOST_REQUIRE(sent.size() == 1U);
  a.node.handle_timeout(kT0 + ClusterConfig{}.attempt_timeout_max);
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);
  // The first send reaches the old owner only now; its answer comes after the retry started.
  old_owner.node.handle_app(kT0 + Milliseconds(500), a.ring.me, sent[0].payload);
  BOOST_TEST(deliver(old_owner, {{0x80, &a}}, kT0 + Milliseconds(500)) == 1U);
  BOOST_TEST(!r.called);
  BOOST_TEST(a.node.counter("stale_replies") == 1U);
}

BOOST_AUTO_TEST_CASE(attempt_timeout_follows_the_ring_rto_within_its_bounds) {
  const ClusterConfig cc;
  for (Duration rto :
       {Duration(Milliseconds(50)), Duration(Milliseconds(300)), Duration(Seconds(3))}) {
    TestNode a(0x80, 0x40, {});
    a.ring.rto = rto;
    AnnounceResult_ r;
    a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
    a.node.handle_lookup(kT0, lookup_at(a, 0), node_at(0x30));
    const Duration expected = std::clamp(rto, cc.attempt_timeout_min, cc.attempt_timeout_max);
    BOOST_TEST((a.node.next_timeout() == kT0 + expected));
  }
}

BOOST_AUTO_TEST_CASE(cache_entry_of_a_node_the_ring_drops_is_forgotten) {
  // Ring ... 0x40 -> 0x80 (a) -> 0x90 -> 0xa0 -> 0x10 ...; 0xa0 owns (0x90, 0xa0].
  TestNode a(0x80, 0x40, {0x90, 0xa0, 0x10});
  TestNode owner(0xa0, 0x90, {0x10});
  const InfoHash h = hash_at(0x95);
  AnnounceResult_ r1;
  a.node.announce(announce_of(h, 1), kT0, capture(r1));
  BOOST_TEST(a.ring.lookups.empty());  // a's successor list names the owner
  BOOST_TEST(a.node.counter("owner_guesses") == 1U);
  deliver(a, {{0xa0, &owner}}, kT0);
  deliver(owner, {{0x80, &a}}, kT0);
  BOOST_REQUIRE(r1.ok.has_value());

  // 0xa0 crashes; the ring notices and drops it from a's successor list.
  a.ring.succ = {node_at(0x90), node_at(0x10), node_at(0x20)};
  a.node.handle_ring_change(kT0 + Seconds(2));
  BOOST_TEST(a.node.counter("owner_cache_dropped") == 1U);
  AnnounceResult_ r2;
  a.node.announce(announce_of(h, 2), kT0 + Seconds(2), capture(r2));
  BOOST_TEST(a.node.counter("owner_cache_hits") == 0U);
  // Nothing goes to the dead node: the list now names 0x10, the successor that took over.
  auto out = a.drain();
  BOOST_REQUIRE(out.size() == 1U);
  BOOST_TEST((out[0].to.id == id_at(0x10)));
}

BOOST_AUTO_TEST_CASE(owner_named_by_the_successor_list_is_asked_without_a_lookup) {
  TestNode a(0x80, 0x40, {0x90, 0xa0});
  TestNode owner(0xa0, 0x90, {0x10});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x95), 1), kT0, capture(r));
  BOOST_TEST(a.ring.lookups.empty());
  BOOST_TEST(deliver(a, {{0xa0, &owner}}, kT0) == 1U);
  BOOST_TEST(deliver(owner, {{0x80, &a}}, kT0) == 1U);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(owner.node.counter("served_for_others") == 1U);
  // A key beyond the list (after 0xa0) still needs a lookup.
  AnnounceResult_ r2;
  a.node.announce(announce_of(hash_at(0xb0), 2), kT0, capture(r2));
  BOOST_TEST(a.ring.lookups.size() == 1U);
}

BOOST_AUTO_TEST_CASE(stale_successor_list_guess_is_corrected_by_a_lookup) {
  // a lists 0xa0 after 0x90, but 0x98 joined in between and owns (0x90, 0x98].
  TestNode a(0x80, 0x40, {0x90, 0xa0});
  TestNode stale(0xa0, 0x98, {0x10});
  TestNode joined(0x98, 0x90, {0xa0});
  const InfoHash h = hash_at(0x95);
  AnnounceResult_ r;
  a.node.announce(announce_of(h, 1), kT0, capture(r));
  BOOST_TEST(deliver(a, {{0xa0, &stale}}, kT0) == 1U);
  BOOST_TEST(deliver(stale, {{0x80, &a}}, kT0) == 1U);  // "not mine"
  BOOST_TEST(!r.called);
  BOOST_REQUIRE(a.ring.lookups.size() == 1U);  // the retry asks the ring, not the list again
  a.node.handle_lookup(kT0, lookup_at(a, 0), joined.ring.me);
  BOOST_TEST(deliver(a, {{0x98, &joined}}, kT0) == 1U);
  BOOST_TEST(deliver(joined, {{0x80, &a}}, kT0) == 1U);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(joined.owned.scrape(h, kT0).incomplete == 1U);
  BOOST_TEST(stale.owned.scrape(h, kT0).incomplete == 0U);
}

BOOST_AUTO_TEST_CASE(node_that_only_fell_off_the_successor_list_keeps_its_cache_entries) {
  TestNode a(0x80, 0x40, {0x90, 0xa0});
  TestNode owner(0xa0, 0x90, {0x10});
  const InfoHash h = hash_at(0x95);
  AnnounceResult_ r1;
  a.node.announce(announce_of(h, 1), kT0, capture(r1));  // 0xa0, named by the list
  deliver(a, {{0xa0, &owner}}, kT0);
  deliver(owner, {{0x80, &a}}, kT0);
  BOOST_REQUIRE(r1.ok.has_value());
  // 0x85 joined: the list (length 2) now ends before 0xa0, which is still a member.
  a.ring.succ = {node_at(0x85), node_at(0x90)};
  a.node.handle_ring_change(kT0 + Seconds(1));
  BOOST_TEST(a.node.counter("owner_cache_dropped") == 0U);
  AnnounceResult_ r2;
  a.node.announce(announce_of(h, 2), kT0 + Seconds(1), capture(r2));
  BOOST_TEST(a.node.counter("owner_cache_hits") == 1U);
}

BOOST_AUTO_TEST_CASE(cached_owner_inside_the_ring_window_but_not_listed_is_not_asked_again) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode owner(0xa0, 0x90, {0x10});
  const InfoHash h = hash_at(0x95);
  AnnounceResult_ r1;
  a.node.announce(announce_of(h, 1), kT0, capture(r1));
  a.node.handle_lookup(kT0, lookup_at(a, 0), owner.ring.me);  // beyond a's window
  deliver(a, {{0xa0, &owner}}, kT0);
  deliver(owner, {{0x80, &a}}, kT0);
  BOOST_REQUIRE(r1.ok.has_value());
  // The window grows past 0xa0 without listing it: 0xa0 is gone (a never listed it).
  a.ring.succ = {node_at(0x90), node_at(0xb0)};
  a.node.handle_ring_change(kT0 + Seconds(1));
  AnnounceResult_ r2;
  a.node.announce(announce_of(h, 2), kT0 + Seconds(1), capture(r2));
  BOOST_TEST(a.node.counter("owner_cache_hits") == 0U);
  // The list now says 0xb0 owns (0x90, 0xb0]: asked directly, it confirms or says "not mine".
  auto out = a.drain();
  BOOST_REQUIRE(out.size() == 1U);
  BOOST_TEST((out[0].to.id == id_at(0xb0)));
}

BOOST_AUTO_TEST_CASE(request_in_flight_to_a_node_the_ring_drops_is_rerouted_at_once) {
  TestNode a(0x80, 0x40, {0x90, 0xa0, 0x10});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x95), 1), kT0, capture(r));  // to 0xa0, from the list
  BOOST_TEST(a.drain().size() == 1U);
  a.ring.succ = {node_at(0x90), node_at(0x10), node_at(0x20)};
  a.node.handle_ring_change(kT0 + Milliseconds(100));  // before the attempt timeout
  BOOST_TEST(a.node.counter("rerouted") == 1U);
  BOOST_TEST(a.ring.lookups.size() == 1U);
  BOOST_TEST(!r.called);
}

BOOST_AUTO_TEST_CASE(one_lookup_serves_every_key_of_the_owners_arc) {
  TestNode a(0x80, 0x40, {0x90});
  AnnounceResult_ r1;
  a.node.announce(announce_of(hash_at(0x20, 5), 1), kT0, capture(r1));
  a.node.handle_lookup(kT0, lookup_at(a, 0), node_at(0x30));  // no node in [0x20..05, 0x30)
  // Keys between the looked-up key and the owner need no lookup; keys before it do (a node
  // may lie between them and the looked-up key).
  constexpr std::uint8_t kKeys = 12;
  std::vector<AnnounceResult_> rs(kKeys);
  for (std::uint8_t i = 0; i < kKeys; ++i)
    a.node.announce(announce_of(hash_at(0x21 + i), 10 + i), kT0, capture(rs[i]));
  BOOST_TEST(a.ring.lookups.size() == 1U);
  BOOST_TEST(a.node.counter("owner_cache_hits") == kKeys);
  AnnounceResult_ before;
  a.node.announce(announce_of(hash_at(0x20, 4), 50), kT0, capture(before));
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);
  // Its answer widens the arc: (0x20..03, 0x30] now, and 0x20..04 hits.
  a.node.handle_lookup(kT0, lookup_at(a, 1), node_at(0x30));
  AnnounceResult_ again;
  a.node.announce(announce_of(hash_at(0x20, 4), 51), kT0, capture(again));
  BOOST_TEST(a.ring.lookups.size() == 2U);
  auto out = a.drain();
  BOOST_REQUIRE(!out.empty());
  for (const auto& t : out) BOOST_TEST((t.to.id == id_at(0x30)));
}

BOOST_AUTO_TEST_CASE(lookup_skipping_the_cached_owner_forgets_that_node) {
  TestNode a(0x80, 0x40, {0x90});
  AnnounceResult_ r1, r2;
  a.node.announce(announce_of(hash_at(0x20, 1), 1), kT0, capture(r1));
  a.node.handle_lookup(kT0, lookup_at(a, 0), node_at(0x30));
  a.drain();
  // Another lookup for the key (its arc expired) names 0x38: the ring passed over 0x30, which
  // lies between the key and 0x38. 0x30 is suspected and its arc dropped.
  const TimePoint t = kT0 + ClusterConfig{}.owner_cache_ttl;
  a.node.announce(announce_of(hash_at(0x20, 1), 100), t, capture(r2));
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);
  a.node.handle_lookup(t, a.ring.lookups.back().first, node_at(0x38));
  BOOST_TEST(a.node.counter("owner_cache_dropped") == 1U);
  // The new arc (0x20..00, 0x38] took 0x30's place: a key just below 0x30 goes to 0x38.
  AnnounceResult_ r3;
  a.node.announce(announce_of(hash_at(0x2f), 101), t, capture(r3));
  BOOST_TEST(a.ring.lookups.size() == 2U);
  auto out = a.drain();
  BOOST_REQUIRE(out.size() == 1U);
  BOOST_TEST((out[0].to.id == id_at(0x38)));
}

BOOST_AUTO_TEST_CASE(failed_lookup_is_retried_after_a_wait) {
  TestNode a(0x80, 0x40, {});
  TestNode owner(0x30, 0x10, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  a.node.handle_lookup(kT0, lookup_at(a, 0), std::nullopt);
  BOOST_TEST(!r.called);
  BOOST_TEST(a.node.counter("retry_waits") == 1U);
  const Duration wait = ClusterConfig{}.retry_backoff;
  BOOST_TEST((a.node.next_timeout() == kT0 + wait));
  a.node.handle_timeout(kT0 + wait);
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);
  a.node.handle_lookup(kT0 + wait, lookup_at(a, 1), owner.ring.me);
  deliver(a, {{0x30, &owner}}, kT0 + wait);
  deliver(owner, {{0x80, &a}}, kT0 + wait);
  BOOST_TEST(r.ok.has_value());
}

BOOST_AUTO_TEST_CASE(failed_lookup_without_time_for_another_fails_with_no_owner) {
  TestNode a(0x80, 0x40, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  const TimePoint late = kT0 + ClusterConfig{}.request_deadline - Milliseconds(50);
  a.node.handle_lookup(late, lookup_at(a, 0), std::nullopt);
  BOOST_REQUIRE(r.called);
  BOOST_TEST(r.failure == std::string(ClusterNode::kNoOwnerReason));
}

BOOST_AUTO_TEST_CASE(lookup_that_never_finishes_still_fails_at_the_deadline) {
  TestNode a(0x80, 0x40, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  a.node.handle_timeout(kT0 + Seconds(2));
  BOOST_TEST(r.failure == std::string(ClusterNode::kTimeoutReason));
  // A late lookup result does nothing.
  a.node.handle_lookup(kT0 + Seconds(3), lookup_at(a, 0), node_at(0x30));
  BOOST_TEST(a.drain().empty());
}

BOOST_AUTO_TEST_CASE(not_owner_answer_invalidates_and_looks_up_once_more) {
  TestNode a(0x80, 0x40, {});
  TestNode stale(0x30, 0x25, {});  // 0x20 is not in (0x25, 0x30]
  TestNode owner(0x24, 0x10, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  a.node.handle_lookup(kT0, lookup_at(a, 0), stale.ring.me);
  deliver(a, {{0x30, &stale}}, kT0);
  BOOST_TEST(stale.node.counter("not_owner_sent") == 1U);
  deliver(stale, {{0x80, &a}}, kT0);
  BOOST_TEST(!r.called);
  BOOST_TEST(a.node.counter("not_owner_retries") == 1U);
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);
  a.node.handle_lookup(kT0, lookup_at(a, 1), owner.ring.me);
  deliver(a, {{0x24, &owner}}, kT0);
  deliver(owner, {{0x80, &a}}, kT0);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(owner.owned.scrape(hash_at(0x20), kT0).incomplete == 1U);
}

BOOST_AUTO_TEST_CASE(not_mine_from_a_promoting_owner_is_waited_out_and_answered) {
  TestNode a(0x80, 0x40, {0x90});
  // 0x38 succeeds the crashed owner 0x30 but has not noticed yet: its predecessor is still 0x30.
  TestNode s(0x38, 0x30, {0x40});
  const InfoHash h = hash_at(0x20);
  BOOST_REQUIRE(s.replica.announce(announce_of(h, 7), kT0).has_value());  // promoted later
  AnnounceResult_ r;
  a.node.announce(announce_of(h, 1), kT0, capture(r));
  // The first "not mine" leads to a new lookup at once, the second to a wait.
  for (std::size_t i = 0; i < 2; ++i) {
    BOOST_REQUIRE(a.ring.lookups.size() == i + 1);
    a.node.handle_lookup(kT0, a.ring.lookups.back().first, s.ring.me);
    deliver(a, {{0x38, &s}}, kT0);
    deliver(s, {{0x80, &a}}, kT0);
    BOOST_TEST(!r.called);
  }
  const TimePoint t = a.node.next_timeout();
  BOOST_TEST(s.node.counter("not_owner_sent") == 2U);
  BOOST_TEST(a.node.counter("retry_waits") == 1U);
  BOOST_TEST((t == kT0 + ClusterConfig{}.retry_backoff));
  // It notices: its predecessor is now 0x10, and the range (0x10, 0x38] is its own.
  s.ring.pred = node_at(0x10);
  s.node.handle_ring_change(t);
  a.node.handle_timeout(t);
  BOOST_REQUIRE(a.ring.lookups.size() == 3U);
  a.node.handle_lookup(t, a.ring.lookups.back().first, s.ring.me);
  deliver(a, {{0x38, &s}}, t);
  deliver(s, {{0x80, &a}}, t);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(r.ok->result.incomplete == 2U);  // the promoted replica's peer is served
  BOOST_TEST(a.node.counter("not_owner_failures") == 0U);
}

BOOST_AUTO_TEST_CASE(not_mine_until_the_deadline_fails_with_the_moving_reason) {
  TestNode a(0x80, 0x40, {});
  TestNode stale(0x30, 0x25, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  std::size_t answered = 0;
  const TimePoint deadline = kT0 + ClusterConfig{}.request_deadline;
  for (TimePoint t = kT0; !r.called && t <= deadline; t += Milliseconds(10)) {
    a.node.handle_timeout(t);
    while (answered < a.ring.lookups.size()) {
      a.node.handle_lookup(t, lookup_at(a, answered++), stale.ring.me);
      deliver(a, {{0x30, &stale}}, t);
      deliver(stale, {{0x80, &a}}, t);
    }
  }
  BOOST_REQUIRE(r.called);
  BOOST_TEST(r.failure == std::string(ClusterNode::kMovingReason));
  BOOST_TEST(a.node.counter("not_owner_failures") == 1U);
  BOOST_TEST(a.ring.lookups.size() >= 3U);
  BOOST_TEST(a.ring.lookups.size() <= static_cast<std::size_t>(ClusterNode::kAttemptsMax));
}

BOOST_AUTO_TEST_CASE(two_requests_to_one_owner_travel_in_one_message) {
  TestNode a(0x80, 0x40, {});
  AnnounceResult_ r1, r2;
  a.node.announce(announce_of(hash_at(0x20, 1), 1), kT0, capture(r1));
  a.node.announce(announce_of(hash_at(0x20, 2), 2), kT0, capture(r2));
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);
  a.node.handle_lookup(kT0, lookup_at(a, 0), node_at(0x30));
  a.node.handle_lookup(kT0, lookup_at(a, 1), node_at(0x30));
  auto out = a.drain();
  BOOST_REQUIRE(out.size() == 1U);
  auto batch = decode_as<ForwardBatch>(out[0].payload);
  BOOST_TEST(batch.announces.size() == 2U);
  BOOST_TEST(a.node.counter("forward_messages") == 1U);
}

BOOST_AUTO_TEST_CASE(replies_and_forwards_for_one_node_share_a_datagram) {
  // A owns (0x40, 0x80], B owns (0x10, 0x30]; each has a request for the other's range.
  TestNode a(0x80, 0x40, {});
  TestNode b(0x30, 0x10, {});
  AnnounceResult_ at_a, at_b;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(at_a));
  a.node.handle_lookup(kT0, lookup_at(a, 0), b.ring.me);
  auto forward = a.node.poll_app();  // the raw datagram
  BOOST_REQUIRE(forward.has_value());
  BOOST_TEST(!is_bundle(forward->payload));
  BOOST_TEST(!a.node.poll_app().has_value());
  b.node.announce(announce_of(hash_at(0x50), 2), kT0, capture(at_b));
  b.node.handle_lookup(kT0, lookup_at(b, 0), a.ring.me);
  // B answers A's forward in the same pass as it forwards its own request to A.
  b.node.handle_app(kT0, a.ring.me, forward->payload);
  auto both = b.node.poll_app();
  BOOST_REQUIRE(both.has_value());
  BOOST_TEST(!b.node.poll_app().has_value());  // one datagram
  BOOST_TEST(is_bundle(both->payload));
  BOOST_TEST(both->payload.size() <= kBundleBytesMax);
  BOOST_TEST(b.node.counter("bundled_messages") == 2U);
  // A takes both from it: its answer, and B's request, which it serves as the owner.
  a.node.handle_app(kT0, b.ring.me, both->payload);
  BOOST_REQUIRE(at_a.ok.has_value());
  BOOST_TEST(at_a.ok->result.incomplete == 1U);
  BOOST_TEST(a.node.counter("served_for_others") == 1U);
  BOOST_TEST(a.node.counter("malformed") == 0U);
  BOOST_TEST(deliver(a, {{0x30, &b}}, kT0) == 1U);
  BOOST_REQUIRE(at_b.ok.has_value());
  BOOST_TEST(at_b.ok->result.incomplete == 1U);
  // A bundle that does not split is dropped whole and counted.
  std::string broken = both->payload;
  broken.pop_back();
  a.node.handle_app(kT0, b.ring.me, broken);
  BOOST_TEST(a.node.counter("malformed") == 1U);
}

BOOST_AUTO_TEST_CASE(bundles_keep_each_nodes_order_and_leave_other_nodes_alone) {
  auto ack = [](std::uint32_t txid) {
    std::string m;
    encode_cluster_message(TransferAck{txid}, m);
    return m;
  };
  auto txids = [](const AppTransmit& t) {
    std::vector<std::uint32_t> out;
    std::vector<std::string_view> parts;
    if (is_bundle(t.payload)) {
      BOOST_REQUIRE(split_bundle(t.payload, parts).has_value());
    } else {
      parts.push_back(t.payload);
    }
    for (auto p : parts) {
      auto m = decode_cluster_message(p);
      BOOST_REQUIRE(m.has_value());
      out.push_back(std::get<TransferAck>(*m).txid);
    }
    return out;
  };
  const dht::NodeRef n = node_at(0x10);
  const dht::NodeRef other = node_at(0x20);
  // Messages for another node stay where they are; those for `n` join the first, in order.
  AppTransmit first{n, ack(1)};
  std::deque<AppTransmit> q{{other, ack(2)}, {n, ack(3)}, {other, ack(4)}, {n, ack(5)}};
  BOOST_TEST(bundle_for_node(first, q, 16) == 3U);
  BOOST_TEST((txids(first) == std::vector<std::uint32_t>{1, 3, 5}));
  BOOST_REQUIRE(q.size() == 2U);
  BOOST_TEST((txids(q[0]) == std::vector<std::uint32_t>{2}));
  BOOST_TEST((txids(q[1]) == std::vector<std::uint32_t>{4}));
  // A message for `n` that does not fit ends the bundle: nothing behind it may overtake it.
  std::string big;
  encode_cluster_message(TransferAck{6}, big);
  big.resize(kBundleBytesMax - 8, '\0');  // never decoded here: only its size matters
  AppTransmit lead{n, ack(7)};
  std::deque<AppTransmit> q2{{n, big}, {n, ack(8)}};
  BOOST_TEST(bundle_for_node(lead, q2, 16) == 0U);
  BOOST_TEST((txids(lead) == std::vector<std::uint32_t>{7}));
  BOOST_TEST(q2.size() == 2U);
  // Only `scan_max` entries are looked at.
  AppTransmit head{n, ack(9)};
  std::deque<AppTransmit> q3{{other, ack(10)}, {other, ack(11)}, {n, ack(12)}};
  BOOST_TEST(bundle_for_node(head, q3, 2) == 0U);
  BOOST_TEST(q3.size() == 3U);
}

BOOST_AUTO_TEST_CASE(requests_for_one_key_share_one_lookup) {
  TestNode a(0x80, 0x40, {});
  AnnounceResult_ r1, r2;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r1));
  a.node.announce(announce_of(hash_at(0x20), 2), kT0, capture(r2));
  BOOST_TEST(a.ring.lookups.size() == 1U);
}

BOOST_AUTO_TEST_CASE(scrape_is_split_by_owner_and_merged_in_request_order) {
  TestNode a(0x80, 0x40, {});
  TestNode b(0x30, 0x10, {});
  TestNode c(0xC0, 0x80, {});
  AnnounceResult_ x;
  a.node.announce(announce_of(hash_at(0x60), 1, 0), kT0, capture(x));    // seeder at A
  b.node.announce(announce_of(hash_at(0x20), 2), kT0, capture(x = {}));  // leecher at B
  c.node.announce(announce_of(hash_at(0xA0), 3), kT0, capture(x = {}));
  c.node.announce(announce_of(hash_at(0xA0), 4), kT0, capture(x = {}));
  b.drain();
  c.drain();
  ScrapeRequest req;
  req.info_hashes = {hash_at(0x20), hash_at(0x60), hash_at(0xA0)};
  std::optional<Expected<ScrapeResponse, std::string>> got;
  a.node.scrape(req, kT0, [&](Expected<ScrapeResponse, std::string> r) { got = std::move(r); });
  BOOST_TEST(!got.has_value());
  BOOST_REQUIRE(a.ring.lookups.size() == 2U);
  a.node.handle_lookup(kT0, lookup_at(a, 0), b.ring.me);
  a.node.handle_lookup(kT0, lookup_at(a, 1), c.ring.me);
  BOOST_TEST(deliver(a, {{0x30, &b}, {0xC0, &c}}, kT0) == 2U);
  deliver(b, {{0x80, &a}}, kT0);
  BOOST_TEST(!got.has_value());
  deliver(c, {{0x80, &a}}, kT0);
  BOOST_REQUIRE(got.has_value());
  BOOST_REQUIRE(got->has_value());
  const auto& files = (*got)->files;
  BOOST_REQUIRE(files.size() == 3U);
  BOOST_TEST((files[0].info_hash == hash_at(0x20)));
  BOOST_TEST(files[0].incomplete == 1U);
  BOOST_TEST(files[1].complete == 1U);
  BOOST_TEST(files[2].incomplete == 2U);
}

BOOST_AUTO_TEST_CASE(scrape_with_one_unanswered_part_fails_whole) {
  TestNode a(0x80, 0x40, {});
  ScrapeRequest req;
  req.info_hashes = {hash_at(0x60), hash_at(0x20)};
  std::optional<Expected<ScrapeResponse, std::string>> got;
  a.node.scrape(req, kT0, [&](Expected<ScrapeResponse, std::string> r) { got = std::move(r); });
  a.node.handle_timeout(kT0 + Seconds(2));
  BOOST_REQUIRE(got.has_value());
  BOOST_REQUIRE(!got->has_value());
  BOOST_TEST(got->error() == std::string(ClusterNode::kTimeoutReason));
}

BOOST_AUTO_TEST_CASE(forwarded_lookup_only_gets_the_owners_peers_and_stores_nothing) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode b(0x30, 0x10, {0x40});
  AnnounceResult_ seed;
  b.node.announce(announce_of(hash_at(0x20), 7), kT0, capture(seed));
  b.node.handle_timeout(kT0 + ClusterConfig{}.replicate_period);
  b.drain();  // the seed's delta

  auto ask = announce_of(hash_at(0x20), 1);
  ask.lookup_only = true;
  AnnounceResult_ r;
  a.node.announce(ask, kT0, capture(r));
  a.node.handle_lookup(kT0, lookup_at(a, 0), b.ring.me);
  BOOST_TEST(deliver(a, {{0x30, &b}}, kT0) == 1U);
  BOOST_TEST(deliver(b, {{0x80, &a}}, kT0) == 1U);
  BOOST_REQUIRE(r.called);
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(peers_of(*r.ok) == std::vector<std::string>{"192.168.0.7:6000"});
  BOOST_TEST(r.ok->result.incomplete == 1U);
  BOOST_TEST(b.owned.scrape(hash_at(0x20), kT0).incomplete == 1U);
  // Nothing to replicate: the next replication tick sends no delta.
  b.node.handle_timeout(kT0 + 2 * ClusterConfig{}.replicate_period);
  for (const auto& t : b.drain()) {
    auto m = decode_as<Replicate>(t.payload);
    BOOST_TEST((m.purpose != TransferPurpose::delta));
  }
}

BOOST_AUTO_TEST_CASE(deltas_go_to_the_next_replicas_minus_one_successors_only) {
  TestNode a(0x80, 0x40, {0x90, 0xA0, 0xB0});
  TestNode s1(0x90, 0x80, {0xA0});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x60), 1, 0), kT0, capture(r));
  a.node.announce(announce_of(hash_at(0x70), 2), kT0, capture(r = {}));
  BOOST_TEST(a.drain().empty());  // batched until the replication tick
  const auto due = kT0 + ClusterConfig{}.replicate_period;
  BOOST_TEST((a.node.next_timeout() <= due));
  a.node.handle_timeout(due);
  auto out = a.drain();
  BOOST_REQUIRE(out.size() == 2U);
  std::set<std::uint8_t> dests;
  for (const auto& t : out) {
    dests.insert(t.to.id.bytes()[0]);
    auto m = decode_as<Replicate>(t.payload);
    BOOST_TEST((m.purpose == TransferPurpose::delta));
    BOOST_TEST(m.swarms.size() == 2U);
  }
  BOOST_TEST((dests == std::set<std::uint8_t>{0x90, 0xA0}));
  s1.node.handle_app(due, a.ring.me, out[0].payload);
  BOOST_TEST(s1.replica.scrape(hash_at(0x60), due).complete == 1U);
  BOOST_TEST(s1.replica.scrape(hash_at(0x70), due).incomplete == 1U);
  BOOST_TEST(s1.owned.stats().torrents == 0U);
}

BOOST_AUTO_TEST_CASE(messages_longer_than_a_prefetch_batch_are_answered_and_merged_whole) {
  // One forward batch, then one delta, with more announces and swarms than the owner and the
  // replica hand their stores at once: every one is answered, and every swarm replicated.
  constexpr std::size_t kCount = 3 * SwarmStore::kPrefetchBatch + 5;
  TestNode a(0x80, 0x40, {});
  TestNode b(0x30, 0x10, {0x80});
  std::vector<AnnounceResult_> results(kCount);
  for (std::size_t i = 0; i < kCount; ++i) {
    const auto n = static_cast<std::uint8_t>(i + 1);
    a.node.announce(announce_of(hash_at(0x20, n), n, i % 2 == 0 ? 0 : 100), kT0,
                    capture(results[i]));
  }
  for (std::size_t i = 0; i < a.ring.lookups.size(); ++i)
    a.node.handle_lookup(kT0, lookup_at(a, i), b.ring.me);
  auto forwards = a.drain();
  BOOST_REQUIRE(forwards.size() == 1U);
  BOOST_REQUIRE(decode_as<ForwardBatch>(forwards[0].payload).announces.size() == kCount);
  b.node.handle_app(kT0, a.ring.me, forwards[0].payload);
  BOOST_TEST(b.node.counter("served_for_others") == kCount);
  BOOST_TEST(deliver(b, {{0x80, &a}}, kT0) >= 1U);
  for (std::size_t i = 0; i < kCount; ++i) {
    BOOST_REQUIRE_MESSAGE(results[i].ok.has_value(), "announce " << i << " unanswered");
    BOOST_TEST(results[i].ok->result.complete + results[i].ok->result.incomplete == 1U);
  }
  const auto due = kT0 + ClusterConfig{}.replicate_period;
  b.node.handle_timeout(due);
  auto deltas = b.drain();
  BOOST_REQUIRE(deltas.size() == 1U);
  BOOST_REQUIRE(decode_as<Replicate>(deltas[0].payload).swarms.size() == kCount);
  a.node.handle_app(due, b.ring.me, deltas[0].payload);
  for (std::size_t i = 0; i < kCount; ++i) {
    const auto e = a.replica.scrape(hash_at(0x20, static_cast<std::uint8_t>(i + 1)), due);
    BOOST_TEST(e.complete == (i % 2 == 0 ? 1U : 0U), "swarm " << i);
    BOOST_TEST(e.incomplete == (i % 2 == 0 ? 0U : 1U), "swarm " << i);
  }
  BOOST_TEST(a.node.counter("malformed") == 0U);
  BOOST_TEST(b.node.counter("malformed") == 0U);
}

BOOST_AUTO_TEST_CASE(replica_keeps_the_owners_expiry_and_completed_count) {
  ClusterConfig cc;
  cc.peer_ttl = Seconds(2700);
  TestNode a(0x80, 0x40, {0x90});
  TestNode s1(0x90, 0x80, {});
  AnnounceResult_ r;
  auto req = announce_of(hash_at(0x60), 1, 0);
  req.event = AnnounceEvent::completed;
  a.node.announce(req, kT0, capture(r));
  a.node.handle_timeout(kT0 + Seconds(1));  // replicated 1 s after the announce
  for (auto& t : a.drain()) s1.node.handle_app(kT0 + Seconds(1), a.ring.me, t.payload);
  auto entry = s1.replica.scrape(hash_at(0x60), kT0 + Seconds(2698));
  BOOST_TEST(entry.complete == 1U);
  BOOST_TEST(entry.downloaded == 1U);
  BOOST_TEST(s1.replica.scrape(hash_at(0x60), kT0 + Seconds(2701)).complete == 0U);
}

BOOST_AUTO_TEST_CASE(stopped_peer_is_removed_from_replicas) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode s1(0x90, 0x80, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x60), 1), kT0, capture(r));
  a.node.announce(announce_of(hash_at(0x60), 2), kT0, capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(1));
  for (auto& t : a.drain()) s1.node.handle_app(kT0 + Seconds(1), a.ring.me, t.payload);
  BOOST_TEST(s1.replica.scrape(hash_at(0x60), kT0 + Seconds(1)).incomplete == 2U);
  auto stop = stopped_of(hash_at(0x60), 1);
  a.node.announce(stop, kT0 + Seconds(2), capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(3));
  for (auto& t : a.drain()) s1.node.handle_app(kT0 + Seconds(3), a.ring.me, t.payload);
  BOOST_TEST(s1.replica.scrape(hash_at(0x60), kT0 + Seconds(3)).incomplete == 1U);
}

BOOST_AUTO_TEST_CASE(within_one_replication_period_the_last_announce_of_a_peer_wins) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode s1(0x90, 0x80, {});
  AnnounceResult_ r;
  const InfoHash h = hash_at(0x60);
  // Peer 1: started, stopped, started again. Peer 2: started, then stopped. Peer 3: started.
  // All inside one period, interleaved: the replica must end with peers 1 and 3.
  a.node.announce(announce_of(h, 1), kT0, capture(r));
  a.node.announce(announce_of(h, 2), kT0, capture(r = {}));
  a.node.announce(stopped_of(h, 1), kT0, capture(r = {}));
  a.node.announce(announce_of(h, 3), kT0, capture(r = {}));
  a.node.announce(stopped_of(h, 2), kT0, capture(r = {}));
  a.node.announce(announce_of(h, 1), kT0, capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(1));
  BOOST_TEST(deliver(a, {{0x90, &s1}}, kT0 + Seconds(1)) == 1U);
  BOOST_TEST(s1.replica.scrape(h, kT0 + Seconds(1)).incomplete == 2U);
  BOOST_TEST(s1.replica.scrape(h, kT0 + Seconds(1)).incomplete ==
             a.owned.scrape(h, kT0 + Seconds(1)).incomplete);
}

// The same in a hot swarm (more announces in one period than are compared pairwise), next to a
// quiet one: peers 1-20 start, the even ones stop, peers 2, 4 and 6 start again.
BOOST_AUTO_TEST_CASE(in_a_hot_swarm_too_the_last_announce_of_a_peer_wins) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode s1(0x90, 0x80, {});
  AnnounceResult_ r;
  const InfoHash hot = hash_at(0x60);
  const InfoHash quiet = hash_at(0x61);
  a.node.announce(announce_of(quiet, 7), kT0, capture(r));
  for (std::uint8_t p = 1; p <= 20; ++p) {
    a.node.announce(announce_of(hot, p), kT0, capture(r = {}));
    if (p % 2 == 0) a.node.announce(stopped_of(hot, p), kT0, capture(r = {}));
  }
  a.node.announce(stopped_of(quiet, 7), kT0, capture(r = {}));
  for (std::uint8_t p : {2, 4, 6}) a.node.announce(announce_of(hot, p), kT0, capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(1));
  BOOST_TEST(deliver(a, {{0x90, &s1}}, kT0 + Seconds(1)) == 1U);
  BOOST_TEST(a.owned.scrape(hot, kT0 + Seconds(1)).incomplete == 13U);
  BOOST_TEST(s1.replica.scrape(hot, kT0 + Seconds(1)).incomplete == 13U);
  BOOST_TEST(s1.replica.scrape(quiet, kT0 + Seconds(1)).incomplete == 0U);
}

// Swarms whose hashes share their first bytes are grouped apart although their announces
// interleave: each ends on the replica as on the owner (here peer 1 stops in the first swarm
// and comes back, and stops for good in the second).
BOOST_AUTO_TEST_CASE(interleaved_swarms_with_a_common_prefix_replicate_each_whole) {
  TestNode a(0x80, 0x40, {0x90});
  TestNode s1(0x90, 0x80, {});
  AnnounceResult_ r;
  const InfoHash x = hash_at(0x60, 1);
  const InfoHash y = hash_at(0x60, 2);
  a.node.announce(announce_of(x, 1), kT0, capture(r));
  a.node.announce(announce_of(y, 1), kT0, capture(r = {}));
  a.node.announce(announce_of(x, 2), kT0, capture(r = {}));
  a.node.announce(stopped_of(x, 1), kT0, capture(r = {}));
  a.node.announce(announce_of(y, 2), kT0, capture(r = {}));
  a.node.announce(stopped_of(y, 1), kT0, capture(r = {}));
  a.node.announce(announce_of(x, 1), kT0, capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(1));
  BOOST_TEST(deliver(a, {{0x90, &s1}}, kT0 + Seconds(1)) == 1U);
  const TimePoint t = kT0 + Seconds(1);
  BOOST_TEST(a.owned.scrape(x, t).incomplete == 2U);
  BOOST_TEST(a.owned.scrape(y, t).incomplete == 1U);
  BOOST_TEST(s1.replica.scrape(x, t).incomplete == 2U);
  BOOST_TEST(s1.replica.scrape(y, t).incomplete == 1U);
  auto peers_of = [&](SwarmStore& store, const InfoHash& h) {
    auto snap = store.export_swarm(h, t);
    std::vector<SocketAddress> out;
    if (snap)
      for (const auto& p : snap->peers) out.push_back(p.address);
    std::sort(out.begin(), out.end());
    return out;
  };
  BOOST_TEST((peers_of(s1.replica, x) == peers_of(a.owned, x)));
  BOOST_TEST((peers_of(s1.replica, y) == peers_of(a.owned, y)));
}

/// Owner 0x80 with one replica successor 0x90; peer 1 has announced at the owner.
struct OwnerAndReplica {
  TestNode a{0x80, 0x40, {0x90}};
  TestNode s1{0x90, 0x80, {}};
  AnnounceResult_ r;
  const InfoHash h = hash_at(0x60);
  OwnerAndReplica() { a.node.announce(announce_of(h, 1), kT0, capture(r)); }
};

BOOST_FIXTURE_TEST_CASE(lost_delta_is_sent_again_with_the_current_state_until_acknowledged,
                        OwnerAndReplica) {
  a.node.handle_timeout(kT0 + Seconds(1));
  BOOST_TEST(a.drain().size() == 1U);  // the delta with the leecher: lost
  auto done = announce_of(h, 1, 0);
  done.event = AnnounceEvent::completed;
  a.node.announce(done, kT0 + Seconds(1), capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(2));
  BOOST_TEST(a.drain().size() == 2U);  // the completion, and the first delta again: both lost
  BOOST_TEST(a.node.counter("delta_resends") == 1U);
  // Third try: the resends carry the swarm as it is now, the completion included.
  a.node.handle_timeout(kT0 + Seconds(3));
  BOOST_TEST(deliver(a, {{0x90, &s1}}, kT0 + Seconds(3)) == 2U);
  auto entry = s1.replica.scrape(h, kT0 + Seconds(3));
  BOOST_TEST(entry.complete == 1U);
  BOOST_TEST(entry.incomplete == 0U);
  BOOST_TEST(entry.downloaded == 1U);
  // The replica acknowledges each payload; nothing more is sent.
  BOOST_TEST(deliver(s1, {{0x80, &a}}, kT0 + Seconds(3)) == 2U);
  BOOST_TEST(a.node.counter("delta_acks") == 2U);
  a.node.handle_timeout(kT0 + Seconds(5));
  BOOST_TEST(a.drain().empty());
  BOOST_TEST(a.node.counter("delta_given_up") == 0U);
}

BOOST_AUTO_TEST_CASE(delta_never_acknowledged_is_given_up_after_the_send_limit) {
  TestNode a(0x80, 0x40, {0x90});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x60), 1), kT0, capture(r));
  std::size_t sent = 0;
  for (int i = 1; i <= 10; ++i) {
    a.node.handle_timeout(kT0 + Seconds(i));
    sent += a.drain().size();
  }
  BOOST_TEST(sent == static_cast<std::size_t>(ClusterNode::kDeltaSendsMax));
  BOOST_TEST(a.node.counter("delta_given_up") == 1U);
}

BOOST_FIXTURE_TEST_CASE(resent_delta_does_not_bring_back_a_peer_that_stopped, OwnerAndReplica) {
  a.node.handle_timeout(kT0 + Milliseconds(500));
  auto first = a.drain();  // held back: arrives late, as a resend would
  auto stop = stopped_of(h, 1);
  a.node.announce(stop, kT0 + Milliseconds(600), capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(2));  // the stop delta, and the first one resent
  for (auto& t : first) s1.node.handle_app(kT0 + Seconds(2), a.ring.me, t.payload);
  deliver(a, {{0x90, &s1}}, kT0 + Seconds(2));
  BOOST_TEST(a.node.counter("delta_resends") == 1U);
  BOOST_TEST(s1.replica.scrape(h, kT0 + Seconds(2)).incomplete == 0U);
}

BOOST_AUTO_TEST_CASE(copy_of_a_stopped_peer_in_a_later_merge_does_not_bring_it_back) {
  // The owner replicates two peers; one stops; a snapshot that a replica took before the stop
  // reached it (a sync, handoff or pull crossing the stop) arrives afterwards.
  TestNode a(0x80, 0x40, {0x90});
  TestNode s1(0x90, 0x80, {});
  const InfoHash h = hash_at(0x60);
  AnnounceResult_ r;
  a.node.announce(announce_of(h, 1), kT0, capture(r));
  a.node.announce(announce_of(h, 2), kT0, capture(r = {}));
  a.node.handle_timeout(kT0 + Seconds(1));
  for (auto& t : a.drain()) s1.node.handle_app(kT0 + Seconds(1), a.ring.me, t.payload);
  auto stale = s1.replica.export_swarm(h, kT0 + Seconds(2));
  BOOST_REQUIRE(stale.has_value());
  BOOST_REQUIRE(stale->peers.size() == 2U);

  a.node.announce(stopped_of(h, 1), kT0 + Seconds(5), capture(r = {}));
  BOOST_TEST(a.owned.scrape(h, kT0 + Seconds(5)).incomplete == 1U);
  Replicate back;
  back.purpose = TransferPurpose::handoff;
  back.swarms.push_back(SwarmDelta{*stale, {}});
  std::string payload;
  encode_cluster_message(ClusterMessage{back}, payload);
  a.node.handle_app(kT0 + Seconds(6), s1.ring.me, payload);
  BOOST_TEST(a.owned.scrape(h, kT0 + Seconds(6)).incomplete == 1U);

  // A copy announced after the stop (the peer came back) is merged as before.
  SwarmSnapshot fresh = *stale;
  for (auto& p : fresh.peers) p.remaining_ttl = ClusterConfig{}.peer_ttl;
  Replicate again;
  again.purpose = TransferPurpose::handoff;
  again.swarms.push_back(SwarmDelta{fresh, {}});
  payload.clear();
  encode_cluster_message(ClusterMessage{again}, payload);
  a.node.handle_app(kT0 + Seconds(20), s1.ring.me, payload);
  BOOST_TEST(a.owned.scrape(h, kT0 + Seconds(20)).incomplete == 2U);
}

BOOST_AUTO_TEST_CASE(node_without_a_known_predecessor_refuses_forwarded_requests) {
  // 0x38's predecessor just died: it cannot tell whether 0x20 is its own yet.
  TestNode a(0x80, 0x40, {});
  TestNode s(0x38, 0x30, {0x40});
  s.ring.pred.reset();
  s.node.handle_ring_change(kT0);
  s.drain();
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  a.node.handle_lookup(kT0, lookup_at(a, 0), s.ring.me);
  deliver(a, {{0x38, &s}}, kT0);
  BOOST_TEST(s.node.counter("not_owner_sent") == 1U);
  BOOST_TEST(s.owned.stats().torrents == 0U);
  BOOST_TEST(s.replica.stats().torrents == 0U);
}

/// S (0x80) replicates P (0x40, range (0x20, 0x40]); peer 1 announced at P for 0x30 and P's
/// delta reached S.
struct PredecessorAndReplica {
  TestNode p{0x40, 0x20, {0x80, 0x90}};
  TestNode s{0x80, 0x40, {0x90, 0xA0}};
  AnnounceResult_ r;
  PredecessorAndReplica() {
    p.node.announce(announce_of(hash_at(0x30), 1), kT0, capture(r));
    p.node.handle_timeout(kT0 + Seconds(1));
    for (auto& t : p.drain()) {
      if (t.to.id == s.ring.me.id) s.node.handle_app(kT0 + Seconds(1), p.ring.me, t.payload);
    }
  }
};

// P crashes; S's predecessor becomes 0x20.
BOOST_FIXTURE_TEST_CASE(predecessor_crash_promotes_its_range_and_re_replicates,
                        PredecessorAndReplica) {
  BOOST_REQUIRE(s.replica.scrape(hash_at(0x30), kT0 + Seconds(1)).incomplete == 1U);
  s.drain();

  s.ring.pred = node_at(0x20);
  s.node.handle_ring_change(kT0 + Seconds(2));
  s.node.handle_timeout(kT0 + Seconds(2));
  BOOST_TEST(s.node.counter("promoted") == 1U);
  BOOST_TEST(s.owned.scrape(hash_at(0x30), kT0 + Seconds(2)).incomplete == 1U);
  BOOST_TEST(s.replica.scrape(hash_at(0x30), kT0 + Seconds(2)).incomplete == 0U);
  // r_d copies again: the promoted swarm goes to S's replica successors.
  // And the new range (0x20, 0x80] is asked back from them (what they hold of it merges in).
  std::set<std::uint8_t> dests, pulled_from;
  for (auto& t : s.drain()) {
    auto m = decode_cluster_message(t.payload);
    BOOST_REQUIRE(m.has_value());
    if (auto* pr = std::get_if<PullRequest>(&*m)) {
      BOOST_TEST((pr->from == id_at(0x20)));
      BOOST_TEST((pr->to == id_at(0x80)));
      pulled_from.insert(t.to.id.bytes()[0]);
      continue;
    }
    auto rep = std::get_if<Replicate>(&*m);
    BOOST_REQUIRE(rep != nullptr);
    for (const auto& sw : rep->swarms) {
      if (sw.snapshot.info_hash == hash_at(0x30)) dests.insert(t.to.id.bytes()[0]);
    }
  }
  BOOST_TEST((dests == std::set<std::uint8_t>{0x90, 0xA0}));
  BOOST_TEST((pulled_from == std::set<std::uint8_t>{0x90, 0xA0}));
  // A new announce at S for that torrent sees the replicated peer.
  AnnounceResult_ r2;
  s.node.announce(announce_of(hash_at(0x30), 2), kT0 + Seconds(3), capture(r2));
  BOOST_REQUIRE(r2.ok.has_value());
  BOOST_TEST(peers_of(*r2.ok).size() == 1U);
}

// Once its range is settled S stops looking into its replica store for its own keys; the
// ring moving under it (P crashed, S not told yet) must not hide P's replicated swarm from an
// announce S answers as the new owner.
BOOST_FIXTURE_TEST_CASE(announce_right_after_an_untold_range_change_still_sees_the_replica,
                        PredecessorAndReplica) {
  // S's own announces, after its housekeeping ran: the settled state.
  s.node.announce(announce_of(hash_at(0x70), 2), kT0 + Seconds(1), capture(r = {}));
  s.node.handle_timeout(kT0 + Seconds(3));
  s.node.handle_timeout(kT0 + Seconds(5));
  s.drain();
  BOOST_REQUIRE(s.replica.scrape(hash_at(0x30), kT0 + Seconds(5)).incomplete == 1U);

  s.ring.pred = node_at(0x20);  // no handle_ring_change yet
  AnnounceResult_ r2;
  s.node.announce(announce_of(hash_at(0x30), 3), kT0 + Seconds(5), capture(r2));
  BOOST_REQUIRE(r2.ok.has_value());
  BOOST_TEST(r2.ok->result.incomplete == 2U);  // peer 1 from the replica, and peer 3
  BOOST_TEST(peers_of(*r2.ok).size() == 1U);
  BOOST_TEST(s.node.counter("promoted") == 1U);
}

BOOST_AUTO_TEST_CASE(swarm_handed_to_a_replica_instead_of_the_owner_comes_back_to_the_owner) {
  // After a partition heals, 0x90's range shrinks to (0x80, 0x90]; it hands what it held of
  // (0x40, 0x80] to its new predecessor 0x80 — but the key 0x50 belongs to 0x60, of which
  // 0x80 is only a replica. 0x60 learns its new predecessor 0x40 and asks its replicas back.
  TestNode o(0x60, 0x20, {0x80, 0x90});
  TestNode r1(0x80, 0x60, {0x90, 0xA0});
  const InfoHash h = hash_at(0x50);
  AnnounceResult_ r;
  BOOST_REQUIRE(r1.replica.announce(announce_of(h, 7), kT0).has_value());  // the handed copy
  BOOST_REQUIRE(o.owned.announce(announce_of(h, 1), kT0).has_value());     // the owner's own
  const auto pulls_before = o.node.counter("range_pulls");
  o.ring.pred = node_at(0x40);
  o.node.handle_ring_change(kT0 + Seconds(1));
  BOOST_TEST(o.node.counter("range_pulls") == pulls_before + 1);
  deliver(o, {{0x80, &r1}}, kT0 + Seconds(1));
  r1.node.handle_timeout(kT0 + Seconds(1));
  deliver(r1, {{0x60, &o}}, kT0 + Seconds(1));
  BOOST_TEST(o.owned.scrape(h, kT0 + Seconds(1)).incomplete == 2U);  // both peers at the owner
  o.node.announce(announce_of(h, 2), kT0 + Seconds(2), capture(r));
  BOOST_REQUIRE(r.ok.has_value());
  BOOST_TEST(peers_of(*r.ok).size() == 2U);
}

BOOST_AUTO_TEST_CASE(joining_node_pulls_its_range_before_answering) {
  // N (0x60) joins between 0x40 and S (0x80). S holds 0x50 as owner.
  TestNode s(0x80, 0x40, {0x90});
  AnnounceResult_ r;
  s.node.announce(announce_of(hash_at(0x50), 1), kT0, capture(r));
  s.drain();

  ClusterConfig cc;
  TestNode n(0x60, 0x40, {0x80}, cc, true);
  BOOST_TEST(n.node.pulling());
  BOOST_TEST(n.node.counter("pulls_started") == 1U);
  auto out = n.drain();
  BOOST_REQUIRE(out.size() == 1U);
  auto pull = decode_as<PullRequest>(out[0].payload);
  BOOST_TEST((pull.from == id_at(0x40) && pull.to == id_at(0x60)));
  // A request for N's range waits for the pull.
  AnnounceResult_ held;
  n.node.announce(announce_of(hash_at(0x50), 2), kT0, capture(held));
  BOOST_TEST(!held.called);

  s.node.handle_app(kT0, n.ring.me, out[0].payload);
  s.node.handle_timeout(kT0);
  auto answer = s.drain();
  BOOST_REQUIRE(answer.size() == 2U);  // one chunk + done
  for (auto& t : answer) n.node.handle_app(kT0, s.ring.me, t.payload);
  BOOST_TEST(!n.node.pulling());
  BOOST_REQUIRE(held.ok.has_value());
  BOOST_TEST(held.ok->result.incomplete == 2U);
  BOOST_TEST(n.node.counter("pulls_completed") == 1U);
}

BOOST_AUTO_TEST_CASE(pull_that_is_never_answered_releases_requests_before_their_deadline) {
  TestNode n(0x60, 0x40, {0x80}, ClusterConfig{}, true);
  AnnounceResult_ held;
  n.node.announce(announce_of(hash_at(0x50), 2), kT0, capture(held));
  n.node.handle_timeout(kT0 + ClusterConfig{}.pull_timeout);
  BOOST_TEST(held.ok.has_value());
  BOOST_TEST(n.node.counter("pull_timeouts") == 1U);
}

BOOST_AUTO_TEST_CASE(shrinking_range_demotes_and_hands_the_swarm_to_the_new_predecessor) {
  TestNode s(0x80, 0x40, {0x90});
  AnnounceResult_ r;
  s.node.announce(announce_of(hash_at(0x50), 1), kT0, capture(r));
  s.drain();
  s.ring.pred = node_at(0x60);  // a node joined at 0x60
  s.node.handle_ring_change(kT0 + Seconds(1));
  s.node.handle_timeout(kT0 + Seconds(1));
  BOOST_TEST(s.node.counter("demoted") == 1U);
  BOOST_TEST(s.owned.stats().torrents == 0U);
  BOOST_TEST(s.replica.scrape(hash_at(0x50), kT0 + Seconds(1)).incomplete == 1U);
  bool handed = false;
  for (auto& t : s.drain()) {
    if (t.to.id != id_at(0x60)) continue;
    auto m = decode_as<Replicate>(t.payload);
    handed = m.purpose == TransferPurpose::handoff && m.swarms.size() == 1U;
  }
  BOOST_TEST(handed);
}

BOOST_AUTO_TEST_CASE(graceful_leave_pushes_the_range_and_waits_for_the_ack) {
  TestNode p(0x40, 0x20, {0x80});
  TestNode s(0x80, 0x40, {0x90});
  AnnounceResult_ r;
  p.node.announce(announce_of(hash_at(0x30), 1), kT0, capture(r));
  p.drain();
  p.node.begin_leave(kT0);
  BOOST_TEST(!p.node.leave_ready(kT0));
  p.node.handle_timeout(kT0);
  deliver(p, {{0x80, &s}}, kT0);
  BOOST_TEST(s.node.counter("handoffs_received") == 1U);
  deliver(s, {{0x40, &p}}, kT0);
  BOOST_TEST(p.node.leave_ready(kT0));
  // Once P is gone, S's range grows and the handed swarm is served by S.
  s.ring.pred = node_at(0x20);
  s.node.handle_ring_change(kT0);
  AnnounceResult_ r2;
  s.node.announce(announce_of(hash_at(0x30), 2), kT0, capture(r2));
  BOOST_REQUIRE(r2.ok.has_value());
  BOOST_TEST(r2.ok->result.incomplete == 2U);
}

BOOST_AUTO_TEST_CASE(requests_beyond_the_pending_cap_are_refused_as_busy) {
  ClusterConfig cc;
  cc.pending_max = 2;
  TestNode a(0x80, 0x40, {}, cc);
  AnnounceResult_ r1, r2, r3;
  a.node.announce(announce_of(hash_at(0x20, 1), 1), kT0, capture(r1));
  a.node.announce(announce_of(hash_at(0x20, 2), 1), kT0, capture(r2));
  a.node.announce(announce_of(hash_at(0x20, 3), 1), kT0, capture(r3));
  BOOST_TEST(!r1.called);
  BOOST_TEST(r3.failure == std::string(ClusterNode::kBusyReason));
  // Local answers need no slot.
  AnnounceResult_ local;
  a.node.announce(announce_of(hash_at(0x60), 1), kT0, capture(local));
  BOOST_TEST(local.ok.has_value());
}

BOOST_AUTO_TEST_CASE(malformed_payloads_are_counted_and_ignored) {
  TestNode a(0x80, 0x40, {});
  a.node.handle_app(kT0, node_at(0x30), "garbage");
  a.node.handle_app(kT0, node_at(0x30), "d1:y2:zze");
  BOOST_TEST(a.node.counter("malformed") == 2U);
  BOOST_TEST(a.drain().empty());
}

BOOST_AUTO_TEST_CASE(reply_from_another_node_than_asked_is_ignored) {
  TestNode a(0x80, 0x40, {});
  AnnounceResult_ r;
  a.node.announce(announce_of(hash_at(0x20), 1), kT0, capture(r));
  a.node.handle_lookup(kT0, lookup_at(a, 0), node_at(0x30));
  auto fw = decode_as<ForwardBatch>(a.drain().at(0).payload);
  ReplyBatch forged;
  AnnounceReply rep;
  rep.txid = fw.announces.at(0).txid;
  forged.announces.push_back(rep);
  std::string bytes;
  encode_cluster_message(forged, bytes);
  a.node.handle_app(kT0, node_at(0x31), bytes);
  BOOST_TEST(!r.called);
  BOOST_TEST(a.node.counter("stale_replies") == 1U);
}

BOOST_AUTO_TEST_CASE(unrefreshed_replicas_are_dropped_after_the_grace_period) {
  ClusterConfig cc;
  cc.replica_grace = Seconds(10);
  TestNode p(0x40, 0x20, {0x80});
  TestNode s(0x80, 0x40, {}, cc);
  AnnounceResult_ r;
  p.node.announce(announce_of(hash_at(0x30), 1), kT0, capture(r));
  p.node.handle_timeout(kT0 + Seconds(1));
  for (auto& t : p.drain()) s.node.handle_app(kT0 + Seconds(1), p.ring.me, t.payload);
  BOOST_REQUIRE(s.replica.stats().torrents == 1U);
  for (int sec = 2; sec < 30; ++sec) s.node.handle_timeout(kT0 + Seconds(sec));
  BOOST_TEST(s.replica.stats().torrents == 0U);
  BOOST_TEST(s.node.counter("replica_dropped") == 1U);
}

BOOST_AUTO_TEST_CASE(counters_are_exposed_by_name) {
  TestNode a(0x80, 0x40, {});
  auto c = a.node.counters();
  BOOST_TEST(c.size() > 20U);
  BOOST_TEST(std::any_of(c.begin(), c.end(), [](const auto& p) { return p.first == "timeouts"; }));
}
