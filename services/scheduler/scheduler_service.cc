#include "services/scheduler/scheduler_service.h"

#include <chrono>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/error_details.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

const char* RejectionLabel(const absl::Status& st) {
  // Bounded label values of greenlight_submits_rejected_total, by reason.
  static const auto* kByReason = new absl::flat_hash_map<std::string, const char*>{
      {reason::kInvalidField, "invalid"},         {reason::kCapExceeded, "caps"},
      {reason::kGpuTypeQuota, "gpu_type_quota"},  {reason::kTeamBudgetExhausted, "team_budget"},
      {reason::kQueueFull, "queue_full"},         {reason::kServerOverloaded, "overloaded"},
      {reason::kTeamRateLimited, "rate_limited"}, {reason::kCannotStartNow, "cannot_start_now"},
      {reason::kUnavailable, "unavailable"},
  };
  auto it = kByReason->find(ReasonOf(st));
  if (it != kByReason->end()) return it->second;
  switch (st.code()) {
    case absl::StatusCode::kInvalidArgument:
      return "invalid";
    case absl::StatusCode::kAlreadyExists:
      return "duplicate";
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return "unavailable";
    default:
      return "other";
  }
}

grpc::Status SchedulerService::SubmitJob(grpc::ServerContext* context,
                                         const v1::SubmitJobRequest* req,
                                         v1::SubmitJobResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (ctx_.shutting_down && ctx_.shutting_down->load())
    return ToGrpc(
        WithReason(absl::UnavailableError("server is shutting down; retry"), reason::kUnavailable));
  if (!p.CanAccess(req->spec().team())) {
    return ToGrpc(absl::PermissionDeniedError(absl::StrCat(
        "spec.team: this token acts for team '", p.team, "', not '", req->spec().team(), "'")));
  }
  // A caller whose deadline passed while the call queued has given up: do not
  // place or write for it. (Not IsCancelled(): on the sync API that polls the
  // completion queue, 7 % of the daemon's CPU under submit load.)
  if (context->deadline() < std::chrono::system_clock::now())
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "caller's deadline passed");
  if (ctx_.placements && !ctx_.placements->Enter()) {
    if (ctx_.on_reject) ctx_.on_reject("overloaded");
    return ToGrpc(WithReason(absl::ResourceExhaustedError(absl::StrCat(
                                 "server overloaded: ", ctx_.placements->max(),
                                 " submits and estimates in progress; retry with backoff")),
                             reason::kServerOverloaded));
  }
  absl::Cleanup leave_gate = [&] {
    if (ctx_.placements) ctx_.placements->Leave();
  };
  if (ctx_.limiter && !ctx_.limiter->Allow(req->spec().team())) {
    if (ctx_.on_reject) ctx_.on_reject("rate_limited");
    return ToGrpc(WithReason(
        absl::ResourceExhaustedError(absl::StrCat("team '", req->spec().team(),
                                                  "' is over its submit rate; retry with backoff")),
        reason::kTeamRateLimited, {{"limit", "rate"}}));
  }
  if (ctx_.limiter && !ctx_.limiter->Acquire(req->spec().team())) {
    if (ctx_.on_reject) ctx_.on_reject("rate_limited");
    return ToGrpc(
        WithReason(absl::ResourceExhaustedError(absl::StrCat(
                       "team '", req->spec().team(), "' already has ", ctx_.limiter->max_inflight(),
                       " submits in flight (its concurrency limit); retry with backoff")),
                   reason::kTeamRateLimited, {{"limit", "in_flight"}}));
  }
  absl::Cleanup release = [&] {
    if (ctx_.limiter) ctx_.limiter->Release(req->spec().team());
  };
  auto r = ctx_.core->Submit(req->spec());
  if (!r.ok()) {
    if (ctx_.on_reject) {
      ctx_.on_reject(RejectionLabel(r.status()));
    }
    GL_LOG_DEBUG("submit refused", F("team", req->spec().team()), F("error", r.status().message()));
    return ToGrpc(r.status());
  }
  if (!r->deduplicated) {
    if (ctx_.on_admit) ctx_.on_admit(req->spec().team());
    if (ctx_.on_decision && r->job.quote().has_baseline())
      ctx_.on_decision(req->spec().team(), r->job.quote());
  }
  *resp->mutable_job() = std::move(r->job);
  resp->set_deduplicated(r->deduplicated);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::EstimateJob(grpc::ServerContext* context,
                                           const v1::EstimateJobRequest* req,
                                           v1::EstimateJobResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (!p.CanAccess(req->spec().team()))
    return ToGrpc(absl::PermissionDeniedError(
        absl::StrCat("spec.team: this token acts for team '", p.team, "'")));
  if (auto st = ValidateEstimateJobRequest(*req); !st.ok()) return ToGrpc(st);
  if (ctx_.placements && !ctx_.placements->Enter()) {
    return ToGrpc(WithReason(absl::ResourceExhaustedError(absl::StrCat(
                                 "server overloaded: ", ctx_.placements->max(),
                                 " submits and estimates in progress; retry with backoff")),
                             reason::kServerOverloaded));
  }
  absl::Cleanup leave_gate = [&] {
    if (ctx_.placements) ctx_.placements->Leave();
  };
  auto q = ctx_.core->Estimate(req->spec(), req->top_k());
  if (!q.ok()) return ToGrpc(q.status());
  *resp->mutable_quote() = std::move(*q);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* req,
                                      v1::GetJobResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = ValidateGetJobRequest(*req); !st.ok()) return ToGrpc(st);
  auto j = ctx_.core->GetJob(req->job_id());
  if (!j.ok()) return ToGrpc(j.status());
  if (!p.CanAccess(j->spec().team())) return ToGrpc(NotFoundJob(req->job_id()));
  *resp->mutable_job() = std::move(*j);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::ListJobs(grpc::ServerContext* context,
                                        const v1::ListJobsRequest* req,
                                        v1::ListJobsResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  ListJobsQuery q;
  q.team = req->team();
  if (!p.admin) {
    if (!q.team.empty() && q.team != p.team)
      return ToGrpc(absl::PermissionDeniedError(
          absl::StrCat("team: this token acts for team '", p.team, "'")));
    q.team = p.team;
  }
  if (auto st = ValidateListJobsRequest(*req); !st.ok()) return ToGrpc(st);
  q.page_size = req->page_size();
  q.page_token = req->page_token();
  for (int s : req->states()) q.states.push_back(static_cast<v1::JobState>(s));
  auto page = ctx_.core->ListJobs(q);
  if (!page.ok()) return ToGrpc(page.status());
  for (auto& j : page->jobs) *resp->add_jobs() = std::move(j);
  resp->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::CancelJob(grpc::ServerContext* context,
                                         const v1::CancelJobRequest* req,
                                         v1::CancelJobResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = ValidateCancelJobRequest(*req); !st.ok()) return ToGrpc(st);
  auto j = ctx_.core->GetJob(req->job_id());
  if (!j.ok()) return ToGrpc(j.status());
  if (!p.CanAccess(j->spec().team())) return ToGrpc(NotFoundJob(req->job_id()));
  auto c = ctx_.core->Cancel(req->job_id(), req->reason());
  if (!c.ok()) return ToGrpc(c.status());
  *resp->mutable_job() = std::move(*c);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::WatchJobs(grpc::ServerContext* context,
                                         const v1::WatchJobsRequest* req,
                                         grpc::ServerWriter<v1::JobEvent>* writer) {
  GL_AUTH_OR_RETURN(p);
  std::string team = req->team();
  if (!p.admin) {
    if (!team.empty() && team != p.team)
      return ToGrpc(absl::PermissionDeniedError(
          absl::StrCat("team: this token acts for team '", p.team, "'")));
    team = p.team;
  }
  if (auto st = ValidateWatchJobsRequest(*req); !st.ok()) return ToGrpc(st);
  int64_t cursor = req->from_revision();
  if (ctx_.watches && !ctx_.watches->Enter(context)) {
    return ToGrpc(WithReason(
        absl::ResourceExhaustedError(absl::StrCat(
            "too many open WatchJobs streams on this server; retry later with from_revision=",
            cursor)),
        reason::kServerOverloaded, {{"limit", "watch_streams"}}));
  }
  absl::Cleanup leave = [&] {
    if (ctx_.watches) ctx_.watches->Leave(context);
  };
  // Pull-based: each watcher reads committed events from the ring or the
  // store at its own pace, so a slow watcher costs no server memory.
  while (!context->IsCancelled()) {
    if (ctx_.shutting_down && ctx_.shutting_down->load()) {
      return ToGrpc(absl::UnavailableError(
          absl::StrCat("server shutting down; resume with from_revision=", cursor)));
    }
    int64_t scanned = cursor;
    auto events = ctx_.core->EventsAfter(cursor, 256, team, req->job_id(), &scanned);
    if (!events.ok()) return ToGrpc(events.status());
    if (events->empty()) {
      if (scanned > cursor) {
        cursor = scanned;  // everything scanned was someone else's
        continue;
      }
      ctx_.core->WaitForEvents(cursor, absl::Now() + absl::Milliseconds(500));
      continue;
    }
    for (const auto& e : *events) {
      if (ctx_.watches) ctx_.watches->BeginWrite(context);
      bool written = writer->Write(e);
      if (ctx_.watches) ctx_.watches->EndWrite(context);
      if (!written) return grpc::Status::OK;  // client went away (or dropped as stalled)
    }
    cursor = scanned;
  }
  return grpc::Status::OK;
}

grpc::Status SchedulerService::Ping(grpc::ServerContext*, const v1::PingRequest*,
                                    v1::PingResponse* resp) {
  resp->set_revision(ctx_.core->revision());
  const Clock* clock = ctx_.core->clock();
  *resp->mutable_server_time() = ToProto(clock->Now());
  // Only a RealClock follows wall time at a known rate; a ManualClock (tests,
  // replay) moves when told to, so its rate is not reported (0).
  if (const auto* real = dynamic_cast<const RealClock*>(clock)) {
    resp->set_time_scale(real->scale());
  }
  return grpc::Status::OK;
}

}  // namespace greenlight::scheduler
