// What the placement engine sees: pools, carbon data, the team's headroom and
// policy, all taken at one instant. The engine never reads a clock or a file.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "services/providers/carbon_series.h"
#include "services/providers/pool.h"

namespace greenlight::placement {

using Pool = providers::Pool;

enum class Mode { kCheapest, kGreenest, kBalanced };

// The requesting team's view at the snapshot instant.
struct TeamView {
  // Remaining budget of the period (cost and carbon); < 0 = unlimited.
  int64_t cost_headroom_micros = -1;
  int64_t carbon_headroom_mg = -1;
  // GPUs the team may still start now; < 0 = unlimited.
  int gpu_quota_free = -1;
  // The whole quota (a job larger than this can never run); < 0 = unlimited.
  int gpu_quota_total = -1;
  int64_t carbon_price_micros_per_tonne = 0;
};

struct Snapshot {
  absl::Time now;
  std::vector<Pool> pools;
  absl::flat_hash_map<std::string, providers::CarbonSeriesPtr> zones;  // zone -> series
  // Annual average intensity used for zones without a series (gCO2e/kWh).
  double default_intensity_g_per_kwh = 400.0;
  TeamView team;
  // Slot resolution of time shifting and the horizon searched.
  absl::Duration slot = absl::Hours(1);
  absl::Duration horizon = absl::Hours(168);
};

}  // namespace greenlight::placement
