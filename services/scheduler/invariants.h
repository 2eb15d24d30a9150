// The invariant checker: budgets, quotas, ledger = job accruals, the state
// indexes, the capacity calendar and node capacity, all in one consistent
// view of a SchedulerCore. A test-side library (tests, the replay's
// --check_invariants), not part of greenlightd.
#pragma once

#include "absl/status/status.h"
#include "services/scheduler/core.h"

namespace greenlight::scheduler {

class InvariantChecker {
 public:
  // OK, or INTERNAL naming the first invariant broken.
  static absl::Status Check(const SchedulerCore& core);

 private:
  static absl::Status CheckBudgets(const SchedulerCore& core);
  static absl::Status CheckQuotas(const SchedulerCore& core);
  static absl::Status CheckJobsAgainstLedger(const SchedulerCore& core);
  static absl::Status CheckCalendar(const SchedulerCore& core);
};

inline absl::Status CheckInvariants(const SchedulerCore& core) {
  return InvariantChecker::Check(core);
}

}  // namespace greenlight::scheduler
