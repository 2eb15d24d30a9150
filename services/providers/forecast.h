// Carbon-intensity forecasters for zones whose source gives no forecast, and
// the rolling-origin MAPE used to choose one (figures in docs/PROVIDERS.md).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "services/providers/carbon_series.h"

namespace greenlight::providers {

// Predicts the next `horizon` hourly values from hourly history (oldest
// first). History shorter than the method needs falls back to repeating the
// last day (or the last value).
class Forecaster {
 public:
  virtual ~Forecaster() = default;
  virtual std::string name() const = 0;
  virtual std::vector<double> Predict(absl::Span<const double> history, int horizon) const = 0;
};

// f(t) = x(t - 24h): tomorrow repeats today.
class SameHourYesterday final : public Forecaster {
 public:
  std::string name() const override { return "same-hour-yesterday"; }
  std::vector<double> Predict(absl::Span<const double> history, int horizon) const override;
};

// f(t) = mean of x(t - k x 7 days), k = 1..weeks: the hour-of-week profile.
class WeeklyProfile final : public Forecaster {
 public:
  explicit WeeklyProfile(int weeks = 4) : weeks_(weeks) {}
  std::string name() const override { return absl::StrCat("weekly-profile-", weeks_, "w"); }
  std::vector<double> Predict(absl::Span<const double> history, int horizon) const override;

 private:
  int weeks_;
};

// f(t) = mean of x(t - k x 24h), k = 1..days: the hour-of-day profile of the
// last `days` days.
class DailyProfile final : public Forecaster {
 public:
  explicit DailyProfile(int days = 3) : days_(days) {}
  std::string name() const override { return absl::StrCat("daily-profile-", days_, "d"); }
  std::vector<double> Predict(absl::Span<const double> history, int horizon) const override;

 private:
  int days_;
};

// f(t) = (same hour yesterday + weekly profile) / 2: yesterday carries the
// current weather, the weekly profile the weekday/weekend pattern and damps
// yesterday's noise. The default forecaster (lowest mean MAPE at 24 h and
// 48 h over the shipped series; figures in docs/PROVIDERS.md).
class YesterdayWeeklyBlend final : public Forecaster {
 public:
  explicit YesterdayWeeklyBlend(int weeks = 4) : weekly_(weeks) {}
  std::string name() const override { return "blend-yesterday-weekly"; }
  std::vector<double> Predict(absl::Span<const double> history, int horizon) const override;

 private:
  WeeklyProfile weekly_;
};

// The forecaster used when a source gives no forecast.
std::unique_ptr<Forecaster> DefaultForecaster();

// Mean absolute percentage error (in %) of `f` on an hourly series: origins
// every `origin_step_hours` after `warmup_hours`, each predicting `horizon`
// hours from all values before the origin. Hours with an actual value below
// 1 g/kWh are left out (the percentage is undefined there).
double RollingMape(absl::Span<const double> values, const Forecaster& f, int horizon,
                   int warmup_hours = 28 * 24, int origin_step_hours = 24);

// `series` (hourly) continued with `f`'s prediction up to `until`; unchanged
// when it already reaches `until` or has no values. The source string says
// so, e.g. "... + forecast daily-profile-3d from 2026-03-10T12:00:00Z".
CarbonSeries ExtendWithForecast(const CarbonSeries& series, absl::Time until, const Forecaster& f);

}  // namespace greenlight::providers
