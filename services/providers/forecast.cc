// Forecasters and the rolling-origin MAPE that chose the default.
#include "services/providers/forecast.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace greenlight::providers {
namespace {

// Fallback for a history shorter than one lag: repeat the last day, or the
// last value when there is less than a day.
double Fallback(absl::Span<const double> h, int64_t t) {
  const int64_t n = static_cast<int64_t>(h.size());
  if (n >= 24) return h[static_cast<size_t>(n - 24 + ((t - n) % 24))];
  return h.back();
}

// Mean of h[t - k*lag] for k = 1..count, where t may lie beyond h (then the
// predicted values `out` are used for lags landing after the history).
double LagMean(absl::Span<const double> h, const std::vector<double>& out, int64_t t, int64_t lag,
               int count) {
  const int64_t n = static_cast<int64_t>(h.size());
  double sum = 0;
  int used = 0;
  for (int k = 1; k <= count; ++k) {
    int64_t s = t - k * lag;
    if (s < 0) break;
    sum += s < n ? h[static_cast<size_t>(s)] : out[static_cast<size_t>(s - n)];
    ++used;
  }
  return used > 0 ? sum / used : Fallback(h, t);
}

}  // namespace

std::vector<double> SameHourYesterday::Predict(absl::Span<const double> history,
                                               int horizon) const {
  std::vector<double> out;
  if (history.empty()) return out;
  const int64_t n = static_cast<int64_t>(history.size());
  for (int64_t t = n; t < n + horizon; ++t) out.push_back(LagMean(history, out, t, 24, 1));
  return out;
}

std::vector<double> WeeklyProfile::Predict(absl::Span<const double> history, int horizon) const {
  std::vector<double> out;
  if (history.empty()) return out;
  const int64_t n = static_cast<int64_t>(history.size());
  for (int64_t t = n; t < n + horizon; ++t) {
    out.push_back(n >= 168 ? LagMean(history, out, t, 168, weeks_) : Fallback(history, t));
  }
  return out;
}

std::vector<double> DailyProfile::Predict(absl::Span<const double> history, int horizon) const {
  std::vector<double> out;
  if (history.empty()) return out;
  const int64_t n = static_cast<int64_t>(history.size());
  for (int64_t t = n; t < n + horizon; ++t) out.push_back(LagMean(history, out, t, 24, days_));
  return out;
}

std::vector<double> YesterdayWeeklyBlend::Predict(absl::Span<const double> history,
                                                  int horizon) const {
  std::vector<double> out;
  if (history.empty()) return out;
  if (history.size() < 168) return SameHourYesterday().Predict(history, horizon);
  // Each part runs on its own predictions beyond the history, so the blend
  // is exactly the mean of the two forecasters.
  std::vector<double> y = SameHourYesterday().Predict(history, horizon);
  std::vector<double> w = weekly_.Predict(history, horizon);
  for (int i = 0; i < horizon; ++i) out.push_back((y[i] + w[i]) / 2);
  return out;
}

std::unique_ptr<Forecaster> DefaultForecaster() {
  return std::make_unique<YesterdayWeeklyBlend>(4);
}

double RollingMape(absl::Span<const double> values, const Forecaster& f, int horizon,
                   int warmup_hours, int origin_step_hours) {
  double sum = 0;
  int64_t count = 0;
  const int64_t n = static_cast<int64_t>(values.size());
  for (int64_t origin = warmup_hours; origin + horizon <= n; origin += origin_step_hours) {
    std::vector<double> pred = f.Predict(values.subspan(0, static_cast<size_t>(origin)), horizon);
    for (int h = 0; h < horizon; ++h) {
      double actual = values[static_cast<size_t>(origin + h)];
      if (actual < 1) continue;
      sum += std::abs(pred[static_cast<size_t>(h)] - actual) / actual;
      ++count;
    }
  }
  return count > 0 ? 100.0 * sum / static_cast<double>(count) : 0;
}

CarbonSeries ExtendWithForecast(const CarbonSeries& series, absl::Time until, const Forecaster& f) {
  if (series.values().empty() || series.end() >= until || series.step() != absl::Hours(1))
    return series;
  const int64_t missing =
      static_cast<int64_t>(std::ceil(absl::ToDoubleHours(until - series.end())));
  std::vector<double> values = series.values();
  std::vector<double> pred = f.Predict(values, static_cast<int>(missing));
  values.insert(values.end(), pred.begin(), pred.end());
  CarbonSeries out(series.zone(), series.start(), series.step(), std::move(values),
                   series.annual_average());
  out.set_source(
      absl::StrCat(series.source(), " + forecast ", f.name(), " from ",
                   absl::FormatTime(absl::RFC3339_sec, series.end(), absl::UTCTimeZone())));
  out.set_stale(series.stale());
  return out;
}

}  // namespace greenlight::providers
