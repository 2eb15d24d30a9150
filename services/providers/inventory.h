// Builds the scheduler's inventory from config: real catalog pools with a
// synthetic node count, GPU table, region -> zone mapping, zone carbon series.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "services/providers/carbon_series.h"
#include "services/providers/gpu_table.h"
#include "services/providers/pool.h"

namespace greenlight::providers {

struct Inventory {
  std::vector<Pool> pools;
  absl::flat_hash_map<std::string, CarbonSeriesPtr> zones;  // grid zone -> series
  GpuTable gpus;
  double default_intensity_g_per_kwh = 400.0;
  // Human-readable notes of what was skipped or adjusted ("aws: 12 rows without price").
  std::vector<std::string> notes;
};

// Loads everything `config.data` names. `now` is used to align historical
// series to the current year when config.align_series_to_now is set.
// Every pool's zone has an entry in `zones`: a series from config, or an
// empty series whose annual average is the region's mlco2 figure (or
// default_intensity_g_per_kwh, reported in notes). Rules: docs/PROVIDERS.md.
absl::StatusOr<Inventory> LoadInventory(const Config& config, absl::Time now);

// PUE when mlco2 gives none for the region: 1.10 for aws/gcp/azure (Google's
// published fleet-wide trailing-twelve-month PUE, 1.10, used for all three
// hyperscalers), 1.58 for everyone else (Uptime Institute Global Data Center
// Survey 2023 industry average).
inline constexpr double kHyperscalerPue = 1.10;
inline constexpr double kColocationPue = 1.58;
double DefaultPue(absl::string_view provider);

// One zone's series file, resampled hourly (gaps <= 6 h interpolated, longer
// gaps -> the series mean, which is also its annual average), optionally
// shifted by whole weeks to cover `now` (AlignmentShift).
absl::StatusOr<CarbonSeries> LoadZoneSeries(const std::string& zone, const std::string& file,
                                            absl::Time now, bool align);

}  // namespace greenlight::providers
