// Job states and the legal transitions between them. Every state change in
// the scheduler goes through CheckTransition, so illegal moves cannot happen.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::scheduler {

using greenlight::v1::JobState;

// True for SUCCEEDED, FAILED, CANCELLED, BUDGET_EXHAUSTED, REJECTED.
bool IsTerminal(JobState s);
bool IsLegalTransition(JobState from, JobState to);
// OK or FAILED_PRECONDITION "job is SUCCEEDED; cannot become RUNNING".
absl::Status CheckTransition(JobState from, JobState to);
const char* StateName(JobState s);

// The messages a job carries, written once: what a waiting job waits for
// ("GPU quota" or "capacity", from its pending reason), where a running job
// runs, an instant as 2026-03-10T08:00:00Z.
std::string WaitingFor(const greenlight::v1::Job& job);
std::string RunningMessage(const greenlight::v1::Job& job);
std::string FormatUtc(absl::Time t);

}  // namespace greenlight::scheduler
