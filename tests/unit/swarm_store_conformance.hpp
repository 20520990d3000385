// The one conformance suite every SwarmStore must pass: each rule of tracker/swarm_store.hpp as
// a named Boost.Test case, plus a seeded randomized check against a std::map reference model.
// It knows nothing about any implementation; a store's test file instantiates it with
// RT_SWARM_STORE_CONFORMANCE(suite_name, factory).
#pragma once

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker::conformance {

/// Makes a fresh, empty store with the given limits.
using StoreFactory = std::function<std::unique_ptr<SwarmStore>(const SwarmLimits&)>;

// ---- helpers -------------------------------------------------------------------------------

/// A steady-clock origin far from zero, so that no store can rely on time starting at 0.
inline TimePoint at(std::int64_t seconds) {
  return TimePoint{} + std::chrono::hours(100'000) + std::chrono::seconds(seconds);
}

inline InfoHash torrent(unsigned n) {
  InfoHash h{};
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = static_cast<std::uint8_t>(n * 131 + i * 7);
  h[0] = static_cast<std::uint8_t>(n);
  h[1] = static_cast<std::uint8_t>(n >> 8);
  return h;
}

inline SocketAddress v4(unsigned n, std::uint16_t port = 6881) {
  const std::uint8_t b[4] = {10, static_cast<std::uint8_t>(n >> 16), static_cast<std::uint8_t>(n >> 8),
                             static_cast<std::uint8_t>(n)};
  return SocketAddress{IpAddress::v4(b), port};
}

inline SocketAddress v6(unsigned n, std::uint16_t port = 6881) {
  std::uint8_t b[16] = {0x20, 0x01, 0x0d, 0xb8};
  b[14] = static_cast<std::uint8_t>(n >> 8);
  b[15] = static_cast<std::uint8_t>(n);
  return SocketAddress{IpAddress::v6(b), port};
}

inline PeerId peer_id_of(const SocketAddress& a) {
  PeerId id{};
  id[0] = '-';
  id[1] = 'T';
  for (std::size_t i = 0; i < a.ip.size() && i + 2 < id.size(); ++i) id[i + 2] = a.ip.data()[i];
  id[19] = static_cast<std::uint8_t>(a.port);
  return id;
}

inline AnnounceRequest request(const InfoHash& ih, const SocketAddress& peer,
                               std::uint64_t left, AnnounceEvent event = AnnounceEvent::none,
                               std::int32_t numwant = -1,
                               PeerFamilies families = PeerFamilies::both) {
  AnnounceRequest r;
  r.info_hash = ih;
  r.peer_id = peer_id_of(peer);
  r.peer = peer;
  r.left = left;
  r.event = event;
  r.numwant = numwant;
  r.families = families;
  return r;
}

/// Announces and requires success (every case below that expects an error says so).
inline AnnounceResult ok(SwarmStore& store, const AnnounceRequest& r, TimePoint now) {
  auto res = store.announce(r, now);
  if (!res.has_value()) BOOST_FAIL("announce refused: " << to_string(res.error()));
  return std::move(res).value();
}

/// Every peer of an answer, whichever form the store gave it in (PeerInfo or compact bytes).
inline std::set<SocketAddress> addresses(const AnnounceResult& r) {
  std::set<SocketAddress> s;
  for_each_peer(r, [&](const SocketAddress& a, const PeerId&) { s.insert(a); });
  return s;
}

inline SwarmLimits limits_with_ttl(std::int64_t ttl_s) {
  SwarmLimits l;
  l.peer_ttl = std::chrono::seconds(ttl_s);
  return l;
}

inline std::size_t count_info_hashes(const SwarmStore& store) {
  std::size_t n = 0;
  store.for_each_info_hash([&](const InfoHash&) { ++n; });
  return n;
}

// ---- one rule per case ---------------------------------------------------------------------

inline void never_returns_announcer_to_itself(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  auto first = ok(*store, request(ih, v4(1), 100), at(0));
  BOOST_TEST(peer_count(first) == 0U);
  for (unsigned i = 2; i <= 5; ++i) ok(*store, request(ih, v4(i), 100), at(0));
  for (unsigned i = 1; i <= 5; ++i) {
    auto r = ok(*store, request(ih, v4(i), 100), at(1));
    BOOST_TEST(peer_count(r) == 4U);
    BOOST_TEST(addresses(r).count(v4(i)) == 0U);
  }
  // Same IP, other port: another peer, so it is returned.
  auto r = ok(*store, request(ih, v4(1, 7000), 100), at(2));
  BOOST_TEST(addresses(r).count(v4(1)) == 1U);
  BOOST_TEST(addresses(r).count(v4(1, 7000)) == 0U);
}

inline void seeder_gets_no_seeders(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 3; ++i) ok(*store, request(ih, v4(i), 0), at(0));      // seeders
  for (unsigned i = 11; i <= 12; ++i) ok(*store, request(ih, v4(i), 50), at(0));   // leechers
  ok(*store, request(ih, v6(13), 50), at(0));                                       // leecher
  ok(*store, request(ih, v6(14), 0), at(0));                                        // seeder
  auto seeder = ok(*store, request(ih, v4(1), 0), at(1));
  BOOST_TEST((addresses(seeder) == std::set<SocketAddress>{v4(11), v4(12), v6(13)}));
  auto leecher = ok(*store, request(ih, v4(11), 50), at(1));
  BOOST_TEST(peer_count(leecher) == 6U);
  BOOST_TEST(seeder.complete == 4U);
  BOOST_TEST(seeder.incomplete == 3U);
}

inline void returned_peers_are_distinct(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 30; ++i) ok(*store, request(ih, v4(i), 9), at(0));
  for (unsigned i = 1; i <= 10; ++i) ok(*store, request(ih, v6(i), 9), at(0));
  for (int round = 0; round < 20; ++round) {
    auto r = ok(*store, request(ih, v4(1), 9, AnnounceEvent::none, 25), at(1));
    BOOST_TEST(peer_count(r) == 25U);
    BOOST_TEST(addresses(r).size() == peer_count(r));
  }
}

inline void stopped_removes_peer(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 10), at(0));
  ok(*store, request(ih, v4(2), 0), at(0));
  auto stopped = ok(*store, request(ih, v4(2), 0, AnnounceEvent::stopped), at(1));
  BOOST_TEST(peer_count(stopped) == 0U);
  BOOST_TEST(stopped.complete == 0U);
  BOOST_TEST(stopped.incomplete == 1U);
  auto r = ok(*store, request(ih, v4(1), 10), at(2));
  BOOST_TEST(peer_count(r) == 0U);
  BOOST_TEST(store->stats().peers == 1U);
  BOOST_TEST(store->stats().seeders == 0U);
}

