// When a node that yields the CPU after sending ring datagrams (RingTransport::
// set_yield_after_send) should stop doing so. The yield is meant for nodes of one ring that share
// a core: the node yields, the nodes its datagrams woke answer, and it runs again, a few hundred
// microseconds later. A busy program of someone else's on the same core is handed the core as
// well, for a whole scheduler slice (milliseconds) each time. This tells the two apart by how
// long yields take: when too many in a window are long, yielding pauses, for twice as long each
// time it has to pause again, and is then tried again. Pure code: the caller reads the clock.
#pragma once

#include <cstdint>

#include "common/clock.hpp"

namespace ringtracker::dht {

class YieldGovernor {
 public:
  /// A yield that kept the node off the CPU this long handed it to someone for a slice. Yields
  /// between ring nodes sharing a core take ~0.25 ms (median; 0.4 % over 2 ms); with a
  /// CPU-bound program on the same core, 44 % are over 2 ms.
  static constexpr Duration kLongYield = Milliseconds(2);
  /// Yields judged together.
  static constexpr unsigned kWindow = 64;
  /// Long yields in one window that pause yielding (at once, without waiting for the window to
  /// end). Measured windows of 64: a ring alone on its core, 0.3 - 0.6 % long (at most a few in
  /// a window, more in the machine's slow spells); next to a CPU-bound program, 26 - 31.
  static constexpr unsigned kLongPerWindowMax = 16;
  /// The first pause; each window that pauses again right after one doubles it, up to the max.
  /// A window without a pause starts over from the first.
  static constexpr Duration kPauseMin = Seconds(1);
  static constexpr Duration kPauseMax = Seconds(64);

  /// Whether to yield now (false during a pause).
  bool should_yield(TimePoint now) const { return now >= paused_until_; }
  /// Records a yield that returned at `now` after `took`.
  void record(Duration took, TimePoint now);

  std::uint64_t long_yields() const { return long_yields_; }
  std::uint64_t pauses() const { return pauses_; }
  /// Length of the next pause.
  Duration next_pause() const { return next_pause_; }

 private:
  unsigned in_window_ = 0;
  unsigned long_in_window_ = 0;
  /// The window that ended last paused yielding.
  bool last_window_paused_ = false;
  Duration next_pause_ = kPauseMin;
  TimePoint paused_until_ = TimePoint::min();
  std::uint64_t long_yields_ = 0;
  std::uint64_t pauses_ = 0;
};

}  // namespace ringtracker::dht
