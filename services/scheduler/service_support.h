// What the gRPC adapters share: their dependencies (ServiceContext), the one
// absl::Status -> grpc::Status conversion, and who the caller is.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "greenlight/v1/types.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/status.h"
#include "services/scheduler/auth.h"
#include "services/scheduler/core.h"
#include "services/scheduler/limiters.h"

namespace greenlight::scheduler {

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

// absl::Status -> grpc::Status, carrying payloads (e.g. the best quote) as
// google.rpc.Status details in grpc-status-details-bin.
grpc::Status ToGrpc(const absl::Status& s);

// The caller, from the call's "authorization" metadata.
// The caller of any service but AgentService (agent tokens are refused).
absl::StatusOr<Principal> Who(const ServiceContext& ctx, grpc::ServerContext* sc);
// The caller of AgentService: an agent token, or an admin.
absl::StatusOr<Principal> WhoAgent(const ServiceContext& ctx, grpc::ServerContext* sc);
// PERMISSION_DENIED unless `p` is an admin.
absl::Status AdminOnly(const Principal& p);
// The NOT_FOUND of a job that does not exist or that the caller may not see
// (the two are indistinguishable on purpose).
absl::Status NotFoundJob(const std::string& id);

}  // namespace greenlight::scheduler

// In a service method with members ctx_ and a grpc::ServerContext* named
// `context`: declares the caller `p`, or returns its authentication error.
#define GL_AUTH_OR_RETURN(p)                                                 \
  auto p##_or = ::greenlight::scheduler::Who(ctx_, context);                 \
  if (!p##_or.ok()) return ::greenlight::scheduler::ToGrpc(p##_or.status()); \
  [[maybe_unused]] const ::greenlight::scheduler::Principal& p = *p##_or