inline void stopped_returns_no_peers_even_with_others(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 4; ++i) ok(*store, request(ih, v4(i), 10), at(0));
  auto r = ok(*store, request(ih, v4(1), 10, AnnounceEvent::stopped, 50), at(1));
  BOOST_TEST(peer_count(r) == 0U);
  BOOST_TEST(r.incomplete == 3U);
}

inline void stopped_of_unknown_peer_or_torrent_creates_nothing(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  auto r = ok(*store, request(torrent(1), v4(1), 0, AnnounceEvent::stopped), at(0));
  BOOST_TEST(peer_count(r) == 0U);
  BOOST_TEST(r.complete == 0U);
  BOOST_TEST(store->stats().torrents == 0U);
  BOOST_TEST(count_info_hashes(*store) == 0U);
  ok(*store, request(torrent(2), v4(1), 5), at(0));
  auto s = ok(*store, request(torrent(2), v4(9), 5, AnnounceEvent::stopped), at(0));
  BOOST_TEST(s.incomplete == 1U);
  BOOST_TEST(store->stats().peers == 1U);
}

inline void stopping_last_peer_forgets_swarm(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 0, AnnounceEvent::completed), at(0));
  ok(*store, request(ih, v4(1), 0, AnnounceEvent::stopped), at(1));
  BOOST_TEST(store->stats().torrents == 0U);
  const ScrapeEntry e = store->scrape(ih, at(2));
  BOOST_TEST(e.downloaded == 0U);
  BOOST_TEST(e.complete == 0U);
}

inline void completed_counts_once_and_only_with_left_zero(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 100, AnnounceEvent::started), at(0));
  // completed while something is left: not a finished download
  auto a = ok(*store, request(ih, v4(1), 100, AnnounceEvent::completed), at(1));
  BOOST_TEST(a.downloaded == 0U);
  auto b = ok(*store, request(ih, v4(1), 0, AnnounceEvent::completed), at(2));
  BOOST_TEST(b.downloaded == 1U);
  auto c = ok(*store, request(ih, v4(1), 0, AnnounceEvent::completed), at(3));  // re-sent
  BOOST_TEST(c.downloaded == 1U);
  auto d = ok(*store, request(ih, v4(1), 0), at(4));
  BOOST_TEST(d.downloaded == 1U);
  // a peer whose first announce is `completed` with left == 0 counts
  auto e = ok(*store, request(ih, v4(2), 0, AnnounceEvent::completed), at(5));
  BOOST_TEST(e.downloaded == 2U);
  // a peer that went back to leeching and completes again still counts only once
  ok(*store, request(ih, v4(2), 10), at(6));
  auto f = ok(*store, request(ih, v4(2), 0, AnnounceEvent::completed), at(7));
  BOOST_TEST(f.downloaded == 2U);
  // a new peer arriving as a seeder without `completed` does not count
  auto g = ok(*store, request(ih, v4(3), 0), at(8));
  BOOST_TEST(g.downloaded == 2U);
  BOOST_TEST(store->scrape(ih, at(9)).downloaded == 2U);
}

inline void leecher_becoming_seeder_moves_counts(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 100), at(0));
  ok(*store, request(ih, v6(2), 100), at(0));
  auto r = ok(*store, request(ih, v4(1), 0), at(1));
  BOOST_TEST(r.complete == 1U);
  BOOST_TEST(r.incomplete == 1U);
  // and now, as a seeder, it no longer gets the other seeder but gets the leecher
  ok(*store, request(ih, v6(2), 0), at(2));
  auto s = ok(*store, request(ih, v4(1), 0), at(3));
  BOOST_TEST(peer_count(s) == 0U);
  BOOST_TEST(s.complete == 2U);
  BOOST_TEST(s.incomplete == 0U);
  auto back = ok(*store, request(ih, v6(2), 7), at(4));  // seeder back to leecher
  BOOST_TEST(back.complete == 1U);
  BOOST_TEST(back.incomplete == 1U);
  BOOST_TEST(store->stats().seeders == 1U);
  BOOST_TEST(store->stats().leechers == 1U);
}

inline void numwant_zero_returns_no_peers(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 5; ++i) ok(*store, request(ih, v4(i), 1), at(0));
  auto r = ok(*store, request(ih, v4(1), 1, AnnounceEvent::none, 0), at(1));
  BOOST_TEST(peer_count(r) == 0U);
  BOOST_TEST(r.incomplete == 5U);
}

inline void negative_numwant_means_default(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 80; ++i) ok(*store, request(ih, v4(i), 1), at(0));
  auto r = ok(*store, request(ih, v4(1), 1, AnnounceEvent::none, -1), at(1));
  BOOST_TEST(peer_count(r) == static_cast<std::size_t>(kNumwantDefault));
  auto r2 = ok(*store, request(ih, v4(1), 1, AnnounceEvent::none, -77), at(1));
  BOOST_TEST(peer_count(r2) == static_cast<std::size_t>(kNumwantDefault));
  auto r3 = ok(*store, request(ih, v4(1), 1, AnnounceEvent::none, 3), at(1));
  BOOST_TEST(peer_count(r3) == 3U);
}

inline void numwant_is_clamped_to_cap(const StoreFactory& make) {
  SwarmLimits limits;
  limits.numwant_max = 10;
  auto store = make(limits);
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 40; ++i) ok(*store, request(ih, v4(i), 1), at(0));
  auto r = ok(*store, request(ih, v4(1), 1, AnnounceEvent::none, 1000), at(1));
  BOOST_TEST(peer_count(r) == 10U);
  auto d = ok(*store, request(ih, v4(1), 1, AnnounceEvent::none, -1), at(1));
  BOOST_TEST(peer_count(d) == 10U);  // the default is clamped too
}

inline void expired_peer_is_not_returned_and_not_counted(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 0), at(0));
  ok(*store, request(ih, v4(2), 5), at(50));
  BOOST_TEST(store->scrape(ih, at(99)).complete == 1U);  // live one second before its TTL
  auto r = ok(*store, request(ih, v4(2), 5), at(100));
  BOOST_TEST(peer_count(r) == 0U);
  BOOST_TEST(r.complete == 0U);
  BOOST_TEST(r.incomplete == 1U);
  const ScrapeEntry e = store->scrape(ih, at(100));
  BOOST_TEST(e.complete == 0U);
  BOOST_TEST(e.incomplete == 1U);
}

