#include "services/scheduler/webhook_adapter.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "services/placement/engine.h"
#include "services/scheduler/job_state.h"
#include "services/scheduler/legacy_text.h"

namespace greenlight::scheduler {

namespace {

constexpr char kQuotaDenied[] = "denied by the Kubernetes webhook: team GPU quota is full";

webhook::AdmitResult FromPlacement(const v1::Placement& p) {
  webhook::AdmitResult r;
  r.pool_id = p.pool_id();
  r.region = p.region();
  r.instance_type = p.instance_type();
  r.gpu_type = p.gpu_type();
  r.gpu_product = WebhookAdapter::GpuProduct(p.gpu_type());
  r.nodes = p.nodes();
  r.spot = p.spot();
  if (p.has_start()) r.start = FromProto(p.start());
  r.cost_micros = p.cost_micros();
  r.carbon_mg = p.carbon_mg();
  r.summary =
      absl::StrCat(p.pool_id(), ": $", p.cost_micros() / 1e6, ", ", p.carbon_mg() / 1e6, " kgCO2e");
  return r;
}

}  // namespace

std::string WebhookAdapter::GpuProduct(const std::string& t) {
  // Values NVIDIA GPU feature discovery sets on nodes (nvidia.com/gpu.product).
  if (t == "H100") return "NVIDIA-H100-80GB-HBM3";
  if (t == "A100") return "NVIDIA-A100-SXM4-40GB";
  if (t == "A100-80GB") return "NVIDIA-A100-SXM4-80GB";
  if (t == "L4") return "NVIDIA-L4";
  if (t == "L40S") return "NVIDIA-L40S";
  if (t == "A10G") return "NVIDIA-A10G";
  if (t == "T4") return "Tesla-T4";
  if (t == "V100") return "Tesla-V100-SXM2-16GB";
  return "";
}

absl::StatusOr<webhook::AdmitResult> WebhookAdapter::Admit(const v1::JobSpec& spec,
                                                           const webhook::AdmitOptions& opt) {
  if (!core_->GetTeam(spec.team()).ok()) {
    return absl::NotFoundError(
        absl::StrCat("team '", spec.team(),
                     "' does not exist in greenlight; ask an admin to create it "
                     "(greenlight teams set ",
                     spec.team(), " ...)"));
  }
  if (opt.dry_run) {
    auto q = core_->Estimate(spec, 3);
    if (!q.ok()) return q.status();
    if (!q->feasible()) {
      for (const auto& r : q->rejections()) {
        if (r.reason() == placement::kReasonTeamBudget)
          return absl::ResourceExhaustedError(
              absl::StrCat("team '", spec.team(), "' budget: ", q->summary()));
        if (r.reason() == placement::kReasonQuota && !q->not_now())
          return absl::ResourceExhaustedError(
              absl::StrCat("team '", spec.team(), "' GPU quota: ", q->summary()));
      }
      if (q->not_now() && !opt.allow_queueing)
        return absl::ResourceExhaustedError(
            absl::StrCat("no capacity or quota now: ", q->summary()));
      if (!q->not_now()) return absl::FailedPreconditionError(q->summary());
    }
    webhook::AdmitResult r = FromPlacement(q->chosen());
    r.summary = q->summary();
    return r;
  }
  // Without queueing the object starts as soon as Kubernetes schedules it,
  // so a job that would wait in greenlight is refused (nothing is written).
  SubmitOptions submit_options;
  submit_options.only_if_it_can_start_now = !opt.allow_queueing;
  auto sub = core_->Submit(spec, submit_options);
  if (!sub.ok()) {
    if (ReasonOf(sub.status()) == reason::kCannotStartNow) {
      return WithReason(
          absl::ResourceExhaustedError(absl::StrCat(
              sub.status().message(), "; use a suspended Job (Kueue) to queue, or wait")),
          reason::kCannotStartNow, {{"cause", ReasonMetadata(sub.status(), "cause")}});
    }
    return sub.status();
  }
  const v1::Job& job = sub->job;
  // Stores written before greenlight refused such jobs up front hold them
  // cancelled; a retry with the same request id finds that job.
  if (job.state() == v1::JOB_STATE_CANCELLED && absl::StrContains(job.message(), kQuotaDenied)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "team '", spec.team(),
        "' GPU quota is full; delete running GPU workloads or ask for a larger quota"));
  }
  webhook::AdmitResult r = FromPlacement(job.placement());
  r.job_id = job.id();
  r.deduplicated = sub->deduplicated;
  r.pending_reason = job.state() == v1::JOB_STATE_PENDING ? PendingText(job.pending()) : "";
  return r;
}

absl::Status WebhookAdapter::Release(const std::string& id, const std::string& reason) {
  std::string job_id = id;
  if (!absl::StartsWith(id, "j-")) {
    auto found = core_->JobIdForRequest(id);
    if (!found.ok()) return found.status();
    job_id = *found;
  }
  auto job = core_->GetJob(job_id);
  if (!job.ok()) return job.status();
  if (IsTerminal(job->state())) return absl::OkStatus();
  auto c = core_->Cancel(job_id, reason.empty() ? "deleted in Kubernetes" : reason);
  if (!c.ok() && c.status().code() != absl::StatusCode::kFailedPrecondition) return c.status();
  return absl::OkStatus();
}

}  // namespace greenlight::scheduler
