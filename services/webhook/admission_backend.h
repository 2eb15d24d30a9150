// What the Kubernetes admission webhook needs from the scheduler: admit (quote
// and reserve) a job derived from a Pod or Job, and release it again. The
// webhook library does not link the scheduler; greenlightd implements this
// interface over the scheduler core (Admit = SubmitJob / EstimateJob,
// Release = CancelJob) and hands it to WebhookServer::Start.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::webhook {

struct AdmitOptions {
  // The AdmissionReview is a dry run (kubectl --dry-run=server): quote and
  // check exactly as for a real admission, but store and charge nothing
  // (EstimateJob semantics). The result then has no job_id.
  bool dry_run = false;
  // The object can wait outside Kubernetes' scheduler: a suspended batch/v1
  // Job (as Kueue creates them). Over the team's GPU quota such a job may be
  // admitted PENDING (pending_reason "QUOTA"). When false the object would
  // start as soon as Kubernetes schedules it, so over-quota must fail with
  // RESOURCE_EXHAUSTED instead of queueing.
  bool allow_queueing = false;
};

// The admitted (or, on a dry run, quoted) job and the placement chosen for it.
struct AdmitResult {
  // Server-assigned job id ("j-" + 16 hex digits); empty on a dry run.
  std::string job_id;
  // spec.request_id matched an existing job with the same spec: that job is
  // returned and nothing new was reserved.
  bool deduplicated = false;
  // "QUOTA" or "CAPACITY" when admitted PENDING (only with allow_queueing);
  // empty when placed.
  std::string pending_reason;
  // The chosen pool.
  std::string pool_id;        // e.g. "aws/us-east-1/p4d.24xlarge"
  std::string region;         // value for the region node label
  std::string instance_type;  // value for the instance-type node label
  std::string gpu_type;       // greenlight GPU type, e.g. "A100-80GB"
  // Value of the GPU product node label (e.g. "NVIDIA-A100-SXM4-80GB" as set
  // by NVIDIA GPU feature discovery); empty = do not constrain that label.
  std::string gpu_product;
  int32_t nodes = 0;
  bool spot = false;
  // Planned start; InfinitePast() = unknown / now.
  absl::Time start = absl::InfinitePast();
  // Predicted cost and emissions of the chosen placement, which is also what
  // is reserved against the team.
  int64_t cost_micros = 0;
  int64_t carbon_mg = 0;
  // One line for people ("aws/us-east-1/p4d.24xlarge: $412.00, 31.2 kgCO2e").
  std::string summary;
};

// Implementations must be thread-safe: the webhook calls them concurrently
// from its HTTP worker threads, and every call must be durable before it
// returns (the API server may retry or time out at any point).
class AdmissionBackend {
 public:
  virtual ~AdmissionBackend() = default;

  // Validates, quotes and (unless options.dry_run) reserves `spec` for its
  // team, exactly as Scheduler.SubmitJob. spec.request_id is always set by the
  // webhook ("k8s/<namespace>/<Kind>/<id>", at most 128 bytes) and must make
  // the call idempotent: the same request_id with an equal spec returns the
  // same job with deduplicated = true and charges nothing; with a different
  // spec it fails ALREADY_EXISTS. The webhook relies on this: /mutate and
  // /validate both call Admit for one object and must charge it once.
  //
  // Errors (the webhook turns them into an AdmissionReview denial; messages
  // are shown to the kubectl user and must say what to change):
  //   INVALID_ARGUMENT     a bad field, named (e.g. unknown gpu type)
  //   NOT_FOUND            the team does not exist
  //   PERMISSION_DENIED    the team may not submit
  //   FAILED_PRECONDITION  no placement meets the job's caps or deadline;
  //                        the message carries the best quote
  //   RESOURCE_EXHAUSTED   the team's budget (cost or carbon) cannot cover the
  //                        quote, or its GPU quota is full and
  //                        !options.allow_queueing
  //   ALREADY_EXISTS       request_id reused with a different spec
  // Any other code (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED, ...) is treated
  // as "greenlight could not decide": the webhook answers HTTP 500 and the
  // webhook configuration's failurePolicy applies.
  virtual absl::StatusOr<AdmitResult> Admit(const greenlight::v1::JobSpec& spec,
                                            const AdmitOptions& options) = 0;

  // Releases what is still reserved for a job (Scheduler.CancelJob semantics:
  // accrued spend stays charged, the unused reservation returns to the team).
  // `job_or_request_id` is either a job id ("j-...") or a request_id that was
  // passed to Admit ("k8s/..."); the two never collide. Releasing a finished
  // or already released job must succeed (OK); an unknown id is NOT_FOUND.
  // The webhook never denies a deletion because of a Release error.
  virtual absl::Status Release(const std::string& job_or_request_id, const std::string& reason) = 0;
};

}  // namespace greenlight::webhook
