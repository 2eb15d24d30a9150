#include "services/scheduler/validation.h"

#include <cmath>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/error_details.h"
#include "common/ids.h"
#include "common/proto_time.h"
#include "services/scheduler/legacy_text.h"

namespace greenlight::scheduler {
namespace {

absl::Status Bad(absl::string_view field, absl::string_view rule) {
  return InvalidField(field, rule);
}

// "field: rule" without payloads, as the core and the gRPC adapters wrote
// these checks before they moved here: ToGrpc adds the BadRequest and the
// reason from the message (WithFieldViolation), and a status logged on the
// way keeps its plain text.
absl::Status Invalid(absl::string_view field, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", rule));
}

// Strict UTF-8 as protobuf checks it when parsing proto3 strings: no overlong
// forms, no UTF-16 surrogates, nothing above U+10FFFF. Anything looser would
// be stored and then refuse to load ("corrupt job row") after a restart.
bool ValidUtf8(const std::string& s) {
  size_t i = 0, n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > n) return false;
    uint32_t cp = c & (0x7F >> len);
    for (size_t k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// C0 controls (NUL, newline, escape, ...), DEL and the C1 controls
// (U+0080-U+009F): they cut names in logs, terminals and label selectors.
// Call on valid UTF-8 only.
bool HasControlCharacter(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) return true;
    if (c == 0xC2 && i + 1 < s.size()) {
      unsigned char next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80 && next <= 0x9F) return true;
    }
  }
  return false;
}

bool ValidTimestamp(const google::protobuf::Timestamp& ts) {
  // 0001-01-01 .. 9999-12-31 as protobuf defines it.
  return ts.seconds() >= -62135596800 && ts.seconds() <= 253402300799 && ts.nanos() >= 0 &&
         ts.nanos() <= 999999999;
}

