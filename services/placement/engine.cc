// The placement engine (see engine.h and docs/PLACEMENT.md): filters narrow
// the pools, each surviving (pool, on-demand | spot) is priced at its
// lowest-carbon start (or split plan), and the options are ranked by the mode.
#include "services/placement/engine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/units.h"
#include "services/placement/filters.h"
#include "services/placement/time_search.h"

namespace greenlight::placement {

const char* ModeName(Mode mode) {
  switch (mode) {
    case Mode::kCheapest:
      return "cheapest";
    case Mode::kGreenest:
      return "greenest";
    case Mode::kBalanced:
      return "balanced";
  }
  return "balanced";
}

namespace {

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
int CompareKeys(Mode mode, const RankKey& a, const RankKey& b) {
  auto cmp = [](int64_t x, int64_t y) { return x < y ? -1 : (x > y ? 1 : 0); };
  std::array<int64_t, 3> ka, kb;
  switch (mode) {
    case Mode::kCheapest:
      ka = {a.cost, a.carbon, 0};
      kb = {b.cost, b.carbon, 0};
      break;
    case Mode::kGreenest:
      ka = {a.carbon, a.cost, 0};
      kb = {b.carbon, b.cost, 0};
      break;
    case Mode::kBalanced:
      ka = {a.objective, a.carbon, a.cost};
      kb = {b.objective, b.carbon, b.cost};
      break;
  }
  for (int i = 0; i < 3; ++i) {
    if (int c = cmp(ka[i], kb[i]); c != 0) return c;
  }
  if (int c = a.id->compare(*b.id); c != 0) return c < 0 ? -1 : 1;
  if (a.pool != b.pool) return a.pool < b.pool ? -1 : 1;
  if (a.spot != b.spot) return a.spot ? 1 : -1;
  if (a.start != b.start) return a.start < b.start ? -1 : 1;
  if (a.split != b.split) return a.split ? 1 : -1;
  return 0;
}

RankKey KeyOf(const Option& o) {
  return {o.cost_micros, o.carbon_mg, o.objective_micros, &o.pool_id, o.pool, o.spot,
          o.start,       o.split};
}

RankKey KeyOf(const Estimate& e, const Snapshot& s) {
  return {e.cost_micros, e.carbon_mg, e.objective_micros, &s.Pools()[e.pool].id, e.pool, e.spot,
          e.start,       e.split};
}

// Dollars with cents; sub-cent amounts keep four decimals so that a real
// difference never prints as "$0.00".
std::string Usd(int64_t micros) {
  if (micros != 0 && micros > -10'000 && micros < 10'000) {
    return absl::StrFormat("$%.4f", micros / 1e6);
  }
  return absl::StrFormat("$%.2f", micros / 1e6);
}
std::string Kg(int64_t mg) { return absl::StrFormat("%.2f kg", mg / 1e6); }
std::string When(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", t, absl::UTCTimeZone());
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

EstimateCheck CheckEstimate(const JobContext& ctx, const Pool& pool, const Estimate& e) {
  EstimateCheck c;
  const auto& filters = DefaultEstimateFilters();
  for (size_t i = 0; i < filters.size(); ++i) {
    FilterResult r = filters[i]->Check(ctx, pool, e);
    if (!r.fits()) {
      c.failed |= 1u << i;
      if (c.first_index < 0) {
        c.first_index = static_cast<int>(i);
        c.first_reason = r.reason;
      }
    }
  }
  return c;
}

using greenlight::RoundToInt64;

// Bits of DefaultEstimateFilters(): deadline, max_cost, max_carbon, team_budget.
constexpr uint32_t kDeadlineBit = 1u << 0;
constexpr uint32_t kMaxCostBit = 1u << 1;
constexpr uint32_t kMaxCarbonBit = 1u << 2;
constexpr uint32_t kTeamBit = 1u << 3;
// Stage of a "not now" verdict: above every "never" stage of the chain.
constexpr int kNotNowStage = 1000;
// CapacityFilter's place in DefaultPoolFilters() (booked capacity is capacity).
int CapacityStage() {
  static const int stage = [] {
    const auto& filters = DefaultPoolFilters();
    for (size_t i = 0; i < filters.size(); ++i)
      if (filters[i]->name() == kReasonCapacity) return static_cast<int>(i);
    return static_cast<int>(filters.size());
  }();
  return stage;
}

// A run at a constant intensity from `start` (over the runtime as scheduled,
// whole seconds, like every other window).
RunWindow ConstantRun(const ZoneCarbon& zone, absl::Time start, absl::Duration runtime) {
  RunWindow w;
  w.start = start;
  w.end = start + runtime;
  w.gkwh_hours = zone.constant() * static_cast<double>(absl::ToInt64Seconds(runtime)) / 3600.0;
  w.estimated = true;
  return w;
}

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

  void EvaluatePool(int index);
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
  Option Materialize(const Estimate& e);
  // The zone of a pool (consecutive pools of one region share the lookup).
  const ZoneCarbon& ZoneOf(const Pool& pool);
  // The per-decision planner of a series zone.
  ZonePlanner& PlannerFor(const ZoneCarbon& zone);
  std::string WhyNot(const Option& alt, const Option& chosen) const;
  void Count(const char* reason) {
    for (auto& [r, n] : counts_) {
      if (r == reason) {
        ++n;
        return;
      }
    }
    counts_.emplace_back(reason, 1);
  }
  // Even the cheapest (lowest-carbon) option that only fails the caps is over
  // the cost (carbon) cap.
  bool CostBinding() const {
    return has_over_cost_ && job_.max_cost_micros > 0 &&
           over_cost_.cost_micros > job_.max_cost_micros;
  }
  bool CarbonBinding() const {
    return has_over_carbon_ && job_.max_carbon_mg > 0 &&
           over_carbon_.carbon_mg > job_.max_carbon_mg;
  }
  std::string RejectionText() const;
  std::string Summary() const;

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

void DecisionBuilder::Base(int index, bool spot, double base_hours, Estimate* out) const {
  const Pool& pool = s_.Pools()[index];
  Estimate& e = *out;
  e.split = false;
  e.carbon_mg = 0;
  e.gkwh_hours = 0;
  e.objective_micros = 0;
  e.carbon_estimated = false;
  e.pool = index;
  e.spot = spot;
  e.nodes = NodesNeeded(job_.gpus, pool.gpus_per_node);
  e.gpu_share = BilledNodeShare(job_.gpus, pool.gpus_per_node);
  // Best fit: a sub-node job goes to a partly used node when one fits, so
  // whole nodes stay free for gangs.
  e.on_partial_node =
      e.nodes == 1 && job_.gpus < pool.gpus_per_node && FitsOnPartialNode(job_.gpus, pool);
  e.hours = base_hours * (spot ? ctx_.spot_factor : 1.0);
  e.runtime = absl::Seconds(RoundToInt64(e.hours * 3600.0));
  int64_t price = spot ? pool.spot_price_micros_per_node_hour : pool.price_micros_per_node_hour;
  e.cost_micros = RoundToInt64(static_cast<double>(price) * e.gpu_share * e.hours);
  e.energy_wh = job_.gpus * pool.gpu_power_w * util_ * pool.pue * e.hours;
  e.start = ctx_.earliest;
  e.end = ctx_.earliest + e.runtime;
}

void DecisionBuilder::Finish(Estimate* e, double gkwh_hours, bool estimated) const {
  const Pool& pool = s_.Pools()[e->pool];
  double watts = job_.gpus * pool.gpu_power_w * util_ * pool.pue;
  e->gkwh_hours = gkwh_hours;
  // W x (g/kWh) x h = Wh x g/kWh = mg CO2e.
  e->carbon_mg = RoundToInt64(MgFromWhAndIntensity(watts, gkwh_hours));
  e->carbon_estimated = estimated;
  e->objective_micros = e->cost_micros;
  if (job_.mode != Mode::kCheapest) {
    e->objective_micros =
        SatAdd(e->cost_micros,
               RoundToInt64(CarbonCostMicros(e->carbon_mg, ctx_.carbon_price_micros_per_tonne)));
  }
}

const ZoneCarbon& DecisionBuilder::ZoneOf(const Pool& pool) {
  if (last_zone_name_ == nullptr || *last_zone_name_ != pool.zone) {
    last_zone_ = ZoneCarbon::For(s_, pool.zone);
    last_zone_name_ = &pool.zone;
  }
  return last_zone_;
}

ZonePlanner& DecisionBuilder::PlannerFor(const ZoneCarbon& zone) {
  for (auto& [series, planner] : planners_) {
    if (series == zone.series()) return *planner;
  }
  planners_.emplace_back(zone.series(), std::make_unique<ZonePlanner>(zone, frame_));
  return *planners_.back().second;
}

Estimate DecisionBuilder::AsapEstimate(int index, bool spot, double base_hours) {
  Estimate e;
  Base(index, spot, base_hours, &e);
  ZoneCarbon zone = ZoneOf(s_.Pools()[index]);
  RunWindow w = zone.series() != nullptr ? PlannerFor(zone).Asap(e.runtime)
                                         : AsapWindow(zone, frame_, e.runtime);
  Finish(&e, w.gkwh_hours, w.estimated);
  return e;
}

const std::vector<NsInterval>* DecisionBuilder::BlockedForBooked(int index, int nodes) {
  const BookedProfile* bookings = s_.BookingsOf(index);
  if (bookings == nullptr) return nullptr;
  const std::vector<NsInterval>& blocked = bookings->Blocked(s_.Pools()[index].free_nodes, nodes);
  return blocked.empty() ? nullptr : &blocked;
}

const Plans& DecisionBuilder::SharedPlans(const ZoneCarbon& zone, absl::Duration runtime) {
  auto key =
      std::make_pair(static_cast<const void*>(zone.series()), absl::ToInt64Nanoseconds(runtime));
  auto [it, inserted] = plans_.try_emplace(key);
  if (inserted) {
    Plans& p = it->second;
    ZonePlanner& planner = PlannerFor(zone);
    p.contiguous_ok = planner.BestContiguous(runtime, &p.contiguous);
    if (job_.checkpointable && p.contiguous_ok) {
      p.split_ok = planner.LowestCarbonSlots(runtime, /*with_slots=*/false, &p.split);
    }
  }
  return it->second;
}

// Out of line, so that Price stays small enough to inline in the common case
// of a pool without bookings.
ABSL_ATTRIBUTE_NOINLINE bool DecisionBuilder::PlanAroundBookings(
    const ZoneCarbon& zone, const Estimate& contiguous, const std::vector<NsInterval>& blocked,
    Plans* out) {
  Plans& local = *out;
  // Planned around this pool's bookings: not shared with other pools.
  const int64_t run_ns = absl::ToInt64Nanoseconds(contiguous.runtime);
  const bool exempt = EarliestExempt(contiguous);
  // No start clear of the bookings at all (a full calendar): nothing to search.
  const int64_t earliest = absl::ToUnixNanos(ctx_.earliest);
  const int64_t start = exempt ? earliest : FirstClearStart(blocked, earliest, run_ns);
  absl::Time last_start = ctx_.latest_start;
  if (ctx_.deadline != absl::InfiniteFuture())
    last_start = std::min(last_start, ctx_.deadline - contiguous.runtime);
  if (start == std::numeric_limits<int64_t>::max() || absl::FromUnixNanos(start) > last_start)
    return false;
  if (zone.series() == nullptr) {
    // Constant intensity: the first start clear of the bookings.
    local.contiguous_ok = true;
    local.contiguous = ConstantRun(zone, absl::FromUnixNanos(start), contiguous.runtime);
  } else {
    ZonePlanner& planner = PlannerFor(zone);
    // The zone's best window, shared by its pools, when it is clear here: a
    // subset of the windows cannot hold a better one.
    const Plans& shared = SharedPlans(zone, contiguous.runtime);
    const int64_t best_ns = absl::ToUnixNanos(shared.contiguous.start);
    if (shared.contiguous_ok &&
        ((exempt && best_ns == earliest) || !Overlaps(blocked, best_ns, best_ns + run_ns))) {
      local.contiguous_ok = true;
      local.contiguous = shared.contiguous;
    } else {
      local.contiguous_ok =
          planner.BestContiguous(contiguous.runtime, &local.contiguous, &blocked, exempt);
    }
    if (job_.checkpointable && local.contiguous_ok) {
      local.split_ok = planner.LowestCarbonSlots(contiguous.runtime, /*with_slots=*/false,
                                                 &local.split, &blocked);
    }
  }
  return local.contiguous_ok;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool DecisionBuilder::Price(
    int index, bool spot, double base_hours, Estimate* contiguous, Estimate* split,
    const std::vector<NsInterval>* blocked) {
  Base(index, spot, base_hours, contiguous);
  contiguous->calendar = blocked != nullptr;
  split->pool = -1;
  if (contiguous->end > ctx_.deadline) return false;
  ZoneCarbon zone = ZoneOf(s_.Pools()[index]);
  const Plans* plans = nullptr;
  Plans local;
  if (blocked != nullptr) {
    if (!PlanAroundBookings(zone, *contiguous, *blocked, &local)) return false;
    plans = &local;
  } else if (zone.series() == nullptr) {
    // Constant intensity: every start is equal, start at once; nothing to split.
    local.contiguous_ok = true;
    local.contiguous = ConstantRun(zone, contiguous->start, contiguous->runtime);
    plans = &local;
  } else {
    plans = &SharedPlans(zone, contiguous->runtime);
  }
  if (!plans->contiguous_ok) return false;
  contiguous->start = plans->contiguous.start;
  contiguous->end = plans->contiguous.end;
  Finish(contiguous, plans->contiguous.gkwh_hours, plans->contiguous.estimated);
  if (plans->split_ok && plans->split.runs > 1) {
    *split = *contiguous;
    split->split = true;
    split->start = plans->split.start;
    split->end = plans->split.end;
    Finish(split, plans->split.gkwh_hours, plans->split.estimated);
  }
  return true;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline std::pair<const Estimate*, EstimateCheck>
DecisionBuilder::Choose(const Pool& pool, const Estimate& contiguous, const Estimate& split) const {
  // Split only when it saves enough carbon to pay for its restarts, or when
  // it is the only way under a carbon limit.
  EstimateCheck check = CheckEstimate(ctx_, pool, contiguous);
  if (split.pool >= 0) {
    EstimateCheck split_check = CheckEstimate(ctx_, pool, split);
    bool saves = split.carbon_mg < contiguous.carbon_mg &&
                 split.carbon_mg <= (1.0 - s_.split_min_saving) * contiguous.carbon_mg;
    if ((saves && split_check.failed == 0) || (check.failed != 0 && split_check.failed == 0) ||
        (saves && check.failed != 0)) {
      return {&split, split_check};
    }
  }
  return {&contiguous, check};
}

void DecisionBuilder::EvaluatePool(int index) {
  const Pool& pool = s_.Pools()[index];
  FilterResult not_now;
  int not_now_stage = -1;
  const auto& pool_filters = pool_filters_;
  for (size_t i = 0; i < pool_filters.size(); ++i) {
    FilterResult r = pool_filters[i]->Check(ctx_, pool);
    if (r.fit == Fit::kNever) {
      Count(r.reason);
      return;
    }
    if (r.fit == Fit::kNotNow && not_now.fits()) {
      not_now = r;
      not_now_stage = static_cast<int>(i);
    }
  }
  double base_hours = duration_hours_ > 0 ? duration_hours_ : RuntimeHours(job_, pool);
  if (!(base_hours > 0) || !std::isfinite(base_hours)) {
    Count(kReasonGpuType);  // no speed figure for this GPU: work cannot be converted
    return;
  }
  const bool now = not_now.fits();
  const int stage0 = static_cast<int>(pool_filters.size());
  PoolVerdict verdict;
  bool pool_fits = false;
  bool offer_od = pool.price_micros_per_node_hour > 0;
  bool offer_spot = job_.checkpointable && pool.spot_price_micros_per_node_hour > 0 &&
                    (!offer_od || pool.spot_price_micros_per_node_hour * ctx_.spot_factor <
                                      static_cast<double>(pool.price_micros_per_node_hour));
  if (!offer_od && !offer_spot) {
    Count(kReasonCapacity);  // nothing to rent: no price in the catalog
    return;
  }
  Estimate& contiguous = scratch_contiguous_;
  Estimate& split = scratch_split_;
  for (int v = 0; v < 2; ++v) {
    bool spot = v == 1;
    if (spot ? !offer_spot : !offer_od) continue;
    if (base_hours * (spot ? ctx_.spot_factor : 1.0) > kMaxRuntimeHours) {
      if (stage0 > verdict.stage) verdict = {stage0, kReasonRuntime};
      continue;
    }
    const std::vector<NsInterval>* blocked =
        now ? BlockedFor(index, NodesNeeded(job_.gpus, pool.gpus_per_node)) : nullptr;
    bool priced = Price(index, spot, base_hours, &contiguous, &split, blocked);
    const Estimate* chosen = &contiguous;
    EstimateCheck check;
    if (priced) std::tie(chosen, check) = Choose(pool, contiguous, split);
    // Waiting for booked capacity: no window clear of the bookings passes,
    // but one would without them (it may once they run and end).
    // Priced into scratch of its own: `chosen` may point into the first.
    bool booked_out = false;
    if (blocked != nullptr && (!priced || check.failed != 0) &&
        Price(index, spot, base_hours, &scratch_free_contiguous_, &scratch_free_split_, nullptr)) {
      auto [free_chosen, free_check] = Choose(pool, scratch_free_contiguous_, scratch_free_split_);
      if (!priced || free_check.failed == 0) {
        chosen = free_chosen;
        check = free_check;
        priced = true;
        booked_out = free_check.failed == 0;
      }
    }
    if (!priced) {
      if (stage0 > verdict.stage) verdict = {stage0, kReasonDeadline};
      continue;
    }
    const Estimate& e = *chosen;
    if (check.failed == 0) {
      if (now && !booked_out) {
        Keep(e);
        pool_fits = true;
      } else {
        // Would fit once capacity or quota frees up: that is the pool's
        // verdict whatever its other variant says.
        any_not_now_ = true;
        verdict = booked_out ? PoolVerdict{kNotNowStage + CapacityStage(), kReasonCapacity}
                             : PoolVerdict{kNotNowStage + not_now_stage, not_now.reason};
      }
    } else {
      int stage = stage0 + check.first_index;
      if (stage > verdict.stage) verdict = {stage, check.first_reason};
      uint32_t caps = kMaxCostBit | kMaxCarbonBit;
      if ((check.failed & ~caps) == 0) {
        // Only the job's caps fail: remember the best quote for the message.
        if (!has_over_cost_ ||
            CompareKeys(Mode::kCheapest, KeyOf(e, s_), KeyOf(over_cost_, s_)) < 0) {
          over_cost_ = e;
          has_over_cost_ = true;
        }
        if (!has_over_carbon_ ||
            CompareKeys(Mode::kGreenest, KeyOf(e, s_), KeyOf(over_carbon_, s_)) < 0) {
          over_carbon_ = e;
          has_over_carbon_ = true;
        }
      } else if (check.failed == kTeamBit) {
        if (!has_over_team_ ||
            CompareKeys(Mode::kCheapest, KeyOf(e, s_), KeyOf(over_team_, s_)) < 0) {
          over_team_ = e;
          has_over_team_ = true;
        }
      }
    }
    // The carbon-blind baseline sees prices, caps and capacity, not carbon.
    bool blind_ok = now && !booked_out && !AsapBlocked(contiguous) &&
                    (check.failed & (kDeadlineBit | kMaxCostBit)) == 0 &&
                    (s_.team.cost_headroom_micros < 0 ||
                     contiguous.cost_micros <= s_.team.cost_headroom_micros);
    if (blind_ok) {
      // Blind to carbon: cost, then the deterministic tie-breaks (the carbon
      // at once is filled in for the winner only).
      RankKey k = KeyOf(contiguous, s_);
      k.carbon = 0;
      k.objective = 0;
      k.start = ctx_.earliest;
      if (!has_baseline_ || CompareKeys(Mode::kCheapest, k, KeyOf(baseline_, s_)) < 0) {
        baseline_ = contiguous;
        baseline_.carbon_mg = 0;
        baseline_.objective_micros = 0;
        baseline_.start = ctx_.earliest;
        baseline_.split = false;
        has_baseline_ = true;
      }
    }
  }
  if (!pool_fits) Count(verdict.reason);
}

void DecisionBuilder::Keep(const Estimate& e) {
  auto better = [&](const Estimate& a, const Estimate& b) {
    return CompareKeys(job_.mode, KeyOf(a, s_), KeyOf(b, s_)) < 0;
  };
  if (feasible_.size() == keep_ && !better(e, feasible_.back())) return;
  auto at = std::upper_bound(feasible_.begin(), feasible_.end(), e, better);
  feasible_.insert(at, e);
  if (feasible_.size() > keep_) feasible_.pop_back();
}

Option DecisionBuilder::Materialize(const Estimate& e) {
  const Pool& pool = s_.Pools()[e.pool];
  Option o;
  o.pool = e.pool;
  o.pool_id = pool.id;
  o.nodes = e.nodes;
  o.spot = e.spot;
  o.split = e.split;
  o.on_partial_node = e.on_partial_node;
  o.gpu_share = e.gpu_share;
  o.start = e.start;
  o.end = e.end;
  o.runtime = e.runtime;
  o.cost_micros = e.cost_micros;
  o.carbon_mg = e.carbon_mg;
  o.energy_wh = e.energy_wh;
  o.objective_micros = e.objective_micros;
  o.mean_intensity = e.hours > 0 ? e.gkwh_hours / e.hours : 0;
  o.carbon_estimated = e.carbon_estimated;
  o.carbon_basis = CarbonBasis(s_, pool.zone, e.carbon_estimated, &o.unknown_grid);
  ZoneCarbon zone = ZoneOf(pool);
  RunWindow w;
  const std::vector<NsInterval>* blocked = e.calendar ? BlockedFor(e.pool, e.nodes) : nullptr;
  if (e.split && zone.series() != nullptr &&
      PlannerFor(zone).LowestCarbonSlots(e.runtime, /*with_slots=*/true, &w, blocked)) {
    o.slots = std::move(w.slots);
  } else {
    o.slots.push_back(Slot{e.start, e.end});
  }
  return o;
}

std::string SignedUsd(int64_t micros) {
  return micros >= 0 ? absl::StrCat(Usd(micros), " more") : absl::StrCat(Usd(-micros), " less");
}

std::string SignedKg(int64_t mg) {
  return mg >= 0 ? absl::StrCat(Kg(mg), " more") : absl::StrCat(Kg(-mg), " less");
}

std::string DecisionBuilder::WhyNot(const Option& alt, const Option& chosen) const {
  int64_t dc = alt.cost_micros - chosen.cost_micros;
  int64_t dg = alt.carbon_mg - chosen.carbon_mg;
  int64_t dobj = alt.objective_micros - chosen.objective_micros;
  // Name the variant when the alternative is the chosen pool run otherwise.
  std::string prefix;
  if (alt.pool == chosen.pool && alt.spot == chosen.spot) {
    prefix = alt.split ? "split: " : (alt.start == ctx_.earliest ? "at once: " : "contiguous: ");
  }
  std::string why;
  switch (job_.mode) {
    case Mode::kCheapest:
      if (dc > 0) {
        why = absl::StrCat("costs ", Usd(dc), " more");
        if (dg < 0) absl::StrAppend(&why, ", emits ", Kg(-dg), " less");
      } else if (dg > 0) {
        why = absl::StrCat("same cost, emits ", Kg(dg), " more");
      }
      break;
    case Mode::kGreenest:
      if (dg > 0) {
        why = absl::StrCat("emits ", Kg(dg), " more");
        if (dc < 0) absl::StrAppend(&why, ", costs ", Usd(-dc), " less");
      } else if (dc > 0) {
        why = absl::StrCat("same carbon, costs ", Usd(dc), " more");
      }
      break;
    case Mode::kBalanced:
      if (dobj > 0) {
        std::vector<std::string> parts;
        if (dc != 0) parts.push_back(absl::StrCat("costs ", SignedUsd(dc)));
        if (dg != 0) parts.push_back(absl::StrCat("emits ", SignedKg(dg)));
        why = absl::StrCat("objective +", Usd(dobj), parts.empty() ? "" : ": ",
                           absl::StrJoin(parts, ", "));
      } else if (dg > 0) {
        why = absl::StrCat("same objective, emits ", Kg(dg), " more");
      } else if (dc > 0) {
        why = absl::StrCat("same objective and carbon, costs ", Usd(dc), " more");
      }
      break;
  }
  if (why.empty()) why = "tie: loses on pool id, on-demand before spot, earlier start";
  return prefix + why;
}

std::string DecisionBuilder::RejectionText() const {
  int total = 0;
  for (const auto& [reason, n] : d_.rejections) total += n;
  if (total == 0) return "";
  std::vector<std::string> parts;
  for (const auto& [reason, n] : d_.rejections) parts.push_back(absl::StrCat(n, " ", reason));
  return absl::StrCat(total, " pool", total == 1 ? "" : "s",
                      " rejected: ", absl::StrJoin(parts, ", "));
}

std::string DecisionBuilder::Summary() const {
  std::string rej = RejectionText();
  if (d_.feasible) {
    const Option& c = d_.chosen;
    std::string s = absl::StrFormat(
        "%s: %d node%s%s, start %s for %.1f h%s: %s, %s CO2e (%.0f g/kWh%s)", c.pool_id, c.nodes,
        c.nodes == 1 ? "" : "s", c.spot ? " spot" : "", When(c.start),
        absl::ToDoubleHours(c.runtime),
        c.split ? absl::StrFormat(" in %d runs", static_cast<int>(c.slots.size())) : "",
        Usd(c.cost_micros), Kg(c.carbon_mg), c.mean_intensity,
        c.unknown_grid ? absl::StrCat(", ", c.carbon_basis)
                       : (c.carbon_estimated ? ", estimated" : ""));
    if (d_.has_baseline) {
      absl::StrAppend(&s, "; carbon-blind baseline ", d_.baseline.pool_id,
                      " at once: ", Usd(d_.baseline.cost_micros), ", ", Kg(d_.baseline.carbon_mg),
                      " (avoids ", Kg(d_.carbon_avoided_mg), ", costs ",
                      SignedUsd(-d_.cost_saved_micros), ")");
    }
    if (!rej.empty()) absl::StrAppend(&s, "; ", rej);
    return s;
  }
  std::string s = d_.not_now ? "no placement now" : "no feasible placement";
  if (!rej.empty()) absl::StrAppend(&s, ": ", rej);
  if (has_over_cost_) {
    bool cost_binding = CostBinding(), carbon_binding = CarbonBinding();
    if (cost_binding) {
      absl::StrAppend(&s, "; cheapest feasible: ", Usd(over_cost_.cost_micros), " > cap ",
                      Usd(job_.max_cost_micros));
    }
    if (carbon_binding) {
      absl::StrAppend(&s, "; lowest-carbon feasible: ", Kg(over_carbon_.carbon_mg), " > cap ",
                      Kg(job_.max_carbon_mg));
    }
    if (!cost_binding && !carbon_binding) {
      absl::StrAppend(&s, "; no option meets both caps (", Usd(job_.max_cost_micros), ", ",
                      Kg(job_.max_carbon_mg), "): cheapest ", Usd(over_cost_.cost_micros), " / ",
                      Kg(over_cost_.carbon_mg), ", lowest-carbon ", Usd(over_carbon_.cost_micros),
                      " / ", Kg(over_carbon_.carbon_mg));
    }
  }
  if (has_over_team_) {
    const TeamView& t = s_.team;
    if (t.cost_headroom_micros >= 0 && over_team_.cost_micros > t.cost_headroom_micros) {
      absl::StrAppend(&s, "; team budget: cheapest needs ", Usd(over_team_.cost_micros), ", ",
                      Usd(t.cost_headroom_micros), " left");
    } else {
      absl::StrAppend(&s, "; team carbon budget: needs ", Kg(over_team_.carbon_mg), ", ",
                      Kg(t.carbon_headroom_mg), " left");
    }
  }
  if (d_.not_now) absl::StrAppend(&s, "; waits: capacity or quota may free up");
  return s;
}

Decision DecisionBuilder::Run() {
  d_.pools_considered = static_cast<int>(s_.Pools().size());
  d_.carbon_price_micros_per_tonne = ctx_.carbon_price_micros_per_tonne;
  std::string invalid;
  if (job_.gpus <= 0) {
    invalid = "gpus: must be > 0";
  } else if (job_.duration <= absl::ZeroDuration() && !(job_.reference_gpu_hours > 0)) {
    invalid = "work: set reference_gpu_hours or duration (> 0)";
  } else if (!std::isfinite(job_.reference_gpu_hours)) {
    invalid = "reference_gpu_hours: must be finite";
  }
  if (!invalid.empty()) {
    d_.rejections.emplace_back(kReasonInvalidJob, d_.pools_considered);
    d_.summary = absl::StrCat("invalid job: ", invalid);
    return std::move(d_);
  }

  keep_ = static_cast<size_t>(std::max(0, job_.top_k)) + 1;
  feasible_.reserve(keep_ + 1);
  for (int i = 0; i < static_cast<int>(s_.Pools().size()); ++i) EvaluatePool(i);

  for (const auto& [reason, n] : counts_) d_.rejections.emplace_back(reason, n);
  std::sort(d_.rejections.begin(), d_.rejections.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });

  if (has_baseline_) {
    baseline_ = AsapEstimate(baseline_.pool, baseline_.spot,
                             RuntimeHours(job_, s_.Pools()[baseline_.pool]));
    d_.baseline = Materialize(baseline_);
    d_.has_baseline = true;
  }
  if (has_over_cost_) {
    // The quote for the error: the cheapest when the cost cap binds, else the
    // lowest-carbon one.
    d_.best_over_cap = Materialize(CostBinding() || !CarbonBinding() ? over_cost_ : over_carbon_);
    d_.has_best_over_cap = true;
  }

  if (!feasible_.empty()) {
    const Mode mode = job_.mode;
    auto better = [&](const Estimate& a, const Estimate& b) {
      return CompareKeys(mode, KeyOf(a, s_), KeyOf(b, s_)) < 0;
    };
    Estimate best = feasible_.front();  // Keep() holds them best first
    feasible_.erase(feasible_.begin());
    // Starting at once in the chosen pool is the alternative people ask about.
    if (best.start != ctx_.earliest || best.split) {
      Estimate asap = AsapEstimate(best.pool, best.spot, RuntimeHours(job_, s_.Pools()[best.pool]));
      if (CheckEstimate(ctx_, s_.Pools()[best.pool], asap).failed == 0 && !AsapBlocked(asap))
        feasible_.push_back(asap);
    }
    d_.feasible = true;
    d_.chosen = Materialize(best);
    size_t k = std::min<size_t>(std::max(0, job_.top_k), feasible_.size());
    std::partial_sort(feasible_.begin(), feasible_.begin() + k, feasible_.end(), better);
    for (size_t i = 0; i < k; ++i) {
      Option alt = Materialize(feasible_[i]);
      alt.why_not = WhyNot(alt, d_.chosen);
      d_.alternatives.push_back(std::move(alt));
    }
    if (d_.has_baseline) {
      d_.carbon_avoided_mg = d_.baseline.carbon_mg - d_.chosen.carbon_mg;
      d_.cost_saved_micros = d_.baseline.cost_micros - d_.chosen.cost_micros;
    }
  } else {
    d_.not_now = any_not_now_;
  }
  d_.summary = Summary();
  return std::move(d_);
}

}  // namespace

bool BetterOption(Mode mode, const Option& a, const Option& b) {
  return CompareKeys(mode, KeyOf(a), KeyOf(b)) < 0;
}

Decision PlacementEngine::Place(const JobRequest& job, const Snapshot& snapshot) const {
  DecisionBuilder builder(job, snapshot);
  return builder.Run();
}

}  // namespace greenlight::placement
