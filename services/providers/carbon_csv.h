// Carbon-intensity series from CSV (Let's Wait Awhile and Electricity Maps
// export formats), resampled to a fixed step, and aligned to "now".
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/providers/carbon_series.h"

namespace greenlight::providers {

// Which Electricity Maps column to read. LCA (life-cycle) is the default so
// that every shipped series counts the same thing: the LWA files are computed
// with IPCC life-cycle factors too.
enum class EmapsColumn { kLca, kDirect };

struct ResampleOptions {
  absl::Duration step = absl::Hours(1);
  // Gaps (slots without a sample) up to this long are filled by linear
  // interpolation between the neighbouring slots; longer gaps get the fallback.
  absl::Duration max_interpolated_gap = absl::Hours(6);
  // Value for long gaps; <= 0 means the mean of the slots that have data.
  double fallback = 0;
};

struct SeriesPoint {
  absl::Time t;
  double value = 0;
};

struct ResampleStats {
  int64_t samples = 0;
  int64_t slots = 0;
  int64_t interpolated_slots = 0;
  int64_t fallback_slots = 0;
  int64_t duplicate_samples = 0;  // samples sharing a timestamp (averaged)
};

// Rule: slot i covers [start + i*step, start + (i+1)*step) with start = first
// sample floored to a multiple of `step` since the Unix epoch. A slot's value
// is the mean of the samples whose timestamps fall in it (15-min data averaged
// to hours, 30-min pairs averaged). Empty slots: see ResampleOptions. Points
// need not be sorted. Returns no values for no points.
std::vector<double> Resample(std::vector<SeriesPoint> points, const ResampleOptions& options,
                             absl::Time* start, ResampleStats* stats);

// A parsed series file before it becomes a CarbonSeries.
struct LoadedSeries {
  absl::Time start;
  std::vector<double> values;
  double mean = 0;     // mean of the resampled values
  std::string format;  // "lwa" | "emaps-lca" | "emaps-direct"
  ResampleStats stats;
};

// Reads either format, chosen by header: "Time" + "Carbon Intensity" (LWA,
// naive timestamps taken as UTC) or "Datetime (UTC)" + "Carbon Intensity
// gCO₂eq/kWh (LCA|direct)" (Electricity Maps). Errors name file:line:column.
absl::StatusOr<LoadedSeries> LoadCarbonCsv(const std::string& path, const ResampleOptions& options,
                                           EmapsColumn column = EmapsColumn::kLca);

// Parses "2020-01-01 00:00:00", "2020-01-01 00:00", "2020-01-01T00:00:00Z" or
// RFC 3339 with an offset; naive times are UTC.
bool ParseSeriesTime(absl::string_view text, absl::Time* out);

// Whole-week shift that moves a historical series so that it covers `now` on
// about the same day of the year: k = round(Y x 365.2425 / 7) weeks, where Y
// is the number of years between `now` and the calendar year holding the
// series' midpoint. Whole weeks keep weekday/weekend patterns aligned; the
// day of the year moves by at most ~4 days (more for Y > 10). If that shift
// leaves `now` outside the series, Y-1 and Y+1 are tried; if neither covers
// it, the Y shift is kept (the annual average applies outside).
absl::Duration AlignmentShift(absl::Time start, absl::Time end, absl::Time now);

// Copy of `series` moved by `shift` (values, zone, average, source kept).
CarbonSeries Shifted(const CarbonSeries& series, absl::Duration shift);

}  // namespace greenlight::providers
