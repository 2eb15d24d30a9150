#include "services/webhook/workload.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/ids.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace greenlight::webhook {
namespace {

using nlohmann::json;

// Limits shared with JobSpec validation (proto/greenlight/v1/types.proto).
constexpr int64_t kMaxGpus = 4096;
constexpr double kMaxUsd = 1e9;       // max_cost_micros <= 10^15
constexpr double kMaxCarbonKg = 1e9;  // max_carbon_mg <= 10^15
constexpr double kMaxReferenceGpuHours = 1e7;
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxListItems = 64;
// No sane pod asks for more; keeps products far from int64 overflow.
constexpr int64_t kMaxGpusPerContainer = 1 << 20;
constexpr int64_t kMaxPods = 1 << 20;

// The member `key` of `obj`, or nullptr when `obj` is not an object or the
// member is absent or null (Kubernetes serializes unset pointers as null).
const json* Member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string StringMember(const json& obj, const char* key) {
  const json* v = Member(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

absl::Status Invalid(absl::string_view what) { return absl::InvalidArgumentError(what); }

absl::StatusOr<std::map<std::string, std::string>> StringMap(const json& metadata,
                                                             const char* key) {
  std::map<std::string, std::string> out;
  const json* m = Member(metadata, key);
  if (m == nullptr) return out;
  if (!m->is_object()) return Invalid(absl::StrCat("metadata.", key, " must be a map"));
  for (auto it = m->begin(); it != m->end(); ++it) {
    if (!it.value().is_string()) {
      return Invalid(absl::StrCat("metadata.", key, "[\"", it.key(), "\"] must be a string"));
    }
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

// Optional non-negative integer field; `def` when absent.
absl::StatusOr<int64_t> NonNegativeInt(const json& obj, const char* key, int64_t def,
                                       absl::string_view where) {
  const json* v = Member(obj, key);
  if (v == nullptr) return def;
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    return u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(u);
  }
  if (v->is_number_integer() && v->get<int64_t>() >= 0) return v->get<int64_t>();
  return Invalid(absl::StrCat(where, key, " must be a non-negative integer"));
}

// nvidia.com/gpu of one container: requests, else limits.
absl::StatusOr<int64_t> ContainerGpus(const json& container, absl::string_view what) {
  const json* resources = Member(container, "resources");
  if (resources == nullptr) return 0;
  const json* q = nullptr;
  if (const json* r = Member(*resources, "requests")) q = Member(*r, kGpuResource);
  if (q == nullptr) {
    if (const json* l = Member(*resources, "limits")) q = Member(*l, kGpuResource);
  }
  if (q == nullptr) return 0;
  std::string name = StringMember(container, "name");
  auto bad = [&]() {
    return Invalid(absl::StrCat(what, " \"", name, "\": resources ", kGpuResource, " ", q->dump(),
                                " must be a whole number of GPUs (e.g. \"1\" or \"8\")"));
  };
  int64_t n = -1;
  if (q->is_number_unsigned() || (q->is_number_integer() && q->get<int64_t>() >= 0)) {
    n = q->is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(
                                      q->get<uint64_t>(), static_cast<uint64_t>(INT64_MAX)))
                                : q->get<int64_t>();
  } else if (q->is_string()) {
    // Kubernetes sends canonical quantities: a whole count is plain digits.
    const std::string& s = q->get_ref<const std::string&>();
    if (s.empty() || s.size() > 18 || !std::all_of(s.begin(), s.end(), absl::ascii_isdigit) ||
        !absl::SimpleAtoi(s, &n)) {
      return bad();
    }
  } else {
    return bad();
  }
  if (n < 0) return bad();
  if (n > kMaxGpusPerContainer) {
    return Invalid(absl::StrCat(what, " \"", name, "\": resources ", kGpuResource, " ", n,
                                " is more than any node has"));
  }
  return n;
}

absl::StatusOr<const json*> ContainerList(const json& pod_spec, const char* key) {
  const json* list = Member(pod_spec, key);
  if (list == nullptr) return nullptr;
  if (!list->is_array()) return Invalid(absl::StrCat("spec.", key, " must be a list"));
  return list;
}

absl::Status BadAnnotation(absl::string_view key, absl::string_view value,
                           absl::string_view expected) {
  return Invalid(absl::StrCat("annotation ", key, ": \"", value, "\" ", expected));
}

absl::StatusOr<double> ParseNumber(absl::string_view key, absl::string_view value, double min,
                                   double max, bool min_exclusive, absl::string_view example) {
  double d = 0;
  std::string trimmed(absl::StripAsciiWhitespace(value));
  if (!absl::SimpleAtod(trimmed, &d) || !std::isfinite(d)) {
    return BadAnnotation(key, value, absl::StrCat("is not a number; e.g. \"", example, "\""));
  }
  if (d < min || (min_exclusive && d == min) || d > max) {
    return BadAnnotation(key, value,
                         absl::StrCat("must be ", min_exclusive ? "> " : ">= ", min, " and <= ",
                                      absl::StrFormat("%.0f", max), "; e.g. \"", example, "\""));
  }
  return d;
}

absl::StatusOr<absl::Time> ParseRfc3339(absl::string_view key, absl::string_view value) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(absl::StripAsciiWhitespace(value)), &t,
                       &err)) {
    return BadAnnotation(key, value,
                         "is not an RFC 3339 time; e.g. \"2025-07-01T18:00:00Z\" or "
                         "\"2025-07-01T20:00:00+02:00\"");
  }
  return t;
}

