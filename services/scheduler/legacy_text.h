// The deprecated text twins of the API's enums (Job.pending_reason,
// JobEvent.type, Team.on_budget_exhausted), kept readable for one release.
// This is the only file that touches them: writers set the enum and its text
// together, and rows stored by an older release (text only) get their enum
// filled in when they are loaded or submitted.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::scheduler {

// "QUOTA", "CAPACITY" or "" (the old text of each reason).
std::string PendingText(greenlight::v1::PendingReason r);
// "SUBMITTED", "STATE", "BUDGET_ALERT", "ACCRUED".
std::string EventTypeText(greenlight::v1::JobEventType t);

// Set an enum and its deprecated text together.
void SetPending(greenlight::v1::Job& job, greenlight::v1::PendingReason r);
void SetEventType(greenlight::v1::JobEvent& e, greenlight::v1::JobEventType t);

// Rows of an older release: the enum from the text where only the text is set.
void UpgradeLegacy(greenlight::v1::Job& job);
void UpgradeLegacy(greenlight::v1::JobEvent& e);

// A team's policy from either field: INVALID_ARGUMENT naming
// team.on_budget_exhausted for unknown text, or both fields when they
// disagree. UNSPECIFIED means FINISH.
absl::StatusOr<greenlight::v1::BudgetPolicy> BudgetPolicyOf(const greenlight::v1::Team& t);
// Both fields set from the effective policy (FINISH when unspecified).
void NormalizeBudgetPolicy(greenlight::v1::Team& t, greenlight::v1::BudgetPolicy p);

}  // namespace greenlight::scheduler
