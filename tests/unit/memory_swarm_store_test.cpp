// MemorySwarmStore: the shared conformance suite, plus what only this layout can get wrong
// (coarse ticks, 15-bit stamp wrap, big sorted swarms, time going backwards).
#define BOOST_TEST_MODULE memory_swarm_store
#include "tracker/memory_swarm_store.hpp"

#include <algorithm>
#include <boost/test/unit_test.hpp>
#include <map>
#include <random>

#include "tests/unit/swarm_store_conformance.hpp"

using namespace ringtracker;
using namespace ringtracker::tracker;
using namespace ringtracker::tracker::conformance;

RT_SWARM_STORE_CONFORMANCE(memory_swarm_store_conformance, [](const SwarmLimits& limits) {
  return std::unique_ptr<SwarmStore>(std::make_unique<MemorySwarmStore>(limits));
})

namespace {
/// The swarm holds exactly the model's peers (address -> seeder), and its counts agree.
void require_swarm_is(MemorySwarmStore& store, const InfoHash& ih,
                      const std::map<SocketAddress, bool>& model, TimePoint now) {
  std::size_t seeders = 0;
  for (const auto& [a, seeder] : model) seeders += seeder ? 1 : 0;
  const ScrapeEntry e = store.scrape(ih, now);
  BOOST_TEST(e.complete == seeders);
  BOOST_TEST(e.incomplete == model.size() - seeders);
  auto snap = store.export_swarm(ih, now);
  BOOST_REQUIRE(snap.has_value());
  BOOST_REQUIRE(snap->peers.size() == model.size());
  for (const SnapshotPeer& p : snap->peers) {
    auto it = model.find(p.address);
    BOOST_REQUIRE(it != model.end());
    BOOST_TEST(p.seeder == it->second);
  }
}
}  // namespace

BOOST_AUTO_TEST_SUITE(memory_swarm_store_layout)

BOOST_AUTO_TEST_CASE(long_ttl_uses_coarser_ticks_and_still_expires_on_time) {
  // 5 h > 2^14 s: ticks of 2 s. at(0) is on an even second, so the boundaries stay exact.
  MemorySwarmStore store(limits_with_ttl(5 * 3600));
  ok(store, request(torrent(1), v4(1), 5), at(0));
  BOOST_TEST(store.scrape(torrent(1), at(5 * 3600 - 2)).incomplete == 1U);
  BOOST_TEST(store.scrape(torrent(1), at(5 * 3600)).incomplete == 0U);
}

BOOST_AUTO_TEST_CASE(swarm_untouched_past_stamp_wrap_is_expired) {
  // 15-bit stamps wrap after 32768 ticks; an age of 32768 + 10 must not look like 10.
  MemorySwarmStore store(limits_with_ttl(100));
  ok(store, request(torrent(1), v4(1), 5), at(0));
  ok(store, request(torrent(2), v4(1), 5), at(32768));  // time moves on elsewhere
  BOOST_TEST(store.scrape(torrent(1), at(32768 + 10)).incomplete == 0U);
  auto snap = store.export_swarm(torrent(1), at(32768 + 10));
  BOOST_TEST(!snap.has_value());
}

BOOST_AUTO_TEST_CASE(peer_kept_alive_across_many_wraps_stays_live) {
  MemorySwarmStore store(limits_with_ttl(100));
  for (std::int64_t t = 0; t < 3 * 32768; t += 90) ok(store, request(torrent(1), v4(1), 5), at(t));
  ok(store, request(torrent(1), v4(2), 5), at(3 * 32768));
  auto r = ok(store, request(torrent(1), v4(3), 5), at(3 * 32768 + 1));
  BOOST_TEST(r.incomplete == 3U);
}

BOOST_AUTO_TEST_CASE(time_going_backwards_uses_latest_time_seen) {
  MemorySwarmStore store(limits_with_ttl(100));
  ok(store, request(torrent(1), v4(1), 5), at(1000));
  auto r = ok(store, request(torrent(1), v4(2), 5), at(10));  // earlier than before
  BOOST_TEST(r.incomplete == 2U);
  BOOST_TEST(store.scrape(torrent(1), at(1099)).incomplete == 2U);
  BOOST_TEST(store.scrape(torrent(1), at(1100)).incomplete == 0U);
}