// The rules the agent applies at launch (services/agent/launch_plan.cc),
// checked at submit so a bad command is refused with its field instead of
// failing later on a node.
absl::Status ValidateCommand(const v1::Command& c) {
  constexpr int kMaxArgs = 256;
  constexpr size_t kMaxArgBytes = 4096;
  constexpr int kMaxEnv = 256;
  constexpr size_t kMaxEnvValueBytes = 32 * 1024;
  constexpr size_t kMaxCommandBytes = 256 * 1024;
  if (c.argv_size() == 0)
    return Bad("spec.command.argv", "required: the program and its arguments");
  if (c.argv_size() > kMaxArgs)
    return Bad("spec.command.argv", absl::StrCat("at most ", kMaxArgs, " arguments"));
  size_t total = 0;
  for (int i = 0; i < c.argv_size(); ++i) {
    const std::string& arg = c.argv(i);
    const std::string field = absl::StrCat("spec.command.argv[", i, "]");
    if (i == 0 && arg.empty()) return Bad(field, "the program must not be empty");
    if (arg.size() > kMaxArgBytes)
      return Bad(field, absl::StrCat("must be at most ", kMaxArgBytes, " bytes"));
    if (arg.find('\0') != std::string::npos || !ValidUtf8(arg))
      return Bad(field, "must be valid UTF-8 without NUL");
    total += arg.size() + 1;
  }
  if (c.env_size() > kMaxEnv)
    return Bad("spec.command.env", absl::StrCat("at most ", kMaxEnv, " variables"));
  for (const auto& [k, v] : c.env()) {
    const std::string field = absl::StrCat("spec.command.env[", k.substr(0, 64), "]");
    bool name_ok = !k.empty() && k.size() <= 256 && !(k[0] >= '0' && k[0] <= '9');
    for (char ch : k) {
      name_ok = name_ok && ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                            (ch >= '0' && ch <= '9') || ch == '_');
    }
    if (!name_ok) return Bad(field, "names must be 1-256 characters of [A-Za-z_][A-Za-z0-9_]*");
    if (k.rfind("GREENLIGHT_", 0) == 0 || k == "CUDA_VISIBLE_DEVICES")
      return Bad(field, "GREENLIGHT_* and CUDA_VISIBLE_DEVICES are set by the agent");
    if (v.size() > kMaxEnvValueBytes)
      return Bad(field, absl::StrCat("value must be at most ", kMaxEnvValueBytes, " bytes"));
    if (v.find('\0') != std::string::npos || !ValidUtf8(v))
      return Bad(field, "value must be valid UTF-8 without NUL");
    total += k.size() + v.size() + 2;
  }
  if (total > kMaxCommandBytes)
    return Bad("spec.command",
               absl::StrCat("argv and env must total at most ", kMaxCommandBytes, " bytes"));
  const std::string& wd = c.working_dir();
  if (wd.size() > 4096) return Bad("spec.command.working_dir", "must be at most 4096 bytes");
  if (wd.find('\0') != std::string::npos || !ValidUtf8(wd))
    return Bad("spec.command.working_dir", "must be valid UTF-8 without NUL");
  if (!wd.empty() && wd[0] == '/')
    return Bad("spec.command.working_dir", "must be relative to the job's directory");
  int depth = 0;
  for (absl::string_view part : absl::StrSplit(wd, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    depth += part == ".." ? -1 : 1;
    if (depth < 0)
      return Bad("spec.command.working_dir", "must not escape the job's directory with '..'");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateJobSpec(const v1::JobSpec& s, const ValidationContext& ctx) {
  if (s.team().empty()) return Bad("spec.team", "required");
  if (!IsValidName(s.team()))
    return Bad("spec.team",
               "must be 1-63 characters of [a-z0-9-], not starting or ending with '-'");
  if (s.name().size() > 256) return Bad("spec.name", "must be at most 256 bytes");
  if (!ValidUtf8(s.name())) return Bad("spec.name", "must be valid UTF-8");
  if (HasControlCharacter(s.name()))
    return Bad("spec.name", "must not contain control characters (NUL, newline, tab, ...)");
  if (s.gpus() <= 0) return Bad("spec.gpus", "must be > 0");
  if (s.gpus() > kMaxGpus) return Bad("spec.gpus", absl::StrCat("must be at most ", kMaxGpus));
  if (s.gpu_types_size() > 32) return Bad("spec.gpu_types", "at most 32 entries");
  absl::flat_hash_set<std::string> seen;
  for (const auto& t : s.gpu_types()) {
    if (t.empty() || t.size() > 64) return Bad("spec.gpu_types", "entries must be 1-64 bytes");
    std::string c = ctx.canonical_gpu ? ctx.canonical_gpu(t) : t;
    if (c.empty())
      return Bad("spec.gpu_types",
                 absl::StrCat("unknown GPU type '", t, "' (see Inventory.ListPools)"));
    if (!seen.insert(c).second) return Bad("spec.gpu_types", absl::StrCat("duplicate '", t, "'"));
  }
  switch (s.work_case()) {
    case v1::JobSpec::kReferenceGpuHours: {
      double h = s.reference_gpu_hours();
      if (!std::isfinite(h) || h <= 0)
        return Bad("spec.reference_gpu_hours", "must be a finite number > 0");
      if (h > kMaxReferenceGpuHours)
        return Bad("spec.reference_gpu_hours", "must be at most 10,000,000");
      // The floor of a duration (one minute), as work: one minute on each GPU
      // at the reference speed.
      if (s.gpus() > 0 && h * 60 < s.gpus())
        return Bad("spec.reference_gpu_hours",
                   absl::StrCat("must be at least one GPU-minute per GPU (",
                                absl::SixDigits(s.gpus() / 60.0), " for ", s.gpus(),
                                s.gpus() == 1 ? " GPU)" : " GPUs)"));
      break;
    }
    case v1::JobSpec::kDuration: {
      const auto& d = s.duration();
      if (d.nanos() < 0 || d.nanos() > 999999999 || d.seconds() < 0)
        return Bad("spec.duration", "must be a positive duration");
      if (d.seconds() < 60) return Bad("spec.duration", "must be at least 1 minute");
      if (d.seconds() > 365LL * 86400) return Bad("spec.duration", "must be at most 365 days");
      break;
    }
    default:
      return Bad("spec.work", "required: set reference_gpu_hours or duration");
  }
  if (s.max_cost_micros() < 0) return Bad("spec.max_cost_micros", "must be >= 0 (0 = no cap)");
  if (s.max_cost_micros() > kMaxCapMicros)
    return Bad("spec.max_cost_micros", "must be at most 10^15 micro-USD ($1e9)");
  if (s.max_carbon_mg() < 0) return Bad("spec.max_carbon_mg", "must be >= 0 (0 = no cap)");
  if (s.max_carbon_mg() > kMaxCapMg)
    return Bad("spec.max_carbon_mg", "must be at most 10^15 mg CO2e (1,000 kt)");
  if (s.has_not_before() && !ValidTimestamp(s.not_before()))
    return Bad("spec.not_before", "not a valid timestamp");
  if (s.has_deadline()) {
    if (!ValidTimestamp(s.deadline())) return Bad("spec.deadline", "not a valid timestamp");
    absl::Time deadline = FromProto(s.deadline());
    if (deadline <= ctx.now) return Bad("spec.deadline", "must be in the future");
    if (s.has_not_before() && deadline <= FromProto(s.not_before()))
      return Bad("spec.deadline", "must be after spec.not_before");
    if (deadline > ctx.now + absl::Hours(24 * 366))
      return Bad("spec.deadline", "must be within 366 days");
  }
  if (s.has_not_before() && FromProto(s.not_before()) > ctx.now + absl::Hours(24 * 366))
    return Bad("spec.not_before", "must be within 366 days");
  if (s.priority() < -1000 || s.priority() > 1000)
    return Bad("spec.priority", "must be between -1000 and 1000");
  if (s.regions_size() > 256) return Bad("spec.regions", "at most 256 entries");
  for (const auto& r : s.regions()) {
    if (r.empty() || r.size() > 64) return Bad("spec.regions", "entries must be 1-64 bytes");
    if (ctx.region_known && !ctx.region_known(r))
      return Bad("spec.regions", absl::StrCat("unknown region '", r, "'"));
  }
  if (s.labels_size() > kMaxLabels) return Bad("spec.labels", "at most 64 labels");
  for (const auto& [k, v] : s.labels()) {
    if (k.empty() || k.size() > 63) return Bad("spec.labels", "keys must be 1-63 bytes");
    if (v.size() > 256)
      return Bad("spec.labels", absl::StrCat("value of '", k, "' exceeds 256 bytes"));
    if (!ValidUtf8(k) || !ValidUtf8(v)) return Bad("spec.labels", "must be valid UTF-8");
    if (HasControlCharacter(k) || HasControlCharacter(v))
      return Bad("spec.labels", "keys and values must not contain control characters");
  }
  if (s.request_id().size() > 128) return Bad("spec.request_id", "must be at most 128 bytes");
  if (!ValidUtf8(s.request_id())) return Bad("spec.request_id", "must be valid UTF-8");
  if (HasControlCharacter(s.request_id()))
    return Bad("spec.request_id", "must not contain control characters");
  if (s.payload().size() > kMaxPayloadBytes) return Bad("spec.payload", "must be at most 64 KiB");
  if (s.has_command()) {
    if (absl::Status st = ValidateCommand(s.command()); !st.ok()) return st;
  }
  if (!v1::PlacementMode_IsValid(s.mode())) return Bad("spec.mode", "unknown placement mode");
  if (s.carbon_price_micros_per_tonne() < 0 ||
      s.carbon_price_micros_per_tonne() > 1'000'000'000'000LL)
    return Bad("spec.carbon_price_micros_per_tonne",
               "must be between 0 and 10^12 ($1e6 per tonne)");
  if (ctx.team_exists && !ctx.team_exists(s.team()))
    return Bad("spec.team",
               absl::StrCat("unknown team '", s.team(), "' (create it with Budgets.SetTeam)"));
  return absl::OkStatus();
}

absl::Status ValidateTeam(const v1::Team& t,
                          const std::function<bool(const std::string&)>& team_exists) {
  if (!IsValidName(t.name()))
    return Bad("team.name",
               "must be 1-63 characters of [a-z0-9-], not starting or ending with '-'");
  if (!t.parent().empty()) {
    if (t.parent() == t.name()) return Bad("team.parent", "a team cannot be its own parent");
    if (!IsValidName(t.parent())) return Bad("team.parent", "not a valid team name");
    if (team_exists && !team_exists(t.parent()))
      return Bad("team.parent",
                 absl::StrCat("unknown team '", t.parent(), "' (create the parent first)"));
  }
  if (t.monthly_cost_budget_micros() < 0 || t.monthly_cost_budget_micros() > kMaxCapMicros)
    return Bad("team.monthly_cost_budget_micros", "must be between 0 (unlimited) and 10^15");
  if (t.monthly_carbon_budget_mg() < 0 || t.monthly_carbon_budget_mg() > kMaxCapMg)
    return Bad("team.monthly_carbon_budget_mg", "must be between 0 (unlimited) and 10^15");
  if (t.gpu_quota() < 0 || t.gpu_quota() > 1'000'000)
    return Bad("team.gpu_quota", "must be between 0 (unlimited) and 1,000,000");
  for (const auto& [k, v] : t.gpu_quota_by_type()) {
    if (v < 0)
      return Bad("team.gpu_quota_by_type", absl::StrCat("quota of '", k, "' must be >= 0"));
  }
  if (t.carbon_price_micros_per_tonne() < 0 ||
      t.carbon_price_micros_per_tonne() > 1'000'000'000'000LL)
    return Bad("team.carbon_price_micros_per_tonne", "must be between 0 and 10^12");
  if (!(t.alert_ratio() >= 0 && t.alert_ratio() <= 1))
    return Bad("team.alert_ratio",
               absl::StrCat("must be between 0 and 1 (0 = default ", kDefaultAlertRatio, ")"));
  if (auto policy = BudgetPolicyOf(t); !policy.ok()) return policy.status();
  if (!t.unknown_grid().empty() && t.unknown_grid() != "pessimistic" &&
      t.unknown_grid() != "default" && t.unknown_grid() != "exclude")
    return Bad("team.unknown_grid", "must be 'pessimistic', 'default' or 'exclude'");
  return absl::OkStatus();
}

absl::Status ValidatePools(const std::vector<v1::NodePool>& pools) {
  for (size_t i = 0; i < pools.size(); ++i) {
    const auto& p = pools[i];
    std::string f = absl::StrCat("pools[", i, "]");
    if (p.id().empty() || p.id().size() > 256)
      return Invalid(absl::StrCat(f, ".id"), "required, at most 256 bytes");
    if (p.region().empty()) return Invalid(absl::StrCat(f, ".region"), "required");
    if (p.gpu_type().empty()) return Invalid(absl::StrCat(f, ".gpu_type"), "required");
    if (p.gpus_per_node() <= 0 || p.gpus_per_node() > 64)
      return Invalid(absl::StrCat(f, ".gpus_per_node"), "must be 1..64");
    if (p.nodes() < 0 || p.nodes() > 1'000'000)
      return Invalid(absl::StrCat(f, ".nodes"), "must be 0..1,000,000");
    if (!v1::PoolExecutor_IsValid(p.executor()))
      return Invalid(absl::StrCat(f, ".executor"), "must be SIMULATED or AGENT");
    if (p.agent_nodes_size() > 0)
      return Invalid(absl::StrCat(f, ".agent_nodes"),
                     "is read-only: nodes join an AGENT pool by registering (greenlight-agent)");
    if (p.price_micros_per_node_hour() <= 0)
      return Invalid(absl::StrCat(f, ".price_micros_per_node_hour"), "must be > 0");
    if (p.spot_price_micros_per_node_hour() < 0)
      return Invalid(absl::StrCat(f, ".spot_price_micros_per_node_hour"), "must be >= 0");
    if (p.pue() != 0 && (p.pue() < 1.0 || p.pue() > 3.0))
      return Invalid(absl::StrCat(f, ".pue"), "must be in [1, 3] (0 = default)");
    if (p.gpu_power_w() < 0 || p.gpu_power_w() > 5000)
      return Invalid(absl::StrCat(f, ".gpu_power_w"), "must be in [0, 5000]");
  }
  return absl::OkStatus();
}

absl::Status ValidateCarbonSeries(const std::string& zone, absl::Duration step,
                                  const std::vector<double>& values, double annual_average) {
  if (zone.empty() || zone.size() > 64) return Invalid("zone", "required, at most 64 bytes");
  if (step < absl::Minutes(1) || step > absl::Hours(24))
    return Invalid("step", "must be between 1 minute and 24 hours");
  if (values.empty() || values.size() > static_cast<size_t>(kMaxCarbonPoints))
    return Invalid("points", "between 1 and 100,000 points");
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || values[i] < 0 || values[i] > kMaxGPerKwh)
      return Invalid(absl::StrCat("points[", i, "].g_per_kwh"), "must be in [0, 5000]");
  }
  if (!std::isfinite(annual_average) || annual_average < 0 || annual_average > kMaxGPerKwh)
    return Invalid("annual_average_g_per_kwh", "must be in [0, 5000]");
  return absl::OkStatus();
}

