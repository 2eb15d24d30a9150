// The decision from what the engine's search found (decision_builder.h): the
// choice and its alternatives, the carbon-blind baseline, the quote over the
// caps, the rejection tally and the summary.
#include "services/placement/decision_builder.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/placement/decision_text.h"

namespace greenlight::placement::internal {

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

namespace {

// The job itself is malformed: why, or "" when it is not.
std::string InvalidJobReason(const JobRequest& job) {
  if (job.gpus <= 0) return "gpus: must be > 0";
  if (job.duration <= absl::ZeroDuration() && !(job.reference_gpu_hours > 0)) {
    return "work: set reference_gpu_hours or duration (> 0)";
  }
  if (!std::isfinite(job.reference_gpu_hours)) return "reference_gpu_hours: must be finite";
  return "";
}

}  // namespace

void DecisionBuilder::TallyRejections() {
  for (const auto& [reason, n] : counts_) d_.rejections.emplace_back(reason, n);
  std::sort(d_.rejections.begin(), d_.rejections.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
}

Shortfall DecisionBuilder::ShortfallFound() const {
  Shortfall out;
  if (has_over_cost_) {  // set with has_over_carbon_
    out.over_caps = Shortfall::OverCaps{{over_cost_.cost_micros, over_cost_.carbon_mg},
                                        {over_carbon_.cost_micros, over_carbon_.carbon_mg}};
  }
  if (has_over_team_) out.over_team = QuotedCost{over_team_.cost_micros, over_team_.carbon_mg};
  return out;
}

void DecisionBuilder::QuoteBaselineAndOverCap(const Shortfall& shortfall) {
  if (has_baseline_) {
    baseline_ = AsapEstimate(baseline_.pool, baseline_.spot,
                             RuntimeHours(job_, s_.Pools()[baseline_.pool]));
    d_.baseline = Materialize(baseline_);
    d_.has_baseline = true;
  }
  if (has_over_cost_) {
    // The quote for the error: the cheapest when the cost cap binds, else the
    // lowest-carbon one.
    const bool cheapest = CostCapBinds(job_, shortfall) || !CarbonCapBinds(job_, shortfall);
    d_.best_over_cap = Materialize(cheapest ? over_cost_ : over_carbon_);
    d_.has_best_over_cap = true;
  }
}

void DecisionBuilder::ChooseAndRank() {
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
    alt.why_not = WhyNotText(mode, alt, d_.chosen, ctx_.earliest);
    d_.alternatives.push_back(std::move(alt));
  }
  if (d_.has_baseline) {
    d_.carbon_avoided_mg = d_.baseline.carbon_mg - d_.chosen.carbon_mg;
    d_.cost_saved_micros = d_.baseline.cost_micros - d_.chosen.cost_micros;
  }
}

Decision DecisionBuilder::Run() {
  d_.pools_considered = static_cast<int>(s_.Pools().size());
  d_.carbon_price_micros_per_tonne = ctx_.carbon_price_micros_per_tonne;
  if (std::string invalid = InvalidJobReason(job_); !invalid.empty()) {
    d_.rejections.emplace_back(kReasonInvalidJob, d_.pools_considered);
    d_.summary = absl::StrCat("invalid job: ", invalid);
    return std::move(d_);
  }

  keep_ = static_cast<size_t>(std::max(0, job_.top_k)) + 1;
  feasible_.reserve(keep_ + 1);
  for (int i = 0; i < static_cast<int>(s_.Pools().size()); ++i) EvaluatePool(i);

  TallyRejections();
  const Shortfall shortfall = ShortfallFound();
  QuoteBaselineAndOverCap(shortfall);
  if (!feasible_.empty()) {
    ChooseAndRank();
  } else {
    d_.not_now = any_not_now_;
  }
  d_.summary = SummaryText(d_, job_, s_.team, shortfall);
  return std::move(d_);
}

}  // namespace greenlight::placement::internal