BOOST_AUTO_TEST_CASE(prefetch_of_any_hashes_changes_nothing) {
  // Empty store, known and unknown swarms, empty halves, more hashes than one batch: a hint
  // only (under the sanitizers, also no read outside the store's arrays).
  MemorySwarmStore store(SwarmLimits{});
  std::vector<InfoHash> hashes;
  for (unsigned n = 0; n < 3 * SwarmStore::kPrefetchBatch; ++n) hashes.push_back(torrent(n));
  store.prefetch(hashes);
  BOOST_TEST(store.stats().torrents == 0U);
  ok(store, request(torrent(1), v4(1), 0), at(1));  // seeders only
  ok(store, request(torrent(2), v4(2), 5), at(1));  // leechers only
  for (unsigned p = 0; p < 100; ++p) ok(store, request(torrent(3), v4(p), p % 2), at(1));
  const StoreStats before = store.stats();
  store.prefetch(hashes);
  store.prefetch({});
  const StoreStats after = store.stats();
  BOOST_TEST(after.torrents == before.torrents);
  BOOST_TEST(after.peers == before.peers);
  BOOST_TEST(after.seeders == before.seeders);
  BOOST_TEST(store.scrape(torrent(3), at(1)).complete == 50U);
  BOOST_TEST(store.scrape(torrent(4), at(1)).incomplete == 0U);
}

BOOST_AUTO_TEST_CASE(large_swarm_keeps_counts_and_lookups_consistent) {
  MemorySwarmStore store(SwarmLimits{});
  std::mt19937_64 rng(7);
  std::map<SocketAddress, bool> model;  // address -> seeder
  const InfoHash ih = torrent(1);
  for (int step = 0; step < 30000; ++step) {
    const SocketAddress a = (rng() % 5 == 0) ? v6(static_cast<unsigned>(rng() % 2000))
                                             : v4(static_cast<unsigned>(rng() % 8000),
                                                  static_cast<std::uint16_t>(rng() % 3 + 1));
    const unsigned what = static_cast<unsigned>(rng() % 10);
    if (what == 0) {
      ok(store, request(ih, a, 0, AnnounceEvent::stopped), at(1));
      model.erase(a);
    } else {
      const bool seeder = what < 4;
      ok(store, request(ih, a, seeder ? 0 : 1, AnnounceEvent::none, 0), at(1));
      model[a] = seeder;
    }
  }
  require_swarm_is(store, ih, model, at(1));
}

BOOST_AUTO_TEST_CASE(merging_runs_in_any_order_into_a_large_swarm_finds_every_peer) {
  // A replica merges a hot swarm's peers sorted (the owner's flush sorts them), other swarms'
  // in arrival order; lookups start in the half the copy names, and many copies move a peer
  // to the other half or add one. Whatever the order, every peer must be found (never added
  // twice) and end as the fresher copy says.
  MemorySwarmStore store(limits_with_ttl(1000));
  const InfoHash ih = torrent(1);
  std::map<SocketAddress, bool> model;  // address -> seeder
  std::mt19937_64 rng(11);
  for (unsigned n = 0; n < 6000; n += 2) {  // even addresses, every third a seeder
    const SocketAddress a = v4(n, static_cast<std::uint16_t>(1000 + n % 7));
    ok(store, request(ih, a, n % 3 == 0 ? 0 : 1), at(0));
    model[a] = n % 3 == 0;
  }
  for (int round = 0; round < 6; ++round) {
    SwarmSnapshot snap;
    snap.info_hash = ih;
    for (unsigned n = 0; n < 6000; ++n) {
      if (rng() % 4 != 0) continue;  // a quarter of the addresses: existing ones and new ones
      SnapshotPeer p;
      p.address = v4(n, static_cast<std::uint16_t>(1000 + n % 7));
      p.seeder = rng() % 2 == 0;  // many move between the halves
      p.remaining_ttl = std::chrono::seconds(1000);
      snap.peers.push_back(p);
    }
    if (round % 3 == 1) std::reverse(snap.peers.begin(), snap.peers.end());
    if (round % 3 == 2) std::shuffle(snap.peers.begin(), snap.peers.end(), rng);
    // Ten seconds later: each copy is clearly fresher than the store's, so its state wins.
    store.merge_swarm(snap, at(10 * (round + 1)));
    for (const SnapshotPeer& p : snap.peers) model[p.address] = p.seeder;
  }
  require_swarm_is(store, ih, model, at(60));
}