absl::StatusOr<std::vector<std::string>> ParseList(absl::string_view key, absl::string_view value,
                                                   absl::string_view example) {
  std::vector<std::string> out;
  for (absl::string_view item : absl::StrSplit(value, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (item.empty() || item.size() > 64) {
      return BadAnnotation(key, value,
                           absl::StrCat("must be a comma-separated list of non-empty names of at "
                                        "most 64 characters; e.g. \"",
                                        example, "\""));
    }
    out.emplace_back(item);
  }
  if (out.size() > kMaxListItems) {
    return BadAnnotation(key, value, absl::StrCat("lists more than ", kMaxListItems, " names"));
  }
  return out;
}

void ToProto(absl::Time t, google::protobuf::Timestamp* ts) {
  int64_t s = absl::ToUnixSeconds(t);
  ts->set_seconds(s);
  ts->set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(s)) / absl::Nanoseconds(1)));
}

const std::set<std::string>& KnownAnnotations() {
  static const auto* known =
      new std::set<std::string>{annotation::kMaxCostUsd,     annotation::kMaxCarbonKg,
                                annotation::kDeadline,       annotation::kNotBefore,
                                annotation::kGpuType,        annotation::kRegions,
                                annotation::kDuration,       annotation::kReferenceGpuHours,
                                annotation::kCheckpointable, annotation::kPriority,
                                annotation::kMode,           annotation::kJobId,
                                annotation::kRequestId,      annotation::kQuoteCostUsd,
                                annotation::kQuoteCarbonKg,  annotation::kPool,
                                annotation::kPlannedStart};
  return *known;
}

}  // namespace

WebhookLabels WebhookLabelsFromConfig(const Config& config) {
  WebhookLabels l;
  l.team_label = config.webhook_team_label;
  l.region_label = config.webhook_region_label;
  l.instance_label = config.webhook_instance_label;
  l.gpu_label = config.webhook_gpu_label;
  return l;
}

const char* WorkloadKindName(WorkloadKind kind) {
  return kind == WorkloadKind::kPod ? "Pod" : "Job";
}

