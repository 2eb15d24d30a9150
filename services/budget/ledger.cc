#include "services/budget/ledger.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/error_details.h"
#include "common/units.h"
#include "services/budget/period.h"

namespace greenlight::budget {
namespace {

constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

std::string Usd(int64_t micros) { return Money::FromMicros(micros).ToString(); }
std::string Kg(int64_t mg) { return absl::StrFormat("%.3f kgCO2e", static_cast<double>(mg) / 1e6); }

}  // namespace

void Totals::Add(const store::LedgerRow& r) {
  cost_spent_micros = SatAdd(cost_spent_micros, r.cost_spent_micros);
  cost_reserved_micros = SatAdd(cost_reserved_micros, r.cost_reserved_micros);
  carbon_spent_mg = SatAdd(carbon_spent_mg, r.carbon_spent_mg);
  carbon_reserved_mg = SatAdd(carbon_reserved_mg, r.carbon_reserved_mg);
  energy_spent_mwh = SatAdd(energy_spent_mwh, r.energy_spent_mwh);
}

Totals& Totals::operator+=(const Totals& o) {
  cost_spent_micros = SatAdd(cost_spent_micros, o.cost_spent_micros);
  cost_reserved_micros = SatAdd(cost_reserved_micros, o.cost_reserved_micros);
  carbon_spent_mg = SatAdd(carbon_spent_mg, o.carbon_spent_mg);
  carbon_reserved_mg = SatAdd(carbon_reserved_mg, o.carbon_reserved_mg);
  energy_spent_mwh = SatAdd(energy_spent_mwh, o.energy_spent_mwh);
  return *this;
}

void BudgetLedger::SetTeam(const greenlight::v1::Team& team) { teams_[team.name()] = team; }

const greenlight::v1::Team* BudgetLedger::FindTeam(const std::string& name) const {
  auto it = teams_.find(name);
  return it == teams_.end() ? nullptr : &it->second;
}

std::vector<greenlight::v1::Team> BudgetLedger::Teams() const {
  std::vector<greenlight::v1::Team> out;
  for (const auto& [_, t] : teams_) out.push_back(t);
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return out;
}

void BudgetLedger::Apply(const store::LedgerRow& r) {
  totals_[r.team][r.period].Add(r);
  if (r.job_id.empty()) return;
  JobAccount& a = jobs_[r.job_id];
  a.team = r.team;
  if (r.kind == greenlight::v1::LEDGER_KIND_RESERVE) {
    a.reserve_period = r.period;
    a.open = true;
  }
  a.cost_reserved_micros += r.cost_reserved_micros;
  a.carbon_reserved_mg += r.carbon_reserved_mg;
  a.cost_accrued_micros += r.cost_spent_micros;
  a.carbon_accrued_mg += r.carbon_spent_mg;
  a.energy_accrued_mwh += r.energy_spent_mwh;
  if (r.kind == greenlight::v1::LEDGER_KIND_RELEASE || r.kind == greenlight::v1::LEDGER_KIND_SETTLE)
    a.open = false;
}

Totals BudgetLedger::TeamTotals(const std::string& team, const std::string& period) const {
  auto it = totals_.find(team);
  if (it == totals_.end()) return {};
  auto p = it->second.find(period);
  return p == it->second.end() ? Totals{} : p->second;
}

Totals BudgetLedger::RollupTotals(const std::string& team, const std::string& period) const {
  Totals t = TeamTotals(team, period);
  for (const auto& [name, child] : teams_) {
    if (child.parent() == team && name != team) t += TeamTotals(name, period);
  }
  return t;
}

const JobAccount* BudgetLedger::FindJob(const std::string& job_id) const {
  auto it = jobs_.find(job_id);
  return it == jobs_.end() ? nullptr : &it->second;
}

int64_t BudgetLedger::Headroom(const std::string& team, const std::string& period,
                               bool cost) const {
  int64_t best = kUnlimited;
  std::string name = team;
  // The team, then its parent (two levels).
  for (int level = 0; level < 2 && !name.empty(); ++level) {
    const auto* t = FindTeam(name);
    if (t == nullptr) break;
    int64_t budget = cost ? t->monthly_cost_budget_micros() : t->monthly_carbon_budget_mg();
    if (budget > 0) {
      Totals r = RollupTotals(name, period);
      int64_t used = cost ? SatAdd(r.cost_spent_micros, r.cost_reserved_micros)
                          : SatAdd(r.carbon_spent_mg, r.carbon_reserved_mg);
      best = std::min(best, std::max<int64_t>(0, budget - used));
    }
    name = t->parent();
  }
  return best;
}

int64_t BudgetLedger::CostHeadroom(const std::string& team, const std::string& period) const {
  int64_t h = Headroom(team, period, true);
  return h == kUnlimited ? -1 : h;
}
int64_t BudgetLedger::CarbonHeadroom(const std::string& team, const std::string& period) const {
  int64_t h = Headroom(team, period, false);
  return h == kUnlimited ? -1 : h;
}

absl::Status BudgetLedger::CheckHeadroom(const std::string& team, const std::string& period,
                                         int64_t cost, int64_t carbon) const {
  std::string name = team;
  for (int level = 0; level < 2 && !name.empty(); ++level) {
    const auto* t = FindTeam(name);
    if (t == nullptr) break;
    Totals r = RollupTotals(name, period);
    const char* who = level == 0 ? "team" : "parent";
    if (t->monthly_cost_budget_micros() > 0) {
      int64_t used = SatAdd(r.cost_spent_micros, r.cost_reserved_micros);
      int64_t need = SatAdd(used, cost);
      if (need > t->monthly_cost_budget_micros()) {
        return WithReason(
            absl::ResourceExhaustedError(absl::StrCat(
                who, " '", name, "' monthly cost budget ", Usd(t->monthly_cost_budget_micros()),
                " for ", period, ": spent ", Usd(r.cost_spent_micros), " + reserved ",
                Usd(r.cost_reserved_micros), " + this job ", Usd(cost), " exceeds it by ",
                Usd(need - t->monthly_cost_budget_micros()),
                "; raise the budget (Budgets.SetTeam), lower max_cost, or wait for the next "
                "period")),
            reason::kTeamBudgetExhausted, {{"team", name}, {"budget", "cost"}});
      }
    }
    if (t->monthly_carbon_budget_mg() > 0) {
      int64_t used = SatAdd(r.carbon_spent_mg, r.carbon_reserved_mg);
      int64_t need = SatAdd(used, carbon);
      if (need > t->monthly_carbon_budget_mg()) {
        return WithReason(
            absl::ResourceExhaustedError(absl::StrCat(
                who, " '", name, "' monthly carbon budget ", Kg(t->monthly_carbon_budget_mg()),
                " for ", period, ": emitted ", Kg(r.carbon_spent_mg), " + reserved ",
                Kg(r.carbon_reserved_mg), " + this job ", Kg(carbon), " exceeds it by ",
                Kg(need - t->monthly_carbon_budget_mg()),
                "; raise the budget, choose greener regions or later start, or wait for the next "
                "period")),
            reason::kTeamBudgetExhausted, {{"team", name}, {"budget", "carbon"}});
      }
    }
    name = t->parent();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<store::LedgerRow>> BudgetLedger::Reserve(const std::string& job_id,
                                                                    const std::string& team,
                                                                    absl::Time now, int64_t cost,
                                                                    int64_t carbon,
                                                                    const std::string& reason) {
  std::string period = PeriodOf(now);
  absl::Status st = CheckHeadroom(team, period, cost, carbon);
  if (!st.ok()) return st;
  store::LedgerRow r;
  r.time_us = absl::ToUnixMicros(now);
  r.team = team;
  r.period = period;
  r.job_id = job_id;
  r.kind = greenlight::v1::LEDGER_KIND_RESERVE;
  r.cost_reserved_micros = cost;
  r.carbon_reserved_mg = carbon;
  r.reason = reason;
  Apply(r);
  return std::vector<store::LedgerRow>{r};
}

AccrueResult BudgetLedger::Accrue(const std::string& job_id, absl::Time at, absl::Time now,
                                  int64_t cost, int64_t carbon, int64_t energy_mwh,
                                  const std::string& reason) {
  AccrueResult res;
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || cost < 0 || carbon < 0) return res;
  JobAccount& a = it->second;
  std::string period = PeriodOf(at);
  bool same = period == a.reserve_period;
  int64_t take_cost =
      same ? std::min(cost, a.cost_reserved_micros) : std::min(cost, a.cost_reserved_micros);
  int64_t take_carbon = std::min(carbon, a.carbon_reserved_mg);
  // What the charge adds to spent + reserved in `period` beyond the reservation.
  int64_t extra_cost = same ? cost - take_cost : cost;
  int64_t extra_carbon = same ? carbon - take_carbon : carbon;
  int64_t h_cost = Headroom(a.team, period, true);
  int64_t h_carbon = Headroom(a.team, period, false);
  double f = 1.0;
  if (extra_cost > h_cost) {
    // Charge only what fits: the reservation part plus the headroom.
    double allowed = static_cast<double>(same ? take_cost + h_cost : h_cost);
    f = std::min(f, cost > 0 ? allowed / static_cast<double>(cost) : 1.0);
    res.limit = "team cost budget";
  }
  if (extra_carbon > h_carbon) {
    double allowed = static_cast<double>(same ? take_carbon + h_carbon : h_carbon);
    double fc = carbon > 0 ? allowed / static_cast<double>(carbon) : 1.0;
    if (fc < f) {
      f = fc;
      res.limit = "team carbon budget";
    }
  }
  f = std::clamp(f, 0.0, 1.0);
  res.fraction = f;
  int64_t c = f < 1.0 ? static_cast<int64_t>(static_cast<double>(cost) * f) : cost;
  int64_t g = f < 1.0 ? static_cast<int64_t>(static_cast<double>(carbon) * f) : carbon;
  int64_t e = f < 1.0 ? static_cast<int64_t>(static_cast<double>(energy_mwh) * f) : energy_mwh;
  int64_t give_cost = std::min(c, a.cost_reserved_micros);
  int64_t give_carbon = std::min(g, a.carbon_reserved_mg);
  int64_t t_us = absl::ToUnixMicros(now);
  if (same) {
    store::LedgerRow r{
        0, t_us,       a.team, period,       job_id, greenlight::v1::LEDGER_KIND_ACCRUE,
        c, -give_cost, g,      -give_carbon, e,      reason};
    Apply(r);
    res.rows.push_back(r);
  } else {
    // Each month is charged for its own part; the reservation (made in its
    // own month) shrinks by the same amount.
    store::LedgerRow spent{0, t_us, a.team, period, job_id, greenlight::v1::LEDGER_KIND_ACCRUE,
                           c, 0,    g,      0,      e,      reason};
    Apply(spent);
    res.rows.push_back(spent);
    if (give_cost > 0 || give_carbon > 0) {
      store::LedgerRow moved{
          0, t_us,       a.team, a.reserve_period, job_id, greenlight::v1::LEDGER_KIND_ACCRUE,
          0, -give_cost, 0,      -give_carbon,     0,      absl::StrCat("charged in ", period)};
      Apply(moved);
      res.rows.push_back(moved);
    }
  }
  return res;
}

std::vector<store::LedgerRow> BudgetLedger::Release(const std::string& job_id, absl::Time now,
                                                    greenlight::v1::LedgerKind kind,
                                                    const std::string& reason) {
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || !it->second.open) return {};
  JobAccount& a = it->second;
  store::LedgerRow r{0, absl::ToUnixMicros(now), a.team, a.reserve_period,      job_id, kind,
                     0, -a.cost_reserved_micros, 0,      -a.carbon_reserved_mg, 0,      reason};
  Apply(r);
  return {r};
}

store::LedgerRow BudgetLedger::BudgetChange(const std::string& team, absl::Time now,
                                            const std::string& reason) {
  store::LedgerRow r{0,    absl::ToUnixMicros(now),
                     team, PeriodOf(now),
                     "",   greenlight::v1::LEDGER_KIND_BUDGET,
                     0,    0,
                     0,    0,
                     0,    reason};
  Apply(r);
  return r;
}

std::vector<std::pair<std::string, std::string>> BudgetLedger::TeamPeriods() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [team, periods] : totals_)
    for (const auto& [period, _] : periods) out.emplace_back(team, period);
  return out;
}

}  // namespace greenlight::budget
