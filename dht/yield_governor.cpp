#include "dht/yield_governor.hpp"

namespace ringtracker::dht {

bool YieldGovernor::should_yield(TimePoint now) {
  if (!paused_) return true;
  if (now < next_probe_) return false;
  next_probe_ = now + kProbeInterval;
  return true;
}

void YieldGovernor::record(Duration took, TimePoint now) {
  ++in_window_;
  if (took >= kLongYield) {
    ++long_in_window_;
    ++long_yields_;
  }
  if (paused_) {
    ++probes_;
    if (in_window_ < kProbeWindow) return;
    // A window of probes: short ones mean the other program is gone.
    if (long_in_window_ <= kLongProbesToResume) paused_ = false;
    in_window_ = long_in_window_ = 0;
    return;
  }
  if (long_in_window_ >= kLongPerWindowMax) {
    paused_ = true;
    ++pauses_;
    next_probe_ = now + kProbeInterval;
    in_window_ = long_in_window_ = 0;
    return;
  }
  if (in_window_ == kWindow) in_window_ = long_in_window_ = 0;
}

}  // namespace ringtracker::dht
