// YieldGovernor: a node keeps yielding after sends while its yields are short (other ring nodes
// answering), pauses when a window holds too many long ones (a busy program of someone else's
// took the core), pauses longer while that goes on, and starts over once yields are short again.
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

/// Records `n` yields of `took` each, the clock advancing by it; returns the clock.
TimePoint yields(YieldGovernor& g, TimePoint now, unsigned n, Duration took) {
  for (unsigned i = 0; i < n; ++i) {
    now += took;
    g.record(took, now);
  }
  return now;
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
  BOOST_TEST(g.long_yields() == 100u * (YieldGovernor::kLongPerWindowMax - 1));
}

BOOST_AUTO_TEST_CASE(too_many_long_yields_in_a_window_pause_at_once_for_the_first_pause) {
  YieldGovernor g;
  TimePoint now = yields(g, TimePoint{}, 10, kShort);
  now = yields(g, now, YieldGovernor::kLongPerWindowMax - 1, kLong);
  BOOST_TEST(g.should_yield(now));
  now = yields(g, now, 1, kLong);  // the limit: paused without waiting for the window's end
  BOOST_TEST(g.pauses() == 1u);
  BOOST_TEST(!g.should_yield(now));
  BOOST_TEST(!g.should_yield(now + YieldGovernor::kPauseMin - Microseconds(1)));
  BOOST_TEST(g.should_yield(now + YieldGovernor::kPauseMin));
}

BOOST_AUTO_TEST_CASE(pauses_double_while_long_yields_go_on_and_start_over_after_a_clean_window) {
  YieldGovernor g;
  TimePoint now{};
  Duration expected = YieldGovernor::kPauseMin;
  for (int i = 0; i < 10; ++i) {
    now = yields(g, now, YieldGovernor::kLongPerWindowMax, kLong);
    BOOST_TEST(!g.should_yield(now));
    BOOST_TEST(!g.should_yield(now + expected - Microseconds(1)));
    BOOST_TEST(g.should_yield(now + expected));
    now += expected;
    expected = std::min<Duration>(expected * 2, YieldGovernor::kPauseMax);
  }
  BOOST_TEST(g.pauses() == 10u);
  BOOST_TEST(g.next_pause() == YieldGovernor::kPauseMax);  // capped
  // The busy program is gone: one whole window of short yields, and the next pause (if it
  // comes back) is the first one again.
  now = yields(g, now, YieldGovernor::kWindow, kShort);
  BOOST_TEST(g.should_yield(now));
  now = yields(g, now, YieldGovernor::kLongPerWindowMax, kLong);
  BOOST_TEST(g.pauses() == 11u);
  BOOST_TEST(!g.should_yield(now + YieldGovernor::kPauseMin - Microseconds(1)));
  BOOST_TEST(g.should_yield(now + YieldGovernor::kPauseMin));
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
