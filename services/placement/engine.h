// The placement engine: a pure function (job, snapshot) -> decision.
// Filters only narrow and each rejection carries a reason code; the objective
// is in money (cost + carbon x carbon price); start times are searched over
// slots in [not_before, deadline - runtime] with prefix sums.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "services/placement/snapshot.h"

namespace greenlight::placement {

// The engine's view of a job (built from the API's JobSpec by the scheduler).
struct JobRequest {
  int gpus = 1;
  std::vector<std::string> gpu_types;  // empty = any
  // Exactly one of: reference GPU-hours (scaled by pool speed) or a fixed duration.
  double reference_gpu_hours = 0;
  absl::Duration duration = absl::ZeroDuration();
  int64_t max_cost_micros = 0;                   // 0 = no cap
  int64_t max_carbon_mg = 0;                     // 0 = no cap
  absl::Time not_before = absl::InfinitePast();  // clamp to snapshot.now
  absl::Time deadline = absl::InfiniteFuture();
  bool checkpointable = false;
  std::vector<std::string> regions;  // empty = any
  Mode mode = Mode::kBalanced;
  int64_t carbon_price_micros_per_tonne = 0;  // 0 = team's
  int top_k = 5;
};

struct Slot {
  absl::Time start;
  absl::Time end;
};

// One way to run the job.
struct Option {
  int pool = -1;  // index into snapshot.pools
  std::string pool_id;
  int nodes = 0;
  bool spot = false;
  absl::Time start;
  absl::Time end;
  std::vector<Slot> slots;  // one for contiguous runs
  absl::Duration runtime;   // compute time (sum of slots)
  int64_t cost_micros = 0;
  int64_t carbon_mg = 0;
  double energy_wh = 0;
  int64_t objective_micros = 0;
  double mean_intensity = 0;      // gCO2e/kWh over the run
  bool carbon_estimated = false;  // annual average used (no or stale series)
  std::string why_not;            // for alternatives: why it lost
  // Added with the engine:
  bool split = false;            // checkpointable run over non-adjacent slots
  bool on_partial_node = false;  // sub-node job packed onto a partly used node
  double gpu_share = 0;          // node-hours billed per hour (see docs/PLACEMENT.md)
  // The zone's grid is unknown; carbon_basis says what was assumed instead.
  bool unknown_grid = false;
  std::string carbon_basis;  // "hourly series", "annual average", "unknown grid: ..."
};

// Reason codes of rejections (stable strings; used in metrics labels).
inline constexpr char kReasonGpuType[] = "gpu_type";
inline constexpr char kReasonGangShape[] = "gang_shape";
inline constexpr char kReasonCapacity[] = "capacity";
inline constexpr char kReasonRegion[] = "region";
inline constexpr char kReasonDeadline[] = "deadline";
inline constexpr char kReasonMaxCost[] = "max_cost";
inline constexpr char kReasonMaxCarbon[] = "max_carbon";
inline constexpr char kReasonTeamBudget[] = "team_budget";
inline constexpr char kReasonQuota[] = "quota";
// The job would run longer than kMaxRuntimeHours on this pool (slow GPU or
// huge work): no start time could be represented or planned.
inline constexpr char kReasonRuntime[] = "runtime";
// The pool's grid is unknown and the team's policy is unknown_grid: exclude.
inline constexpr char kReasonUnknownGrid[] = "unknown_grid";
inline constexpr double kMaxRuntimeHours = 366.0 * 24;
// The job itself is malformed (gpus <= 0, no work): no pool was considered.
inline constexpr char kReasonInvalidJob[] = "invalid_job";

struct Decision {
  bool feasible = false;
  // Infeasible now but could become feasible (capacity or quota frees up).
  bool not_now = false;
  Option chosen;
  std::vector<Option> alternatives;  // best first, each with why_not
  Option baseline;                   // carbon-blind: cheapest pool, start asap
  bool has_baseline = false;
  std::vector<std::pair<std::string, int>> rejections;  // reason -> pools
  // The cheapest option that only failed the job's caps (for the error message).
  Option best_over_cap;
  bool has_best_over_cap = false;
  std::string summary;
  int pools_considered = 0;
  // Added with the engine:
  int64_t carbon_price_micros_per_tonne = 0;  // the price the objective used
  // Baseline minus chosen (positive = the decision avoids carbon / saves money).
  int64_t carbon_avoided_mg = 0;
  int64_t cost_saved_micros = 0;
};

class PlacementEngine {
 public:
  // Deterministic: the same (job, snapshot) always gives the same decision.
  // Work is O(pools + zones x slots): pools are scored from their aggregate
  // free capacity, never node by node (see bin_packing.h for the node pick).
  Decision Place(const JobRequest& job, const Snapshot& snapshot) const;
};

// Strict weak order of options under `mode` (true when `a` is better):
// cheapest = (cost, carbon), greenest = (carbon, cost), balanced =
// (objective, carbon, cost); then pool id, on-demand before spot, earlier
// start, contiguous before split. Used for the choice and by tests.
bool BetterOption(Mode mode, const Option& a, const Option& b);

// Stable text of a mode ("cheapest", "greenest", "balanced").
const char* ModeName(Mode mode);

// What a pool's intensity rests on, for quotes: "hourly series", "annual
// average", "unknown grid: pessimistic, highest known in Japan (516 g/kWh)".
// `estimated`: the run reaches outside the zone's series. Sets *unknown when
// the zone's grid is unknown.
std::string CarbonBasis(const Snapshot& snapshot, const std::string& zone, bool estimated,
                        bool* unknown);

}  // namespace greenlight::placement
