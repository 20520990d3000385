// YieldGovernor: a node keeps yielding after sends while its yields are short (other ring nodes
// answering), pauses when a window holds too many long ones (a busy program of someone else's
// took the core), keeps pausing while its rare probes stay long, and yields again as soon as a
// window of probes is short (the other program is gone).
#define BOOST_TEST_MODULE yield_governor
#include "dht/yield_governor.hpp"

#include <boost/test/unit_test.hpp>

using ringtracker::Duration;
using ringtracker::Microseconds;
using ringtracker::Milliseconds;
using ringtracker::Seconds;
using ringtracker::TimePoint;
using ringtracker::dht::YieldGovernor;

namespace {

constexpr Duration kShort = Microseconds(250);
constexpr Duration kLong = YieldGovernor::kLongYield;

/// Probe times: a busy program takes the core for a slice each time; once it is gone, the
/// other ring nodes answer at once.
Duration busy(unsigned) { return Milliseconds(3); }
Duration gone(unsigned) { return kShort; }

/// Records `n` yields of `took` each, the clock advancing by it; returns the clock.
TimePoint yields(YieldGovernor& g, TimePoint now, unsigned n, Duration took) {
  for (unsigned i = 0; i < n; ++i) {
    now += took;
    g.record(took, now);
  }
  return now;
}

/// A paused node's passes, one every 100 us for `span`: each pass asks whether to yield and,
/// when told to (a probe), yields; the probe takes `took(i)` for the i-th probe. Returns the
/// clock; `yielded` counts the probes.
template <class Took>
TimePoint passes(YieldGovernor& g, TimePoint now, Duration span, Took took, unsigned& yielded) {
  const TimePoint end = now + span;
  while (now < end) {
    now += Microseconds(100);
    if (!g.should_yield(now)) continue;
    const Duration t = took(yielded++);
    now += t;
    g.record(t, now);
  }
  return now;
}

/// Pauses `g` (a window's worth of long yields at once); returns the clock.
TimePoint pause(YieldGovernor& g, TimePoint now) {
  return yields(g, now, YieldGovernor::kLongPerWindowMax, kLong);
}

}  // namespace

BOOST_AUTO_TEST_CASE(short_yields_never_pause_and_a_few_long_ones_are_tolerated) {
  YieldGovernor g;
  TimePoint now{};
  // Window after window with one long yield less than the limit: never a pause.
  for (int w = 0; w < 100; ++w) {
    now = yields(g, now, YieldGovernor::kLongPerWindowMax - 1, kLong);
    now = yields(g, now, YieldGovernor::kWindow - (YieldGovernor::kLongPerWindowMax - 1), kShort);
    BOOST_TEST(g.should_yield(now));
  }
  BOOST_TEST(g.pauses() == 0u);
  BOOST_TEST(!g.paused());
  BOOST_TEST(g.long_yields() == 100u * (YieldGovernor::kLongPerWindowMax - 1));
}

BOOST_AUTO_TEST_CASE(too_many_long_yields_in_a_window_pause_at_once_and_passes_stop_yielding) {
  YieldGovernor g;
  TimePoint now = yields(g, TimePoint{}, 10, kShort);
  now = yields(g, now, YieldGovernor::kLongPerWindowMax - 1, kLong);
  BOOST_TEST(g.should_yield(now));
  now = yields(g, now, 1, kLong);  // the limit: paused without waiting for the window's end
  BOOST_TEST(g.pauses() == 1u);
  BOOST_TEST(g.paused());
  // No pass yields until a probe is due, then exactly one does.
  BOOST_TEST(!g.should_yield(now));
  BOOST_TEST(!g.should_yield(now + YieldGovernor::kProbeInterval - Microseconds(1)));
  BOOST_TEST(g.should_yield(now + YieldGovernor::kProbeInterval));
  BOOST_TEST(!g.should_yield(now + YieldGovernor::kProbeInterval + Microseconds(1)));
}

