#include "services/scheduler/grpc_services.h"

#include <algorithm>
#include <chrono>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/error_details.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "google/rpc/status.pb.h"

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

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const absl::Status s = WithFieldViolation(status);
  auto code = static_cast<grpc::StatusCode>(static_cast<int>(s.code()));
  std::string msg(s.message());
  google::rpc::Status details;
  bool any = false;
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    auto* a = details.add_details();
    a->set_type_url(std::string(url));
    a->set_value(std::string(payload));
    any = true;
  });
  if (!any) return grpc::Status(code, msg);
  details.set_code(static_cast<int>(s.code()));
  details.set_message(msg);
  return grpc::Status(code, msg, details.SerializeAsString());
}

bool TeamLimiter::Allow(const std::string& team) {
  if (rate_ <= 0) return true;
  absl::MutexLock l(&mu_);
  absl::Time now = absl::Now();
  auto [it, fresh] = buckets_.try_emplace(team, Bucket{static_cast<double>(burst_), now});
  Bucket& b = it->second;
  b.tokens = std::min<double>(burst_, b.tokens + absl::ToDoubleSeconds(now - b.last) * rate_);
  b.last = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

bool TeamLimiter::Acquire(const std::string& team) {
  if (max_inflight_ <= 0) return true;
  absl::MutexLock l(&mu_);
  int& n = inflight_[team];
  if (n >= max_inflight_) return false;
  ++n;
  return true;
}

void TeamLimiter::Release(const std::string& team) {
  if (max_inflight_ <= 0) return;
  absl::MutexLock l(&mu_);
  auto it = inflight_.find(team);
  if (it == inflight_.end()) return;
  if (--it->second <= 0) inflight_.erase(it);
}

WatchLimiter::WatchLimiter(int max_watchers, absl::Duration stall_timeout)
    : max_watchers_(max_watchers), stall_timeout_(stall_timeout) {
  if (stall_timeout_ > absl::ZeroDuration() && stall_timeout_ != absl::InfiniteDuration())
    reaper_ = std::thread([this] { ReapLoop(); });
}

WatchLimiter::~WatchLimiter() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
}

bool WatchLimiter::Enter(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  if (max_watchers_ > 0 && static_cast<int>(streams_.size()) >= max_watchers_) return false;
  streams_[stream] = absl::InfiniteFuture();
  return true;
}

void WatchLimiter::Leave(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  streams_.erase(stream);
}

void WatchLimiter::BeginWrite(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  auto it = streams_.find(stream);
  if (it != streams_.end()) it->second = absl::Now();
}

void WatchLimiter::EndWrite(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  auto it = streams_.find(stream);
  if (it != streams_.end()) it->second = absl::InfiniteFuture();
}

int64_t WatchLimiter::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

int WatchLimiter::open() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(streams_.size());
}

void WatchLimiter::ReapLoop() {
  absl::Duration period = std::min(absl::Seconds(1), stall_timeout_ / 4);
  absl::MutexLock l(&mu_);
  auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopped), period)) {
    absl::Time now = absl::Now();
    for (auto& [stream, since] : streams_) {
      if (now - since < stall_timeout_) continue;
      // Under mu_: the handler cannot Leave (and free the context) meanwhile.
      stream->TryCancel();
      since = absl::InfiniteFuture();
      ++dropped_;
      GL_LOG_WARN(
          "watcher dropped: it read nothing for too long; it resumes from its last revision",
          F("stall_s", absl::ToDoubleSeconds(stall_timeout_)), F("peer", stream->peer()));
    }
  }
}

