#include "services/webhook/admission_handler.h"

#include <exception>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/units.h"
#include "google/protobuf/util/message_differencer.h"

namespace greenlight::webhook {
namespace {

using nlohmann::json;

constexpr size_t kMaxUidBytes = 128;

HttpReply TextError(int status, absl::string_view message) {
  return HttpReply{status, "text/plain; charset=utf-8", absl::StrCat(message, "\n")};
}

// True when no array/object in `s` nests deeper than `max` (strings skipped).
bool DepthWithin(absl::string_view s, int max) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : s) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max) return false;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return true;
}

const json* Member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

// Reads an optional string member; INVALID_ARGUMENT when present but not a string.
absl::StatusOr<std::string> OptString(const json& obj, const char* key, absl::string_view where) {
  const json* v = Member(obj, key);
  if (v == nullptr) return std::string();
  if (!v->is_string())
    return absl::InvalidArgumentError(absl::StrCat(where, key, " must be a string"));
  return v->get<std::string>();
}

struct Review {
  std::string uid;
  std::string group, version, kind;
  std::string sub_resource;
  std::string operation;
  std::string namespace_name;
  std::string name;
  bool dry_run = false;
  const json* object = nullptr;      // null when absent (DELETE)
  const json* old_object = nullptr;  // null when absent (CREATE)
};

absl::StatusOr<Review> ParseReview(const json& root) {
  auto bad = [](absl::string_view m) { return absl::InvalidArgumentError(m); };
  if (!root.is_object()) return bad("body must be a JSON object (an AdmissionReview)");
  auto api_version = OptString(root, "apiVersion", "");
  auto kind = OptString(root, "kind", "");
  if (!api_version.ok() || *api_version != "admission.k8s.io/v1") {
    return bad(absl::StrCat("apiVersion must be admission.k8s.io/v1 (got \"",
                            api_version.ok() ? *api_version : "?",
                            "\"): set admissionReviewVersions: [\"v1\"] in the webhook "
                            "configuration"));
  }
  if (!kind.ok() || *kind != "AdmissionReview") {
    return bad(
        absl::StrCat("kind must be AdmissionReview (got \"", kind.ok() ? *kind : "?", "\")"));
  }
  const json* request = Member(root, "request");
  if (request == nullptr || !request->is_object()) {
    return bad("AdmissionReview has no request object");
  }
  Review r;
  auto uid = OptString(*request, "uid", "request.");
  if (!uid.ok()) return uid.status();
  if (uid->empty() || uid->size() > kMaxUidBytes) {
    return bad("request.uid must be a non-empty string of at most 128 bytes");
  }
  r.uid = *uid;
  const json* gvk = Member(*request, "kind");
  if (gvk == nullptr || !gvk->is_object()) return bad("request.kind must be an object");
  for (auto [field, out] : {std::pair{"group", &r.group}, std::pair{"version", &r.version},
                            std::pair{"kind", &r.kind}}) {
    auto v = OptString(*gvk, field, "request.kind.");
    if (!v.ok()) return v.status();
    *out = *v;
  }
  for (auto [field, out] :
       {std::pair{"operation", &r.operation}, std::pair{"namespace", &r.namespace_name},
        std::pair{"name", &r.name}, std::pair{"subResource", &r.sub_resource}}) {
    auto v = OptString(*request, field, "request.");
    if (!v.ok()) return v.status();
    *out = *v;
  }
  if (r.operation != "CREATE" && r.operation != "UPDATE" && r.operation != "DELETE" &&
      r.operation != "CONNECT") {
    return bad(absl::StrCat("request.operation \"", r.operation,
                            "\" is not CREATE, UPDATE, DELETE or CONNECT"));
  }
  if (const json* d = Member(*request, "dryRun")) {
    if (!d->is_boolean()) return bad("request.dryRun must be a boolean");
    r.dry_run = d->get<bool>();
  }
  r.object = Member(*request, "object");
  r.old_object = Member(*request, "oldObject");
  return r;
}

// What to answer: an AdmissionReview response, or an HTTP error.
struct Decision {
  bool allowed = true;
  int code = 0;
  std::string reason;
  std::string message;
  json patch = json::array();
  std::vector<std::string> warnings;
  int http_error = 0;  // 400 or 500: answer with this status instead
  std::string http_message;
};

Decision Allow() { return Decision{}; }

Decision Deny(int code, absl::string_view reason, absl::string_view message) {
  Decision d;
  d.allowed = false;
  d.code = code;
  d.reason = std::string(reason);
  d.message = absl::StrCat("greenlight: ", message);
  return d;
}

