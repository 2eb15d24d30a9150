// greenlight.v1.Scheduler over gRPC: submit, estimate, read, cancel and watch jobs.
#pragma once

#include "greenlight/v1/scheduler.grpc.pb.h"
#include "services/scheduler/service_support.h"

namespace greenlight::scheduler {

// The greenlight_submits_rejected_total{reason} label of a refused submit,
// from its ErrorInfo reason (common/error_details.h): one of invalid, caps,
// gpu_type_quota, team_budget, queue_full, overloaded, rate_limited,
// cannot_start_now, unavailable, duplicate, other.
const char* RejectionLabel(const absl::Status& st);

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

}  // namespace greenlight::scheduler
