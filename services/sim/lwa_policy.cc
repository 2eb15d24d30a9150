// Prefix sums and the slot selection of the Let's Wait Awhile policies.
#include "services/sim/lwa_policy.h"

#include <algorithm>
#include <cassert>

namespace greenlight::sim::lwa {

PrefixSums::PrefixSums(const std::vector<double>& values) : prefix_(values.size() + 1, 0.0) {
  for (size_t i = 0; i < values.size(); ++i) prefix_[i + 1] = prefix_[i] + values[i];
}

int64_t LowestMeanStart(const PrefixSums& forecast, SlotWindow window, int duration) {
  assert(window.end - window.earliest_start >= duration);
  int64_t best = window.earliest_start;
  double best_sum = forecast.Sum(best, best + duration);
  for (int64_t start = best + 1; start + duration <= window.end; ++start) {
    const double sum = forecast.Sum(start, start + duration);
    if (sum < best_sum) {
      best_sum = sum;
      best = start;
    }
  }
  return best;
}

std::vector<int64_t> LowestSlots(const std::vector<double>& forecast, SlotWindow window,
                                 int duration, bool take_ties) {
  assert(window.end - window.earliest_start >= duration && duration > 0);
  std::vector<int64_t> slots;
  slots.reserve(static_cast<size_t>(window.end - window.earliest_start));
  for (int64_t s = window.earliest_start; s < window.end; ++s) slots.push_back(s);
  // (value, time) order: the earlier slot wins a tie, so the choice is deterministic.
  auto lower = [&forecast](int64_t a, int64_t b) {
    return forecast[a] != forecast[b] ? forecast[a] < forecast[b] : a < b;
  };
  std::nth_element(slots.begin(), slots.begin() + (duration - 1), slots.end(), lower);
  const double worst_included = forecast[slots[duration - 1]];
  if (take_ties) {
    std::vector<int64_t> chosen;
    for (int64_t s = window.earliest_start; s < window.end; ++s) {
      if (forecast[s] <= worst_included) chosen.push_back(s);
    }
    return chosen;
  }
  slots.resize(duration);
  std::sort(slots.begin(), slots.end());
  return slots;
}

}  // namespace greenlight::sim::lwa