BOOST_AUTO_TEST_CASE(a_pause_goes_on_while_probes_are_long_and_probes_stay_rare) {
  YieldGovernor g;
  TimePoint now = pause(g, TimePoint{});
  unsigned probes = 0;
  // The other program stays for 10 s and every probe hands it the core for a slice.
  now = passes(g, now, Seconds(10), busy, probes);
  BOOST_TEST(g.paused());
  BOOST_TEST(g.pauses() == 1u);
  BOOST_TEST(g.probes() == probes);
  // At most one probe a kProbeInterval, and no fewer than one every kProbeInterval plus a pass.
  BOOST_TEST(probes <= Seconds(10) / YieldGovernor::kProbeInterval + 1);
  BOOST_TEST(probes >= Seconds(10) / (YieldGovernor::kProbeInterval + Microseconds(100)));
}

BOOST_AUTO_TEST_CASE(a_pause_ends_after_one_window_of_short_probes) {
  YieldGovernor g;
  TimePoint now = pause(g, TimePoint{});
  unsigned probes = 0;
  // Long probes for a while (the other program is there), then it is gone.
  now = passes(g, now, Seconds(2), busy, probes);
  BOOST_TEST(g.paused());
  const std::uint64_t before = g.probes();
  // Short probes from now on: the pause ends with the next window of probes that holds no more
  // than the allowed long ones (this one or the next), and from then on every pass yields.
  now = passes(g, now, Seconds(2), gone, probes);
  BOOST_TEST(!g.paused());
  // The window the program left in, at most, and one whole window of short probes.
  BOOST_TEST(g.probes() - before <= 2u * YieldGovernor::kProbeWindow);
  for (int i = 0; i < 100; ++i) BOOST_TEST(g.should_yield(now + Microseconds(i)));
  BOOST_TEST(g.pauses() == 1u);
  // And a busy program that comes back pauses it again.
  now = pause(g, now);
  BOOST_TEST(g.paused());
  BOOST_TEST(g.pauses() == 2u);
}

BOOST_AUTO_TEST_CASE(a_window_of_probes_resumes_with_at_most_the_allowed_long_ones) {
  // A paused governor after a window and a half of probe intervals whose first `long_ones`
  // probes are long.
  auto after_probes = [](unsigned long_ones) {
    YieldGovernor g;
    unsigned probes = 0;
    passes(
        g, pause(g, TimePoint{}),
        YieldGovernor::kProbeInterval * YieldGovernor::kProbeWindow * 3 / 2,
        [long_ones](unsigned i) { return i < long_ones ? kLong : kShort; }, probes);
    return g;
  };
  // One long probe more than allowed in a window: still paused.
  const YieldGovernor one_more = after_probes(YieldGovernor::kLongProbesToResume + 1);
  BOOST_TEST(one_more.probes() >= YieldGovernor::kProbeWindow);
  BOOST_TEST(one_more.paused());
  // Exactly the allowed number: the window resumes, and the yields after it are no probes.
  const YieldGovernor allowed = after_probes(YieldGovernor::kLongProbesToResume);
  BOOST_TEST(!allowed.paused());
  BOOST_TEST(allowed.probes() == YieldGovernor::kProbeWindow);
}

BOOST_AUTO_TEST_CASE(long_yields_spread_over_windows_do_not_add_up) {
  YieldGovernor g;
  TimePoint now{};
  // Half the limit at the end of one window and half at the start of the next: two windows,
  // neither over the limit.
  now = yields(g, now, YieldGovernor::kWindow - YieldGovernor::kLongPerWindowMax / 2, kShort);
  now = yields(g, now, YieldGovernor::kLongPerWindowMax / 2, kLong);
  now = yields(g, now, YieldGovernor::kLongPerWindowMax / 2, kLong);
  BOOST_TEST(g.should_yield(now));
  BOOST_TEST(g.pauses() == 0u);
}