Decision HttpError(int status, absl::string_view message) {
  Decision d;
  d.http_error = status;
  d.http_message = std::string(message);
  return d;
}

class Decider {
 public:
  Decider(AdmissionBackend* backend, const WebhookLabels& labels, Endpoint endpoint,
          const Review& review)
      : backend_(backend), labels_(labels), endpoint_(endpoint), review_(review) {}

  Decision Decide() {
    // Status, binding, ephemeralcontainers...: not a new workload.
    if (!review_.sub_resource.empty() || review_.operation == "CONNECT") return Allow();
    if (review_.group == "" && review_.version == "v1" && review_.kind == "Pod") {
      kind_ = WorkloadKind::kPod;
    } else if (review_.group == "batch" && review_.version == "v1" && review_.kind == "Job") {
      kind_ = WorkloadKind::kJob;
    } else {
      return HttpError(
          400, absl::StrCat("greenlight admits v1 Pods and batch/v1 Jobs, got ",
                            review_.group.empty() ? "" : review_.group + "/", review_.version, " ",
                            review_.kind, ": fix the rules of the webhook configuration"));
    }
    if (review_.namespace_name.empty()) {
      return HttpError(400, "request.namespace is empty: Pods and Jobs are namespaced");
    }
    if (review_.operation == "CREATE") return Create();
    if (review_.operation == "UPDATE") return Update();
    return Delete();
  }

 private:
  std::string IdPrefix() const {
    return absl::StrCat("k8s/", review_.namespace_name, "/", WorkloadKindName(kind_), "/");
  }

  // The request_id carried from /mutate in the object's annotation, when it
  // belongs to this namespace and kind (a copied foreign id is ignored).
  std::string AnnotatedRequestId(const Workload& w) const {
    auto it = w.annotations.find(annotation::kRequestId);
    if (it == w.annotations.end() || !absl::StartsWith(it->second, IdPrefix())) return "";
    return it->second;
  }

  // Where a workload's reservation can be found for release.
  std::string ReleaseRef(const Workload& w) const {
    if (auto it = w.annotations.find(annotation::kJobId); it != w.annotations.end()) {
      return it->second;
    }
    std::string id = AnnotatedRequestId(w);
    if (!id.empty()) return id;
    return w.uid.empty() ? "" : IdPrefix() + w.uid;
  }

