// Errors as types: every refusal carries a google.rpc.ErrorInfo with a stable
// reason, and every bad field a google.rpc.BadRequest field violation, as
// absl::Status payloads that the gRPC adapter forwards in the status details.
// Clients branch on the reason, never on the message text.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace greenlight {

inline constexpr char kErrorDomain[] = "greenlight.dev";
inline constexpr char kErrorInfoTypeUrl[] = "type.googleapis.com/google.rpc.ErrorInfo";
inline constexpr char kBadRequestTypeUrl[] = "type.googleapis.com/google.rpc.BadRequest";

// The reasons (google.rpc.ErrorInfo.reason). Stable: clients and metrics use them.
namespace reason {
// INVALID_ARGUMENT: a field breaks a rule (the BadRequest names it).
inline constexpr char kInvalidField[] = "INVALID_FIELD";
// RESOURCE_EXHAUSTED: the team's (or its parent's) budget of the period
// cannot cover the job's quote.
inline constexpr char kTeamBudgetExhausted[] = "TEAM_BUDGET_EXHAUSTED";
// RESOURCE_EXHAUSTED: the scheduler's command queue is full; retry later.
inline constexpr char kQueueFull[] = "QUEUE_FULL";
// RESOURCE_EXHAUSTED: too many submits and estimates in progress; retry later.
inline constexpr char kServerOverloaded[] = "SERVER_OVERLOADED";
// RESOURCE_EXHAUSTED: the team is over its submit rate or in-flight limit.
inline constexpr char kTeamRateLimited[] = "TEAM_RATE_LIMITED";
// RESOURCE_EXHAUSTED: only_if_it_can_start_now and the job would wait
// (metadata "cause": CAPACITY or QUOTA).
inline constexpr char kCannotStartNow[] = "CANNOT_START_NOW";
// FAILED_PRECONDITION: no placement meets the job's caps or constraints
// (the best quote is in the details).
inline constexpr char kCapExceeded[] = "CAP_EXCEEDED";
// FAILED_PRECONDITION: the job is larger than its team's quota for the GPU type.
inline constexpr char kGpuTypeQuota[] = "GPU_TYPE_QUOTA";
// FAILED_PRECONDITION: the job's state does not allow the change (cancel of a finished job).
inline constexpr char kJobFinished[] = "JOB_FINISHED";
// UNAVAILABLE: the server is shutting down, or a command was not picked up in time.
inline constexpr char kUnavailable[] = "SERVER_UNAVAILABLE";
}  // namespace reason

// `st` with an ErrorInfo of `reason` (replacing one it had).
absl::Status WithReason(absl::Status st, absl::string_view reason,
                        const std::map<std::string, std::string>& metadata = {});

// INVALID_ARGUMENT "field: rule" with reason INVALID_FIELD and a BadRequest
// naming the field.
absl::Status InvalidField(absl::string_view field, absl::string_view rule);

// An INVALID_ARGUMENT without a BadRequest gets one (and reason
// INVALID_FIELD) from its "field.path: rule" message, so every bad-input
// error a client sees names its field in the details. Others pass unchanged.
absl::Status WithFieldViolation(absl::Status st);

// The ErrorInfo reason of `st`, or "" when it has none.
std::string ReasonOf(const absl::Status& st);
// One metadata value of the ErrorInfo, or "".
std::string ReasonMetadata(const absl::Status& st, const std::string& key);
// The BadRequest field violations of `st` as (field, description).
std::vector<std::pair<std::string, std::string>> FieldViolations(const absl::Status& st);

}  // namespace greenlight
