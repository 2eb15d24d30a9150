// CarbonSeries: O(1) window integrals over a fixed-step intensity series.
#include "services/providers/carbon_series.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace greenlight::providers {

CarbonSeries::CarbonSeries(std::string zone, absl::Time start, absl::Duration step,
                           std::vector<double> values, double annual_average)
    : zone_(std::move(zone)),
      start_(start),
      step_(step),
      values_(std::move(values)),
      annual_average_(annual_average) {
  // A non-positive step cannot index anything: keep the zone, drop the values,
  // so every query falls back to the annual average instead of dividing by 0.
  if (step_ <= absl::ZeroDuration()) {
    step_ = absl::Hours(1);
    values_.clear();
  }
  const double step_hours = absl::ToDoubleHours(step_);
  prefix_.resize(values_.size() + 1);
  prefix_[0] = 0;
  for (size_t i = 0; i < values_.size(); ++i) prefix_[i + 1] = prefix_[i] + values_[i] * step_hours;
}

int64_t CarbonSeries::SlotIndex(absl::Time t) const {
  if (t == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  absl::Duration rem;
  int64_t q = absl::IDivDuration(t - start_, step_, &rem);
  if (rem < absl::ZeroDuration()) --q;  // floor, not truncation, before the start
  return q;
}

double CarbonSeries::At(absl::Time t) const {
  if (stale_) return annual_average_;
  int64_t i = SlotIndex(t);
  if (i < 0 || i >= static_cast<int64_t>(values_.size())) return annual_average_;
  return values_[static_cast<size_t>(i)];
}

double CarbonSeries::IntegralGkwhHours(absl::Time from, absl::Time to) const {
  if (!(from < to)) return 0;
  if (stale_ || values_.empty()) return annual_average_ * absl::ToDoubleHours(to - from);
  const absl::Time end_t = end();
  double outside_hours = 0;
  if (from < start_) outside_hours += absl::ToDoubleHours(std::min(to, start_) - from);
  if (to > end_t) outside_hours += absl::ToDoubleHours(to - std::max(from, end_t));
  double total = outside_hours * annual_average_;
  const absl::Time a = std::max(from, start_);
  const absl::Time b = std::min(to, end_t);
  if (a < b) {
    // Cumulative integral from start_ to t, for t inside [start_, end_].
    auto cumulative = [&](absl::Time t) {
      int64_t i = SlotIndex(t);
      if (i >= static_cast<int64_t>(values_.size())) return prefix_.back();
      size_t k = static_cast<size_t>(std::max<int64_t>(i, 0));
      absl::Time slot_start = start_ + step_ * static_cast<int64_t>(k);
      return prefix_[k] + values_[k] * absl::ToDoubleHours(t - slot_start);
    };
    total += cumulative(b) - cumulative(a);
  }
  return total;
}

double CarbonSeries::WindowMean(absl::Time from, absl::Time to) const {
  if (!(from < to)) return At(from);
  return IntegralGkwhHours(from, to) / absl::ToDoubleHours(to - from);
}

}  // namespace greenlight::providers
