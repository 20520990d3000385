// The protocol-neutral tracker logic of one node: access checks, interval choice, the swarm
// store, counters. Servers call it with decoded requests; it never sees bytes or sockets.
// A ring-routing layer (later) decides whether a request is answered here or by its owner.
#pragma once

#include <cstdint>
#include <random>
#include <string>

#include "common/clock.hpp"
#include "common/expected.hpp"
#include "tracker/access_list.hpp"
#include "tracker/announce.hpp"
#include "tracker/config.hpp"
#include "tracker/counters.hpp"
#include "tracker/request_handler.hpp"
#include "tracker/swarm_store.hpp"

namespace ringtracker::tracker {

class TrackerService : public RequestHandler {
 public:
  /// `store` and `counters` must outlive the service. `seed` drives interval jitter.
  TrackerService(const Config& cfg, SwarmStore& store, Counters& counters, std::uint64_t seed);

  /// Applies an announce at `now` to the local store. The error is a failure reason.
  Expected<AnnounceResponse, std::string> apply_announce(const AnnounceRequest& req, TimePoint now);
  /// The same into `out`, reusing its buffers (SwarmStore::announce_into).
  Expected<void, std::string> apply_announce_into(const AnnounceRequest& req, TimePoint now,
                                                  AnnounceResponse& out);

  /// Counts for each hash of `req`, in request order (unknown or denied hashes count zero).
  ScrapeResponse apply_scrape(const ScrapeRequest& req, TimePoint now);

  /// RequestHandler: a lone node answers everything at once from its store.
  void announce(const AnnounceRequest& req, TimePoint now, AnnounceDone on_done) override {
    on_done(apply_announce(req, now));
  }
  void scrape(const ScrapeRequest& req, TimePoint now, ScrapeDone on_done) override {
    on_done(apply_scrape(req, now));
  }

  /// Drops expired peers, bounded work per call (call it from a periodic timer).
  void tick(TimePoint now);

  void set_access_list(AccessList list) { access_ = std::move(list); }
  const AccessList& access_list() const { return access_; }
  void prefetch(std::span<const InfoHash> info_hashes) override { store_.prefetch(info_hashes); }
  SwarmStore& store() { return store_; }

 private:
  std::uint32_t pick_interval_s();

  std::chrono::seconds interval_;
  std::chrono::seconds interval_jitter_;
  std::chrono::seconds min_interval_;
  std::size_t sweep_budget_;
  SwarmStore& store_;
  Counters& counters_;
  AccessList access_;
  std::mt19937_64 rng_;
};

}  // namespace ringtracker::tracker
