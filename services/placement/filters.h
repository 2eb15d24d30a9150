// Hard filters of the placement engine, one small class per rule (as in the
// Kubernetes scheduler framework). Filters only narrow: each says whether a
// pool (or a priced way to run on it) fits, fits later, or never fits, with a
// stable reason code that the decision counts.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "services/placement/engine.h"
#include "services/placement/snapshot.h"

namespace greenlight::placement {

enum class Fit {
  kFits,
  kNotNow,  // may fit once capacity or quota frees up
  kNever,   // cannot fit this job whatever happens to the cluster
};

struct FilterResult {
  Fit fit = Fit::kFits;
  const char* reason = "";  // a kReason* code when not fitting

  static FilterResult Fits() { return {}; }
  static FilterResult NotNow(const char* reason) { return {Fit::kNotNow, reason}; }
  static FilterResult Never(const char* reason) { return {Fit::kNever, reason}; }
  bool fits() const { return fit == Fit::kFits; }
};

// Job-level values resolved once per decision, shared by every filter.
struct JobContext {
  const JobRequest* job = nullptr;
  const Snapshot* snapshot = nullptr;
  absl::Time earliest;      // max(not_before, now)
  absl::Time latest_start;  // max(earliest, now + horizon); the deadline cuts further
  absl::Time deadline;
  int64_t carbon_price_micros_per_tonne = 0;
  double spot_factor = 1.0;  // SpotModel::OverheadFactor()

  static JobContext Make(const JobRequest& job, const Snapshot& snapshot);
};

// Nodes a job of `gpus` takes in a pool: 1 when it fits one node, else whole
// nodes. 0 when the pool has no GPUs per node.
int NodesNeeded(int gpus, int gpus_per_node);
// Node-hours billed per hour of run: the job's GPU share of one node when it
// fits on one (nodes are shared), else whole nodes.
double BilledNodeShare(int gpus, int gpus_per_node);
// Uninterrupted compute hours of the job on one pool: the fixed duration, or
// reference GPU-hours / (gpus x pool speed). < 0 when the pool has no speed.
double RuntimeHours(const JobRequest& job, const Pool& pool);
// True when a sub-node job fits on a partly used node (best fit, no new node).
bool FitsOnPartialNode(int gpus, const Pool& pool);

// A priced way to run the job on one pool: what the engine ranks.
struct Estimate {
  int pool = -1;
  bool spot = false;
  bool split = false;
  bool on_partial_node = false;
  int nodes = 0;
  double gpu_share = 0;
  absl::Time start;
  absl::Time end;
  absl::Duration runtime;  // compute time (with the spot overhead)
  double hours = 0;        // runtime in hours
  int64_t cost_micros = 0;
  int64_t carbon_mg = 0;
  double energy_wh = 0;
  double gkwh_hours = 0;  // integral of intensity over the run
  int64_t objective_micros = 0;
  bool carbon_estimated = false;
  // Planned around the pool's capacity calendar (Materialize must use it too).
  bool calendar = false;
};

// Checks one pool from its aggregate state (O(1) or O(partial nodes)).
class PoolFilter {
 public:
  virtual ~PoolFilter() = default;
  virtual std::string_view name() const = 0;
  virtual FilterResult Check(const JobContext& ctx, const Pool& pool) const = 0;
};

// Checks a priced estimate (deadline, caps, headroom).
class EstimateFilter {
 public:
  virtual ~EstimateFilter() = default;
  virtual std::string_view name() const = 0;
  virtual FilterResult Check(const JobContext& ctx, const Pool& pool,
                             const Estimate& estimate) const = 0;
};

// The pool carries one of the job's GPU types (any when the job lists none).
class GpuTypeFilter final : public PoolFilter {
 public:
  std::string_view name() const override { return kReasonGpuType; }
  FilterResult Check(const JobContext& ctx, const Pool& pool) const override;
};

// The pool's region is on the job's allow-list. An entry matches the region
// ("us-east-1"), provider/region ("aws/us-east-1"), or a prefix ending in '*'
// ("europe-*", "aws/eu-*").
class RegionFilter final : public PoolFilter {
 public:
  std::string_view name() const override { return kReasonRegion; }
  FilterResult Check(const JobContext& ctx, const Pool& pool) const override;
};

// The team excludes pools whose grid is unknown (unknown_grid: exclude).
class UnknownGridFilter final : public PoolFilter {
 public:
  std::string_view name() const override { return kReasonUnknownGrid; }
  FilterResult Check(const JobContext& ctx, const Pool& pool) const override;
};

// g <= gpus_per_node: one node; else ceil(g / gpus_per_node) whole nodes of
// this one pool (one zone). Never when the pool is too small even if empty.
class GangShapeFilter final : public PoolFilter {
 public:
  std::string_view name() const override { return kReasonGangShape; }
  FilterResult Check(const JobContext& ctx, const Pool& pool) const override;
};

// The team's GPU quota: above the whole quota never fits, above the free part
// waits.
class QuotaFilter final : public PoolFilter {
 public:
  std::string_view name() const override { return kReasonQuota; }
  FilterResult Check(const JobContext& ctx, const Pool& pool) const override;
};

// Free capacity now, for the gang shape: a free node or a partly used node
// with enough free GPUs (sub-node jobs), or enough wholly free nodes.
class CapacityFilter final : public PoolFilter {
 public:
  std::string_view name() const override { return kReasonCapacity; }
  FilterResult Check(const JobContext& ctx, const Pool& pool) const override;
};

// The run ends by the deadline (time only moves forward: never).
class DeadlineFilter final : public EstimateFilter {
 public:
  std::string_view name() const override { return kReasonDeadline; }
  FilterResult Check(const JobContext& ctx, const Pool& pool,
                     const Estimate& estimate) const override;
};

// The job's own cost cap.
class JobCostCapFilter final : public EstimateFilter {
 public:
  std::string_view name() const override { return kReasonMaxCost; }
  FilterResult Check(const JobContext& ctx, const Pool& pool,
                     const Estimate& estimate) const override;
};

// The job's own carbon cap.
class JobCarbonCapFilter final : public EstimateFilter {
 public:
  std::string_view name() const override { return kReasonMaxCarbon; }
  FilterResult Check(const JobContext& ctx, const Pool& pool,
                     const Estimate& estimate) const override;
};

// The team's remaining cost and carbon budget of the period.
class TeamHeadroomFilter final : public EstimateFilter {
 public:
  std::string_view name() const override { return kReasonTeamBudget; }
  FilterResult Check(const JobContext& ctx, const Pool& pool,
                     const Estimate& estimate) const override;
};

// The engine's filter chains, in evaluation order (the order decides which
// reason a pool is counted under: the first "never", else the first "not now").
const std::vector<const PoolFilter*>& DefaultPoolFilters();
const std::vector<const EstimateFilter*>& DefaultEstimateFilters();

}  // namespace greenlight::placement
