// gRPC adapters: thin translations between the API and SchedulerCore. The
// only place where absl::Status becomes grpc::Status (with google.rpc.Status
// details) and where callers are authenticated.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "greenlight/v1/admin.grpc.pb.h"
#include "greenlight/v1/budgets.grpc.pb.h"
#include "greenlight/v1/inventory.grpc.pb.h"
#include "greenlight/v1/scheduler.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "services/scheduler/auth.h"
#include "services/scheduler/core.h"

namespace greenlight::scheduler {

// absl::Status -> grpc::Status, carrying payloads (e.g. the best quote) as
// google.rpc.Status details in grpc-status-details-bin.
grpc::Status ToGrpc(const absl::Status& s);
// The greenlight_submits_rejected_total{reason} label of a refused submit,
// from its ErrorInfo reason (common/error_details.h): one of invalid, caps,
// gpu_type_quota, team_budget, queue_full, overloaded, rate_limited,
// cannot_start_now, unavailable, duplicate, other.
const char* RejectionLabel(const absl::Status& st);

// Per-team limits on submits: a token bucket (rate) and a cap on submits in
// flight at once (concurrency), so that one team's burst cannot fill the
// command queue that every team shares.
class TeamLimiter {
 public:
  // rate_per_second <= 0: no rate limit; max_inflight <= 0: no concurrency limit.
  TeamLimiter(double rate_per_second, int burst, int max_inflight = 0)
      : rate_(rate_per_second), burst_(burst), max_inflight_(max_inflight) {}
  // False when the team is over its rate (RESOURCE_EXHAUSTED for the caller).
  bool Allow(const std::string& team);
  // Takes one of the team's in-flight slots; false when all are taken
  // (RESOURCE_EXHAUSTED for the caller). Every true is paired with Release.
  bool Acquire(const std::string& team);
  void Release(const std::string& team);
  int max_inflight() const { return max_inflight_; }

 private:
  struct Bucket {
    double tokens;
    absl::Time last;
  };
  double rate_;
  int burst_;
  int max_inflight_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> inflight_ ABSL_GUARDED_BY(mu_);
};

// At most `max` calls at once through a gate (0 = unlimited). SubmitJob and
// EstimateJob pass one: each holds a placement snapshot and decision (MiBs
// with a large inventory) while it runs, and the core has one writer, so
// more concurrency than that buys latency and memory, not throughput. Calls
// beyond are refused at once with RESOURCE_EXHAUSTED.
class InflightGate {
 public:
  explicit InflightGate(int max) : max_(max) {}
  bool Enter() {
    if (max_ <= 0) return true;
    if (count_.fetch_add(1) >= max_) {
      count_.fetch_sub(1);
      return false;
    }
    return true;
  }
  void Leave() {
    if (max_ > 0) count_.fetch_sub(1);
  }
  int max() const { return max_; }

 private:
  const int max_;
  std::atomic<int> count_{0};
};

// Bounds on WatchJobs streams. Watchers pull committed events at their own
// pace (no per-watcher buffer), but a client that stops reading blocks its
// stream's Write and holds a server thread: such a stream is cancelled after
// `stall_timeout` and the client resumes from the last revision it received
// (WatchJobs is gapless from any from_revision). At most `max_watchers`
// streams are open at once; more get RESOURCE_EXHAUSTED.
class WatchLimiter {
 public:
  WatchLimiter(int max_watchers, absl::Duration stall_timeout);
  ~WatchLimiter();
  WatchLimiter(const WatchLimiter&) = delete;
  WatchLimiter& operator=(const WatchLimiter&) = delete;

  bool Enter(grpc::ServerContext* stream);
  void Leave(grpc::ServerContext* stream);
  // Brackets each Write to `stream`.
  void BeginWrite(grpc::ServerContext* stream);
  void EndWrite(grpc::ServerContext* stream);
  // Streams cancelled for stalling so far.
  int64_t dropped() const;
  int open() const;

 private:
  void ReapLoop();

