// The engine's per-decision state, internal to services/placement: the search
// over the pools (engine.cc) fills it and the assembly of the decision from
// what the search found (decision_builder.cc) reads it. Not an API.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "services/placement/capacity_calendar.h"
#include "services/placement/decision_text.h"
#include "services/placement/engine.h"
#include "services/placement/filters.h"
#include "services/placement/snapshot.h"
#include "services/placement/time_search.h"

namespace greenlight::placement::internal {

// The fields an option is ranked on, shared by Option and Estimate.
struct RankKey {
  int64_t cost;
  int64_t carbon;
  int64_t objective;
  const std::string* id;
  int pool;
  bool spot;
  absl::Time start;
  bool split;
};

// Negative when a ranks first, positive when b does, 0 when identical.
int CompareKeys(Mode mode, const RankKey& a, const RankKey& b);

inline RankKey KeyOf(const Option& o) {
  return {o.cost_micros, o.carbon_mg, o.objective_micros, &o.pool_id, o.pool, o.spot,
          o.start,       o.split};
}

inline RankKey KeyOf(const Estimate& e, const Snapshot& s) {
  return {e.cost_micros, e.carbon_mg, e.objective_micros, &s.Pools()[e.pool].id, e.pool, e.spot,
          e.start,       e.split};
}

// Time-search results for one (zone series, run length): pools in one zone
// with one runtime share them, so the slot scan runs once per decision.
struct Plans {
  bool contiguous_ok = false;
  RunWindow contiguous;
  bool split_ok = false;
  RunWindow split;
};

// Bitmask of failed estimate filters (bit i = DefaultEstimateFilters()[i]).
struct EstimateCheck {
  uint32_t failed = 0;
  const char* first_reason = "";
  int first_index = -1;  // index of the first failing filter
};

// Runs DefaultEstimateFilters() on a priced estimate.
EstimateCheck CheckEstimate(const JobContext& ctx, const Pool& pool, const Estimate& e);

// One decision: Run() evaluates every pool (engine.cc) and assembles the
// decision from the best of them (decision_builder.cc).
class DecisionBuilder {
 public:
  DecisionBuilder(const JobRequest& job, const Snapshot& snapshot)
      : job_(job), s_(snapshot), ctx_(JobContext::Make(job, snapshot)) {
    frame_.earliest = ctx_.earliest;
    frame_.latest_start = ctx_.latest_start;
    frame_.deadline = ctx_.deadline;
    // Slots finer than a minute would only multiply the work (series are
    // hourly or 15-minute); an unset slot means hourly.
    frame_.slot = snapshot.slot > absl::ZeroDuration() ? std::max(snapshot.slot, absl::Minutes(1))
                                                       : absl::Hours(1);
    util_ = snapshot.gpu_utilization > 0 ? snapshot.gpu_utilization : 1.0;
    if (job.duration > absl::ZeroDuration()) duration_hours_ = absl::ToDoubleHours(job.duration);
  }

  Decision Run();

 private:
  struct PoolVerdict {
    int stage = -1;  // how far the best variant got in the filter chain
    const char* reason = "";
  };

  // The first "not now" verdict of the pool filters (fits() when none).
  struct PoolScreen {
    FilterResult not_now;
    int not_now_stage = -1;
  };
  // What a pool that passed the filters rents to the job.
  struct PoolOffer {
    double base_hours = 0;  // runtime on demand
    bool on_demand = false;
    bool spot = false;
  };

