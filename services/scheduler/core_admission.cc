// Admission as named stages: dedup, quote, classify the refusal (outside the
// writer, on a snapshot), then in the writer: re-check, reserve, allocate.
#include <algorithm>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/budget/period.h"
#include "services/scheduler/core.h"
#include "services/scheduler/job_state.h"
#include "services/scheduler/legacy_text.h"
#include "services/scheduler/proto_conversion.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;
using greenlight::v1::Job;
using greenlight::v1::JobSpec;

// What the quote stages hand to the writer; the command owns it.
struct SchedulerCore::Admission {
  JobSpec spec;
  SubmitOptions options;
  v1::Quote quote;
  // Planned as if every node were free: a job that waits for capacity.
  bool capacity_blind = false;
  bool check_calendar = true;
};

namespace {
// Submit quotes outside the writer, so two submits may plan into the same
// booked window; the writer refuses the later plan with this status and it is
// quoted again against the new calendar.
constexpr int kCalendarAttempts = 4;
constexpr char kCalendarConflictPayloadUrl[] = "greenlight.internal/calendar-conflict";
}  // namespace

absl::Status SchedulerCore::QuoteInputs(const JobSpec& spec, placement::JobRequest* req,
                                        placement::Snapshot* snap) const {
  absl::ReaderMutexLock l(&mu_);
  RETURN_IF_ERROR(ValidateLocked(spec));
  *req = ToRequestLocked(spec);
  *snap = BuildSnapshot(spec.team(), false);
  return absl::OkStatus();
}

absl::StatusOr<v1::Quote> SchedulerCore::Estimate(const JobSpec& spec, int top_k) {
  placement::JobRequest req;
  placement::Snapshot snap;
  RETURN_IF_ERROR(QuoteInputs(spec, &req, &snap));
  req.top_k = top_k <= 0 ? 5 : std::min(top_k, 50);
  absl::Time t0 = absl::Now();
  placement::Decision d = engine_.Place(req, snap);
  if (options_.on_placement) options_.on_placement(absl::ToDoubleSeconds(absl::Now() - t0));
  return ToQuote(d, snap);
}

absl::StatusOr<SubmitResult> SchedulerCore::Submit(const JobSpec& spec,
                                                   const SubmitOptions& submit_options) {
  for (int attempt = 1;; ++attempt) {
    // The last attempt keeps its plan whatever the calendar says; its start
    // still waits for free nodes (TryAllocate).
    auto r = SubmitAttempt(spec, submit_options, /*check_calendar=*/attempt < kCalendarAttempts);
    if (r.ok() || !r.status().GetPayload(kCalendarConflictPayloadUrl).has_value()) return r;
  }
}

absl::StatusOr<SubmitResult> SchedulerCore::SubmitAttempt(const JobSpec& spec,
                                                          const SubmitOptions& submit_options,
                                                          bool check_calendar) {
  // Stage 1: dedup (a retried request gets its job back, nothing is quoted).
  std::string dedup_id;
  if (!spec.request_id().empty()) {
    absl::ReaderMutexLock l(&mu_);
    if (const std::string* id = jobs_.IdForRequest(spec.team(), spec.request_id())) dedup_id = *id;
  }
  if (!dedup_id.empty()) return Deduplicated(dedup_id, spec);
  // Stages 2 and 3: quote; classify a refusal.
  ASSIGN_OR_RETURN(Admission admission, Quote(spec));
  admission.options = submit_options;
  admission.check_calendar = check_calendar;
  // Stages 4 and 5, in the writer: reserve, allocate.
  ASSIGN_OR_RETURN(
      SubmitResult result,
      queue_.Call<SubmitResult>([this, admission = std::move(admission)](Txn& txn) mutable {
        return Admit(txn, admission);
      }));
  if (result.deduplicated) return Deduplicated(result.job.id(), spec);
  return result;
}

absl::StatusOr<SubmitResult> SchedulerCore::Deduplicated(const std::string& id,
                                                         const JobSpec& spec) const {
  ASSIGN_OR_RETURN(Job job, GetJob(id));
  if (!google::protobuf::util::MessageDifferencer::Equals(job.spec(), spec)) {
    return absl::AlreadyExistsError(absl::StrCat("spec.request_id: '", spec.request_id(),
                                                 "' was already used by job ", id,
                                                 " with a different spec; use a new request_id"));
  }
  return SubmitResult{std::move(job), true};
}

