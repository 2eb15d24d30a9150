#include "services/scheduler/invariants.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "services/scheduler/job_state.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

absl::Status InvariantChecker::Check(const SchedulerCore& core) {
  SchedulerCore::CommittedReadLock l(&core);
  RETURN_IF_ERROR(CheckBudgets(core));
  RETURN_IF_ERROR(CheckQuotas(core));
  RETURN_IF_ERROR(CheckJobsAgainstLedger(core));
  RETURN_IF_ERROR(core.jobs_.CheckIndexes());
  RETURN_IF_ERROR(CheckCalendar(core));
  return core.nodes_.Check();
}

absl::Status InvariantChecker::CheckBudgets(const SchedulerCore& core) {
  // Budgets: spent + reserved <= budget for every team and its parent (rollup)
  // in every period with rows; use left over a lowered budget may only shrink.
  const budget::BudgetLedger& ledger = core.ledger_;
  for (const auto& [team, period] : ledger.TeamPeriods()) {
    const v1::Team* own = ledger.FindTeam(team);
    if (!own) continue;
    for (const v1::Team* t : {own, ledger.FindTeam(own->parent())}) {
      if (!t) continue;
      budget::Totals r = ledger.RollupTotals(t->name(), period);
      auto [cost_limit, carbon_limit] = core.over_limits_.BudgetLimits(*t, period);
      if (t->monthly_cost_budget_micros() > 0 &&
          SatAdd(r.cost_spent_micros, r.cost_reserved_micros) > cost_limit)
        return absl::InternalError(
            absl::StrCat("cost budget overshot: team ", t->name(), " ", period));
      if (t->monthly_carbon_budget_mg() > 0 &&
          SatAdd(r.carbon_spent_mg, r.carbon_reserved_mg) > carbon_limit)
        return absl::InternalError(
            absl::StrCat("carbon budget overshot: team ", t->name(), " ", period));
      if (r.cost_reserved_micros < 0 || r.carbon_reserved_mg < 0)
        return absl::InternalError(
            absl::StrCat("negative reservation: team ", t->name(), " ", period));
    }
  }
  return absl::OkStatus();
}

absl::Status InvariantChecker::CheckQuotas(const SchedulerCore& core) {
  // Quota (total and per GPU type); use left over a lowered quota may only shrink.
  const budget::BudgetLedger& ledger = core.ledger_;
  for (const auto& [team, gpus] : core.nodes_.running_gpus()) {
    const v1::Team* t = ledger.FindTeam(team);
    if (t && t->gpu_quota() > 0 && gpus > core.over_limits_.QuotaLimit(team, "", t->gpu_quota()))
      return absl::InternalError(absl::StrCat("gpu quota exceeded: team ", team));
    if (gpus < 0) return absl::InternalError(absl::StrCat("negative running gpus: team ", team));
  }
  for (const auto& [team, by_type] : core.nodes_.running_gpus_by_type()) {
    const v1::Team* t = ledger.FindTeam(team);
    for (const auto& [type, gpus] : by_type) {
      if (gpus < 0)
        return absl::InternalError(absl::StrCat("negative running gpus: team ", team, " ", type));
      if (!t) continue;
      auto q = t->gpu_quota_by_type().find(type);
      if (q != t->gpu_quota_by_type().end() && q->second > 0 &&
          gpus > core.over_limits_.QuotaLimit(team, type, q->second))
        return absl::InternalError(absl::StrCat("gpu quota of ", type, " exceeded: team ", team));
    }
  }
  return absl::OkStatus();
}

absl::Status InvariantChecker::CheckJobsAgainstLedger(const SchedulerCore& core) {
  // Jobs agree with the ledger; finished jobs hold no reservation.
  for (const std::string& id : core.jobs_.order()) {
    const v1::Job& j = *core.jobs_.Find(id);
    const budget::JobAccount* a = core.ledger_.FindJob(id);
    if (!a) return absl::InternalError(absl::StrCat("job without ledger rows: ", id));
    if (IsTerminal(j.state()) &&
        (a->open || a->cost_reserved_micros != 0 || a->carbon_reserved_mg != 0))
      return absl::InternalError(absl::StrCat("finished job still holds a reservation: ", id));
    if (a->cost_accrued_micros != j.accrued_cost_micros() ||
        a->carbon_accrued_mg != j.accrued_carbon_mg())
      return absl::InternalError(absl::StrCat("job accrual differs from the ledger: ", id));
    if (j.spec().max_cost_micros() > 0 && j.accrued_cost_micros() > j.spec().max_cost_micros())
      return absl::InternalError(absl::StrCat("job cap overshot: ", id));
    if (j.spec().max_carbon_mg() > 0 && j.accrued_carbon_mg() > j.spec().max_carbon_mg())
      return absl::InternalError(absl::StrCat("job carbon cap overshot: ", id));
    // Running jobs hold nodes, others none.
    if (j.state() != v1::JOB_STATE_RUNNING && core.nodes_.Holds(id))
      return absl::InternalError(absl::StrCat("job holds nodes but does not run: ", id));
  }
  return absl::OkStatus();
}

absl::Status InvariantChecker::CheckCalendar(const SchedulerCore& core) {
  // One booking per planned job, and the per-pool deltas are exactly the
  // sum of the bookings' windows.
  size_t planned = 0;
  for (const auto& [_, j] : core.jobs_.active()) planned += j->state() == v1::JOB_STATE_PLANNED;
  if (core.calendar_.size() != planned)
    return absl::InternalError(absl::StrCat("capacity calendar: ", core.calendar_.size(),
                                            " bookings for ", planned, " planned jobs"));
  const auto& active = core.jobs_.active();
  return core.calendar_.Check([&](int64_t seq) {
    auto it = active.find(seq);
    return it != active.end() && it->second->state() == v1::JOB_STATE_PLANNED;
  });
}

}  // namespace greenlight::scheduler
