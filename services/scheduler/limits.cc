#include "services/scheduler/limits.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/units.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

namespace {
std::string Key(const std::string& a, const std::string& b) {
  return absl::StrCat(a, std::string(1, '\0'), b);
}
}  // namespace

bool QuotaAllows(const budget::BudgetLedger& ledger, const NodeAllocator& nodes,
                 const v1::Job& job) {
  const v1::Team* t = ledger.FindTeam(job.spec().team());
  if (!t) return false;
  const int gpus = job.spec().gpus();
  if (t->gpu_quota() > 0 && nodes.RunningGpus(job.spec().team()) + gpus > t->gpu_quota())
    return false;
  auto q = t->gpu_quota_by_type().find(job.placement().gpu_type());
  if (q != t->gpu_quota_by_type().end() && q->second > 0 &&
      nodes.RunningGpus(job.spec().team(), job.placement().gpu_type()) + gpus > q->second)
    return false;
  return true;
}

void OverLimits::Note(const budget::BudgetLedger& ledger, const NodeAllocator& nodes) {
  auto fresh_budget = std::move(budget_);
  auto fresh_quota = std::move(quota_);
  budget_.clear();
  quota_.clear();
  auto keep = [](int64_t noted, int64_t now) { return noted > 0 ? std::min(noted, now) : now; };
  for (const auto& [team, period] : ledger.TeamPeriods()) {
    const v1::Team* own = ledger.FindTeam(team);
    if (!own) continue;
    for (const v1::Team* t : {own, ledger.FindTeam(own->parent())}) {
      if (!t) continue;
      budget::Totals r = ledger.RollupTotals(t->name(), period);
      int64_t cost = SatAdd(r.cost_spent_micros, r.cost_reserved_micros);
      int64_t carbon = SatAdd(r.carbon_spent_mg, r.carbon_reserved_mg);
      bool over_cost =
          t->monthly_cost_budget_micros() > 0 && cost > t->monthly_cost_budget_micros();
      bool over_carbon =
          t->monthly_carbon_budget_mg() > 0 && carbon > t->monthly_carbon_budget_mg();
      if (!over_cost && !over_carbon) continue;
      std::string key = Key(t->name(), period);
      std::pair<int64_t, int64_t> before = fresh_budget[key];
      budget_[key] = {over_cost ? keep(before.first, cost) : 0,
                      over_carbon ? keep(before.second, carbon) : 0};
    }
  }
  for (const auto& [team, gpus] : nodes.running_gpus()) {
    const v1::Team* t = ledger.FindTeam(team);
    if (t && t->gpu_quota() > 0 && gpus > t->gpu_quota())
      quota_[team] = static_cast<int>(keep(fresh_quota[team], gpus));
  }
  for (const auto& [team, by_type] : nodes.running_gpus_by_type()) {
    const v1::Team* t = ledger.FindTeam(team);
    if (!t) continue;
    for (const auto& [type, gpus] : by_type) {
      auto q = t->gpu_quota_by_type().find(type);
      std::string key = Key(team, type);
      if (q != t->gpu_quota_by_type().end() && q->second > 0 && gpus > q->second)
        quota_[key] = static_cast<int>(keep(fresh_quota[key], gpus));
    }
  }
}

std::pair<int64_t, int64_t> OverLimits::BudgetLimits(const v1::Team& team,
                                                     const std::string& period) const {
  std::pair<int64_t, int64_t> limits = {team.monthly_cost_budget_micros(),
                                        team.monthly_carbon_budget_mg()};
  auto over = budget_.find(Key(team.name(), period));
  if (over != budget_.end()) {
    limits.first = std::max(limits.first, over->second.first);
    limits.second = std::max(limits.second, over->second.second);
  }
  return limits;
}

int OverLimits::QuotaLimit(const std::string& team, const std::string& gpu_type, int quota) const {
  auto it = quota_.find(gpu_type.empty() ? team : Key(team, gpu_type));
  return it == quota_.end() ? quota : std::max(quota, it->second);
}

AlertBaseline BaselineForAlerts(const budget::BudgetLedger& ledger, const std::string& team,
                                const std::string& period) {
  AlertBaseline b;
  b.team = team;
  b.team_before = ledger.RollupTotals(team, period);
  const v1::Team* t = ledger.FindTeam(team);
  if (t && !t->parent().empty() && ledger.FindTeam(t->parent())) {
    b.parent = t->parent();
    b.parent_before = ledger.RollupTotals(b.parent, period);
  }
  return b;
}

namespace {

std::optional<TeamAlert> CrossedTeamAlert(const budget::BudgetLedger& ledger,
                                          const std::string& team, const budget::Totals& before,
                                          const std::string& period) {
  const v1::Team* t = ledger.FindTeam(team);
  if (!t) return std::nullopt;
  double ratio = AlertRatioOf(*t);
  // The period that was charged, not the clock's: a job charged for last
  // month at a tick in this month compares last month with itself.
  budget::Totals after = ledger.RollupTotals(team, period);
  auto crossed = [&](int64_t budget, int64_t b, int64_t a) {
    return budget > 0 && b < ratio * budget && a >= ratio * budget;
  };
  std::string what;
  if (crossed(t->monthly_cost_budget_micros(),
              before.cost_spent_micros + before.cost_reserved_micros,
              after.cost_spent_micros + after.cost_reserved_micros))
    what = "cost";
  else if (crossed(t->monthly_carbon_budget_mg(),
                   before.carbon_spent_mg + before.carbon_reserved_mg,
                   after.carbon_spent_mg + after.carbon_reserved_mg))
    what = "carbon";
  if (what.empty()) return std::nullopt;
  return TeamAlert{team, absl::StrFormat("team '%s' reached %.0f%% of its monthly %s budget", team,
                                         ratio * 100, what)};
}

}  // namespace

std::vector<TeamAlert> CrossedTeamAlerts(const budget::BudgetLedger& ledger,
                                         const AlertBaseline& baseline, const std::string& period) {
  std::vector<TeamAlert> out;
  if (auto a = CrossedTeamAlert(ledger, baseline.team, baseline.team_before, period))
    out.push_back(*std::move(a));
  if (!baseline.parent.empty()) {
    if (auto a = CrossedTeamAlert(ledger, baseline.parent, baseline.parent_before, period))
      out.push_back(*std::move(a));
  }
  return out;
}

std::optional<std::string> JobAlert(const budget::BudgetLedger& ledger, const v1::Job& job) {
  if (job.alerted()) return std::nullopt;
  const auto& spec = job.spec();
  const v1::Team* team = ledger.FindTeam(spec.team());
  double ratio = team ? AlertRatioOf(*team) : kDefaultAlertRatio;
  if ((spec.max_cost_micros() > 0 && job.accrued_cost_micros() >= ratio * spec.max_cost_micros()) ||
      (spec.max_carbon_mg() > 0 && job.accrued_carbon_mg() >= ratio * spec.max_carbon_mg()))
    return absl::StrFormat("job reached %.0f%% of its cap", ratio * 100);
  return std::nullopt;
}

}  // namespace greenlight::scheduler
