// The snapshot builder: what a placement sees (pools with their free
// capacity, zones, the capacity calendar, the team's headroom and quota).
// Quotes run outside the writer on immutable views that many snapshots
// share, refreshed after the writer's batches.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "services/budget/ledger.h"
#include "services/placement/snapshot.h"
#include "services/scheduler/node_allocator.h"
#include "services/scheduler/zone_table.h"

namespace greenlight::scheduler {

class SnapshotBuilder {
 public:
  struct Settings {
    absl::Duration slot = absl::Hours(1);
    absl::Duration horizon = absl::Hours(168);
    int64_t default_carbon_price_micros_per_tonne = 100'000'000;
  };
  explicit SnapshotBuilder(Settings settings) : settings_(settings) {}
  // Quotes may see capacity this old (the writer re-checks it), so that the
  // views are not rebuilt for every small batch; 0 (the default) = always
  // current.
  void set_max_view_age(absl::Duration age) { max_view_age_ = age; }

  // After a batch: refreshes the shared pool views if capacity changed.
  void Refresh(const NodeAllocator& nodes);
  // Forgets the views (the pools were reloaded).
  void Invalidate();

  struct Sources {
    const NodeAllocator* nodes = nullptr;
    const ZoneTable* zones = nullptr;
    std::shared_ptr<const placement::BookingTable> bookings;
    const budget::BudgetLedger* ledger = nullptr;
  };
  // `ignore_capacity`: every node free and the whole quota (a waiting job's
  // plan). `fresh`: the pools as they are now (the writer, mid-batch), not
  // the shared view.
  placement::Snapshot Build(const Sources& in, absl::Time now, const std::string& team,
                            bool ignore_capacity, bool fresh) const;

 private:
  bool ViewUsable(const NodeAllocator& nodes) const;

  const Settings settings_;
  absl::Duration max_view_age_ = absl::ZeroDuration();
  // Immutable pool views for quoting (with free capacity, and all free).
  std::shared_ptr<const std::vector<providers::Pool>> with_capacity_;
  std::shared_ptr<const std::vector<providers::Pool>> all_free_;
  uint64_t built_capacity_ = 0;  // NodeAllocator versions the views show
  uint64_t built_layout_ = 0;
  absl::Time last_rebuild_ = absl::InfinitePast();
};

}  // namespace greenlight::scheduler
