// Hard filters of the placement engine (see filters.h).
#include "services/placement/filters.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace greenlight::placement {

JobContext JobContext::Make(const JobRequest& job, const Snapshot& snapshot) {
  JobContext ctx;
  ctx.job = &job;
  ctx.snapshot = &snapshot;
  ctx.earliest = std::max(job.not_before, snapshot.now);
  // A bounded search whatever the caller passes: a year of slots at most.
  absl::Duration horizon =
      std::clamp(snapshot.horizon, absl::ZeroDuration(), absl::Hours(24 * 366));
  ctx.latest_start = std::max(ctx.earliest, snapshot.now + horizon);
  ctx.deadline = job.deadline;
  if (job.carbon_price_micros_per_tonne > 0) {
    ctx.carbon_price_micros_per_tonne = job.carbon_price_micros_per_tonne;
  } else if (snapshot.team.carbon_price_micros_per_tonne > 0) {
    ctx.carbon_price_micros_per_tonne = snapshot.team.carbon_price_micros_per_tonne;
  } else {
    ctx.carbon_price_micros_per_tonne =
        std::max<int64_t>(0, snapshot.default_carbon_price_micros_per_tonne);
  }
  ctx.spot_factor = snapshot.spot.OverheadFactor();
  return ctx;
}

int NodesNeeded(int gpus, int gpus_per_node) {
  if (gpus_per_node <= 0 || gpus <= 0) return 0;
  if (gpus <= gpus_per_node) return 1;
  return (gpus + gpus_per_node - 1) / gpus_per_node;
}

double BilledNodeShare(int gpus, int gpus_per_node) {
  if (gpus_per_node <= 0 || gpus <= 0) return 0;
  if (gpus <= gpus_per_node) return static_cast<double>(gpus) / gpus_per_node;
  return NodesNeeded(gpus, gpus_per_node);
}

double RuntimeHours(const JobRequest& job, const Pool& pool) {
  if (job.duration > absl::ZeroDuration()) return absl::ToDoubleHours(job.duration);
  if (pool.speed <= 0 || job.gpus <= 0) return -1;
  return job.reference_gpu_hours / (job.gpus * pool.speed);
}

bool FitsOnPartialNode(int gpus, const Pool& pool) {
  if (gpus > pool.gpus_per_node) return false;
  for (int free : pool.free_gpus_on_partial_nodes) {
    if (free >= gpus) return true;
  }
  return false;
}

FilterResult GpuTypeFilter::Check(const JobContext& ctx, const Pool& pool) const {
  const std::vector<std::string>& types = ctx.job->gpu_types;
  if (types.empty()) return FilterResult::Fits();
  for (const std::string& t : types) {
    // Length first: most pools fail here without a case-insensitive compare.
    if (t.size() == pool.gpu_type.size() && absl::EqualsIgnoreCase(t, pool.gpu_type)) {
      return FilterResult::Fits();
    }
  }
  return FilterResult::Never(kReasonGpuType);
}

namespace {

// One allow-list entry against "region" and "provider/region".
bool RegionMatches(absl::string_view entry, const Pool& pool) {
  auto matches = [&](absl::string_view candidate) {
    if (!entry.empty() && entry.back() == '*') {
      return absl::StartsWithIgnoreCase(candidate, entry.substr(0, entry.size() - 1));
    }
    return absl::EqualsIgnoreCase(candidate, entry);
  };
  if (matches(pool.region)) return true;
  if (entry.find('/') == absl::string_view::npos) return false;
  std::string qualified;
  qualified.reserve(pool.provider.size() + 1 + pool.region.size());
  qualified.append(pool.provider).append("/").append(pool.region);
  return matches(qualified);
}

}  // namespace

FilterResult RegionFilter::Check(const JobContext& ctx, const Pool& pool) const {
  const std::vector<std::string>& regions = ctx.job->regions;
  if (regions.empty()) return FilterResult::Fits();
  for (const std::string& r : regions) {
    if (RegionMatches(r, pool)) return FilterResult::Fits();
  }
  return FilterResult::Never(kReasonRegion);
}