inline void refreshed_peer_stays_live(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));
  ok(*store, request(ih, v4(2), 5), at(0));
  ok(*store, request(ih, v4(1), 5), at(90));
  auto r = ok(*store, request(ih, v4(3), 5), at(150));
  BOOST_TEST((addresses(r) == std::set<SocketAddress>{v4(1)}));
  BOOST_TEST(store->scrape(ih, at(189)).incomplete == 2U);
  BOOST_TEST(store->scrape(ih, at(190)).incomplete == 1U);
}

inline void expired_swarm_forgets_downloaded(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 0, AnnounceEvent::completed), at(0));
  auto r = ok(*store, request(ih, v4(2), 5), at(100));
  BOOST_TEST(r.downloaded == 0U);
  BOOST_TEST(peer_count(r) == 0U);
}

inline void expired_peer_that_returns_is_new(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));
  ok(*store, request(ih, v4(2), 0, AnnounceEvent::completed), at(0));
  ok(*store, request(ih, v4(1), 5), at(60));  // keeps the swarm alive
  // v4(2) expired at 100; coming back with `completed` is a new peer finishing: it counts
  auto r = ok(*store, request(ih, v4(2), 0, AnnounceEvent::completed), at(120));
  BOOST_TEST(r.downloaded == 2U);
}

inline void sweep_removes_empty_swarms_within_budget(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  for (unsigned i = 0; i < 10; ++i) ok(*store, request(torrent(i), v4(1), 5), at(0));
  for (unsigned i = 10; i < 13; ++i) ok(*store, request(torrent(i), v4(1), 5), at(60));
  BOOST_TEST(store->stats().torrents == 13U);
  std::size_t before = store->stats().torrents;
  bool done = false;
  int calls = 0;
  while (!done && calls < 100) {
    done = store->sweep(at(100), 3);
    ++calls;
    const std::size_t now_torrents = store->stats().torrents;
    BOOST_TEST(before - now_torrents <= 3U);
    before = now_torrents;
  }
  BOOST_TEST(done);
  BOOST_TEST(calls >= 4);  // 10 expired swarms cannot go in fewer than 4 calls of 3
  BOOST_TEST(store->stats().torrents == 3U);
  BOOST_TEST(store->stats().peers == 3U);
  BOOST_TEST(count_info_hashes(*store) == 3U);
  BOOST_TEST(store->sweep(at(100), 1000));
  BOOST_TEST(store->sweep(at(160), 1000));
  BOOST_TEST(store->stats().torrents == 0U);
  BOOST_TEST(store->stats().peers == 0U);
}

inline void sweep_drops_expired_peers_of_live_swarms(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 0), at(0));
  ok(*store, request(ih, v6(2), 5), at(0));
  ok(*store, request(ih, v4(3), 5), at(50));
  BOOST_TEST(store->sweep(at(120), 1000));
  const StoreStats st = store->stats();
  BOOST_TEST(st.torrents == 1U);
  BOOST_TEST(st.peers == 1U);
  BOOST_TEST(st.seeders == 0U);
  BOOST_TEST(st.leechers == 1U);
}

inline void sweep_finishes_while_map_changes(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  for (unsigned i = 0; i < 40; ++i) ok(*store, request(torrent(i), v4(1), 5), at(0));
  for (unsigned i = 100; i < 110; ++i) ok(*store, request(torrent(i), v4(1), 5), at(99));
  bool done = false;
  unsigned next_new = 200;
  unsigned next_stop = 100;
  for (int calls = 0; !done && calls < 200; ++calls) {
    done = store->sweep(at(100), 2);
    ok(*store, request(torrent(next_new++), v4(1), 5), at(100));  // grows the map
    if (next_stop < 110) {                                          // shrinks it elsewhere
      ok(*store, request(torrent(next_stop++), v4(1), 5, AnnounceEvent::stopped), at(100));
    }
  }
  BOOST_TEST(done);
  std::size_t old_left = 0;
  store->for_each_info_hash([&](const InfoHash& h) {
    for (unsigned i = 0; i < 40; ++i) old_left += (h == torrent(i)) ? 1 : 0;
  });
  BOOST_TEST(old_left == 0U);  // every swarm present when the pass began was visited
}

inline void sweep_of_empty_store_finishes_at_once(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  BOOST_TEST(store->sweep(at(0), 1));
  BOOST_TEST(store->sweep(at(0), 0));
}

inline void torrents_cap_refuses_new_torrent(const StoreFactory& make) {
  SwarmLimits limits;
  limits.torrents_max = 2;
  auto store = make(limits);
  ok(*store, request(torrent(1), v4(1), 5), at(0));
  ok(*store, request(torrent(2), v4(1), 5), at(0));
  auto refused = store->announce(request(torrent(3), v4(1), 5), at(0));
  BOOST_REQUIRE(!refused.has_value());
  BOOST_TEST((refused.error() == StoreError::torrents_full));
  BOOST_TEST(store->stats().torrents == 2U);
  ok(*store, request(torrent(1), v4(2), 5), at(1));  // existing torrents keep working
  ok(*store, request(torrent(2), v4(1), 5, AnnounceEvent::stopped), at(2));
  ok(*store, request(torrent(3), v4(1), 5), at(3));  // room again
  BOOST_TEST(store->stats().torrents == 2U);
}

inline void peers_cap_refuses_new_peer_but_refreshes_existing(const StoreFactory& make) {
  SwarmLimits limits;
  limits.peers_per_torrent_max = 2;
  auto store = make(limits);
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));
  ok(*store, request(ih, v6(2), 5), at(0));
  auto refused = store->announce(request(ih, v4(3), 5), at(1));
  BOOST_REQUIRE(!refused.has_value());
  BOOST_TEST((refused.error() == StoreError::peers_full));
  auto refresh = ok(*store, request(ih, v4(1), 0, AnnounceEvent::completed), at(2));
  BOOST_TEST(refresh.complete == 1U);
  BOOST_TEST(refresh.downloaded == 1U);
  BOOST_TEST(store->stats().peers == 2U);
  ok(*store, request(ih, v4(3), 5, AnnounceEvent::stopped), at(3));  // unknown, harmless
  ok(*store, request(ih, v6(2), 5, AnnounceEvent::stopped), at(3));
  ok(*store, request(ih, v4(3), 5), at(4));
}

inline void peers_cap_counts_only_live_peers(const StoreFactory& make) {
  SwarmLimits limits = limits_with_ttl(100);
  limits.peers_per_torrent_max = 2;
  auto store = make(limits);
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));
  ok(*store, request(ih, v4(2), 5), at(50));
  ok(*store, request(ih, v4(3), 5), at(100));  // v4(1) expired: room for v4(3)
}

