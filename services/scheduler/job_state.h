// Job states and the legal transitions between them. Every state change in
// the scheduler goes through CheckTransition, so illegal moves cannot happen.
#pragma once

#include "absl/status/status.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::scheduler {

using greenlight::v1::JobState;

// True for SUCCEEDED, FAILED, CANCELLED, BUDGET_EXHAUSTED, REJECTED.
bool IsTerminal(JobState s);
bool IsLegalTransition(JobState from, JobState to);
// OK or FAILED_PRECONDITION "job is SUCCEEDED; cannot become RUNNING".
absl::Status CheckTransition(JobState from, JobState to);
const char* StateName(JobState s);

}  // namespace greenlight::scheduler
