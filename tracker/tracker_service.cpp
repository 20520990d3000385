#include "tracker/tracker_service.hpp"

namespace ringtracker::tracker {

TrackerService::TrackerService(const Config& cfg, SwarmStore& store, Counters& counters,
                               std::uint64_t seed)
    : interval_(cfg.interval),
      interval_jitter_(cfg.interval_jitter),
      min_interval_(cfg.min_interval),
      sweep_budget_(cfg.sweep_swarms_per_tick),
      store_(store),
      counters_(counters),
      rng_(seed) {}

std::uint32_t TrackerService::pick_interval_s() {
  // Jitter spreads re-announces of peers that started together (a restart, a popular release).
  auto base = static_cast<std::uint32_t>(interval_.count());
  auto jitter = static_cast<std::uint32_t>(interval_jitter_.count());
  if (jitter == 0) return base;
  return base + static_cast<std::uint32_t>(rng_() % (jitter + 1));
}

Expected<AnnounceResponse, std::string> TrackerService::apply_announce(const AnnounceRequest& req,
                                                                       TimePoint now) {
  return filled<AnnounceResponse>(
      [&](AnnounceResponse& out) { return apply_announce_into(req, now, out); });
}

Expected<void, std::string> TrackerService::apply_announce_into(const AnnounceRequest& req,
                                                                TimePoint now,
                                                                AnnounceResponse& out) {
  if (!access_.permits(req.info_hash)) {
    counters_.inc(Counter::announces_refused_access);
    return Unexpected(std::string("info_hash is not allowed on this tracker"));
  }
  auto stored = store_.announce_into(req, now, out.result);
  if (!stored) {
    counters_.inc(Counter::announces_refused_full);
    return Unexpected(std::string("tracker is full: ") + std::string(to_string(stored.error())));
  }
  if (req.event == AnnounceEvent::stopped) counters_.inc(Counter::announces_stopped);
  out.interval_s = pick_interval_s();
  out.min_interval_s = static_cast<std::uint32_t>(min_interval_.count());
  return {};
}

ScrapeResponse TrackerService::apply_scrape(const ScrapeRequest& req, TimePoint now) {
  ScrapeResponse resp;
  resp.files.reserve(req.info_hashes.size());
  for (const auto& h : req.info_hashes) {
    if (!access_.permits(h)) {
      resp.files.push_back(ScrapeEntry{h, 0, 0, 0});
      continue;
    }
    resp.files.push_back(store_.scrape(h, now));
  }
  return resp;
}

void TrackerService::tick(TimePoint now) {
  if (store_.sweep(now, sweep_budget_)) counters_.inc(Counter::sweep_passes);
}

}  // namespace ringtracker::tracker
