// What the placement engine sees: pools, carbon data, the team's headroom and
// policy, all taken at one instant. The engine never reads a clock or a file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "services/placement/capacity_calendar.h"
#include "services/providers/carbon_series.h"
#include "services/providers/pool.h"

namespace greenlight::placement {

using Pool = providers::Pool;

enum class Mode { kCheapest, kGreenest, kBalanced };

// Expected cost of running a checkpointable job on spot capacity (see
// docs/PLACEMENT.md). A preemption loses on average half a checkpoint interval
// of work plus the restart time, so the expected compute time is
//   runtime x (1 + preemptions_per_hour x (checkpoint_interval / 2 + restart)).
// The defaults are an assumption, not a measurement: one preemption per 20
// node-hours, hourly checkpoints, 15 minutes to restart (overhead 3.75 %).
struct SpotModel {
  double preemptions_per_hour = 0.05;
  absl::Duration checkpoint_interval = absl::Hours(1);
  absl::Duration restart = absl::Minutes(15);
  // Expected compute time divided by the uninterrupted runtime (>= 1).
  double OverheadFactor() const {
    double lost_h = absl::ToDoubleHours(checkpoint_interval) / 2 + absl::ToDoubleHours(restart);
    double f = 1.0 + (preemptions_per_hour > 0 ? preemptions_per_hour : 0) * lost_h;
    return f < 1.0 ? 1.0 : f;
  }
};

// How placement treats a pool whose grid is unknown (v1.Team.unknown_grid).
enum class UnknownGrid {
  kPessimistic,  // the zone's pessimistic figure (its annual average field)
  kDefault,      // the snapshot's default intensity
  kExclude,      // never placed there (reason unknown_grid)
};
// "pessimistic" / "default" / "exclude"; anything else is pessimistic.
UnknownGrid UnknownGridFromName(const std::string& name);
const char* UnknownGridName(UnknownGrid policy);

// The intensity a team assumes for a zone whose grid is unknown.
double UnknownGridIntensity(const providers::CarbonSeries& zone, UnknownGrid policy,
                            double default_g_per_kwh);

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
  UnknownGrid unknown_grid = UnknownGrid::kPessimistic;
};

struct Snapshot {
  absl::Time now;
  std::vector<Pool> pools;
  // When set, used instead of `pools`: an immutable view shared by many
  // snapshots (the scheduler rebuilds it once per batch, not per decision).
  std::shared_ptr<const std::vector<Pool>> shared_pools;
  const std::vector<Pool>& Pools() const { return shared_pools ? *shared_pools : pools; }
  // Future whole nodes held by planned jobs (capacity_calendar.h); null or
  // absent pools = nothing booked. Shared like `shared_pools`.
  std::shared_ptr<const BookingTable> bookings;
  const BookedProfile* BookingsOf(int pool) const {
    if (!bookings) return nullptr;
    auto it = bookings->find(pool);
    return it == bookings->end() || !it->second || it->second->empty() ? nullptr : it->second.get();
  }
  absl::flat_hash_map<std::string, providers::CarbonSeriesPtr> zones;  // zone -> series
  // When set, used instead of `zones` (shared like `shared_pools`: copying the
  // map, its strings and reference counts cost every snapshot a few us).
  std::shared_ptr<const absl::flat_hash_map<std::string, providers::CarbonSeriesPtr>> shared_zones;
  const absl::flat_hash_map<std::string, providers::CarbonSeriesPtr>& Zones() const {
    return shared_zones ? *shared_zones : zones;
  }
  // Annual average intensity used for zones without a series (gCO2e/kWh).
  double default_intensity_g_per_kwh = 400.0;
  TeamView team;
  // Slot resolution of time shifting and the horizon searched.
  absl::Duration slot = absl::Hours(1);
  absl::Duration horizon = absl::Hours(168);

  // Policy defaults (added with the engine; safe defaults for older callers).
  // Carbon price when neither the job nor the team sets one (config
  // default_carbon_price_usd_per_tonne, $100/t).
  int64_t default_carbon_price_micros_per_tonne = 100'000'000;
  SpotModel spot;
  // A checkpointable job is split over the lowest-carbon slots only when that
  // saves at least this fraction of the best contiguous run's carbon: each
  // split adds a stop and a restart that the model does not price.
  double split_min_saving = 0.01;
  // Average GPU utilization while a job runs (energy = gpus x power x
  // utilization x PUE x hours); 1.0 = board power, the conservative choice.
  double gpu_utilization = 1.0;
};

}  // namespace greenlight::placement