absl::StatusOr<int64_t> EffectivePodGpus(const json& pod_spec) {
  if (!pod_spec.is_object()) return Invalid("pod spec must be an object");
  int64_t containers = 0;
  ASSIGN_OR_RETURN(const json* list, ContainerList(pod_spec, "containers"));
  if (list != nullptr) {
    for (const json& c : *list) {
      ASSIGN_OR_RETURN(int64_t n, ContainerGpus(c, "container"));
      containers += n;
    }
  }
  int64_t sidecars = 0;  // restartable init containers started so far
  int64_t max_init = 0;
  ASSIGN_OR_RETURN(const json* inits, ContainerList(pod_spec, "initContainers"));
  if (inits != nullptr) {
    for (const json& c : *inits) {
      ASSIGN_OR_RETURN(int64_t n, ContainerGpus(c, "init container"));
      if (StringMember(c, "restartPolicy") == "Always") {
        sidecars += n;
        max_init = std::max(max_init, sidecars);
      } else {
        max_init = std::max(max_init, n + sidecars);
      }
    }
  }
  return std::max(containers + sidecars, max_init);
}

absl::StatusOr<Workload> ParseWorkload(const json& object, WorkloadKind kind,
                                       const std::string& namespace_name) {
  if (!object.is_object()) return Invalid("object must be a JSON object");
  Workload w;
  w.kind = kind;
  w.namespace_name = namespace_name;
  const json* metadata = Member(object, "metadata");
  if (metadata == nullptr || !metadata->is_object()) return Invalid("object has no metadata");
  ASSIGN_OR_RETURN(w.labels, StringMap(*metadata, "labels"));
  ASSIGN_OR_RETURN(w.annotations, StringMap(*metadata, "annotations"));
  w.name = StringMember(*metadata, "generateName");
  if (w.name.empty()) w.name = StringMember(*metadata, "name");
  w.uid = StringMember(*metadata, "uid");
  w.resource_version = StringMember(*metadata, "resourceVersion");

  const json* spec = Member(object, "spec");
  if (spec == nullptr || !spec->is_object()) return Invalid("spec must be an object");
  ASSIGN_OR_RETURN(w.active_deadline_seconds,
                   NonNegativeInt(*spec, "activeDeadlineSeconds", 0, "spec."));
  if (kind == WorkloadKind::kPod) {
    ASSIGN_OR_RETURN(w.gpus_per_pod, EffectivePodGpus(*spec));
    if (const json* owners = Member(*metadata, "ownerReferences"); owners && owners->is_array()) {
      for (const json& o : *owners) {
        const json* controller = Member(o, "controller");
        if (StringMember(o, "kind") == "Job" && StringMember(o, "apiVersion") == "batch/v1" &&
            controller != nullptr && controller->is_boolean() && controller->get<bool>()) {
          w.covered_by_job = w.annotations.contains(annotation::kJobId);
        }
      }
    }
    return w;
  }
  const json* tmpl = Member(*spec, "template");
  const json* pod_spec = tmpl != nullptr ? Member(*tmpl, "spec") : nullptr;
  if (pod_spec == nullptr || !pod_spec->is_object()) {
    return Invalid("spec.template.spec must be an object");
  }
  ASSIGN_OR_RETURN(w.gpus_per_pod, EffectivePodGpus(*pod_spec));
  ASSIGN_OR_RETURN(int64_t parallelism, NonNegativeInt(*spec, "parallelism", 1, "spec."));
  ASSIGN_OR_RETURN(int64_t completions, NonNegativeInt(*spec, "completions", INT64_MAX, "spec."));
  // Pods running at once: parallelism, never more than the completions left.
  w.pods = std::min({parallelism, completions, kMaxPods});
  if (const json* s = Member(*spec, "suspend"); s != nullptr && s->is_boolean()) {
    w.suspended = s->get<bool>();
  }
  return w;
}

std::string TeamOf(const Workload& w, const WebhookLabels& labels) {
  if (!labels.team_label.empty()) {
    if (auto it = w.labels.find(labels.team_label); it != w.labels.end()) return it->second;
    if (auto it = w.annotations.find(labels.team_label); it != w.annotations.end()) {
      return it->second;
    }
  }
  return w.namespace_name;
}

