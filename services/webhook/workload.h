// How the webhook reads a Kubernetes Pod or batch/v1 Job: its GPU request
// (Kubernetes' effective-request rules), its greenlight.dev/* annotations as a
// JobSpec, and the JSONPatch that pins it to the pool greenlight chose.
// Pure functions over nlohmann::json; no network, no backend.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/config.h"
#include "greenlight/v1/types.pb.h"
#include "nlohmann/json.hpp"
#include "services/webhook/admission_backend.h"

namespace greenlight::webhook {

// Node label keys and the team label, from Config (webhook_* keys).
struct WebhookLabels {
  // Label, else annotation, naming the team; empty = the namespace is the team.
  std::string team_label;
  std::string region_label = "topology.kubernetes.io/region";
  std::string instance_label = "node.kubernetes.io/instance-type";
  std::string gpu_label = "nvidia.com/gpu.product";
};
WebhookLabels WebhookLabelsFromConfig(const Config& config);

// The extended resource counted as GPUs.
inline constexpr char kGpuResource[] = "nvidia.com/gpu";

// Annotations read from the object (inputs, validated like SubmitJob fields).
namespace annotation {
inline constexpr char kPrefix[] = "greenlight.dev/";
inline constexpr char kMaxCostUsd[] = "greenlight.dev/max-cost-usd";
inline constexpr char kMaxCarbonKg[] = "greenlight.dev/max-carbon-kg";
inline constexpr char kDeadline[] = "greenlight.dev/deadline";
inline constexpr char kNotBefore[] = "greenlight.dev/not-before";
inline constexpr char kGpuType[] = "greenlight.dev/gpu-type";
inline constexpr char kRegions[] = "greenlight.dev/regions";
inline constexpr char kDuration[] = "greenlight.dev/duration";
inline constexpr char kReferenceGpuHours[] = "greenlight.dev/reference-gpu-hours";
inline constexpr char kCheckpointable[] = "greenlight.dev/checkpointable";
inline constexpr char kPriority[] = "greenlight.dev/priority";
inline constexpr char kMode[] = "greenlight.dev/mode";
// Written by the mutating webhook (outputs; user-set values are overwritten).
inline constexpr char kJobId[] = "greenlight.dev/job-id";
inline constexpr char kRequestId[] = "greenlight.dev/request-id";
inline constexpr char kQuoteCostUsd[] = "greenlight.dev/quote-cost-usd";
inline constexpr char kQuoteCarbonKg[] = "greenlight.dev/quote-carbon-kg";
inline constexpr char kPool[] = "greenlight.dev/pool";
inline constexpr char kPlannedStart[] = "greenlight.dev/planned-start";
}  // namespace annotation

enum class WorkloadKind { kPod, kJob };
const char* WorkloadKindName(WorkloadKind kind);  // "Pod" | "Job"

// A Pod or Job as greenlight sees it.
struct Workload {
  WorkloadKind kind = WorkloadKind::kPod;
  std::string namespace_name;
  // metadata.generateName when set (stable between the mutating call, where
  // the name is not generated yet, and the validating call), else metadata.name.
  std::string name;
  std::string uid;               // empty before the API server assigns it
  std::string resource_version;  // empty on CREATE
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // Effective nvidia.com/gpu request of one pod, and pods running at once.
  int64_t gpus_per_pod = 0;
  int64_t pods = 1;
  int64_t total_gpus() const { return gpus_per_pod * pods; }
  // Job: spec.suspend (Kueue creates Jobs suspended and unsuspends on admission).
  bool suspended = false;
  // Pod created by a batch/v1 Job controller from a template that greenlight
  // already admitted (carries greenlight.dev/job-id): charged through its Job.
  bool covered_by_job = false;
  // spec.activeDeadlineSeconds of the Job or Pod (0 = unset).
  int64_t active_deadline_seconds = 0;
};

// Effective GPU request of a PodSpec, as the Kubernetes scheduler computes it:
// max(sum(containers) + sum(sidecars), max over init containers of (the init
// container + the sidecars started before it)). A container's count is its
// requests["nvidia.com/gpu"], else its limits (extended resources default
// requests to limits). INVALID_ARGUMENT for a non-integer or negative count.
absl::StatusOr<int64_t> EffectivePodGpus(const nlohmann::json& pod_spec);

// Reads a Pod or Job object. `namespace_name` is the AdmissionReview's
// request.namespace (objects may omit metadata.namespace on CREATE).
absl::StatusOr<Workload> ParseWorkload(const nlohmann::json& object, WorkloadKind kind,
                                       const std::string& namespace_name);

// The JobSpec for a GPU workload (request_id left empty). INVALID_ARGUMENT
// names the offending annotation (or field) and says what a valid value is.
absl::StatusOr<greenlight::v1::JobSpec> BuildJobSpec(const Workload& workload,
                                                     const WebhookLabels& labels);

// The team: the label/annotation `labels.team_label` when set and present,
// else the namespace.
std::string TeamOf(const Workload& workload, const WebhookLabels& labels);

// Escapes a JSON pointer reference token (RFC 6901): "~" -> "~0", "/" -> "~1".
std::string JsonPointerEscape(absl::string_view token);

// The quote annotations written on the object (and a Job's pod template).
std::map<std::string, std::string> QuoteAnnotations(const AdmitResult& result,
                                                    const std::string& request_id);

// RFC 6902 operations that set `annotations` on the object's metadata (and,
// for a Job, on spec.template.metadata) and, when `pin_nodes`, the node
// selector of the chosen pool on the pod spec (spec / spec.template.spec).
// Missing maps are added whole, so the patch applies to any valid object.
nlohmann::json BuildPatch(const nlohmann::json& object, WorkloadKind kind,
                          const AdmitResult& result,
                          const std::map<std::string, std::string>& annotations,
                          const WebhookLabels& labels, bool pin_nodes);

}  // namespace greenlight::webhook
