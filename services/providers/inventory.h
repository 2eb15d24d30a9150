// Builds the scheduler's inventory from config: real catalog pools with a
// synthetic node count, GPU table, region -> zone mapping, zone carbon series.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
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
absl::StatusOr<Inventory> LoadInventory(const Config& config, absl::Time now);

}  // namespace greenlight::providers