  // The search (engine.cc).
  // Filters, prices and ranks pool `index`; counts its rejection reason when
  // no variant of it fits now.
  void EvaluatePool(int index);
  // Runs the pool filters; false (with the reason counted) when one says never.
  bool ScreenPool(const Pool& pool, PoolScreen* screen);
  // The pool's runtime and the variants it rents; false (with the reason
  // counted) when it rents none.
  bool OfferOf(const Pool& pool, PoolOffer* offer);
  // The verdict on a priced variant: kept when it fits now (true); else the
  // pool's "not now" verdict, or how far it got and the quotes over limits.
  bool JudgeVariant(const Estimate& e, const EstimateCheck& check, bool now, bool booked_out,
                    const PoolScreen& screen, PoolVerdict* verdict);
  // Remembers `e` when it fails only the job's caps or only the team budget.
  void RememberOverLimits(const Estimate& e, uint32_t failed);
  // Offers the contiguous variant, started at once, to the carbon-blind baseline.
  void ConsiderBaseline(const Estimate& contiguous, const EstimateCheck& check);
  static void Raise(PoolVerdict* verdict, int stage, const char* reason) {
    if (stage > verdict->stage) *verdict = {stage, reason};
  }
  // Prices variant `spot` of pool `index`; false when the deadline cannot be
  // met (or, with `blocked`, no window is clear of booked capacity).
  bool Price(int index, bool spot, double base_hours, Estimate* contiguous, Estimate* split,
             const std::vector<NsInterval>* blocked);
  // The plans of the zone for a runtime, shared by its pools without bookings.
  const Plans& SharedPlans(const ZoneCarbon& zone, absl::Duration runtime);
  // The plans of a contiguous (and split) run clear of `blocked`; false when none.
  bool PlanAroundBookings(const ZoneCarbon& zone, const Estimate& contiguous,
                          const std::vector<NsInterval>& blocked, Plans* out);
  // The contiguous or the split run, whichever the split rule prefers, and its checks.
  std::pair<const Estimate*, EstimateCheck> Choose(const Pool& pool, const Estimate& contiguous,
                                                   const Estimate& split) const;
  // Blocked intervals of pool `index` for a job of `nodes` whole nodes; null
  // when nothing is booked there (or nothing booked is in the way).
  const std::vector<NsInterval>* BlockedFor(int index, int nodes) {
    if (!s_.bookings) return nullptr;  // the common case: nothing booked anywhere
    return BlockedForBooked(index, nodes);
  }
  const std::vector<NsInterval>* BlockedForBooked(int index, int nodes);
  // A sub-node job packed onto a partly used node, starting now, needs no whole node.
  bool EarliestExempt(const Estimate& e) const {
    return e.on_partial_node && ctx_.earliest == s_.now;
  }
  // Starting at once collides with booked capacity.
  bool AsapBlocked(const Estimate& e) {
    const std::vector<NsInterval>* blocked = BlockedFor(e.pool, e.nodes);
    return blocked != nullptr && !EarliestExempt(e) &&
           Overlaps(*blocked, absl::ToUnixNanos(ctx_.earliest),
                    absl::ToUnixNanos(ctx_.earliest + e.runtime));
  }
  Estimate AsapEstimate(int index, bool spot, double base_hours);
  void Base(int index, bool spot, double base_hours, Estimate* e) const;
  void Finish(Estimate* e, double gkwh_hours, bool estimated) const;
  // The zone of a pool (consecutive pools of one region share the lookup).
  const ZoneCarbon& ZoneOf(const Pool& pool);
  // The per-decision planner of a series zone.
  ZonePlanner& PlannerFor(const ZoneCarbon& zone);
  void Count(const char* reason) {
    for (auto& [r, n] : counts_) {
      if (r == reason) {
        ++n;
        return;
      }
    }
    counts_.emplace_back(reason, 1);
  }
  // The assembly (decision_builder.cc): the steps of Run() after the pools
  // are evaluated.
  void TallyRejections();
  Shortfall ShortfallFound() const;
  void QuoteBaselineAndOverCap(const Shortfall& shortfall);
  // The best feasible estimate becomes the choice, the next top_k (and the
  // chosen pool at once) its alternatives.
  void ChooseAndRank();
  // The option an estimate stands for, with its slots and carbon basis.
  Option Materialize(const Estimate& e);

  const JobRequest& job_;
  const Snapshot& s_;
  JobContext ctx_;
  TimeFrame frame_;
  double util_ = 1.0;
  double duration_hours_ = 0;  // the job's fixed duration, converted once
  Decision d_;

  const std::vector<const PoolFilter*>& pool_filters_ = DefaultPoolFilters();
  absl::flat_hash_map<std::pair<const void*, int64_t>, Plans> plans_;
  std::vector<std::pair<const providers::CarbonSeries*, std::unique_ptr<ZonePlanner>>> planners_;
  const std::string* last_zone_name_ = nullptr;
  ZoneCarbon last_zone_ = ZoneCarbon::Constant(0);
  // The best top_k + 1 feasible estimates, best first (the chosen one and its
  // alternatives): bounded, so a decision never stores one entry per pool.
  std::vector<Estimate> feasible_;
  Estimate scratch_contiguous_, scratch_split_;            // reused by EvaluatePool
  Estimate scratch_free_contiguous_, scratch_free_split_;  // its plan without bookings
  size_t keep_ = 1;
  void Keep(const Estimate& e);
  std::vector<std::pair<const char*, int>> counts_;  // reason codes are constants
  bool any_not_now_ = false;
  // Cheapest option failing only the job's caps, and the lowest-carbon one.
  bool has_over_cost_ = false, has_over_carbon_ = false, has_over_team_ = false;
  Estimate over_cost_, over_carbon_, over_team_;
  // Carbon-blind baseline: cheapest (pool, variant) passing the carbon-blind
  // filters, started at once.
  bool has_baseline_ = false;
  Estimate baseline_;
};

}  // namespace greenlight::placement::internal