absl::StatusOr<greenlight::v1::JobSpec> BuildJobSpec(const Workload& w,
                                                     const WebhookLabels& labels) {
  greenlight::v1::JobSpec spec;
  std::string team = TeamOf(w, labels);
  if (!IsValidName(team)) {
    std::string from = team == w.namespace_name && (labels.team_label.empty() ||
                                                    (!w.labels.contains(labels.team_label) &&
                                                     !w.annotations.contains(labels.team_label)))
                           ? "the namespace"
                           : absl::StrCat("label/annotation ", labels.team_label);
    return Invalid(absl::StrCat("team \"", team, "\" (from ", from,
                                ") is not a valid greenlight team name: 1-63 characters of "
                                "[a-z0-9-], not starting or ending with '-'"));
  }
  spec.set_team(team);
  std::string name = absl::StrCat(w.namespace_name, "/", w.name);
  if (name.size() > kMaxNameBytes) name.resize(kMaxNameBytes);
  spec.set_name(name);

  int64_t gpus = w.total_gpus();
  if (gpus > kMaxGpus) {
    return Invalid(absl::StrCat("requests ", gpus, " ", kGpuResource, " in total (", w.gpus_per_pod,
                                " per pod x ", w.pods, " pods); greenlight admits at most ",
                                kMaxGpus,
                                " GPUs per job: lower spec.parallelism or the GPU requests"));
  }
  spec.set_gpus(static_cast<int32_t>(gpus));

  // Typos in greenlight.dev/* would silently drop a cap: reject them.
  for (const auto& [key, value] : w.annotations) {
    if (absl::StartsWith(key, annotation::kPrefix) && !KnownAnnotations().contains(key)) {
      std::vector<std::string> inputs = {annotation::kMaxCostUsd,
                                         annotation::kMaxCarbonKg,
                                         annotation::kDeadline,
                                         annotation::kNotBefore,
                                         annotation::kGpuType,
                                         annotation::kRegions,
                                         annotation::kDuration,
                                         annotation::kReferenceGpuHours,
                                         annotation::kCheckpointable,
                                         annotation::kPriority,
                                         annotation::kMode};
      return Invalid(absl::StrCat("unknown annotation ", key,
                                  " (greenlight reads: ", absl::StrJoin(inputs, ", "), ")"));
    }
  }
  auto get = [&](const char* key) -> const std::string* {
    auto it = w.annotations.find(key);
    return it == w.annotations.end() ? nullptr : &it->second;
  };

  if (const std::string* v = get(annotation::kMaxCostUsd)) {
    ASSIGN_OR_RETURN(double usd,
                     ParseNumber(annotation::kMaxCostUsd, *v, 0, kMaxUsd, false, "250.50"));
    spec.set_max_cost_micros(Money::FromUsd(usd).micros());
  }
  if (const std::string* v = get(annotation::kMaxCarbonKg)) {
    ASSIGN_OR_RETURN(double kg,
                     ParseNumber(annotation::kMaxCarbonKg, *v, 0, kMaxCarbonKg, false, "40"));
    spec.set_max_carbon_mg(Carbon::FromKg(kg).mg());
  }
  absl::Time not_before = absl::InfinitePast();
  if (const std::string* v = get(annotation::kNotBefore)) {
    ASSIGN_OR_RETURN(not_before, ParseRfc3339(annotation::kNotBefore, *v));
    ToProto(not_before, spec.mutable_not_before());
  }
  if (const std::string* v = get(annotation::kDeadline)) {
    ASSIGN_OR_RETURN(absl::Time deadline, ParseRfc3339(annotation::kDeadline, *v));
    if (deadline <= not_before) {
      return BadAnnotation(annotation::kDeadline, *v,
                           absl::StrCat("must be after ", annotation::kNotBefore));
    }
    ToProto(deadline, spec.mutable_deadline());
  }
  if (const std::string* v = get(annotation::kGpuType)) {
    ASSIGN_OR_RETURN(std::vector<std::string> types,
                     ParseList(annotation::kGpuType, *v, "H100,A100-80GB"));
    for (auto& t : types) spec.add_gpu_types(std::move(t));
  }
  if (const std::string* v = get(annotation::kRegions)) {
    ASSIGN_OR_RETURN(std::vector<std::string> regions,
                     ParseList(annotation::kRegions, *v, "eu-north-1,europe-west4"));
    for (auto& r : regions) spec.add_regions(std::move(r));
  }
  const std::string* duration = get(annotation::kDuration);
  const std::string* ref_hours = get(annotation::kReferenceGpuHours);
  if (duration != nullptr && ref_hours != nullptr) {
    return Invalid(absl::StrCat("annotations ", annotation::kDuration, " and ",
                                annotation::kReferenceGpuHours, " are alternatives: set only one"));
  }
  if (duration != nullptr) {
    absl::Duration d;
    std::string text(absl::StripAsciiWhitespace(*duration));
    if (!absl::ParseDuration(text, &d) || d == absl::InfiniteDuration()) {
      return BadAnnotation(annotation::kDuration, *duration,
                           "is not a duration; e.g. \"36h\" or \"1h30m\"");
    }
    if (d < absl::Minutes(1) || d > absl::Hours(24 * 365)) {
      return BadAnnotation(annotation::kDuration, *duration,
                           "must be at least 1m and at most 8760h (365 days)");
    }
    spec.mutable_duration()->set_seconds(absl::ToInt64Seconds(d));
  } else if (ref_hours != nullptr) {
    ASSIGN_OR_RETURN(double h, ParseNumber(annotation::kReferenceGpuHours, *ref_hours, 0,
                                           kMaxReferenceGpuHours, true, "512"));
    spec.set_reference_gpu_hours(h);
  } else if (w.active_deadline_seconds > 0) {
    if (w.active_deadline_seconds < 60 || w.active_deadline_seconds > 365 * 24 * 3600) {
      return Invalid(absl::StrCat(
          "spec.activeDeadlineSeconds ", w.active_deadline_seconds,
          " is used as the job's duration and must be in [60, 31536000]; or set annotation ",
          annotation::kDuration));
    }
    spec.mutable_duration()->set_seconds(w.active_deadline_seconds);
  } else {
    return Invalid(absl::StrCat("greenlight needs the job's length to quote it: set annotation ",
                                annotation::kDuration, " (wall time, e.g. \"12h\") or ",
                                annotation::kReferenceGpuHours,
                                " (A100 GPU-hours, e.g. \"512\"), or spec.activeDeadlineSeconds"));
  }
  if (const std::string* v = get(annotation::kCheckpointable)) {
    std::string b = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    if (b != "true" && b != "false") {
      return BadAnnotation(annotation::kCheckpointable, *v, "must be \"true\" or \"false\"");
    }
    spec.set_checkpointable(b == "true");
  }
  if (const std::string* v = get(annotation::kPriority)) {
    int64_t p = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(*v), &p) || p < -1000 || p > 1000) {
      return BadAnnotation(annotation::kPriority, *v,
                           "must be an integer in [-1000, 1000]; e.g. \"10\"");
    }
    spec.set_priority(static_cast<int32_t>(p));
  }
  if (const std::string* v = get(annotation::kMode)) {
    std::string m = absl::AsciiStrToLower(absl::StripAsciiWhitespace(*v));
    if (m == "cheapest") {
      spec.set_mode(greenlight::v1::PLACEMENT_MODE_CHEAPEST);
    } else if (m == "greenest") {
      spec.set_mode(greenlight::v1::PLACEMENT_MODE_GREENEST);
    } else if (m == "balanced") {
      spec.set_mode(greenlight::v1::PLACEMENT_MODE_BALANCED);
    } else {
      return BadAnnotation(annotation::kMode, *v, "must be cheapest, greenest or balanced");
    }
  }
  auto& job_labels = *spec.mutable_labels();
  job_labels["k8s.namespace"] = w.namespace_name;
  job_labels["k8s.kind"] = WorkloadKindName(w.kind);
  job_labels["k8s.name"] = w.name.substr(0, 256);
  return spec;
}