absl::StatusOr<SchedulerCore::Admission> SchedulerCore::Quote(const JobSpec& spec) {
  placement::JobRequest req;
  placement::Snapshot snap;
  RETURN_IF_ERROR(QuoteInputs(spec, &req, &snap));
  absl::Time t0 = absl::Now();
  Admission a;
  a.spec = spec;
  placement::Decision d = engine_.Place(req, snap);
  if (d.feasible) {
    a.quote = ToQuote(d, snap);
  } else {
    // Would it fit if capacity and quota were free? Then it waits (for
    // quota or capacity, decided live when it is stored).
    placement::Snapshot free_snap;
    {
      absl::ReaderMutexLock l(&mu_);
      free_snap = BuildSnapshot(spec.team(), true);
    }
    placement::Decision waiting = engine_.Place(req, free_snap);
    if (!waiting.feasible) return Refusal(spec, req, d, snap, std::move(free_snap));
    a.quote = ToQuote(waiting, free_snap);
    a.capacity_blind = true;
  }
  if (options_.on_placement) options_.on_placement(absl::ToDoubleSeconds(absl::Now() - t0));
  // The snapshots share the pool view and are released here, before the
  // batch, so that it can refresh the view in place (SnapshotBuilder).
  return a;
}

absl::Status SchedulerCore::Refusal(const JobSpec& spec, const placement::JobRequest& req,
                                    const placement::Decision& d, const placement::Snapshot& snap,
                                    placement::Snapshot free_snap) {
  // Does the team budget alone stand in the way?
  free_snap.team.cost_headroom_micros = -1;
  free_snap.team.carbon_headroom_mg = -1;
  placement::Decision unlimited = engine_.Place(req, free_snap);
  if (unlimited.feasible) {
    absl::ReaderMutexLock l(&mu_);
    absl::Status st =
        ledger_.CheckHeadroom(spec.team(), budget::PeriodOf(snap.now), unlimited.chosen.cost_micros,
                              unlimited.chosen.carbon_mg);
    if (st.ok()) {
      st = WithReason(absl::ResourceExhaustedError(
                          absl::StrCat("team '", spec.team(), "' budget: ", d.summary)),
                      reason::kTeamBudgetExhausted, {{"team", spec.team()}});
    }
    return st;  // the ledger's own reason names the team and the budget
  }
  v1::Quote q = ToQuote(d, snap);
  absl::Status st = absl::FailedPreconditionError(
      absl::StrCat("no placement meets the job's constraints: ", d.summary));
  st.SetPayload(kQuotePayloadUrl, absl::Cord(q.SerializeAsString()));
  return WithReason(std::move(st), reason::kCapExceeded);
}

namespace {

// A job larger than the team's whole quota for its GPU type can never run.
absl::Status CheckTypeQuota(const v1::Team& team, const JobSpec& spec,
                            const std::string& gpu_type) {
  auto q = team.gpu_quota_by_type().find(gpu_type);
  if (q == team.gpu_quota_by_type().end() || q->second <= 0 || spec.gpus() <= q->second)
    return absl::OkStatus();
  return WithReason(absl::FailedPreconditionError(
                        absl::StrCat("spec.gpus: ", spec.gpus(), " ", gpu_type,
                                     " GPUs exceed team '", spec.team(), "' quota of ", q->second,
                                     " for that type; ask for a larger quota or "
                                     "allow other spec.gpu_types")),
                    reason::kGpuTypeQuota, {{"gpu_type", gpu_type}});
}

}  // namespace

