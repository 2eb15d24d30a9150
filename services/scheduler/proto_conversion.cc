#include "services/scheduler/proto_conversion.h"

#include <algorithm>

#include "common/proto_time.h"
#include "services/providers/inventory.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

placement::Mode ModeOf(v1::PlacementMode m, placement::Mode default_mode) {
  switch (m) {
    case v1::PLACEMENT_MODE_CHEAPEST:
      return placement::Mode::kCheapest;
    case v1::PLACEMENT_MODE_GREENEST:
      return placement::Mode::kGreenest;
    case v1::PLACEMENT_MODE_BALANCED:
      return placement::Mode::kBalanced;
    default:
      return default_mode;
  }
}

v1::NodePool PoolToProto(const providers::Pool& p, int free_nodes) {
  v1::NodePool out;
  out.set_id(p.id);
  out.set_provider(p.provider);
  out.set_region(p.region);
  out.set_grid_zone(p.zone);
  out.set_instance_type(p.instance_type);
  out.set_gpu_type(p.gpu_type);
  out.set_gpus_per_node(p.gpus_per_node);
  out.set_nodes(p.nodes);
  out.set_price_micros_per_node_hour(p.price_micros_per_node_hour);
  out.set_spot_price_micros_per_node_hour(p.spot_price_micros_per_node_hour);
  out.set_gpu_power_w(p.gpu_power_w);
  out.set_pue(p.pue);
  out.set_free_nodes(free_nodes);
  return out;
}

providers::Pool PoolFromProto(const v1::NodePool& p, const providers::GpuTable& gpus) {
  // A GPU the table lacks (a pool added through the API) draws this much.
  constexpr double kUnknownGpuWatts = 300.0;
  providers::Pool pool;
  pool.id = p.id();
  pool.provider = p.provider();
  pool.region = p.region();
  pool.zone = p.grid_zone().empty() ? p.region() : p.grid_zone();
  pool.instance_type = p.instance_type();
  pool.gpu_type = p.gpu_type();
  pool.gpus_per_node = p.gpus_per_node();
  pool.nodes = p.nodes();
  pool.free_nodes = p.nodes();
  pool.price_micros_per_node_hour = p.price_micros_per_node_hour();
  pool.spot_price_micros_per_node_hour = p.spot_price_micros_per_node_hour();
  const providers::GpuModel* g = gpus.Find(p.gpu_type());
  pool.gpu_power_w = p.gpu_power_w() > 0 ? p.gpu_power_w() : (g ? g->power_w : kUnknownGpuWatts);
  pool.pue = p.pue() > 0 ? p.pue() : providers::DefaultPue(p.provider());
  pool.speed = g ? g->speed : 1.0;
  return pool;
}

v1::Placement ToPlacement(const placement::Option& o, const placement::Snapshot& s) {
  v1::Placement p;
  if (o.pool >= 0 && o.pool < static_cast<int>(s.Pools().size())) {
    const auto& pool = s.Pools()[o.pool];
    p.set_pool_id(pool.id);
    p.set_provider(pool.provider);
    p.set_region(pool.region);
    p.set_grid_zone(pool.zone);
    p.set_instance_type(pool.instance_type);
    p.set_gpu_type(pool.gpu_type);
  } else {
    p.set_pool_id(o.pool_id);
  }
  p.set_nodes(o.nodes);
  p.set_spot(o.spot);
  *p.mutable_start() = ToProto(o.start);
  *p.mutable_end() = ToProto(o.end);
  for (const auto& sl : o.slots) {
    auto* ts = p.add_slots();
    *ts->mutable_start() = ToProto(sl.start);
    *ts->mutable_end() = ToProto(sl.end);
  }
  p.set_cost_micros(o.cost_micros);
  p.set_carbon_mg(o.carbon_mg);
  p.set_energy_wh(o.energy_wh);
  p.set_objective_micros(o.objective_micros);
  p.set_mean_intensity_g_per_kwh(o.mean_intensity);
  p.set_carbon_estimated(o.carbon_estimated);
  p.set_why_not(o.why_not);
  p.set_unknown_grid(o.unknown_grid);
  p.set_carbon_basis(o.carbon_basis);
  return p;
}

v1::Quote ToQuote(const placement::Decision& d, const placement::Snapshot& s) {
  v1::Quote q;
  q.set_feasible(d.feasible);
  q.set_not_now(d.not_now);
  if (d.feasible)
    *q.mutable_chosen() = ToPlacement(d.chosen, s);
  else if (d.has_best_over_cap)
    *q.mutable_chosen() = ToPlacement(d.best_over_cap, s);
  for (const auto& a : d.alternatives) *q.add_alternatives() = ToPlacement(a, s);
  if (d.has_baseline) *q.mutable_baseline() = ToPlacement(d.baseline, s);
  for (const auto& [reason, n] : d.rejections) {
    auto* r = q.add_rejections();
    r->set_reason(reason);
    r->set_pools(n);
  }
  q.set_summary(d.summary);
  q.set_pools_considered(d.pools_considered);
  return q;
}

placement::JobRequest ToRequest(
    const v1::JobSpec& spec, absl::Time now, placement::Mode default_mode,
    const std::function<std::string(const std::string&)>& canonical_gpu) {
  placement::JobRequest r;
  r.gpus = spec.gpus();
  for (const auto& g : spec.gpu_types()) r.gpu_types.push_back(canonical_gpu(g));
  if (spec.work_case() == v1::JobSpec::kReferenceGpuHours) {
    r.reference_gpu_hours = spec.reference_gpu_hours();
  } else {
    r.duration = FromProto(spec.duration());
  }
  r.max_cost_micros = spec.max_cost_micros();
  r.max_carbon_mg = spec.max_carbon_mg();
  r.not_before = spec.has_not_before() ? std::max(now, FromProto(spec.not_before())) : now;
  r.deadline = spec.has_deadline() ? FromProto(spec.deadline()) : absl::InfiniteFuture();
  r.checkpointable = spec.checkpointable();
  r.regions.assign(spec.regions().begin(), spec.regions().end());
  r.mode = ModeOf(spec.mode(), default_mode);
  r.carbon_price_micros_per_tonne = spec.carbon_price_micros_per_tonne();
  return r;
}

absl::Duration PlannedRuntime(const v1::Placement& p) {
  if (p.slots_size() == 0) return FromProto(p.end()) - FromProto(p.start());
  absl::Duration runtime = absl::ZeroDuration();
  for (const auto& sl : p.slots()) runtime += FromProto(sl.end()) - FromProto(sl.start());
  return runtime;
}

}  // namespace greenlight::scheduler