  absl::StatusOr<Workload> Parse(const json* object, absl::string_view which) const {
    if (object == nullptr || !object->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat("request.", which, " is missing"));
    }
    return ParseWorkload(*object, kind_, review_.namespace_name);
  }

  Decision Create() {
    auto w = Parse(review_.object, "object");
    if (!w.ok()) return ParseFailure(w.status());
    if (w->covered_by_job || w->total_gpus() == 0) return Allow();
    auto spec = BuildJobSpec(*w, labels_);
    if (!spec.ok()) return Deny(400, "BadRequest", spec.status().message());
    std::string request_id;
    if (endpoint_ == Endpoint::kMutate) {
      request_id = IdPrefix() + review_.uid;
    } else {
      request_id = AnnotatedRequestId(*w);
      if (request_id.empty()) request_id = IdPrefix() + (w->uid.empty() ? review_.uid : w->uid);
    }
    return Admit(*w, *std::move(spec), request_id, /*pin_nodes=*/true, /*release_ref=*/"");
  }

  Decision Update() {
    auto w = Parse(review_.object, "object");
    if (!w.ok()) return ParseFailure(w.status());
    if (w->covered_by_job) return Allow();
    // An old object greenlight cannot read was never charged by it.
    absl::StatusOr<Workload> old = Parse(review_.old_object, "oldObject");
    const bool old_has_gpus = old.ok() && old->total_gpus() > 0 && !old->covered_by_job;
    std::string old_ref = old_has_gpus ? ReleaseRef(*old) : "";
    if (w->total_gpus() == 0) {
      // A suspended Job scaled to zero: nothing left to reserve for.
      if (endpoint_ == Endpoint::kValidate && !old_ref.empty()) {
        ReleaseQuietly(old_ref, "GPU request removed");
      }
      return Allow();
    }
    auto spec = BuildJobSpec(*w, labels_);
    if (old_has_gpus) {
      // Nothing greenlight reads changed (labels, finalizers, Kueue
      // bookkeeping, its own annotations): no re-charge and no re-validation,
      // so controllers can still update objects admitted before a rule change.
      auto old_spec = BuildJobSpec(*old, labels_);
      bool unchanged =
          spec.ok() ? old_spec.ok() &&
                          google::protobuf::util::MessageDifferencer::Equals(*old_spec, *spec)
                    : !old_spec.ok() && old_spec.status() == spec.status();
      if (unchanged) return Allow();
    }
    if (!spec.ok()) return Deny(400, "BadRequest", spec.status().message());
    std::string request_id;
    if (endpoint_ == Endpoint::kMutate) {
      request_id = IdPrefix() + review_.uid;
    } else {
      request_id = AnnotatedRequestId(*w);
      if (request_id.empty() || (old.ok() && request_id == AnnotatedRequestId(*old))) {
        // No fresh id from /mutate: one per (object, version), stable on retries.
        request_id = absl::StrCat(IdPrefix(), w->uid.empty() ? review_.uid : w->uid, "@",
                                  old.ok() ? old->resource_version : review_.uid);
      }
    }
    // Pod specs and running Jobs' templates are immutable: only a suspended
    // Job may take new node selectors.
    bool pin_nodes = kind_ == WorkloadKind::kJob && w->suspended;
    return Admit(*w, *std::move(spec), request_id, pin_nodes, old_ref);
  }

  Decision Delete() {
    if (endpoint_ == Endpoint::kMutate) return Allow();
    if (review_.old_object == nullptr) return Allow();  // nothing to find the job by
    auto old = Parse(review_.old_object, "oldObject");
    // A deletion is never denied: an unreadable object was never charged.
    if (!old.ok() || old->covered_by_job || old->total_gpus() == 0) return Allow();
    std::string ref = ReleaseRef(*old);
    if (!ref.empty() && !review_.dry_run) {
      ReleaseQuietly(ref, absl::StrCat("Kubernetes ", WorkloadKindName(kind_), " ",
                                       review_.namespace_name, "/", old->name, " deleted"));
    }
    return Allow();
  }

  // A structurally broken object: the API server would reject it anyway, but
  // it is not ours to crash on. Denied with the reason.
  Decision ParseFailure(const absl::Status& st) const {
    return Deny(400, "BadRequest", st.message());
  }

  void ReleaseQuietly(const std::string& ref, const std::string& reason) const {
    absl::Status st = backend_->Release(ref, reason);
    if (!st.ok() && !absl::IsNotFound(st)) {
      GL_LOG_WARN("webhook: release failed", {F("ref", ref), F("error", st.ToString())});
    }
  }

  Decision Admit(const Workload& w, greenlight::v1::JobSpec spec, const std::string& request_id,
                 bool pin_nodes, const std::string& release_ref) {
    spec.set_request_id(request_id);
    AdmitOptions options;
    options.dry_run = review_.dry_run;
    options.allow_queueing = w.kind == WorkloadKind::kJob && w.suspended;
    absl::StatusOr<AdmitResult> r = backend_->Admit(spec, options);
    if (!r.ok()) return FromBackendError(r.status(), spec);
    if (!options.allow_queueing && r->pending_reason == "QUOTA") {
      // The backend queued what Kubernetes would start at once: undo and deny.
      if (!options.dry_run && !r->deduplicated && !r->job_id.empty()) {
        ReleaseQuietly(r->job_id, "denied by the admission webhook: GPU quota full");
      }
      return Deny(403, "Forbidden",
                  absl::StrCat("team ", spec.team(), "'s GPU quota cannot take ", spec.gpus(),
                               " more GPUs now. To run it: wait for running jobs to finish, "
                               "lower nvidia.com/gpu or spec.parallelism, or create it as a "
                               "suspended Job (Kueue) so it can queue"));
    }
    if (!release_ref.empty() && !options.dry_run && !r->deduplicated && release_ref != r->job_id &&
        release_ref != request_id) {
      ReleaseQuietly(release_ref, "replaced by an updated Kubernetes object");
    }
    Decision d = Allow();
    if (endpoint_ == Endpoint::kMutate) {
      const json& object = *review_.object;
      d.patch =
          BuildPatch(object, kind_, *r, QuoteAnnotations(*r, options.dry_run ? "" : request_id),
                     labels_, pin_nodes);
    } else {
      d.warnings.push_back(absl::StrFormat(
          "greenlight: %s %s, %.3f kgCO2e on %s%s", r->job_id.empty() ? "quoted" : r->job_id,
          Money::FromMicros(r->cost_micros).ToString(), Carbon::FromMg(r->carbon_mg).kg(),
          r->pool_id.empty() ? "?" : r->pool_id, options.dry_run ? " (dry run, not charged)" : ""));
    }
    GL_LOG_DEBUG("webhook: admitted",
                 {F("endpoint", endpoint_ == Endpoint::kMutate ? "mutate" : "validate"),
                  F("request_id", request_id), F("job", r->job_id), F("dry_run", options.dry_run),
                  F("deduplicated", r->deduplicated)});
    return d;
  }

  Decision FromBackendError(const absl::Status& st, const greenlight::v1::JobSpec& spec) const {
    std::string msg(st.message());
    switch (st.code()) {
      case absl::StatusCode::kInvalidArgument:
        return Deny(400, "BadRequest", msg);
      case absl::StatusCode::kNotFound:
        return Deny(403, "Forbidden",
                    absl::StrCat(msg, ". Team \"", spec.team(),
                                 "\" must exist in greenlight: ask a greenlight admin to create "
                                 "it (Budgets.SetTeam)",
                                 labels_.team_label.empty()
                                     ? ""
                                     : absl::StrCat(", or set label ", labels_.team_label,
                                                    " to your team")));
      case absl::StatusCode::kPermissionDenied:
        return Deny(403, "Forbidden", msg);
      case absl::StatusCode::kFailedPrecondition:
        return Deny(403, "Forbidden",
                    absl::StrCat(msg, ". To admit it: raise ", annotation::kMaxCostUsd, " or ",
                                 annotation::kMaxCarbonKg, ", move ", annotation::kDeadline,
                                 " later, or allow more ", annotation::kGpuType, " values"));
      case absl::StatusCode::kResourceExhausted:
        return Deny(403, "Forbidden",
                    absl::StrCat(msg, ". To admit it: lower nvidia.com/gpu, parallelism or ",
                                 annotation::kDuration,
                                 ", wait for the next budget period or "
                                 "for running jobs to finish, or ask a greenlight admin to "
                                 "raise team ",
                                 spec.team(), "'s budget or GPU quota"));
      case absl::StatusCode::kAlreadyExists:
        return Deny(409, "Conflict",
                    absl::StrCat(msg,
                                 ". The object's GPU request or greenlight.dev/* "
                                 "annotations changed after greenlight's mutating webhook "
                                 "ran; retry, and do not copy ",
                                 annotation::kRequestId, " between objects"));
      default:
        GL_LOG_WARN("webhook: backend failed",
                    {F("request_id", spec.request_id()), F("error", st.ToString())});
        return HttpError(500, absl::StrCat("greenlight could not decide: ", st.ToString()));
    }
  }

  AdmissionBackend* backend_;
  const WebhookLabels& labels_;
  Endpoint endpoint_;
  const Review& review_;
  WorkloadKind kind_ = WorkloadKind::kPod;
};

}  // namespace

