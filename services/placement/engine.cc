// The placement engine's search (see engine.h and docs/PLACEMENT.md): filters
// narrow the pools, each surviving (pool, on-demand | spot) is priced at its
// lowest-carbon start (or split plan), and the best options are kept, ranked by
// the mode. decision_builder.cc turns them into the decision, decision_text.cc
// into words.
#include "services/placement/engine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "common/units.h"
#include "services/placement/decision_builder.h"
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

namespace internal {
namespace {

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

}  // namespace

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

// The steps of EvaluatePool, the per-pool loop every decision runs 890 times
// on the real catalogs: inlined, so that naming them costs no calls.
// Keep: `e` joins feasible_ (best first) when it is among the best top_k + 1.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void DecisionBuilder::Keep(const Estimate& e) {
  auto better = [&](const Estimate& a, const Estimate& b) {
    return CompareKeys(job_.mode, KeyOf(a, s_), KeyOf(b, s_)) < 0;
  };
  if (feasible_.size() == keep_ && !better(e, feasible_.back())) return;
  auto at = std::upper_bound(feasible_.begin(), feasible_.end(), e, better);
  feasible_.insert(at, e);
  if (feasible_.size() > keep_) feasible_.pop_back();
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool DecisionBuilder::ScreenPool(const Pool& pool,
                                                                     PoolScreen* screen) {
  const auto& pool_filters = pool_filters_;
  for (size_t i = 0; i < pool_filters.size(); ++i) {
    FilterResult r = pool_filters[i]->Check(ctx_, pool);
    if (r.fit == Fit::kNever) {
      Count(r.reason);
      return false;
    }
    if (r.fit == Fit::kNotNow && screen->not_now.fits()) {
      screen->not_now = r;
      screen->not_now_stage = static_cast<int>(i);
    }
  }
  return true;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool DecisionBuilder::OfferOf(const Pool& pool,
                                                                  PoolOffer* offer) {
  offer->base_hours = duration_hours_ > 0 ? duration_hours_ : RuntimeHours(job_, pool);
  if (!(offer->base_hours > 0) || !std::isfinite(offer->base_hours)) {
    Count(kReasonGpuType);  // no speed figure for this GPU: work cannot be converted
    return false;
  }
  offer->on_demand = pool.price_micros_per_node_hour > 0;
  offer->spot = job_.checkpointable && pool.spot_price_micros_per_node_hour > 0 &&
                (!offer->on_demand || pool.spot_price_micros_per_node_hour * ctx_.spot_factor <
                                          static_cast<double>(pool.price_micros_per_node_hour));
  if (!offer->on_demand && !offer->spot) {
    Count(kReasonCapacity);  // nothing to rent: no price in the catalog
    return false;
  }
  return true;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void DecisionBuilder::RememberOverLimits(const Estimate& e,
                                                                             uint32_t failed) {
  uint32_t caps = kMaxCostBit | kMaxCarbonBit;
  if ((failed & ~caps) == 0) {
    // Only the job's caps fail: remember the best quote for the message.
    if (!has_over_cost_ || CompareKeys(Mode::kCheapest, KeyOf(e, s_), KeyOf(over_cost_, s_)) < 0) {
      over_cost_ = e;
      has_over_cost_ = true;
    }
    if (!has_over_carbon_ ||
        CompareKeys(Mode::kGreenest, KeyOf(e, s_), KeyOf(over_carbon_, s_)) < 0) {
      over_carbon_ = e;
      has_over_carbon_ = true;
    }
  } else if (failed == kTeamBit) {
    if (!has_over_team_ || CompareKeys(Mode::kCheapest, KeyOf(e, s_), KeyOf(over_team_, s_)) < 0) {
      over_team_ = e;
      has_over_team_ = true;
    }
  }
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void DecisionBuilder::ConsiderBaseline(
    const Estimate& contiguous, const EstimateCheck& check) {
  // The carbon-blind baseline sees prices, caps and capacity, not carbon.
  bool blind_ok =
      !AsapBlocked(contiguous) && (check.failed & (kDeadlineBit | kMaxCostBit)) == 0 &&
      (s_.team.cost_headroom_micros < 0 || contiguous.cost_micros <= s_.team.cost_headroom_micros);
  if (!blind_ok) return;
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

ABSL_ATTRIBUTE_ALWAYS_INLINE inline bool DecisionBuilder::JudgeVariant(const Estimate& e,
                                                                       const EstimateCheck& check,
                                                                       bool now, bool booked_out,
                                                                       const PoolScreen& screen,
                                                                       PoolVerdict* verdict) {
  if (check.failed == 0) {
    if (now && !booked_out) {
      Keep(e);
      return true;
    }
    // Would fit once capacity or quota frees up: that is the pool's verdict
    // whatever its other variant says.
    any_not_now_ = true;
    *verdict = booked_out ? PoolVerdict{kNotNowStage + CapacityStage(), kReasonCapacity}
                          : PoolVerdict{kNotNowStage + screen.not_now_stage, screen.not_now.reason};
    return false;
  }
  Raise(verdict, static_cast<int>(pool_filters_.size()) + check.first_index, check.first_reason);
  RememberOverLimits(e, check.failed);
  return false;
}

// The pricing stays in this loop's body: moved into a step of its own (a
// struct of results) it cost ~1 % more instructions per decision.
void DecisionBuilder::EvaluatePool(int index) {
  const Pool& pool = s_.Pools()[index];
  PoolScreen screen;
  if (!ScreenPool(pool, &screen)) return;
  PoolOffer offer;
  if (!OfferOf(pool, &offer)) return;
  const bool now = screen.not_now.fits();
  const int stage0 = static_cast<int>(pool_filters_.size());
  PoolVerdict verdict;
  bool pool_fits = false;
  Estimate& contiguous = scratch_contiguous_;
  Estimate& split = scratch_split_;
  for (int v = 0; v < 2; ++v) {
    const bool spot = v == 1;
    if (spot ? !offer.spot : !offer.on_demand) continue;
    const double base_hours = offer.base_hours;
    if (base_hours * (spot ? ctx_.spot_factor : 1.0) > kMaxRuntimeHours) {
      Raise(&verdict, stage0, kReasonRuntime);
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
      Raise(&verdict, stage0, kReasonDeadline);
      continue;
    }
    if (JudgeVariant(*chosen, check, now, booked_out, screen, &verdict)) pool_fits = true;
    if (now && !booked_out) ConsiderBaseline(contiguous, check);
  }
  if (!pool_fits) Count(verdict.reason);
}

}  // namespace internal

bool BetterOption(Mode mode, const Option& a, const Option& b) {
  return internal::CompareKeys(mode, internal::KeyOf(a), internal::KeyOf(b)) < 0;
}

Decision PlacementEngine::Place(const JobRequest& job, const Snapshot& snapshot) const {
  internal::DecisionBuilder builder(job, snapshot);
  return builder.Run();
}

}  // namespace greenlight::placement