inline void families_filter(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 3; ++i) ok(*store, request(ih, v4(i), 5), at(0));
  for (unsigned i = 1; i <= 2; ++i) ok(*store, request(ih, v6(i), 5), at(0));
  auto only4 = ok(*store, request(ih, v4(1), 5, AnnounceEvent::none, 50, PeerFamilies::v4), at(1));
  BOOST_TEST((addresses(only4) == std::set<SocketAddress>{v4(2), v4(3)}));
  auto only6 = ok(*store, request(ih, v4(1), 5, AnnounceEvent::none, 50, PeerFamilies::v6), at(1));
  BOOST_TEST((addresses(only6) == std::set<SocketAddress>{v6(1), v6(2)}));
  auto both = ok(*store, request(ih, v6(1), 5, AnnounceEvent::none, 50, PeerFamilies::both), at(1));
  BOOST_TEST((addresses(both) == std::set<SocketAddress>{v4(1), v4(2), v4(3), v6(2)}));
  // counts are for the whole swarm whatever the families asked
  BOOST_TEST(only4.incomplete == 5U);
}

inline void ipv6_peers_round_trip(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  const SocketAddress a = *SocketAddress::parse("[2001:db8::1:2:3:4]:51413");
  const SocketAddress b = *SocketAddress::parse("[fe80::ffff:1]:1");
  ok(*store, request(ih, a, 0), at(0));
  auto r = ok(*store, request(ih, b, 5), at(0));
  BOOST_REQUIRE(peer_count(r) == 1U);
  BOOST_TEST((addresses(r) == std::set<SocketAddress>{a}));
  BOOST_TEST(r.complete == 1U);
  BOOST_TEST(r.incomplete == 1U);
  auto back = ok(*store, request(ih, a, 0), at(1));
  BOOST_REQUIRE(peer_count(back) == 1U);
  BOOST_TEST((addresses(back) == std::set<SocketAddress>{b}));
  ok(*store, request(ih, b, 5, AnnounceEvent::stopped), at(2));
  BOOST_TEST(store->scrape(ih, at(2)).incomplete == 0U);
  BOOST_TEST(store->stats().peers == 1U);
}

inline void v4_and_v6_with_same_port_are_distinct(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));
  ok(*store, request(ih, v6(1), 5), at(0));
  BOOST_TEST(store->scrape(ih, at(0)).incomplete == 2U);
}

inline std::map<SocketAddress, std::pair<bool, Duration>> snapshot_peers(const SwarmSnapshot& s) {
  std::map<SocketAddress, std::pair<bool, Duration>> m;
  for (const auto& p : s.peers) m[p.address] = {p.seeder, p.remaining_ttl};
  return m;
}

inline void snapshot_export_merge_round_trip(const StoreFactory& make) {
  auto a = make(limits_with_ttl(100));
  auto b = make(limits_with_ttl(100));
  const InfoHash ih = torrent(7);
  ok(*a, request(ih, v4(1), 5), at(0));
  ok(*a, request(ih, v4(2), 0, AnnounceEvent::completed), at(10));
  ok(*a, request(ih, v6(3), 5), at(20));
  auto snap = a->export_swarm(ih, at(30));
  BOOST_REQUIRE(snap.has_value());
  BOOST_TEST((snap->info_hash == ih));
  BOOST_TEST(snap->downloaded == 1U);
  BOOST_REQUIRE(snap->peers.size() == 3U);
  const auto m = snapshot_peers(*snap);
  BOOST_TEST(m.at(v4(1)).first == false);
  BOOST_TEST(m.at(v4(2)).first == true);
  BOOST_TEST((m.at(v4(1)).second == std::chrono::seconds(70)));
  BOOST_TEST((m.at(v4(2)).second == std::chrono::seconds(80)));
  BOOST_TEST((m.at(v6(3)).second == std::chrono::seconds(90)));

  // the other store's clock has another origin: relative TTLs carry over
  b->merge_swarm(*snap, at(5000));
  const ScrapeEntry e = b->scrape(ih, at(5000));
  BOOST_TEST(e.complete == 1U);
  BOOST_TEST(e.incomplete == 2U);
  BOOST_TEST(e.downloaded == 1U);
  auto again = b->export_swarm(ih, at(5000));
  BOOST_REQUIRE(again.has_value());
  BOOST_TEST((snapshot_peers(*again) == m));
  // and they expire there on the same schedule
  BOOST_TEST(b->scrape(ih, at(5069)).incomplete == 2U);
  BOOST_TEST(b->scrape(ih, at(5070)).incomplete == 1U);
  // a merged seeder counts as already counted
  auto c = ok(*b, request(ih, v4(2), 0, AnnounceEvent::completed), at(5071));
  BOOST_TEST(c.downloaded == 1U);
}

inline void merge_keeps_later_expiry(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));  // remaining 100
  SwarmSnapshot s;
  s.info_hash = ih;
  s.downloaded = 5;
  s.peers.push_back({v4(1), PeerId{}, true, std::chrono::seconds(30)});  // older: ignored
  s.peers.push_back({v4(2), PeerId{}, false, std::chrono::seconds(30)});
  store->merge_swarm(s, at(0));
  s.downloaded = 3;
  s.peers = {{v4(2), PeerId{}, true, std::chrono::seconds(80)}};  // later: wins, with its flag
  store->merge_swarm(s, at(0));
  s.peers = {{v4(2), PeerId{}, false, std::chrono::seconds(10)}};  // earlier: ignored
  store->merge_swarm(s, at(0));
  auto snap = store->export_swarm(ih, at(0));
  BOOST_REQUIRE(snap.has_value());
  BOOST_TEST(snap->downloaded == 5U);
  const auto m = snapshot_peers(*snap);
  BOOST_TEST(m.at(v4(1)).first == false);
  BOOST_TEST((m.at(v4(1)).second == std::chrono::seconds(100)));
  BOOST_TEST(m.at(v4(2)).first == true);
  BOOST_TEST((m.at(v4(2)).second == std::chrono::seconds(80)));
  const ScrapeEntry e = store->scrape(ih, at(79));
  BOOST_TEST(e.complete == 1U);
  BOOST_TEST(store->scrape(ih, at(80)).complete == 0U);
}

// Two nodes that sync a swarm back and forth see each other's copy up to one second younger
// than their own (the age does not count the time in transit across a tick): taking it would
// extend the peer's life by a second per round trip, without end. A peer announced once
// expires one TTL after that announce however often copies travel.
inline void copies_one_tick_younger_do_not_extend_life(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));
  for (int t = 1; t < 100; ++t) {
    auto snap = store->export_swarm(ih, at(t));
    BOOST_REQUIRE(snap.has_value());
    for (auto& p : snap->peers) p.remaining_ttl += std::chrono::seconds(1);  // crossed a tick
    store->merge_swarm(*snap, at(t));
  }
  BOOST_TEST(store->scrape(ih, at(99)).incomplete == 1U);
  BOOST_TEST(store->scrape(ih, at(100)).incomplete == 0U);
  // A clearly fresher copy (a later announce elsewhere) still makes it younger.
  ok(*store, request(ih, v4(1), 5), at(200));
  SwarmSnapshot later;
  later.info_hash = ih;
  later.peers.push_back({v4(1), PeerId{}, false, std::chrono::seconds(100)});
  store->merge_swarm(later, at(250));
  BOOST_TEST(store->scrape(ih, at(349)).incomplete == 1U);
  BOOST_TEST(store->scrape(ih, at(350)).incomplete == 0U);
}