AdmissionHandler::AdmissionHandler(AdmissionBackend* backend, WebhookLabels labels)
    : backend_(backend), labels_(std::move(labels)) {}

HttpReply AdmissionHandler::Handle(Endpoint endpoint, absl::string_view body) const {
  try {
    if (!DepthWithin(body, kMaxJsonDepth)) {
      return TextError(400, absl::StrCat("malformed AdmissionReview: JSON nested deeper than ",
                                         kMaxJsonDepth, " levels"));
    }
    json root;
    try {
      root = json::parse(body.begin(), body.end());
    } catch (const json::parse_error& e) {
      return TextError(400, absl::StrCat("malformed AdmissionReview: ", e.what()));
    }
    absl::StatusOr<Review> review = ParseReview(root);
    if (!review.ok()) {
      return TextError(400,
                       absl::StrCat("unexpected AdmissionReview: ", review.status().message()));
    }
    Decision d = Decider(backend_, labels_, endpoint, *review).Decide();
    if (d.http_error != 0) {
      return TextError(
          d.http_error,
          absl::StrCat(d.http_error == 400 ? "unexpected AdmissionReview: " : "", d.http_message));
    }
    json response = {{"uid", review->uid}, {"allowed", d.allowed}};
    if (!d.allowed) {
      response["status"] = {
          {"status", "Failure"}, {"code", d.code}, {"reason", d.reason}, {"message", d.message}};
    }
    if (!d.patch.empty()) {
      response["patchType"] = "JSONPatch";
      response["patch"] = absl::Base64Escape(d.patch.dump());
    }
    if (!d.warnings.empty()) response["warnings"] = d.warnings;
    json out = {{"apiVersion", "admission.k8s.io/v1"},
                {"kind", "AdmissionReview"},
                {"response", std::move(response)}};
    return HttpReply{200, "application/json",
                     out.dump(-1, ' ', false, json::error_handler_t::replace)};
  } catch (const std::exception& e) {
    // A bug, not the caller's fault: failurePolicy decides.
    GL_LOG_ERROR("webhook: internal error", {F("error", e.what())});
    return TextError(500, absl::StrCat("internal error: ", e.what()));
  }
}

}  // namespace greenlight::webhook
