// WebhookAdapter: the Kubernetes webhook's port (webhook::AdmissionBackend)
// over the scheduler core: admit = SubmitJob (or EstimateJob for dry runs),
// release = CancelJob. Lives with the adapters because it joins two modules
// (webhook, scheduler core).
#pragma once

#include <string>

#include "services/scheduler/core.h"
#include "services/webhook/admission_backend.h"

namespace greenlight::scheduler {

class WebhookAdapter final : public webhook::AdmissionBackend {
 public:
  explicit WebhookAdapter(SchedulerCore* core) : core_(core) {}
  absl::StatusOr<webhook::AdmitResult> Admit(const greenlight::v1::JobSpec& spec,
                                             const webhook::AdmitOptions& options) override;
  absl::Status Release(const std::string& job_or_request_id, const std::string& reason) override;

  // NVIDIA GPU feature discovery's product label for a GPU type ("" if unsure).
  static std::string GpuProduct(const std::string& gpu_type);

 private:
  SchedulerCore* core_;
};

}  // namespace greenlight::scheduler
