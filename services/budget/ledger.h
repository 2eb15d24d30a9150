// BudgetLedger: reserve / accrue / release accounting of money and carbon per
// team and UTC month, over an append-only list of rows. The in-memory totals
// are a pure function of the rows (Apply), so a restart rebuilds them from the
// store and GetUsage, metrics and the webhook all read the same view.
//
// Invariant kept by every method: for every team and its parent, in every
// period, spent + reserved <= budget (budgets of 0 are unlimited).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"
#include "services/store/store.h"

namespace greenlight::budget {

struct Totals {
  int64_t cost_spent_micros = 0;
  int64_t cost_reserved_micros = 0;
  int64_t carbon_spent_mg = 0;
  int64_t carbon_reserved_mg = 0;
  int64_t energy_spent_mwh = 0;
  void Add(const store::LedgerRow& r);
  Totals& operator+=(const Totals& o);
};

// A job's open reservation and what it has accrued.
struct JobAccount {
  std::string team;
  std::string reserve_period;
  int64_t cost_reserved_micros = 0;  // still reserved
  int64_t carbon_reserved_mg = 0;
  int64_t cost_accrued_micros = 0;  // charged so far (all periods)
  int64_t carbon_accrued_mg = 0;
  int64_t energy_accrued_mwh = 0;
  bool open = false;  // has a reservation not yet released
};

// Result of charging a running job.
struct AccrueResult {
  std::vector<store::LedgerRow> rows;
  // Fraction (0..1] of the requested delta that could be charged; < 1 means a
  // budget was hit and the job must stop.
  double fraction = 1.0;
  std::string limit;  // which budget clipped it (message), empty if none
};

class BudgetLedger {
 public:
  void SetTeam(const greenlight::v1::Team& team);
  const greenlight::v1::Team* FindTeam(const std::string& name) const;
  std::vector<greenlight::v1::Team> Teams() const;

  // Folds a row into the totals and job accounts (load and live use).
  void Apply(const store::LedgerRow& row);

  // Own rows of a team in a period.
  Totals TeamTotals(const std::string& team, const std::string& period) const;
  // Own rows plus those of its child teams (what the team's budget is checked against).
  Totals RollupTotals(const std::string& team, const std::string& period) const;
  const JobAccount* FindJob(const std::string& job_id) const;

  // OK if team and parent can take `cost`/`carbon` more in `period`, else
  // RESOURCE_EXHAUSTED naming the team, the budget and the shortfall.
  absl::Status CheckHeadroom(const std::string& team, const std::string& period, int64_t cost,
                             int64_t carbon) const;
  // Remaining (budget - spent - reserved) over team and parent; -1 = unlimited.
  int64_t CostHeadroom(const std::string& team, const std::string& period) const;
  int64_t CarbonHeadroom(const std::string& team, const std::string& period) const;

  // Reserves after CheckHeadroom; returns the rows written (already applied).
  absl::StatusOr<std::vector<store::LedgerRow>> Reserve(const std::string& job_id,
                                                        const std::string& team, absl::Time now,
                                                        int64_t cost, int64_t carbon,
                                                        const std::string& reason);
  // Charges actual spend of a running job for a slot in `at`'s period, clipped
  // so that no budget (team, parent) is overshot; rows already applied.
  AccrueResult Accrue(const std::string& job_id, absl::Time at, absl::Time now, int64_t cost,
                      int64_t carbon, int64_t energy_mwh, const std::string& reason);
  // Gives back what remains reserved ("release" for cancel/stop, "settle" at
  // successful completion). Rows already applied. Idempotent.
  std::vector<store::LedgerRow> Release(const std::string& job_id, absl::Time now,
                                        greenlight::v1::LedgerKind kind, const std::string& reason);
  // A budget change row (amounts 0, reason says old -> new).
  store::LedgerRow BudgetChange(const std::string& team, absl::Time now, const std::string& reason);

  // For invariant checks: every (team, period) with rows.
  std::vector<std::pair<std::string, std::string>> TeamPeriods() const;

 private:
  int64_t Headroom(const std::string& team, const std::string& period, bool cost) const;

  absl::flat_hash_map<std::string, greenlight::v1::Team> teams_;
  // team -> period -> totals (own rows)
  absl::flat_hash_map<std::string, std::map<std::string, Totals>> totals_;
  absl::flat_hash_map<std::string, JobAccount> jobs_;
};

}  // namespace greenlight::budget
