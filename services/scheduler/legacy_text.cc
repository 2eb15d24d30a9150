// The deprecated text fields, in one place (see legacy_text.h).
#include "services/scheduler/legacy_text.h"

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/error_details.h"

// This file is the one reader and writer of the deprecated fields.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace greenlight::scheduler {
namespace v1 = greenlight::v1;

std::string PendingText(v1::PendingReason r) {
  switch (r) {
    case v1::PENDING_REASON_QUOTA:
      return "QUOTA";
    case v1::PENDING_REASON_CAPACITY:
      return "CAPACITY";
    default:
      return "";
  }
}

std::string EventTypeText(v1::JobEventType t) {
  switch (t) {
    case v1::JOB_EVENT_TYPE_SUBMITTED:
      return "SUBMITTED";
    case v1::JOB_EVENT_TYPE_STATE:
      return "STATE";
    case v1::JOB_EVENT_TYPE_BUDGET_ALERT:
      return "BUDGET_ALERT";
    case v1::JOB_EVENT_TYPE_ACCRUED:
      return "ACCRUED";
    default:
      return "";
  }
}

void SetPending(v1::Job& job, v1::PendingReason r) {
  job.set_pending(r);
  job.set_pending_reason(PendingText(r));
}

void SetEventType(v1::JobEvent& e, v1::JobEventType t) {
  e.set_event_type(t);
  e.set_type(EventTypeText(t));
}

void UpgradeLegacy(v1::Job& job) {
  if (job.pending() != v1::PENDING_REASON_UNSPECIFIED || job.pending_reason().empty()) return;
  if (job.pending_reason() == "QUOTA") job.set_pending(v1::PENDING_REASON_QUOTA);
  if (job.pending_reason() == "CAPACITY") job.set_pending(v1::PENDING_REASON_CAPACITY);
}

void UpgradeLegacy(v1::JobEvent& e) {
  if (e.event_type() != v1::JOB_EVENT_TYPE_UNSPECIFIED || e.type().empty()) return;
  for (auto t : {v1::JOB_EVENT_TYPE_SUBMITTED, v1::JOB_EVENT_TYPE_STATE,
                 v1::JOB_EVENT_TYPE_BUDGET_ALERT, v1::JOB_EVENT_TYPE_ACCRUED}) {
    if (e.type() == EventTypeText(t)) e.set_event_type(t);
  }
}

absl::StatusOr<v1::BudgetPolicy> BudgetPolicyOf(const v1::Team& t) {
  if (!v1::BudgetPolicy_IsValid(t.budget_policy())) {
    return InvalidField("team.budget_policy", "must be BUDGET_POLICY_FINISH or BUDGET_POLICY_STOP");
  }
  v1::BudgetPolicy from_text = v1::BUDGET_POLICY_UNSPECIFIED;
  if (t.on_budget_exhausted() == "finish") {
    from_text = v1::BUDGET_POLICY_FINISH;
  } else if (t.on_budget_exhausted() == "stop") {
    from_text = v1::BUDGET_POLICY_STOP;
  } else if (!t.on_budget_exhausted().empty()) {
    return InvalidField("team.on_budget_exhausted",
                        "must be 'finish' or 'stop' (deprecated: set budget_policy)");
  }
  v1::BudgetPolicy p = t.budget_policy();
  if (p != v1::BUDGET_POLICY_UNSPECIFIED && from_text != v1::BUDGET_POLICY_UNSPECIFIED &&
      p != from_text) {
    return InvalidField("team.budget_policy",
                        absl::StrCat("disagrees with the deprecated on_budget_exhausted '",
                                     t.on_budget_exhausted(), "'; set only budget_policy"));
  }
  if (p == v1::BUDGET_POLICY_UNSPECIFIED) p = from_text;
  return p == v1::BUDGET_POLICY_UNSPECIFIED ? v1::BUDGET_POLICY_FINISH : p;
}

void NormalizeBudgetPolicy(v1::Team& t, v1::BudgetPolicy p) {
  if (p == v1::BUDGET_POLICY_UNSPECIFIED) p = v1::BUDGET_POLICY_FINISH;
  t.set_budget_policy(p);
  t.set_on_budget_exhausted(p == v1::BUDGET_POLICY_STOP ? "stop" : "finish");
}

}  // namespace greenlight::scheduler
