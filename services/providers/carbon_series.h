// Carbon intensity of one grid zone over time (gCO2e/kWh) at a fixed step,
// with prefix sums so any window's energy-weighted mean is O(1).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace greenlight::providers {

class CarbonSeries {
 public:
  // `values[i]` is the intensity of [start + i*step, start + (i+1)*step).
  // Outside the series the zone's `annual_average` applies.
  CarbonSeries(std::string zone, absl::Time start, absl::Duration step, std::vector<double> values,
               double annual_average);

  const std::string& zone() const { return zone_; }
  absl::Time start() const { return start_; }
  absl::Time end() const { return start_ + step_ * static_cast<int64_t>(values_.size()); }
  absl::Duration step() const { return step_; }
  const std::vector<double>& values() const { return values_; }
  double annual_average() const { return annual_average_; }
  // Where the data came from, for GridZone.source.
  const std::string& source() const { return source_; }
  void set_source(std::string s) { source_ = std::move(s); }
  // True when live data is stale and the annual average should be trusted
  // instead: At, IntegralGkwhHours and WindowMean then return the annual
  // average, so callers need no special case (quotes report stale()).
  bool stale() const { return stale_; }
  void set_stale(bool s) { stale_ = s; }
  // Nothing is published of this zone's grid (no series, no annual figure of
  // its region): annual_average() then holds the pessimistic assumption, and
  // each team's unknown-grid policy decides what placement uses (snapshot.h).
  bool unknown_grid() const { return unknown_grid_; }
  // Which rule gave the pessimistic figure ("highest known in Japan").
  const std::string& unknown_basis() const { return unknown_basis_; }
  void set_unknown_grid(std::string basis) {
    unknown_grid_ = true;
    unknown_basis_ = std::move(basis);
  }

  // Intensity at an instant (annual average outside the series).
  double At(absl::Time t) const;
  // Integral of intensity over [from, to) in (gCO2e/kWh) x hours; divide by the
  // window's hours for the mean. O(1) via prefix sums.
  double IntegralGkwhHours(absl::Time from, absl::Time to) const;
  double WindowMean(absl::Time from, absl::Time to) const;
  // Index of the slot containing t (may be < 0 or >= size()).
  int64_t SlotIndex(absl::Time t) const;

 private:
  std::string zone_;
  absl::Time start_;
  absl::Duration step_;
  std::vector<double> values_;
  std::vector<double> prefix_;  // prefix_[i] = sum of values_[0..i) x step hours
  double annual_average_;
  std::string source_;
  bool stale_ = false;
  bool unknown_grid_ = false;
  std::string unknown_basis_;
};

using CarbonSeriesPtr = std::shared_ptr<const CarbonSeries>;

}  // namespace greenlight::providers