// Replicas see an announce and its copies from other nodes with ages rounded to seconds on
// different clocks: a started/completed pair within one second must not come back as a leecher.
inline void merge_of_simultaneous_copies_keeps_completion(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 5), at(0));  // leecher, remaining 100
  ok(*store, request(ih, v4(2), 0), at(0));  // seeder, remaining 100
  SwarmSnapshot s;
  s.info_hash = ih;
  s.peers.push_back({v4(1), PeerId{}, true, std::chrono::seconds(99)});   // completed, same moment
  s.peers.push_back({v4(2), PeerId{}, false, std::chrono::seconds(100)});  // stale started copy
  store->merge_swarm(s, at(0));
  auto e = store->scrape(ih, at(0));
  BOOST_TEST(e.complete == 2U);
  BOOST_TEST(e.incomplete == 0U);
  // A clearly fresher leecher copy (a new download of the same peer) does win.
  s.peers = {{v4(2), PeerId{}, false, std::chrono::seconds(100)}};
  store->merge_swarm(s, at(10));
  e = store->scrape(ih, at(10));
  BOOST_TEST(e.complete == 1U);
  BOOST_TEST(e.incomplete == 1U);
}

inline void merge_ignores_dead_peers_and_clamps_ttl(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  const InfoHash ih = torrent(1);
  SwarmSnapshot s;
  s.info_hash = ih;
  s.peers.push_back({v4(1), PeerId{}, false, std::chrono::seconds(0)});
  s.peers.push_back({v4(2), PeerId{}, false, -std::chrono::seconds(5)});
  store->merge_swarm(s, at(0));
  BOOST_TEST(store->stats().torrents == 0U);  // nothing live: nothing created
  s.peers.push_back({v4(3), PeerId{}, false, std::chrono::hours(10)});
  store->merge_swarm(s, at(0));
  auto snap = store->export_swarm(ih, at(0));
  BOOST_REQUIRE(snap.has_value());
  BOOST_REQUIRE(snap->peers.size() == 1U);
  BOOST_TEST((snap->peers[0].remaining_ttl == std::chrono::seconds(100)));
}

inline void merge_respects_caps(const StoreFactory& make) {
  SwarmLimits limits = limits_with_ttl(100);
  limits.peers_per_torrent_max = 2;
  limits.torrents_max = 1;
  auto store = make(limits);
  SwarmSnapshot s;
  s.info_hash = torrent(1);
  for (unsigned i = 1; i <= 3; ++i) s.peers.push_back({v4(i), PeerId{}, false, std::chrono::seconds(50)});
  store->merge_swarm(s, at(0));
  BOOST_TEST(store->stats().peers == 2U);
  BOOST_TEST(store->stats().merge_peers_dropped == 1U);
  s.info_hash = torrent(2);
  store->merge_swarm(s, at(0));
  BOOST_TEST(store->stats().torrents == 1U);
  BOOST_TEST(store->stats().merge_peers_dropped == 4U);
}

inline void export_of_unknown_or_expired_swarm_is_empty(const StoreFactory& make) {
  auto store = make(limits_with_ttl(100));
  BOOST_TEST(!store->export_swarm(torrent(1), at(0)).has_value());
  ok(*store, request(torrent(1), v4(1), 5), at(0));
  BOOST_TEST(store->export_swarm(torrent(1), at(99)).has_value());
  BOOST_TEST(!store->export_swarm(torrent(1), at(100)).has_value());
}

inline void scrape_unknown_is_zero_and_creates_nothing(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const ScrapeEntry e = store->scrape(torrent(9), at(0));
  BOOST_TEST((e.info_hash == torrent(9)));
  BOOST_TEST(e.complete == 0U);
  BOOST_TEST(e.incomplete == 0U);
  BOOST_TEST(e.downloaded == 0U);
  BOOST_TEST(store->stats().torrents == 0U);
  BOOST_TEST(count_info_hashes(*store) == 0U);
}

inline AnnounceRequest lookup(const InfoHash& ih, const SocketAddress& asker, std::uint64_t left = 1,
                              std::int32_t numwant = -1) {
  AnnounceRequest r = request(ih, asker, left, AnnounceEvent::none, numwant);
  r.lookup_only = true;
  return r;
}

inline void lookup_only_of_unknown_torrent_creates_nothing(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  auto r = ok(*store, lookup(torrent(1), v4(1)), at(0));
  BOOST_TEST(peer_count(r) == 0U);
  BOOST_TEST(r.complete == 0U);
  BOOST_TEST(r.incomplete == 0U);
  BOOST_TEST(store->stats().torrents == 0U);
  BOOST_TEST(count_info_hashes(*store) == 0U);
}

inline void lookup_only_returns_peers_without_adding_the_asker(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  ok(*store, request(ih, v4(1), 0, AnnounceEvent::completed), at(0));  // seeder
  ok(*store, request(ih, v4(2), 10), at(0));                           // leecher
  auto r = ok(*store, lookup(ih, v4(9)), at(1));
  BOOST_TEST((addresses(r) == std::set<SocketAddress>{v4(1), v4(2)}));
  BOOST_TEST(r.complete == 1U);
  BOOST_TEST(r.incomplete == 1U);
  BOOST_TEST(r.downloaded == 1U);
  BOOST_TEST(store->stats().peers == 2U);
  BOOST_TEST(store->scrape(ih, at(1)).incomplete == 1U);
  // A lookup is no refresh: the peers still expire a TTL after their own announces.
  const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(SwarmLimits{}.peer_ttl);
  ok(*store, lookup(ih, v4(1)), at(ttl.count() - 10));
  auto late = ok(*store, lookup(ih, v4(9)), at(ttl.count() + 10));
  BOOST_TEST(peer_count(late) == 0U);
  BOOST_TEST(store->stats().torrents == 0U);
}

