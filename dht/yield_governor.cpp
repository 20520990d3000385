#include "dht/yield_governor.hpp"

#include <algorithm>

namespace ringtracker::dht {

void YieldGovernor::record(Duration took, TimePoint now) {
  ++in_window_;
  if (took >= kLongYield) {
    ++long_in_window_;
    ++long_yields_;
  }
  if (long_in_window_ >= kLongPerWindowMax) {
    if (!last_window_paused_) next_pause_ = kPauseMin;
    paused_until_ = now + next_pause_;
    next_pause_ = std::min<Duration>(next_pause_ * 2, kPauseMax);
    ++pauses_;
    last_window_paused_ = true;
    in_window_ = long_in_window_ = 0;
    return;
  }
  if (in_window_ == kWindow) {
    last_window_paused_ = false;
    in_window_ = long_in_window_ = 0;
  }
}

}  // namespace ringtracker::dht
