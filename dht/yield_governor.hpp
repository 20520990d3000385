// When a node that yields the CPU after sending ring datagrams (RingTransport::
// set_yield_after_send) should stop doing so. The yield is meant for nodes of one ring that share
// a core: the node yields, the nodes its datagrams woke answer, and it runs again, a few hundred
// microseconds later. A busy program of someone else's on the same core is handed the core as
// well, for a whole scheduler slice (milliseconds) each time. This tells the two apart by how
// long yields take: when too many in a window are long, yielding pauses. While paused, the node
// still yields now and then (a probe); once a window of probes is short again the other program
// is gone and yielding resumes, within a fraction of a second. Pure code: the caller reads the
// clock.
#pragma once

#include <cstdint>

#include "common/clock.hpp"

namespace ringtracker::dht {

class YieldGovernor {
 public:
  /// A yield that kept the node off the CPU this long handed it to someone for a slice. Yields
  /// between ring nodes sharing a core take ~0.25 ms (median; 0.4 % over 2 ms); with a
  /// CPU-bound program on the same core, about half are over 2 ms.
  static constexpr Duration kLongYield = Milliseconds(2);
  /// Yields judged together.
  static constexpr unsigned kWindow = 64;
  /// Long yields in one window that pause yielding (at once, without waiting for the window to
  /// end). Measured windows of 64: a ring alone on its core, 0.3 - 0.6 % long (at most a few in
  /// a window, more in the machine's slow spells); next to a CPU-bound program, 16 of the first
  /// 29 - 34.
  static constexpr unsigned kLongPerWindowMax = 16;
  /// While paused, a pass yields anyway once this long after the last probe. Next to a busy
  /// program each probe may cost a slice, so probes are few: at most 20 a second.
  static constexpr Duration kProbeInterval = Milliseconds(50);
  /// Probes judged together: a pause lasts at least kProbeWindow * kProbeInterval (0.4 s).
  static constexpr unsigned kProbeWindow = 8;
  /// A window of probes with at most this many long ones ends the pause. Between ring nodes
  /// (0.5 % long) the first window ends it; next to a CPU-bound loop (about half long) 4 % of
  /// windows would, and the next kLongPerWindowMax long yields pause again.
  static constexpr unsigned kLongProbesToResume = 1;

  /// Whether to yield now: always unless paused; during a pause once a kProbeInterval (a probe;
  /// the caller records how long it took like any yield).
  bool should_yield(TimePoint now);
  /// Records a yield that returned at `now` after `took`.
  void record(Duration took, TimePoint now);

  bool paused() const { return paused_; }
  std::uint64_t long_yields() const { return long_yields_; }
  std::uint64_t pauses() const { return pauses_; }
  std::uint64_t probes() const { return probes_; }

 private:
  bool paused_ = false;
  unsigned in_window_ = 0;  // yields of the current window, or probes while paused
  unsigned long_in_window_ = 0;
  TimePoint next_probe_ = TimePoint::min();
  std::uint64_t long_yields_ = 0;
  std::uint64_t pauses_ = 0;
  std::uint64_t probes_ = 0;
};

}  // namespace ringtracker::dht