inline void lookup_only_never_returns_the_asker_and_honours_left(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 1; i <= 3; ++i) ok(*store, request(ih, v4(i), 0), at(0));     // seeders
  for (unsigned i = 11; i <= 13; ++i) ok(*store, request(ih, v4(i), 50), at(0));  // leechers
  auto leecher = ok(*store, lookup(ih, v4(11)), at(1));
  BOOST_TEST(peer_count(leecher) == 5U);
  BOOST_TEST(addresses(leecher).count(v4(11)) == 0U);
  auto seeder = ok(*store, lookup(ih, v4(1), 0), at(1));  // a seeder asks: leechers only
  BOOST_TEST((addresses(seeder) == std::set<SocketAddress>{v4(11), v4(12), v4(13)}));
  auto two = ok(*store, lookup(ih, v4(20), 1, 2), at(1));
  BOOST_TEST(peer_count(two) == 2U);
  BOOST_TEST(store->stats().peers == 6U);
}

inline void for_each_and_erase_swarm(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  for (unsigned i = 0; i < 50; ++i) ok(*store, request(torrent(i), v4(i), 5), at(0));
  std::set<InfoHash> seen;
  store->for_each_info_hash([&](const InfoHash& h) { seen.insert(h); });
  BOOST_TEST(seen.size() == 50U);
  for (unsigned i = 0; i < 50; i += 2) BOOST_TEST(store->erase_swarm(torrent(i)));
  BOOST_TEST(!store->erase_swarm(torrent(0)));
  BOOST_TEST(store->stats().torrents == 25U);
  BOOST_TEST(store->stats().peers == 25U);
  for (unsigned i = 0; i < 50; ++i) {
    BOOST_TEST(store->scrape(torrent(i), at(0)).incomplete == (i % 2 == 0 ? 0U : 1U));
  }
}

inline void selection_reaches_every_peer(const StoreFactory& make) {
  auto store = make(SwarmLimits{});
  const InfoHash ih = torrent(1);
  for (unsigned i = 0; i < 100; ++i) ok(*store, request(ih, v4(i), 5), at(0));
  std::map<SocketAddress, int> hits;
  for (int round = 0; round < 1000; ++round) {
    auto r = ok(*store, request(ih, v4(0), 5, AnnounceEvent::none, 10), at(1));
    for (const auto& a : addresses(r)) ++hits[a];
  }
  // 10000 picks over 99 peers: about 101 each; a fixed or badly skewed choice fails this.
  BOOST_TEST(hits.size() == 99U);
  for (const auto& [addr, n] : hits) BOOST_TEST((n > 30 && n < 300), addr.to_string() << " " << n);
}

// ---- randomized check against a reference model --------------------------------------------

/// The contract, written as plainly as possible.
class ReferenceModel {
 public:
  struct Peer {
    bool seeder = false;
    bool counted = false;
    std::int64_t seen = 0;
  };
  struct Swarm {
    std::map<SocketAddress, Peer> peers;
    std::uint32_t downloaded = 0;
  };

  explicit ReferenceModel(const SwarmLimits& limits)
      : limits_(limits), ttl_(std::chrono::duration_cast<std::chrono::seconds>(limits.peer_ttl).count()) {}

  bool live(const Peer& p, std::int64_t now) const { return now - p.seen < ttl_; }

  /// Drops expired peers; a swarm left empty is forgotten. Returns the swarm or nullptr.
  Swarm* touch(const InfoHash& ih, std::int64_t now) {
    auto it = swarms_.find(ih);
    if (it == swarms_.end()) return nullptr;
    std::erase_if(it->second.peers, [&](const auto& kv) { return !live(kv.second, now); });
    if (it->second.peers.empty()) {
      swarms_.erase(it);
      return nullptr;
    }
    return &it->second;
  }
  /// The swarm if it has a live peer, without dropping anything.
  Swarm* find_live(const InfoHash& ih, std::int64_t now) {
    auto it = swarms_.find(ih);
    if (it == swarms_.end()) return nullptr;
    for (const auto& [a, p] : it->second.peers) {
      if (live(p, now)) return &it->second;
    }
    return nullptr;
  }
  std::size_t live_swarms(std::int64_t now) const {
    std::size_t n = 0;
    for (const auto& [ih, s] : swarms_) {
      n += std::any_of(s.peers.begin(), s.peers.end(),
                       [&](const auto& kv) { return live(kv.second, now); });
    }
    return n;
  }
  std::size_t known_swarms() const { return swarms_.size(); }
  std::map<InfoHash, Swarm>& swarms() { return swarms_; }
  std::int64_t ttl() const { return ttl_; }
  const SwarmLimits& limits() const { return limits_; }

 private:
  SwarmLimits limits_;
  std::int64_t ttl_;
  std::map<InfoHash, Swarm> swarms_;  // may hold swarms whose peers all expired (stale)
};

inline bool family_wanted(PeerFamilies f, const SocketAddress& a) {
  const auto bits = static_cast<unsigned>(f);
  return a.ip.is_v6() ? (bits & 2U) != 0 : (bits & 1U) != 0;
}

inline void check_announce_against_model(SwarmStore& store, ReferenceModel& model,
                                         const AnnounceRequest& req, std::int64_t now) {
  const auto result = store.announce(req, at(now));
  const bool seeder = req.left == 0;
  ReferenceModel::Swarm* s = model.touch(req.info_hash, now);
  if (req.event == AnnounceEvent::stopped) {
    BOOST_REQUIRE(result.has_value());
    BOOST_TEST(result->peers.empty());
    if (s != nullptr) {
      s->peers.erase(req.peer);
      std::size_t seeders = 0;
      for (const auto& [addr, p] : s->peers) seeders += p.seeder ? 1 : 0;
      BOOST_TEST(result->complete == seeders);
      BOOST_TEST(result->incomplete + result->complete == s->peers.size());
      BOOST_TEST(result->downloaded == s->downloaded);
      if (s->peers.empty()) model.swarms().erase(req.info_hash);
    } else {
      BOOST_TEST(result->complete + result->incomplete + result->downloaded == 0U);
    }
    return;
  }
  if (s == nullptr) {
    const std::size_t live = model.live_swarms(now);
    if (!result.has_value()) {
      BOOST_TEST((result.error() == StoreError::torrents_full));
      // Stale swarms (expired, not yet dropped) may still occupy the store.
      BOOST_TEST(model.known_swarms() >= model.limits().torrents_max);
      return;
    }
    BOOST_TEST(live < model.limits().torrents_max);
    s = &model.swarms()[req.info_hash];
  }
  auto it = s->peers.find(req.peer);
  const bool completes = req.event == AnnounceEvent::completed && seeder;
  if (it == s->peers.end()) {
    if (s->peers.size() >= model.limits().peers_per_torrent_max) {
      BOOST_REQUIRE(!result.has_value());
      BOOST_TEST((result.error() == StoreError::peers_full));
      return;
    }
    if (!result.has_value()) BOOST_FAIL("refused: " << to_string(result.error()));
    it = s->peers.emplace(req.peer, ReferenceModel::Peer{seeder, completes, now}).first;
    if (completes) ++s->downloaded;
  } else {
    if (!result.has_value()) BOOST_FAIL("refused: " << to_string(result.error()));
    if (completes && !it->second.counted) {
      ++s->downloaded;
      it->second.counted = true;
    }
    it->second.seeder = seeder;
    it->second.seen = now;
  }
  std::size_t seeders = 0;
  std::size_t candidates = 0;
  for (const auto& [addr, p] : s->peers) {
    seeders += p.seeder ? 1 : 0;
    if (addr != req.peer && family_wanted(req.families, addr) && !(seeder && p.seeder)) {
      ++candidates;
    }
  }
  BOOST_TEST(result->complete == seeders);
  BOOST_TEST(result->incomplete == s->peers.size() - seeders);
  BOOST_TEST(result->downloaded == s->downloaded);
  const std::size_t asked = req.numwant < 0 ? std::size_t(kNumwantDefault) : std::size_t(req.numwant);
  const std::size_t want = std::min(asked, model.limits().numwant_max);
  BOOST_TEST(peer_count(*result) == std::min(want, candidates));
  std::set<SocketAddress> distinct;
  for_each_peer(*result, [&](const SocketAddress& a, const PeerId&) {
    BOOST_TEST(distinct.insert(a).second);
    BOOST_TEST((a != req.peer));
    BOOST_TEST(family_wanted(req.families, a));
    auto found = s->peers.find(a);
    BOOST_REQUIRE(found != s->peers.end());
    BOOST_TEST(!(seeder && found->second.seeder));
  });
}

