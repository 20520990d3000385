// The contract between the front ends (HTTP, UDP) and whatever answers requests: the lone
// node's TrackerService or the ring's ClusterNode. Answers may come at once or later.
#pragma once

#include <functional>
#include <span>
#include <string>

#include "common/clock.hpp"
#include "common/expected.hpp"
#include "tracker/announce.hpp"

namespace ringtracker::tracker {

class RequestHandler {
 public:
  /// The error is a failure reason the client is shown. The answer is passed by reference:
  /// the handler may hand in a buffer it reuses for the next answer (a callee may still move
  /// from it).
  using AnnounceDone = std::function<void(Expected<AnnounceResponse, std::string>&&)>;
  using ScrapeDone = std::function<void(Expected<ScrapeResponse, std::string>)>;

  virtual ~RequestHandler() = default;

  /// Calls `on_done` exactly once: before returning when the answer is local, or later from
  /// the event loop (never later than the handler's deadline).
  virtual void announce(const AnnounceRequest& req, TimePoint now, AnnounceDone on_done) = 0;
  virtual void scrape(const ScrapeRequest& req, TimePoint now, ScrapeDone on_done) = 0;
  /// A hint: announces for these info-hashes follow (a front end's batch of requests), see
  /// SwarmStore::prefetch. The default ignores it.
  virtual void prefetch(std::span<const InfoHash> info_hashes) { (void)info_hashes; }
};

}  // namespace ringtracker::tracker
