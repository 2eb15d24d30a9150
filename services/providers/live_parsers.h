// Parsers for the live carbon-intensity APIs' JSON responses (recorded
// examples and their doc pages: tests/data/providers/README.md).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "services/providers/carbon_csv.h"

namespace greenlight::providers {

// 1 lb/MWh = 453.592 g / 1000 kWh = 0.453592 g/kWh.
inline constexpr double kGramsPerKwhPerLbPerMwh = 0.453592;

struct LivePoints {
  std::string zone;                 // zone / region / location as the API names it
  std::vector<SeriesPoint> points;  // intensity in gCO2e/kWh (percent for a signal index)
  absl::Duration period = absl::ZeroDuration();    // point spacing if the API states it
  absl::Time generated_at = absl::InfinitePast();  // forecast generation / update time if stated
  std::string units;                               // as the API states them
  std::vector<std::string> warnings;
};

// Electricity Maps v3 carbon-intensity: /latest (one object), /history
// ({"zone", "history": [...]}) and /forecast ({"zone", "forecast": [...],
// "updatedAt"}). Entries with a null carbonIntensity are skipped (gaps).
absl::StatusOr<LivePoints> ParseElectricityMaps(absl::string_view json);

// WattTime v3 /forecast and /historical ({"data": [{point_time, value}],
// "meta": {...}}) and /forecast/historical (data[] of {generated_at,
// forecast[]}: the newest forecast is taken). MOER in lbs_co2_per_mwh is
// converted to g/kWh; other intensity units are an error.
absl::StatusOr<LivePoints> ParseWattTime(absl::string_view json);

// WattTime v3 /signal-index: a 0-100 percentile of the region's recent MOER,
// not an intensity; values are returned as they are, units "percentile".
absl::StatusOr<LivePoints> ParseWattTimeSignalIndex(absl::string_view json);

// Carbon Aware SDK WebAPI /emissions/forecasts/current (array of
// EmissionsForecastDTO; the entry for `location`, or the first if empty):
// forecastData[] of {location, timestamp, duration (minutes), value}.
absl::StatusOr<LivePoints> ParseCarbonAwareForecast(absl::string_view json,
                                                    absl::string_view location);

// Carbon Aware SDK WebAPI /emissions/bylocation(s): [{location, time, rating}].
absl::StatusOr<LivePoints> ParseCarbonAwareEmissions(absl::string_view json,
                                                     absl::string_view location);

}  // namespace greenlight::providers