  const int max_watchers_;
  const absl::Duration stall_timeout_;
  mutable absl::Mutex mu_;
  // Open streams -> since when the current Write blocks (InfiniteFuture: not writing).
  absl::flat_hash_map<grpc::ServerContext*, absl::Time> streams_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

struct ServiceContext {
  SchedulerCore* core = nullptr;
  Authenticator* auth = nullptr;
  TeamLimiter* limiter = nullptr;      // may be null (no limit)
  WatchLimiter* watches = nullptr;     // may be null (no limit)
  InflightGate* placements = nullptr;  // may be null (no limit)
  std::atomic<bool>* shutting_down = nullptr;
  // Counters for metrics (may be null).
  std::function<void(const std::string& team)> on_admit;
  std::function<void(const std::string& reason)> on_reject;
  // An admitted job's quote (chosen vs carbon-blind baseline), for savings.
  std::function<void(const std::string& team, const greenlight::v1::Quote& quote)> on_decision;
};

class SchedulerService final : public greenlight::v1::Scheduler::Service {
 public:
  explicit SchedulerService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status SubmitJob(grpc::ServerContext*, const greenlight::v1::SubmitJobRequest*,
                         greenlight::v1::SubmitJobResponse*) override;
  grpc::Status EstimateJob(grpc::ServerContext*, const greenlight::v1::EstimateJobRequest*,
                           greenlight::v1::EstimateJobResponse*) override;
  grpc::Status GetJob(grpc::ServerContext*, const greenlight::v1::GetJobRequest*,
                      greenlight::v1::GetJobResponse*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const greenlight::v1::ListJobsRequest*,
                        greenlight::v1::ListJobsResponse*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const greenlight::v1::CancelJobRequest*,
                         greenlight::v1::CancelJobResponse*) override;
  grpc::Status WatchJobs(grpc::ServerContext*, const greenlight::v1::WatchJobsRequest*,
                         grpc::ServerWriter<greenlight::v1::JobEvent>*) override;
  grpc::Status Ping(grpc::ServerContext*, const greenlight::v1::PingRequest*,
                    greenlight::v1::PingResponse*) override;

 private:
  ServiceContext ctx_;
};

class BudgetsService final : public greenlight::v1::Budgets::Service {
 public:
  explicit BudgetsService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status SetTeam(grpc::ServerContext*, const greenlight::v1::SetTeamRequest*,
                       greenlight::v1::SetTeamResponse*) override;
  grpc::Status GetTeam(grpc::ServerContext*, const greenlight::v1::GetTeamRequest*,
                       greenlight::v1::GetTeamResponse*) override;
  grpc::Status ListTeams(grpc::ServerContext*, const greenlight::v1::ListTeamsRequest*,
                         greenlight::v1::ListTeamsResponse*) override;
  grpc::Status GetUsage(grpc::ServerContext*, const greenlight::v1::GetUsageRequest*,
                        greenlight::v1::GetUsageResponse*) override;

 private:
  ServiceContext ctx_;
};

class InventoryService final : public greenlight::v1::Inventory::Service {
 public:
  explicit InventoryService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status ListPools(grpc::ServerContext*, const greenlight::v1::ListPoolsRequest*,
                         greenlight::v1::ListPoolsResponse*) override;
  grpc::Status UpsertPools(grpc::ServerContext*, const greenlight::v1::UpsertPoolsRequest*,
                           greenlight::v1::UpsertPoolsResponse*) override;
  grpc::Status SetCarbonSeries(grpc::ServerContext*, const greenlight::v1::SetCarbonSeriesRequest*,
                               greenlight::v1::SetCarbonSeriesResponse*) override;
  grpc::Status ListZones(grpc::ServerContext*, const greenlight::v1::ListZonesRequest*,
                         greenlight::v1::ListZonesResponse*) override;

 private:
  ServiceContext ctx_;
};

class AdminService final : public greenlight::v1::Admin::Service {
 public:
  explicit AdminService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status CreateToken(grpc::ServerContext*, const greenlight::v1::CreateTokenRequest*,
                           greenlight::v1::CreateTokenResponse*) override;
  grpc::Status RevokeToken(grpc::ServerContext*, const greenlight::v1::RevokeTokenRequest*,
                           greenlight::v1::RevokeTokenResponse*) override;
  grpc::Status ListTokens(grpc::ServerContext*, const greenlight::v1::ListTokensRequest*,
                          greenlight::v1::ListTokensResponse*) override;

 private:
  ServiceContext ctx_;
};

}  // namespace greenlight::scheduler
