// Carbon series CSV formats, the hourly resampling rule and week-aligned shifting.
#include "services/providers/carbon_csv.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/csv.h"
#include "common/status_macros.h"

namespace greenlight::providers {
namespace {

// Longest series accepted: 20 years of hours. A typo'd year would otherwise
// allocate gigabytes of empty slots.
constexpr int64_t kMaxSlots = 20 * 366 * 24;

int64_t FloorDiv(absl::Duration d, absl::Duration step) {
  absl::Duration rem;
  int64_t q = absl::IDivDuration(d, step, &rem);
  if (rem < absl::ZeroDuration()) --q;
  return q;
}

}  // namespace

bool ParseSeriesTime(absl::string_view text, absl::Time* out) {
  std::string s(absl::StripAsciiWhitespace(text));
  std::string err;
  for (const char* fmt : {"%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S",
                          "%Y-%m-%dT%H:%M", absl::RFC3339_full, "%Y-%m-%d %H:%M:%E*S%Ez",
                          "%Y-%m-%dT%H:%M:%E*SZ", "%Y-%m-%dT%H:%MZ", "%Y-%m-%dT%H:%M%Ez"}) {
    if (absl::ParseTime(fmt, s, absl::UTCTimeZone(), out, &err)) return true;
  }
  return false;
}

std::vector<double> Resample(std::vector<SeriesPoint> points, const ResampleOptions& options,
                             absl::Time* start, ResampleStats* stats) {
  ResampleStats local;
  if (stats == nullptr) stats = &local;
  *stats = ResampleStats{};
  std::vector<double> values;
  if (points.empty() || options.step <= absl::ZeroDuration()) return values;
  std::stable_sort(points.begin(), points.end(),
                   [](const SeriesPoint& a, const SeriesPoint& b) { return a.t < b.t; });
  const absl::Duration step = options.step;
  const int64_t first_slot = FloorDiv(points.front().t - absl::UnixEpoch(), step);
  *start = absl::UnixEpoch() + step * first_slot;
  const int64_t n = FloorDiv(points.back().t - *start, step) + 1;
  std::vector<double> sum(static_cast<size_t>(n), 0.0);
  std::vector<int64_t> count(static_cast<size_t>(n), 0);
  for (size_t i = 0; i < points.size(); ++i) {
    if (i > 0 && points[i].t == points[i - 1].t) ++stats->duplicate_samples;
    size_t slot = static_cast<size_t>(FloorDiv(points[i].t - *start, step));
    sum[slot] += points[i].value;
    ++count[slot];
  }
  stats->samples = static_cast<int64_t>(points.size());
  stats->slots = n;
  values.assign(static_cast<size_t>(n), 0.0);
  double filled_sum = 0;
  int64_t filled = 0;
  for (size_t i = 0; i < values.size(); ++i) {
    if (count[i] > 0) {
      values[i] = sum[i] / static_cast<double>(count[i]);
      filled_sum += values[i];
      ++filled;
    }
  }
  const double fallback =
      options.fallback > 0 ? options.fallback : filled_sum / static_cast<double>(filled);
  const int64_t max_gap_slots = FloorDiv(options.max_interpolated_gap, step);
  // The first and last slots always hold a sample, so every gap has neighbours.
  size_t i = 0;
  while (i < values.size()) {
    if (count[i] > 0) {
      ++i;
      continue;
    }
    size_t left = i - 1, right = i;
    while (count[right] == 0) ++right;
    const int64_t gap = static_cast<int64_t>(right - left - 1);
    for (size_t k = left + 1; k < right; ++k) {
      if (gap <= max_gap_slots) {
        double f = static_cast<double>(k - left) / static_cast<double>(right - left);
        values[k] = values[left] + f * (values[right] - values[left]);
        ++stats->interpolated_slots;
      } else {
        values[k] = fallback;
        ++stats->fallback_slots;
      }
    }
    i = right;
  }
  return values;
}

absl::StatusOr<LoadedSeries> LoadCarbonCsv(const std::string& path, const ResampleOptions& options,
                                           EmapsColumn column) {
  ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(path));
  LoadedSeries out;
  int c_time = -1, c_value = -1;
  if (t.HasColumn("Datetime (UTC)")) {
    c_time = *t.Column("Datetime (UTC)");
    const char* want = column == EmapsColumn::kLca ? "(LCA)" : "(direct)";
    for (size_t c = 0; c < t.header().size(); ++c) {
      const std::string& h = t.header()[c];
      if (absl::StartsWith(h, "Carbon Intensity") && absl::EndsWith(h, want))
        c_value = static_cast<int>(c);
    }
    if (c_value < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":1: missing column 'Carbon Intensity gCO₂eq/kWh ", want, "'"));
    }
    out.format = column == EmapsColumn::kLca ? "emaps-lca" : "emaps-direct";
  } else if (t.HasColumn("Time")) {
    c_time = *t.Column("Time");
    ASSIGN_OR_RETURN(c_value, t.Column("Carbon Intensity"));
    out.format = "lwa";
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ":1: missing column 'Time' (Let's Wait Awhile) or 'Datetime (UTC)' (Electricity Maps)"));
  }
  std::vector<SeriesPoint> points;
  points.reserve(t.rows());
  for (size_t r = 0; r < t.rows(); ++r) {
    SeriesPoint p;
    if (!ParseSeriesTime(t.Cell(r, c_time), &p.t)) {
      return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_time), ": not a time: \"",
                                                     t.Cell(r, c_time).substr(0, 40), "\""));
    }
    // An empty cell is a missing hour, filled like any other gap.
    if (absl::StripAsciiWhitespace(t.Cell(r, c_value)).empty()) continue;
    ASSIGN_OR_RETURN(p.value, t.Double(r, c_value));
    if (p.value < 0 || p.value > 5000) {
      return absl::InvalidArgumentError(absl::StrCat(
          t.Where(r, c_value), ": intensity must be in [0, 5000] g/kWh, got ", p.value));
    }
    points.push_back(p);
  }
  if (points.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no samples"));
  auto [lo, hi] =
      std::minmax_element(points.begin(), points.end(),
                          [](const SeriesPoint& a, const SeriesPoint& b) { return a.t < b.t; });
  if (options.step <= absl::ZeroDuration() ||
      (hi->t - lo->t) / options.step > static_cast<double>(kMaxSlots)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": series spans ", absl::FormatTime(lo->t),
                                                   " to ", absl::FormatTime(hi->t),
                                                   ", longer than 20 years"));
  }
  out.values = Resample(std::move(points), options, &out.start, &out.stats);
  double sum = 0;
  for (double v : out.values) sum += v;
  out.mean = sum / static_cast<double>(out.values.size());
  return out;
}

absl::Duration AlignmentShift(absl::Time start, absl::Time end, absl::Time now) {
  const absl::Time mid = start + (end - start) / 2;
  const int64_t year_mid = absl::ToCivilYear(mid, absl::UTCTimeZone()).year();
  const int64_t year_now = absl::ToCivilYear(now, absl::UTCTimeZone()).year();
  auto shift_for = [](int64_t years) {
    return absl::Hours(24 * 7) *
           static_cast<int64_t>(std::llround(static_cast<double>(years) * 365.2425 / 7.0));
  };
  const int64_t y = year_now - year_mid;
  for (int64_t cand : {y, y - 1, y + 1}) {
    absl::Duration s = shift_for(cand);
    if (start + s <= now && now < end + s) return s;
  }
  return shift_for(y);
}

CarbonSeries Shifted(const CarbonSeries& series, absl::Duration shift) {
  CarbonSeries out(series.zone(), series.start() + shift, series.step(), series.values(),
                   series.annual_average());
  out.set_source(series.source());
  out.set_stale(series.stale());
  return out;
}

}  // namespace greenlight::providers