std::string JsonPointerEscape(absl::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> QuoteAnnotations(const AdmitResult& r,
                                                    const std::string& request_id) {
  std::map<std::string, std::string> a;
  if (!r.job_id.empty()) a[annotation::kJobId] = r.job_id;
  if (!request_id.empty()) a[annotation::kRequestId] = request_id;
  a[annotation::kQuoteCostUsd] = absl::StrFormat("%.2f", Money::FromMicros(r.cost_micros).usd());
  a[annotation::kQuoteCarbonKg] = absl::StrFormat("%.3f", Carbon::FromMg(r.carbon_mg).kg());
  if (!r.pool_id.empty()) a[annotation::kPool] = r.pool_id;
  if (r.start != absl::InfinitePast() && r.start != absl::InfiniteFuture()) {
    a[annotation::kPlannedStart] =
        absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", r.start, absl::UTCTimeZone());
  }
  return a;
}

namespace {

// Ops that set `entries` in the map at `path` of `object` (`parent` is the
// object holding it): the whole map when it is absent, else key by key.
void SetMapEntries(json& ops, const json* parent, const std::string& path, const char* map_key,
                   const std::map<std::string, std::string>& entries) {
  if (entries.empty()) return;
  const json* existing = parent != nullptr ? Member(*parent, map_key) : nullptr;
  if (existing == nullptr || !existing->is_object()) {
    ops.push_back({{"op", "add"}, {"path", path}, {"value", json(entries)}});
    return;
  }
  for (const auto& [k, v] : entries) {
    ops.push_back(
        {{"op", "add"}, {"path", absl::StrCat(path, "/", JsonPointerEscape(k))}, {"value", v}});
  }
}

}  // namespace

json BuildPatch(const json& object, WorkloadKind kind, const AdmitResult& result,
                const std::map<std::string, std::string>& annotations, const WebhookLabels& labels,
                bool pin_nodes) {
  json ops = json::array();
  SetMapEntries(ops, Member(object, "metadata"), "/metadata/annotations", "annotations",
                annotations);
  const json* spec = Member(object, "spec");
  const json* pod_spec = spec;
  std::string pod_spec_path = "/spec";
  if (kind == WorkloadKind::kJob) {
    const json* tmpl = spec != nullptr ? Member(*spec, "template") : nullptr;
    const json* tmeta = tmpl != nullptr ? Member(*tmpl, "metadata") : nullptr;
    if (tmeta == nullptr || !tmeta->is_object()) {
      if (!annotations.empty()) {
        ops.push_back({{"op", "add"},
                       {"path", "/spec/template/metadata"},
                       {"value", {{"annotations", json(annotations)}}}});
      }
    } else {
      SetMapEntries(ops, tmeta, "/spec/template/metadata/annotations", "annotations", annotations);
    }
    pod_spec = tmpl != nullptr ? Member(*tmpl, "spec") : nullptr;
    pod_spec_path = "/spec/template/spec";
  }
  if (pin_nodes) {
    std::map<std::string, std::string> selector;
    auto put = [&](const std::string& key, const std::string& value) {
      if (!key.empty() && !value.empty()) selector[key] = value;
    };
    put(labels.region_label, result.region);
    put(labels.instance_label, result.instance_type);
    put(labels.gpu_label, result.gpu_product);
    SetMapEntries(ops, pod_spec, pod_spec_path + "/nodeSelector", "nodeSelector", selector);
  }
  return ops;
}

}  // namespace greenlight::webhook