namespace {

absl::StatusOr<Principal> Who(const ServiceContext& ctx, grpc::ServerContext* sc) {
  std::string header;
  auto it = sc->client_metadata().find("authorization");
  if (it != sc->client_metadata().end()) header.assign(it->second.data(), it->second.size());
  return ctx.auth->Authenticate(header);
}

#define AUTH_OR_RETURN(p)                           \
  auto p##_or = Who(ctx_, context);                 \
  if (!p##_or.ok()) return ToGrpc(p##_or.status()); \
  [[maybe_unused]] const Principal& p = *p##_or

absl::Status AdminOnly(const Principal& p) {
  if (p.admin) return absl::OkStatus();
  return absl::PermissionDeniedError("this call needs an admin token");
}

absl::Status NotFoundJob(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
}

}  // namespace

// --- Scheduler ---------------------------------------------------------------

grpc::Status SchedulerService::SubmitJob(grpc::ServerContext* context,
                                         const v1::SubmitJobRequest* req,
                                         v1::SubmitJobResponse* resp) {
  AUTH_OR_RETURN(p);
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
  AUTH_OR_RETURN(p);
  if (!p.CanAccess(req->spec().team()))
    return ToGrpc(absl::PermissionDeniedError(
        absl::StrCat("spec.team: this token acts for team '", p.team, "'")));
  if (req->top_k() < 0 || req->top_k() > 50)
    return ToGrpc(absl::InvalidArgumentError("top_k: must be between 0 and 50"));
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
  AUTH_OR_RETURN(p);
  if (req->job_id().empty()) return ToGrpc(absl::InvalidArgumentError("job_id: required"));
  auto j = ctx_.core->GetJob(req->job_id());
  if (!j.ok()) return ToGrpc(j.status());
  if (!p.CanAccess(j->spec().team())) return ToGrpc(NotFoundJob(req->job_id()));
  *resp->mutable_job() = std::move(*j);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::ListJobs(grpc::ServerContext* context,
                                        const v1::ListJobsRequest* req,
                                        v1::ListJobsResponse* resp) {
  AUTH_OR_RETURN(p);
  ListJobsQuery q;
  q.team = req->team();
  if (!p.admin) {
    if (!q.team.empty() && q.team != p.team)
      return ToGrpc(absl::PermissionDeniedError(
          absl::StrCat("team: this token acts for team '", p.team, "'")));
    q.team = p.team;
  }
  if (req->page_size() < 0) return ToGrpc(absl::InvalidArgumentError("page_size: must be >= 0"));
  q.page_size = req->page_size();
  q.page_token = req->page_token();
  for (int s : req->states()) {
    if (!v1::JobState_IsValid(s))
      return ToGrpc(absl::InvalidArgumentError("states: unknown state"));
    q.states.push_back(static_cast<v1::JobState>(s));
  }
  auto page = ctx_.core->ListJobs(q);
  if (!page.ok()) return ToGrpc(page.status());
  for (auto& j : page->jobs) *resp->add_jobs() = std::move(j);
  resp->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status SchedulerService::CancelJob(grpc::ServerContext* context,
                                         const v1::CancelJobRequest* req,
                                         v1::CancelJobResponse* resp) {
  AUTH_OR_RETURN(p);
  if (req->job_id().empty()) return ToGrpc(absl::InvalidArgumentError("job_id: required"));
  if (req->reason().size() > 1024)
    return ToGrpc(absl::InvalidArgumentError("reason: at most 1024 bytes"));
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
  AUTH_OR_RETURN(p);
  std::string team = req->team();
  if (!p.admin) {
    if (!team.empty() && team != p.team)
      return ToGrpc(absl::PermissionDeniedError(
          absl::StrCat("team: this token acts for team '", p.team, "'")));
    team = p.team;
  }
  if (req->from_revision() < 0)
    return ToGrpc(absl::InvalidArgumentError("from_revision: must be >= 0"));
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

// --- Budgets -----------------------------------------------------------------

grpc::Status BudgetsService::SetTeam(grpc::ServerContext* context, const v1::SetTeamRequest* req,
                                     v1::SetTeamResponse* resp) {
  AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  auto t = ctx_.core->SetTeam(req->team());
  if (!t.ok()) return ToGrpc(t.status());
  *resp->mutable_team() = std::move(*t);
  return grpc::Status::OK;
}

grpc::Status BudgetsService::GetTeam(grpc::ServerContext* context, const v1::GetTeamRequest* req,
                                     v1::GetTeamResponse* resp) {
  AUTH_OR_RETURN(p);
  if (!p.CanAccess(req->name()))
    return ToGrpc(absl::NotFoundError(absl::StrCat("name: no team '", req->name(), "'")));
  auto t = ctx_.core->GetTeam(req->name());
  if (!t.ok()) return ToGrpc(t.status());
  *resp->mutable_team() = std::move(*t);
  return grpc::Status::OK;
}

grpc::Status BudgetsService::ListTeams(grpc::ServerContext* context, const v1::ListTeamsRequest*,
                                       v1::ListTeamsResponse* resp) {
  AUTH_OR_RETURN(p);
  for (auto& t : ctx_.core->ListTeams()) {
    if (p.CanAccess(t.name())) *resp->add_teams() = std::move(t);
  }
  return grpc::Status::OK;
}

grpc::Status BudgetsService::GetUsage(grpc::ServerContext* context, const v1::GetUsageRequest* req,
                                      v1::GetUsageResponse* resp) {
  AUTH_OR_RETURN(p);
  if (req->team().empty()) return ToGrpc(absl::InvalidArgumentError("team: required"));
  if (!p.CanAccess(req->team()))
    return ToGrpc(absl::NotFoundError(absl::StrCat("team: no team '", req->team(), "'")));
  absl::Time at = req->has_at() ? FromProto(req->at()) : ctx_.core->clock()->Now();
  auto u = ctx_.core->GetUsage(req->team(), at);
  if (!u.ok()) return ToGrpc(u.status());
  *resp->mutable_usage() = std::move(*u);
  return grpc::Status::OK;
}

// --- Inventory ---------------------------------------------------------------

grpc::Status InventoryService::ListPools(grpc::ServerContext* context,
                                         const v1::ListPoolsRequest* req,
                                         v1::ListPoolsResponse* resp) {
  AUTH_OR_RETURN(p);
  for (auto& pool : ctx_.core->ListPools()) {
    if (!req->gpu_type().empty() && pool.gpu_type() != req->gpu_type()) continue;
    if (!req->region().empty() && pool.region() != req->region()) continue;
    *resp->add_pools() = std::move(pool);
  }
  return grpc::Status::OK;
}

grpc::Status InventoryService::UpsertPools(grpc::ServerContext* context,
                                           const v1::UpsertPoolsRequest* req,
                                           v1::UpsertPoolsResponse* resp) {
  AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  std::vector<v1::NodePool> pools(req->pools().begin(), req->pools().end());
  auto n = ctx_.core->UpsertPools(pools);
  if (!n.ok()) return ToGrpc(n.status());
  resp->set_upserted(*n);
  return grpc::Status::OK;
}

grpc::Status InventoryService::SetCarbonSeries(grpc::ServerContext* context,
                                               const v1::SetCarbonSeriesRequest* req,
                                               v1::SetCarbonSeriesResponse* resp) {
  AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  if (req->points().empty())
    return ToGrpc(absl::InvalidArgumentError("points: at least one point"));
  absl::Duration step = req->has_step() ? FromProto(req->step()) : absl::Hours(1);
  std::vector<double> values;
  absl::Time start = FromProto(req->points(0).time());
  for (int i = 0; i < req->points_size(); ++i) {
    absl::Time t = FromProto(req->points(i).time());
    if (t != start + step * i) {
      return ToGrpc(absl::InvalidArgumentError(
          absl::StrCat("points[", i, "].time: points must be ascending at the step (",
                       absl::FormatDuration(step), ")")));
    }
    values.push_back(req->points(i).g_per_kwh());
  }
  auto z = ctx_.core->SetCarbonSeries(req->zone(), start, step, std::move(values),
                                      req->annual_average_g_per_kwh());
  if (!z.ok()) return ToGrpc(z.status());
  *resp->mutable_zone() = std::move(*z);
  return grpc::Status::OK;
}

grpc::Status InventoryService::ListZones(grpc::ServerContext* context, const v1::ListZonesRequest*,
                                         v1::ListZonesResponse* resp) {
  AUTH_OR_RETURN(p);
  for (auto& z : ctx_.core->ListZones()) *resp->add_zones() = std::move(z);
  return grpc::Status::OK;
}

// --- Admin -------------------------------------------------------------------

grpc::Status AdminService::CreateToken(grpc::ServerContext* context,
                                       const v1::CreateTokenRequest* req,
                                       v1::CreateTokenResponse* resp) {
  AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  if (!req->admin()) {
    if (req->team().empty())
      return ToGrpc(absl::InvalidArgumentError("team: required for a team token"));
    if (!ctx_.core->GetTeam(req->team()).ok())
      return ToGrpc(
          absl::InvalidArgumentError(absl::StrCat("team: unknown team '", req->team(), "'")));
  } else if (!req->team().empty()) {
    return ToGrpc(absl::InvalidArgumentError("team: must be empty for an admin token"));
  }
  if (req->description().size() > 256)
    return ToGrpc(absl::InvalidArgumentError("description: at most 256 bytes"));
  store::TokenRow row;
  row.info.set_id(NewId("t-", 8));
  row.info.set_team(req->team());
  row.info.set_admin(req->admin());
  row.info.set_description(req->description());
  *row.info.mutable_created() = ToProto(absl::Now());
  std::string secret = Authenticator::NewSecret();
  row.secret_sha256_hex = Authenticator::Sha256Hex(secret);
  if (auto st = ctx_.core->PutToken(row); !st.ok()) return ToGrpc(st);
  ctx_.auth->Put(row);
  *resp->mutable_token() = row.info;
  resp->set_secret(secret);
  GL_LOG_INFO("token created", F("id", row.info.id()), F("team", row.info.team()),
              F("admin", row.info.admin() ? "true" : "false"));
  return grpc::Status::OK;
}

grpc::Status AdminService::RevokeToken(grpc::ServerContext* context,
                                       const v1::RevokeTokenRequest* req,
                                       v1::RevokeTokenResponse* resp) {
  AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  for (auto t : ctx_.core->Tokens()) {
    if (t.info.id() != req->id()) continue;
    t.info.set_revoked(true);
    if (auto st = ctx_.core->PutToken(t); !st.ok()) return ToGrpc(st);
    ctx_.auth->Put(t);
    *resp->mutable_token() = t.info;
    GL_LOG_INFO("token revoked", F("id", t.info.id()));
    return grpc::Status::OK;
  }
  return ToGrpc(absl::NotFoundError(absl::StrCat("id: no token '", req->id(), "'")));
}

grpc::Status AdminService::ListTokens(grpc::ServerContext* context, const v1::ListTokensRequest*,
                                      v1::ListTokensResponse* resp) {
  AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  auto tokens = ctx_.core->Tokens();
  std::sort(tokens.begin(), tokens.end(),
            [](const auto& a, const auto& b) { return a.info.id() < b.info.id(); });
  for (const auto& t : tokens) *resp->add_tokens() = t.info;
  return grpc::Status::OK;
}

}  // namespace greenlight::scheduler
