// Limits and alerts: the team GPU quota check, the use left above a budget
// or quota that was lowered below it, and the budget alerts (a team's alert
// ratio crossed by a charge or a reservation; a job's share of its cap).
//
// Single-threaded: read and changed under the core's state lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "greenlight/v1/types.pb.h"
#include "services/budget/ledger.h"
#include "services/scheduler/node_allocator.h"

namespace greenlight::scheduler {

// Whether the team's GPU quota (total and for the job's GPU type) has room
// for the job now.
bool QuotaAllows(const budget::BudgetLedger& ledger, const NodeAllocator& nodes,
                 const greenlight::v1::Job& job);

// Use left above a budget or quota when it was lowered below it (SetTeam, or
// found at load). Lowering is allowed: the new limit binds admissions and
// charges at once, so such use may only shrink; the invariant checker holds
// use to max(limit, noted use).
class OverLimits {
 public:
  // Notes every overshoot now; figures noted before can only have shrunk,
  // so the smaller one is kept and a later SetTeam cannot hide an increase.
  void Note(const budget::BudgetLedger& ledger, const NodeAllocator& nodes);
  // The cost and carbon limits of a team in a period, raised to noted use.
  std::pair<int64_t, int64_t> BudgetLimits(const greenlight::v1::Team& team,
                                           const std::string& period) const;
  // A team's quota (gpu_type "" = total), raised to noted use.
  int QuotaLimit(const std::string& team, const std::string& gpu_type, int quota) const;

 private:
  // Keys: team\0period (cost, carbon); team and team\0gpu type (running GPUs).
  absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> budget_;
  absl::flat_hash_map<std::string, int> quota_;
};

// A team's and its parent's rollups in a period before a change: a change
// that crosses either's alert ratio is that team's BUDGET_ALERT.
struct AlertBaseline {
  std::string team, parent;
  budget::Totals team_before, parent_before;
};
AlertBaseline BaselineForAlerts(const budget::BudgetLedger& ledger, const std::string& team,
                                const std::string& period);
struct TeamAlert {
  std::string team;
  std::string message;
};
// The alerts of the teams whose monthly use in `period` crossed their alert
// ratio since the baseline.
std::vector<TeamAlert> CrossedTeamAlerts(const budget::BudgetLedger& ledger,
                                         const AlertBaseline& baseline, const std::string& period);
// The job alert's message when the job (not alerted yet) reached its team's
// alert ratio of one of its caps.
std::optional<std::string> JobAlert(const budget::BudgetLedger& ledger,
                                    const greenlight::v1::Job& job);

}  // namespace greenlight::scheduler