absl::Duration CarbonSeriesStep(const v1::SetCarbonSeriesRequest& req) {
  return req.has_step() ? FromProto(req.step()) : absl::Hours(1);
}

absl::Status ValidateSetCarbonSeriesRequest(const v1::SetCarbonSeriesRequest& req) {
  if (req.points().empty()) return Invalid("points", "at least one point");
  absl::Duration step = CarbonSeriesStep(req);
  absl::Time start = FromProto(req.points(0).time());
  for (int i = 0; i < req.points_size(); ++i) {
    if (FromProto(req.points(i).time()) != start + step * i)
      return Invalid(
          absl::StrCat("points[", i, "].time"),
          absl::StrCat("points must be ascending at the step (", absl::FormatDuration(step), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateEstimateJobRequest(const v1::EstimateJobRequest& req) {
  if (req.top_k() < 0 || req.top_k() > 50) return Invalid("top_k", "must be between 0 and 50");
  return absl::OkStatus();
}

absl::Status ValidateGetJobRequest(const v1::GetJobRequest& req) {
  if (req.job_id().empty()) return Invalid("job_id", "required");
  return absl::OkStatus();
}

absl::Status ValidateListJobsRequest(const v1::ListJobsRequest& req) {
  if (req.page_size() < 0) return Invalid("page_size", "must be >= 0");
  for (int s : req.states()) {
    if (!v1::JobState_IsValid(s)) return Invalid("states", "unknown state");
  }
  return absl::OkStatus();
}

absl::Status ValidateCancelJobRequest(const v1::CancelJobRequest& req) {
  if (req.job_id().empty()) return Invalid("job_id", "required");
  if (req.reason().size() > 1024) return Invalid("reason", "at most 1024 bytes");
  return absl::OkStatus();
}

absl::Status ValidateWatchJobsRequest(const v1::WatchJobsRequest& req) {
  if (req.from_revision() < 0) return Invalid("from_revision", "must be >= 0");
  return absl::OkStatus();
}

absl::Status ValidateGetUsageRequest(const v1::GetUsageRequest& req) {
  if (req.team().empty()) return Invalid("team", "required");
  return absl::OkStatus();
}

absl::Status ValidateCreateTokenRequest(
    const v1::CreateTokenRequest& req, const std::function<bool(const std::string&)>& team_exists,
    const std::function<bool(const std::string&)>& pool_is_agent) {
  if (!req.agent_pool().empty()) {
    if (req.admin() || !req.team().empty())
      return Invalid("agent_pool", "an agent token has no team and is not admin");
    if (pool_is_agent && !pool_is_agent(req.agent_pool()))
      return Invalid("agent_pool", absl::StrCat("no pool '", req.agent_pool(),
                                                "' with executor AGENT (Inventory.UpsertPools)"));
  } else if (!req.admin()) {
    if (req.team().empty()) return Invalid("team", "required for a team token");
    if (team_exists && !team_exists(req.team()))
      return Invalid("team", absl::StrCat("unknown team '", req.team(), "'"));
  } else if (!req.team().empty()) {
    return Invalid("team", "must be empty for an admin token");
  }
  if (req.description().size() > 256) return Invalid("description", "at most 256 bytes");
  return absl::OkStatus();
}

}  // namespace greenlight::scheduler
