// The two carbon-aware policies of Let's Wait Awhile on a slot series:
// non-interruptible (the contiguous window with the lowest forecast) and
// interruptible (the lowest-forecast slots before the deadline).
#pragma once

#include <cstdint>
#include <vector>

namespace greenlight::sim::lwa {

// Sums of any slot range [from, to) in O(1).
class PrefixSums {
 public:
  explicit PrefixSums(const std::vector<double>& values);
  double Sum(int64_t from, int64_t to) const { return prefix_[to] - prefix_[from]; }
  int64_t size() const { return static_cast<int64_t>(prefix_.size()) - 1; }

 private:
  std::vector<double> prefix_;
};

// The slots a job may use: [earliest_start, end).
struct SlotWindow {
  int64_t earliest_start = 0;
  int64_t end = 0;
};

// The start in [window.earliest_start, window.end - duration] whose
// `duration` slots have the lowest forecast sum (hence mean); the earliest
// such start on ties. O(1) per candidate. Requires the job to fit.
int64_t LowestMeanStart(const PrefixSums& forecast, SlotWindow window, int duration);

// The `duration` slots of the window with the lowest forecast, in time order;
// on ties the earlier slot wins. With `take_ties`, every slot whose forecast
// is <= the duration-th lowest is returned (the authors' selection), which can
// be more than `duration` slots. Requires the job to fit.
std::vector<int64_t> LowestSlots(const std::vector<double>& forecast, SlotWindow window,
                                 int duration, bool take_ties);

}  // namespace greenlight::sim::lwa