inline void check_export_against_model(SwarmStore& store, ReferenceModel& model,
                                       const InfoHash& ih, std::int64_t now) {
  auto snap = store.export_swarm(ih, at(now));
  ReferenceModel::Swarm* s = model.touch(ih, now);
  BOOST_REQUIRE(snap.has_value() == (s != nullptr));
  if (s == nullptr) return;
  BOOST_TEST(snap->downloaded == s->downloaded);
  BOOST_REQUIRE(snap->peers.size() == s->peers.size());
  for (const SnapshotPeer& p : snap->peers) {
    auto it = s->peers.find(p.address);
    BOOST_REQUIRE(it != s->peers.end());
    BOOST_TEST(p.seeder == it->second.seeder);
    BOOST_TEST((p.remaining_ttl == std::chrono::seconds(model.ttl() - (now - it->second.seen))));
  }
}

inline void merge_into_model(SwarmStore& store, ReferenceModel& model, const SwarmSnapshot& snap,
                             std::int64_t now) {
  store.merge_swarm(snap, at(now));
  ReferenceModel::Swarm* s = model.touch(snap.info_hash, now);
  BOOST_REQUIRE(s != nullptr);  // callers merge only into live swarms with room
  s->downloaded = std::max(s->downloaded, snap.downloaded);
  for (const SnapshotPeer& p : snap.peers) {
    const std::int64_t rem =
        std::min<std::int64_t>(std::chrono::duration_cast<std::chrono::seconds>(p.remaining_ttl).count(),
                               model.ttl());
    if (rem <= 0) continue;
    const std::int64_t seen = now - (model.ttl() - rem);
    auto it = s->peers.find(p.address);
    if (it == s->peers.end()) {
      s->peers.emplace(p.address, ReferenceModel::Peer{p.seeder, p.seeder, seen});
    } else {
      // Copies within one second are simultaneous: completion wins; only a clearly fresher
      // copy may turn a seeder back into a leecher or make the peer younger.
      const bool clearly_fresher = seen > it->second.seen + 1;
      const bool about_same = !clearly_fresher && seen >= it->second.seen - 1;
      if (clearly_fresher || about_same) {
        if (clearly_fresher) it->second.seen = seen;
        it->second.seeder = clearly_fresher ? p.seeder : (p.seeder || it->second.seeder);
      }
    }
  }
}

inline void check_stats_after_full_sweep(SwarmStore& store, ReferenceModel& model,
                                         std::int64_t now) {
  // Finish any pass begun earlier, then one whole pass at `now`.
  for (int i = 0; i < 2; ++i) {
    bool done = false;
    for (int guard = 0; guard < 1000 && !done; ++guard) done = store.sweep(at(now), 1'000'000);
    BOOST_REQUIRE(done);
  }
  for (auto it = model.swarms().begin(); it != model.swarms().end();) {
    const InfoHash ih = it->first;
    ++it;
    model.touch(ih, now);
  }
  std::size_t peers = 0;
  std::size_t seeders = 0;
  for (const auto& [ih, s] : model.swarms()) {
    peers += s.peers.size();
    for (const auto& [a, p] : s.peers) seeders += p.seeder ? 1 : 0;
  }
  const StoreStats st = store.stats();
  BOOST_TEST(st.torrents == model.swarms().size());
  BOOST_TEST(st.peers == peers);
  BOOST_TEST(st.seeders == seeders);
  BOOST_TEST(st.leechers == peers - seeders);
  BOOST_TEST(count_info_hashes(store) == model.swarms().size());
}