absl::StatusOr<SubmitResult> SchedulerCore::Admit(Txn& txn, Admission& a) {
  const JobSpec& spec = a.spec;
  absl::Time now = options_.clock->Now();
  if (!spec.request_id().empty()) {
    if (const std::string* id = jobs_.IdForRequest(spec.team(), spec.request_id())) {
      SubmitResult dedup;  // admitted since the quote: the caller reads it back
      dedup.job.set_id(*id);
      dedup.deduplicated = true;
      return dedup;
    }
  }
  const v1::Team* team = ledger_.FindTeam(spec.team());
  if (!team)
    return absl::InvalidArgumentError(absl::StrCat("spec.team: unknown team '", spec.team(), "'"));
  RETURN_IF_ERROR(CheckTypeQuota(*team, spec, a.quote.chosen().gpu_type()));
  Job job;
  job.set_id(NewJobId());
  *job.mutable_spec() = spec;
  *job.mutable_placement() = a.quote.chosen();
  *job.mutable_quote() = std::move(a.quote);  // this command runs once
  *job.mutable_submit_time() = ToProto(now);
  job.set_sequence(jobs_.next_sequence());
  *job.mutable_remaining() = ToProtoDuration(PlannedRuntime(job.placement()));
  const absl::Time start = FromProto(job.placement().start());
  // Checked before anything changes, so a refusal leaves no trace.
  if (a.options.only_if_it_can_start_now && start <= now) RETURN_IF_ERROR(CheckCanStartNow(job));
  // Every plan is made against the calendar (a waiting job's against all nodes).
  if (a.check_calendar && start > now && !CalendarAllowsPlan(job, a.capacity_blind)) {
    // Booked by a job stored since the quote: nothing written, quote again.
    absl::Status st = absl::AbortedError("capacity calendar changed since the quote");
    st.SetPayload(kCalendarConflictPayloadUrl, absl::Cord("1"));
    return st;
  }
  const std::string period = budget::PeriodOf(now);
  AlertBaseline before = BaselineForAlerts(ledger_, spec.team(), period);
  ASSIGN_OR_RETURN(auto rows,
                   ledger_.Reserve(job.id(), spec.team(), now, job.placement().cost_micros(),
                                   job.placement().carbon_mg(), "admission quote"));
  txn.batch.ledger.insert(txn.batch.ledger.end(), rows.begin(), rows.end());
  job.set_reserved_cost_micros(job.placement().cost_micros());
  job.set_reserved_carbon_mg(job.placement().carbon_mg());
  Job& j = jobs_.Add(std::move(job));
  PlaceAdmitted(txn, j, now);
  EmitTeamAlerts(txn, before, period);
  return SubmitResult{j, false};
}

absl::Status SchedulerCore::CheckCanStartNow(const Job& job) const {
  const bool quota = QuotaAllowsJob(job);
  if (quota && nodes_.Find(job.placement().pool_id(), job.spec().gpus())) return absl::OkStatus();
  absl::Status st = absl::ResourceExhaustedError(
      absl::StrCat("team '", job.spec().team(), "' cannot start ", job.spec().gpus(), " ",
                   job.placement().gpu_type(), " GPU(s) now: ",
                   quota ? absl::StrCat("no free capacity in pool ", job.placement().pool_id())
                         : "team GPU quota is full"));
  return WithReason(std::move(st), reason::kCannotStartNow,
                    {{"cause", quota ? "CAPACITY" : "QUOTA"}});
}

void SchedulerCore::PlaceAdmitted(Txn& txn, Job& j, absl::Time now) {
  // One SUBMITTED event carries the job in its initial state.
  const absl::Time start = FromProto(j.placement().start());
  v1::JobState initial;
  std::string why;
  if (start <= now && QuotaAllowsJob(j) && TryAllocate(j, now) && OnAgentPool(j)) {
    // Admitted as PENDING, then STARTING on its node in the same batch.
    SetJobState(j, v1::JOB_STATE_PENDING);
    j.set_message("placed on an agent node");
    Emit(txn, j, v1::JOB_EVENT_TYPE_SUBMITTED, absl::StrCat("starting; ", j.quote().summary()));
    BeginOnAgent(txn, j, now);
    return;
  }
  if (start <= now && nodes_.Holds(j.id())) {
    initial = v1::JOB_STATE_RUNNING;
    *j.mutable_start_time() = ToProto(now);
    *j.mutable_accrued_until() = ToProto(now);
    txn.launches.push_back({j.id(), FromProto(j.remaining())});
    why = RunningMessage(j);
  } else if (start <= now) {
    SetPending(j, QuotaAllowsJob(j) ? v1::PENDING_REASON_CAPACITY : v1::PENDING_REASON_QUOTA);
    initial = v1::JOB_STATE_PENDING;
    why = absl::StrCat("waiting for ", WaitingFor(j));
  } else {
    initial = v1::JOB_STATE_PLANNED;
    why = absl::StrCat("planned start ", FormatUtc(start));
  }
  SetJobState(j, initial);
  j.set_message(why);
  Emit(txn, j, v1::JOB_EVENT_TYPE_SUBMITTED, absl::StrCat(why, "; ", j.quote().summary()));
}

}  // namespace greenlight::scheduler
