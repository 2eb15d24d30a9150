#include "services/scheduler/job_state.h"

#include "absl/strings/str_cat.h"

namespace greenlight::scheduler {

using v1::JobState;

bool IsTerminal(JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED ||
         s == v1::JOB_STATE_CANCELLED || s == v1::JOB_STATE_BUDGET_EXHAUSTED ||
         s == v1::JOB_STATE_REJECTED;
}

bool IsLegalTransition(JobState from, JobState to) {
  switch (from) {
    case v1::JOB_STATE_UNSPECIFIED:  // a new job
      return to == v1::JOB_STATE_PENDING || to == v1::JOB_STATE_PLANNED ||
             to == v1::JOB_STATE_STARTING || to == v1::JOB_STATE_RUNNING ||
             to == v1::JOB_STATE_REJECTED;
    case v1::JOB_STATE_PENDING:
      return to == v1::JOB_STATE_PLANNED || to == v1::JOB_STATE_STARTING ||
             to == v1::JOB_STATE_RUNNING || to == v1::JOB_STATE_CANCELLED ||
             to == v1::JOB_STATE_FAILED || to == v1::JOB_STATE_BUDGET_EXHAUSTED;
    case v1::JOB_STATE_PLANNED:
      return to == v1::JOB_STATE_PENDING || to == v1::JOB_STATE_STARTING ||
             to == v1::JOB_STATE_RUNNING || to == v1::JOB_STATE_CANCELLED ||
             to == v1::JOB_STATE_FAILED || to == v1::JOB_STATE_BUDGET_EXHAUSTED;
    case v1::JOB_STATE_STARTING:  // the executor reports the start, or that it failed;
                                  // PENDING: its node was lost (requeued)
      return to == v1::JOB_STATE_RUNNING || to == v1::JOB_STATE_FAILED ||
             to == v1::JOB_STATE_CANCELLED || to == v1::JOB_STATE_BUDGET_EXHAUSTED ||
             to == v1::JOB_STATE_PENDING;
    case v1::JOB_STATE_RUNNING:  // PENDING: requeued from a lost node; STARTING: stopped
                                 // at the end of a carbon slot, resumes on its node
      return to == v1::JOB_STATE_SUCCEEDED || to == v1::JOB_STATE_FAILED ||
             to == v1::JOB_STATE_CANCELLED || to == v1::JOB_STATE_BUDGET_EXHAUSTED ||
             to == v1::JOB_STATE_PENDING || to == v1::JOB_STATE_STARTING;
    default:
      return false;  // terminal states never change
  }
}

const char* StateName(JobState s) {
  switch (s) {
    case v1::JOB_STATE_PENDING:
      return "PENDING";
    case v1::JOB_STATE_PLANNED:
      return "PLANNED";
    case v1::JOB_STATE_STARTING:
      return "STARTING";
    case v1::JOB_STATE_RUNNING:
      return "RUNNING";
    case v1::JOB_STATE_SUCCEEDED:
      return "SUCCEEDED";
    case v1::JOB_STATE_FAILED:
      return "FAILED";
    case v1::JOB_STATE_CANCELLED:
      return "CANCELLED";
    case v1::JOB_STATE_BUDGET_EXHAUSTED:
      return "BUDGET_EXHAUSTED";
    case v1::JOB_STATE_REJECTED:
      return "REJECTED";
    default:
      return "UNSPECIFIED";
  }
}

absl::Status CheckTransition(JobState from, JobState to) {
  if (IsLegalTransition(from, to)) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("job is ", StateName(from), "; it cannot become ", StateName(to)));
}

std::string WaitingFor(const greenlight::v1::Job& job) {
  return job.pending() == greenlight::v1::PENDING_REASON_QUOTA ? "GPU quota" : "capacity";
}

std::string RunningMessage(const greenlight::v1::Job& job) {
  return absl::StrCat("running on ", job.placement().pool_id(), " (", job.placement().nodes(),
                      " node(s))");
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace greenlight::scheduler