inline void matches_reference_model_over_random_operations(const StoreFactory& make,
                                                           std::uint64_t seed) {
  SwarmLimits limits = limits_with_ttl(60);
  limits.torrents_max = 5;
  limits.peers_per_torrent_max = 7;
  limits.numwant_max = 6;
  auto store = make(limits);
  ReferenceModel model(limits);
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t n) { return static_cast<unsigned>(rng() % n); };
  std::vector<SocketAddress> pool;
  for (unsigned i = 0; i < 8; ++i) pool.push_back(v4(i, static_cast<std::uint16_t>(6881 + i % 2)));
  for (unsigned i = 0; i < 4; ++i) pool.push_back(v6(i));
  const AnnounceEvent events[] = {AnnounceEvent::none,      AnnounceEvent::none,
                                  AnnounceEvent::started,   AnnounceEvent::completed,
                                  AnnounceEvent::completed, AnnounceEvent::stopped};
  const std::int32_t numwants[] = {-1, 0, 1, 2, 3, 50};
  const PeerFamilies families[] = {PeerFamilies::v4, PeerFamilies::v6, PeerFamilies::both};
  std::int64_t now = 0;
  for (int step = 0; step < 4000; ++step) {
    BOOST_TEST_CONTEXT("seed " << seed << " step " << step << " now " << now) {
      const unsigned op = pick(100);
      const InfoHash ih = torrent(pick(8));
      if (op < 10) {
        now += pick(25);
      } else if (op < 70) {
        AnnounceRequest r = request(ih, pool[pick(pool.size())], pick(3) == 0 ? 0 : 100,
                                    events[pick(6)], numwants[pick(6)], families[pick(3)]);
        check_announce_against_model(*store, model, r, now);
      } else if (op < 80) {
        const ScrapeEntry e = store->scrape(ih, at(now));
        const ReferenceModel::Swarm* s = model.touch(ih, now);
        std::uint32_t seeders = 0;
        std::uint32_t total = 0;
        if (s != nullptr) {
          for (const auto& [a, p] : s->peers) seeders += p.seeder ? 1 : 0;
          total = static_cast<std::uint32_t>(s->peers.size());
        }
        BOOST_TEST(e.complete == seeders);
        BOOST_TEST(e.incomplete == total - seeders);
        BOOST_TEST(e.downloaded == (s != nullptr ? s->downloaded : 0U));
      } else if (op < 86) {
        store->sweep(at(now), pick(4));
      } else if (op < 91) {
        check_export_against_model(*store, model, ih, now);
      } else if (op < 96) {
        // Only into live swarms: whether a stale one still exists in the store is its business.
        ReferenceModel::Swarm* s = model.find_live(ih, now);
        if (s == nullptr) continue;
        SwarmSnapshot snap;
        snap.info_hash = ih;
        snap.downloaded = pick(4);
        std::set<SocketAddress> used;
        std::size_t fresh = 0;
        for (unsigned n = pick(4); n > 0; --n) {
          const SocketAddress a = pool[pick(pool.size())];
          if (!used.insert(a).second) continue;
          const std::int64_t rem = static_cast<std::int64_t>(pick(80)) - 5;
          auto known = s->peers.find(a);
          const bool is_live = known != s->peers.end() && model.live(known->second, now);
          fresh += (!is_live && rem > 0) ? 1 : 0;
          snap.peers.push_back({a, PeerId{}, pick(2) == 0, std::chrono::seconds(rem)});
        }
        std::size_t live_peers = 0;
        for (const auto& [addr, p] : s->peers) live_peers += model.live(p, now) ? 1 : 0;
        if (live_peers + fresh > limits.peers_per_torrent_max) continue;
        merge_into_model(*store, model, snap, now);
      } else if (op < 98) {
        const bool existed = store->erase_swarm(ih);
        const bool known = model.swarms().count(ih) != 0;  // live or stale
        const bool live = model.touch(ih, now) != nullptr;
        if (live) BOOST_TEST(existed);
        if (!known) BOOST_TEST(!existed);
        model.swarms().erase(ih);
      } else {
        check_stats_after_full_sweep(*store, model, now);
      }
    }
  }
  check_stats_after_full_sweep(*store, model, now);
}

}  // namespace ringtracker::tracker::conformance

/// Every case of the suite, by name.
#define RT_SWARM_STORE_CONFORMANCE_CASES(X)                  \
  X(never_returns_announcer_to_itself)                       \
  X(seeder_gets_no_seeders)                                  \
  X(returned_peers_are_distinct)                             \
  X(stopped_removes_peer)                                    \
  X(stopped_returns_no_peers_even_with_others)               \
  X(stopped_of_unknown_peer_or_torrent_creates_nothing)      \
  X(stopping_last_peer_forgets_swarm)                        \
  X(completed_counts_once_and_only_with_left_zero)           \
  X(leecher_becoming_seeder_moves_counts)                    \
  X(numwant_zero_returns_no_peers)                           \
  X(negative_numwant_means_default)                          \
  X(numwant_is_clamped_to_cap)                               \
  X(expired_peer_is_not_returned_and_not_counted)            \
  X(refreshed_peer_stays_live)                               \
  X(expired_swarm_forgets_downloaded)                        \
  X(expired_peer_that_returns_is_new)                        \
  X(sweep_removes_empty_swarms_within_budget)                \
  X(sweep_drops_expired_peers_of_live_swarms)                \
  X(sweep_finishes_while_map_changes)                        \
  X(sweep_of_empty_store_finishes_at_once)                   \
  X(torrents_cap_refuses_new_torrent)                        \
  X(peers_cap_refuses_new_peer_but_refreshes_existing)       \
  X(peers_cap_counts_only_live_peers)                        \
  X(families_filter)                                         \
  X(ipv6_peers_round_trip)                                   \
  X(v4_and_v6_with_same_port_are_distinct)                   \
  X(snapshot_export_merge_round_trip)                        \
  X(merge_keeps_later_expiry)                                \
  X(merge_of_simultaneous_copies_keeps_completion)           \
  X(copies_one_tick_younger_do_not_extend_life)              \
  X(merge_ignores_dead_peers_and_clamps_ttl)                 \
  X(merge_respects_caps)                                     \
  X(export_of_unknown_or_expired_swarm_is_empty)             \
  X(scrape_unknown_is_zero_and_creates_nothing)              \
  X(lookup_only_of_unknown_torrent_creates_nothing)          \
  X(lookup_only_returns_peers_without_adding_the_asker)      \
  X(lookup_only_never_returns_the_asker_and_honours_left)    \
  X(for_each_and_erase_swarm)                                \
  X(selection_reaches_every_peer)

#define RT_SWARM_STORE_CONFORMANCE_CASE_(name) \
  BOOST_AUTO_TEST_CASE(name) { ::ringtracker::tracker::conformance::name(rt_conformance_factory()); }

/// Instantiates the whole suite as Boost.Test suite `suite_name` for the store made by
/// `factory_expr` (anything convertible to conformance::StoreFactory). The model check runs
/// over a fixed table of seeds; a failure names its seed.
#define RT_SWARM_STORE_CONFORMANCE(suite_name, factory_expr)                                   \
  BOOST_AUTO_TEST_SUITE(suite_name)                                                            \
  static const ::ringtracker::tracker::conformance::StoreFactory& rt_conformance_factory() {  \
    static const ::ringtracker::tracker::conformance::StoreFactory f = (factory_expr);         \
    return f;                                                                                  \
  }                                                                                            \
  RT_SWARM_STORE_CONFORMANCE_CASES(RT_SWARM_STORE_CONFORMANCE_CASE_)                           \
  BOOST_AUTO_TEST_CASE(matches_reference_model_over_random_operations) {                       \
    for (std::uint64_t seed : {1ULL, 2ULL, 3ULL, 42ULL, 0x5eedULL, 987654321ULL}) {            \
      ::ringtracker::tracker::conformance::matches_reference_model_over_random_operations(     \
          rt_conformance_factory(), seed);                                                     \
    }                                                                                          \
  }                                                                                            \
  BOOST_AUTO_TEST_SUITE_END()