FilterResult UnknownGridFilter::Check(const JobContext& ctx, const Pool& pool) const {
  if (ctx.snapshot->team.unknown_grid != UnknownGrid::kExclude) return FilterResult::Fits();
  const auto& zones = ctx.snapshot->Zones();
  auto it = zones.find(pool.zone);
  if (it != zones.end() && it->second != nullptr && it->second->unknown_grid()) {
    return FilterResult::Never(kReasonUnknownGrid);
  }
  return FilterResult::Fits();
}

FilterResult GangShapeFilter::Check(const JobContext& ctx, const Pool& pool) const {
  int needed = NodesNeeded(ctx.job->gpus, pool.gpus_per_node);
  if (needed == 0 || needed > pool.nodes) return FilterResult::Never(kReasonGangShape);
  return FilterResult::Fits();
}

FilterResult QuotaFilter::Check(const JobContext& ctx, const Pool& pool) const {
  const TeamView& team = ctx.snapshot->team;
  int gpus = ctx.job->gpus;
  if (team.gpu_quota_total >= 0 && gpus > team.gpu_quota_total) {
    return FilterResult::Never(kReasonQuota);
  }
  if (team.gpu_quota_free >= 0 && gpus > team.gpu_quota_free) {
    return FilterResult::NotNow(kReasonQuota);
  }
  return FilterResult::Fits();
}

FilterResult CapacityFilter::Check(const JobContext& ctx, const Pool& pool) const {
  int gpus = ctx.job->gpus;
  int needed = NodesNeeded(gpus, pool.gpus_per_node);
  if (needed == 0) return FilterResult::Never(kReasonGangShape);
  if (pool.free_nodes >= needed) return FilterResult::Fits();
  if (needed == 1 && FitsOnPartialNode(gpus, pool)) return FilterResult::Fits();
  return FilterResult::NotNow(kReasonCapacity);
}

FilterResult DeadlineFilter::Check(const JobContext& ctx, const Pool& pool,
                                   const Estimate& estimate) const {
  if (estimate.end > ctx.deadline) return FilterResult::Never(kReasonDeadline);
  return FilterResult::Fits();
}

FilterResult JobCostCapFilter::Check(const JobContext& ctx, const Pool& pool,
                                     const Estimate& estimate) const {
  int64_t cap = ctx.job->max_cost_micros;
  if (cap > 0 && estimate.cost_micros > cap) return FilterResult::Never(kReasonMaxCost);
  return FilterResult::Fits();
}

FilterResult JobCarbonCapFilter::Check(const JobContext& ctx, const Pool& pool,
                                       const Estimate& estimate) const {
  int64_t cap = ctx.job->max_carbon_mg;
  if (cap > 0 && estimate.carbon_mg > cap) return FilterResult::Never(kReasonMaxCarbon);
  return FilterResult::Fits();
}

FilterResult TeamHeadroomFilter::Check(const JobContext& ctx, const Pool& pool,
                                       const Estimate& estimate) const {
  const TeamView& team = ctx.snapshot->team;
  if (team.cost_headroom_micros >= 0 && estimate.cost_micros > team.cost_headroom_micros) {
    return FilterResult::Never(kReasonTeamBudget);
  }
  if (team.carbon_headroom_mg >= 0 && estimate.carbon_mg > team.carbon_headroom_mg) {
    return FilterResult::Never(kReasonTeamBudget);
  }
  return FilterResult::Fits();
}

const std::vector<const PoolFilter*>& DefaultPoolFilters() {
  static const GpuTypeFilter gpu_type;
  static const RegionFilter region;
  static const UnknownGridFilter unknown_grid;
  static const GangShapeFilter gang_shape;
  static const QuotaFilter quota;
  static const CapacityFilter capacity;
  static const std::vector<const PoolFilter*> filters = {&gpu_type,   &region, &unknown_grid,
                                                         &gang_shape, &quota,  &capacity};
  return filters;
}

const std::vector<const EstimateFilter*>& DefaultEstimateFilters() {
  static const DeadlineFilter deadline;
  static const JobCostCapFilter max_cost;
  static const JobCarbonCapFilter max_carbon;
  static const TeamHeadroomFilter team_budget;
  static const std::vector<const EstimateFilter*> filters = {&deadline, &max_cost, &max_carbon,
                                                             &team_budget};
  return filters;
}

}  // namespace greenlight::placement