BOOST_AUTO_TEST_CASE(many_torrents_grow_and_shrink_the_index) {
  MemorySwarmStore store(limits_with_ttl(100));
  for (unsigned i = 0; i < 20000; ++i) ok(store, request(torrent(i), v4(i), 5), at(0));
  BOOST_TEST(store.stats().torrents == 20000U);
  const std::size_t full_bytes = store.memory_bytes_for_test();
  for (unsigned i = 0; i < 20000; i += 3) BOOST_TEST(store.erase_swarm(torrent(i)));
  for (unsigned i = 0; i < 20000; ++i) {
    BOOST_TEST(store.scrape(torrent(i), at(1)).incomplete == (i % 3 == 0 ? 0U : 1U));
  }
  BOOST_TEST(store.sweep(at(100), 100000));
  BOOST_TEST(store.stats().torrents == 0U);
  BOOST_TEST(store.memory_bytes_for_test() < full_bytes / 10);
  ok(store, request(torrent(5), v4(5), 5), at(101));
  BOOST_TEST(store.scrape(torrent(5), at(101)).incomplete == 1U);
}

BOOST_AUTO_TEST_CASE(ipv4_peer_costs_eight_bytes) {
  MemorySwarmStore store(SwarmLimits{});
  for (unsigned i = 0; i < 1000; ++i)
    ok(store, request(torrent(1), v4(i), 5, AnnounceEvent::none, 0), at(0));
  const std::size_t with_1000 = store.memory_bytes_for_test();
  for (unsigned i = 1000; i < 2000; ++i)
    ok(store, request(torrent(1), v4(i), 5, AnnounceEvent::none, 0), at(0));
  const std::size_t per_peer = (store.memory_bytes_for_test() - with_1000) / 1000;
  BOOST_TEST(per_peer <= 12U);  // 8 bytes plus growth slack
}

BOOST_AUTO_TEST_CASE(seed_changes_selection_but_not_answers) {
  MemorySwarmStore a(SwarmLimits{}, 1);
  MemorySwarmStore b(SwarmLimits{}, 2);
  for (unsigned i = 0; i < 100; ++i) {
    ok(a, request(torrent(1), v4(i), 5), at(0));
    ok(b, request(torrent(1), v4(i), 5), at(0));
  }
  auto ra = ok(a, request(torrent(1), v4(0), 5, AnnounceEvent::none, 5), at(1));
  auto rb = ok(b, request(torrent(1), v4(0), 5, AnnounceEvent::none, 5), at(1));
  BOOST_TEST(ra.incomplete == rb.incomplete);
  BOOST_TEST(peer_count(ra) == peer_count(rb));
  BOOST_TEST((addresses(ra) != addresses(rb)));
}

BOOST_AUTO_TEST_CASE(announce_into_a_reused_result_answers_as_announce) {
  // Two stores with one seed see the same requests; one answers into a fresh result each
  // time, the other into one result kept throughout. Counts and peer bytes must match, also
  // after answers that carry fewer peers (or none) than the one before.
  MemorySwarmStore fresh(SwarmLimits{}, 9);
  MemorySwarmStore reused(SwarmLimits{}, 9);
  std::mt19937_64 rng(11);
  AnnounceResult kept;
  for (int step = 0; step < 5000; ++step) {
    const InfoHash ih = torrent(static_cast<unsigned>(rng() % 20));
    const unsigned who = static_cast<unsigned>(rng() % 200);
    const SocketAddress peer = (who % 5 == 0) ? v6(who) : v4(who);
    const std::uint64_t left = rng() % 3 == 0 ? 0 : 100;
    AnnounceEvent event = AnnounceEvent::none;
    if (rng() % 8 == 0) event = AnnounceEvent::stopped;
    auto req = request(ih, peer, left, event, static_cast<std::int32_t>(rng() % 60));
    req.families = PeerFamilies::both;
    req.lookup_only = rng() % 10 == 0;
    const TimePoint now = at(step / 50);
    auto a = fresh.announce(req, now);
    auto b = reused.announce_into(req, now, kept);
    BOOST_REQUIRE(a.has_value() == b.has_value());
    if (!a) continue;
    BOOST_TEST(a->complete == kept.complete);
    BOOST_TEST(a->incomplete == kept.incomplete);
    BOOST_TEST(a->downloaded == kept.downloaded);
    BOOST_TEST(a->peers.size() == kept.peers.size());
    BOOST_TEST(a->compact4 == kept.compact4);
    BOOST_TEST(a->compact6 == kept.compact6);
  }
}

BOOST_AUTO_TEST_CASE(names_store_errors) {
  BOOST_TEST(to_string(StoreError::torrents_full) == "torrents_full");
  BOOST_TEST(to_string(StoreError::peers_full) == "peers_full");
}

BOOST_AUTO_TEST_SUITE_END()
