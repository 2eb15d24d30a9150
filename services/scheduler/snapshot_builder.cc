#include "services/scheduler/snapshot_builder.h"

#include <algorithm>
#include <atomic>

#include "services/budget/period.h"
#include "services/placement/bin_packing.h"

namespace greenlight::scheduler {

void SnapshotBuilder::Invalidate() {
  with_capacity_.reset();
  all_free_.reset();
}

bool SnapshotBuilder::ViewUsable(const NodeAllocator& nodes) const {
  if (!with_capacity_ || built_layout_ != nodes.layout_version()) return false;
  return built_capacity_ == nodes.capacity_version() || max_view_age_ > absl::ZeroDuration();
}

void SnapshotBuilder::Refresh(const NodeAllocator& nodes) {
  const bool layout_same = with_capacity_ && built_layout_ == nodes.layout_version();
  if (layout_same && built_capacity_ == nodes.capacity_version()) return;
  if (layout_same && max_view_age_ > absl::ZeroDuration() &&
      absl::Now() - last_rebuild_ <= max_view_age_)
    return;
  const auto& pools = nodes.pools();
  // Only capacity changed and no snapshot holds the capacity view (its use
  // count cannot grow while the state lock is held exclusively): refresh the
  // free counts in place rather than copying every pool twice after each
  // batch that starts or ends a job. The view was created non-const, so
  // writing through it is defined.
  if (layout_same && with_capacity_.use_count() == 1 && with_capacity_->size() == pools.size()) {
    // use_count() is a relaxed load: without this fence the last reader's
    // reads of the view need not happen before the writes below (a data race
    // by the C++ memory model, reported by TSan). The acquire fence pairs
    // with the release of that reader's shared_ptr decrement.
    std::atomic_thread_fence(std::memory_order_acquire);
    auto& view = const_cast<std::vector<providers::Pool>&>(*with_capacity_);
    for (size_t i = 0; i < pools.size(); ++i)
      placement::SummarizeFreeCapacity(view[i].gpus_per_node, pools[i].free_gpus, &view[i]);
  } else {
    auto with_capacity = std::make_shared<std::vector<providers::Pool>>();
    auto all_free = std::make_shared<std::vector<providers::Pool>>();
    with_capacity->reserve(pools.size());
    all_free->reserve(pools.size());
    for (const auto& ps : pools) {
      providers::Pool p = ps.pool;
      p.free_gpus_on_partial_nodes.clear();
      p.free_nodes = p.nodes;
      all_free->push_back(p);
      placement::SummarizeFreeCapacity(p.gpus_per_node, ps.free_gpus, &p);
      with_capacity->push_back(std::move(p));
    }
    with_capacity_ = std::move(with_capacity);
    all_free_ = std::move(all_free);
  }
  built_capacity_ = nodes.capacity_version();
  built_layout_ = nodes.layout_version();
  last_rebuild_ = absl::Now();
}

placement::Snapshot SnapshotBuilder::Build(const Sources& in, absl::Time now,
                                           const std::string& team, bool ignore_capacity,
                                           bool fresh) const {
  placement::Snapshot s;
  s.now = now;
  s.slot = settings_.slot;
  s.horizon = settings_.horizon;
  s.shared_zones = in.zones->view();
  s.default_intensity_g_per_kwh = in.zones->default_intensity();
  s.default_carbon_price_micros_per_tonne = settings_.default_carbon_price_micros_per_tonne;
  if (!fresh && ViewUsable(*in.nodes)) {
    s.shared_pools = ignore_capacity ? all_free_ : with_capacity_;
  } else {
    s.pools.reserve(in.nodes->pools().size());
    for (const auto& ps : in.nodes->pools()) {
      providers::Pool p = ps.pool;
      p.free_gpus_on_partial_nodes.clear();
      if (ignore_capacity) {
        p.free_nodes = p.nodes;
      } else {
        placement::SummarizeFreeCapacity(p.gpus_per_node, ps.free_gpus, &p);
      }
      s.pools.push_back(std::move(p));
    }
  }
  // Also when capacity is ignored (a waiting job's plan): a plan may wait for
  // running jobs to end, never take nodes booked by planned ones.
  s.bookings = in.bookings;
  const budget::BudgetLedger& ledger = *in.ledger;
  const greenlight::v1::Team* t = ledger.FindTeam(team);
  std::string period = budget::PeriodOf(s.now);
  s.team.cost_headroom_micros = ledger.CostHeadroom(team, period);
  s.team.carbon_headroom_mg = ledger.CarbonHeadroom(team, period);
  if (t && t->gpu_quota() > 0) {
    s.team.gpu_quota_total = t->gpu_quota();
    int used = in.nodes->RunningGpus(team);
    s.team.gpu_quota_free = ignore_capacity ? t->gpu_quota() : std::max(0, t->gpu_quota() - used);
  }
  s.team.carbon_price_micros_per_tonne = t && t->carbon_price_micros_per_tonne() > 0
                                             ? t->carbon_price_micros_per_tonne()
                                             : settings_.default_carbon_price_micros_per_tonne;
  if (t) s.team.unknown_grid = placement::UnknownGridFromName(t->unknown_grid());
  return s;
}

}  // namespace greenlight::scheduler
