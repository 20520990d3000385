// The one clock type of the project. Pure code takes `TimePoint now` as an argument and never
// reads a clock itself; only the event-loop edges call Clock::now().
#pragma once

#include <chrono>

namespace ringtracker {
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = Clock::duration;
using Seconds = std::chrono::seconds;
using Milliseconds = std::chrono::milliseconds;
using Microseconds = std::chrono::microseconds;
}  // namespace ringtracker
