#include "services/sim/replay_report.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "services/scheduler/job_state.h"

namespace greenlight::sim {
namespace {

std::string Iso(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

double Usd(int64_t micros) { return static_cast<double>(micros) / 1e6; }
double Kg(int64_t mg) { return static_cast<double>(mg) / 1e6; }

// Relative change of `v` against `base` in percent ("" when base is 0).
std::string Change(double v, double base) {
  if (base == 0) return "-";
  return absl::StrFormat("%+.1f%%", 100.0 * (v - base) / base);
}

// RFC 4180 quoting for free text (names, messages).
std::string Quote(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return absl::PermissionDeniedError(absl::StrCat(path, ": cannot write"));
  out << text;
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

}  // namespace

std::string FormatTable(const std::vector<PolicyResult>& results) {
  std::string out = absl::StrFormat("%-14s %6s %12s %11s %10s %9s %9s %9s %9s %10s %9s\n", "policy",
                                    "jobs", "cost USD", "carbon kg", "energy MWh", "mean wait",
                                    "p95 wait", "deadline", "cap", "carbon vs", "cost vs");
  absl::StrAppend(
      &out, absl::StrFormat("%-14s %6s %12s %11s %10s %9s %9s %9s %9s %10s %9s\n", "", "", "", "",
                            "", "h", "h", "misses", "rejects", "baseline", "baseline"));
  const PolicyResult* base = results.empty() ? nullptr : &results.front();
  for (const PolicyResult& r : results) {
    absl::StrAppend(
        &out, absl::StrFormat(
                  "%-14s %6d %12.2f %11.1f %10.3f %9.2f %9.2f %9d %9d %10s %9s\n", r.policy.name,
                  r.jobs, Usd(r.cost_micros), Kg(r.carbon_mg), r.energy_wh / 1e6,
                  r.mean_wait_s / 3600, r.p95_wait_s / 3600, r.deadline_misses, r.cap_rejections,
                  &r == base ? "-" : Change(Kg(r.carbon_mg), Kg(base->carbon_mg)),
                  &r == base ? "-" : Change(Usd(r.cost_micros), Usd(base->cost_micros))));
  }
  return out;
}

absl::CivilDay BusiestDay(const Trace& trace, absl::Time start) {
  std::map<absl::CivilDay, int64_t> submitted;
  for (const TraceJob& j : trace.jobs) {
    ++submitted[absl::ToCivilDay(start + j.submit, absl::UTCTimeZone())];
  }
  absl::CivilDay best = absl::ToCivilDay(start, absl::UTCTimeZone());
  int64_t most = -1;
  for (const auto& [d, n] : submitted) {
    if (n > most) {
      most = n;
      best = d;
    }
  }
  return best;
}

absl::Status WriteSummaryCsv(const std::string& path, const std::vector<PolicyResult>& results) {
  std::string out =
      "policy,mode,shift,interruptible,carbon_price_usd_per_tonne,jobs,admitted,succeeded,"
      "unfinished,budget_stopped,failed,cap_rejections,other_rejections,cost_usd,carbon_kg,energy_"
      "kwh,"
      "mean_wait_h,p95_wait_h,deadline_misses,split_jobs,spot_jobs,engine_baseline_cost_usd,"
      "engine_baseline_carbon_kg,ledger_cost_usd,ledger_carbon_kg,ticks,wall_seconds,cpu_seconds,"
      "invariants\n";
  for (const PolicyResult& r : results) {
    absl::StrAppend(
        &out,
        absl::StrFormat(
            "%s,%s,%d,%d,%.2f,%d,%d,%d,%d,%d,%d,%d,%d,%.6f,%.6f,%.6f,%.4f,%.4f,%d,%d,%d,"
            "%.6f,%.6f,%.6f,%.6f,%d,%.3f,%.3f,%s\n",
            Quote(r.policy.name),
            r.policy.mode == v1::PLACEMENT_MODE_CHEAPEST   ? "cheapest"
            : r.policy.mode == v1::PLACEMENT_MODE_GREENEST ? "greenest"
                                                           : "balanced",
            r.policy.shift, r.policy.interruptible, r.policy.carbon_price_micros_per_tonne / 1e6,
            r.jobs, r.admitted, r.succeeded, r.unfinished, r.budget_stopped, r.failed,
            r.cap_rejections, r.other_rejections, Usd(r.cost_micros), Kg(r.carbon_mg),
            r.energy_wh / 1e3, r.mean_wait_s / 3600, r.p95_wait_s / 3600, r.deadline_misses,
            r.split_jobs, r.spot_jobs, Usd(r.baseline_cost_micros), Kg(r.baseline_carbon_mg),
            Usd(r.ledger_cost_micros), Kg(r.ledger_carbon_mg), r.ticks, r.wall_seconds,
            r.cpu_seconds, r.invariants.ok() ? "OK" : Quote(r.invariants.ToString())));
  }
  return WriteFile(path, out);
}

absl::Status WriteSummaryJson(const std::string& path, const std::vector<PolicyResult>& results,
                              const RunInfo& info) {
  using nlohmann::json;
  json j;
  j["trace"] = {{"source", info.trace_source},
                {"format", info.trace_format},
                {"rows", info.trace_stats.rows},
                {"jobs", info.trace_stats.jobs},
                {"skipped_cpu_only", info.trace_stats.skipped_cpu_only},
                {"skipped_never_scheduled", info.trace_stats.skipped_never_scheduled},
                {"fractional_gpu", info.trace_stats.fractional_gpu},
                {"raised_to_min_duration", info.trace_stats.raised_to_min_duration},
                {"censored", info.trace_stats.censored},
                {"gpu_spec_unavailable", info.trace_stats.gpu_spec_unavailable}};
  j["config"] = info.config_source;
  j["start"] = Iso(info.start);
  j["tick_s"] = absl::ToInt64Seconds(info.tick);
  j["slack_s"] = absl::ToInt64Seconds(info.slack);
  j["slack_factor"] = info.slack_factor;
  j["threads"] = info.threads;
  j["wall_seconds"] = info.wall_seconds;
  j["sample_day"] = absl::FormatCivilTime(info.sample_day);
  j["notes"] = info.notes;
  json policies = json::array();
  const PolicyResult* base = results.empty() ? nullptr : &results.front();
  for (const PolicyResult& r : results) {
    json p;
    p["policy"] = r.policy.name;
    p["description"] = r.policy.description;
    p["spec"] = {
        {"mode", v1::PlacementMode_Name(r.policy.mode)},
        {"deadline", r.policy.shift ? "trace deadline or slack rule" : "submit + duration"},
        {"checkpointable", r.policy.interruptible},
        {"carbon_price_usd_per_tonne", r.policy.carbon_price_micros_per_tonne / 1e6}};
    p["jobs"] = r.jobs;
    p["admitted"] = r.admitted;
    p["succeeded"] = r.succeeded;
    p["unfinished"] = r.unfinished;
    p["budget_stopped"] = r.budget_stopped;
    p["failed"] = r.failed;
    p["cap_rejections"] = r.cap_rejections;
    p["other_rejections"] = r.other_rejections;
    p["cost_usd"] = Usd(r.cost_micros);
    p["carbon_kg"] = Kg(r.carbon_mg);
    p["energy_kwh"] = r.energy_wh / 1e3;
    p["mean_wait_h"] = r.mean_wait_s / 3600;
    p["p95_wait_h"] = r.p95_wait_s / 3600;
    p["deadline_misses"] = r.deadline_misses;
    p["split_jobs"] = r.split_jobs;
    p["spot_jobs"] = r.spot_jobs;
    p["engine_baseline_cost_usd"] = Usd(r.baseline_cost_micros);
    p["engine_baseline_carbon_kg"] = Kg(r.baseline_carbon_mg);
    p["ledger_cost_usd"] = Usd(r.ledger_cost_micros);
    p["ledger_carbon_kg"] = Kg(r.ledger_carbon_mg);
    if (base && base->carbon_mg > 0) {
      p["carbon_vs_baseline"] =
          static_cast<double>(r.carbon_mg - base->carbon_mg) / base->carbon_mg;
    }
    if (base && base->cost_micros > 0) {
      p["cost_vs_baseline"] =
          static_cast<double>(r.cost_micros - base->cost_micros) / base->cost_micros;
    }
    p["ticks"] = r.ticks;
    p["virtual_end"] = Iso(r.virtual_end);
    p["wall_seconds"] = r.wall_seconds;
    p["cpu_seconds"] = r.cpu_seconds;
    p["invariants"] = r.invariants.ok() ? "OK" : r.invariants.ToString();
    policies.push_back(std::move(p));
  }
  j["policies"] = std::move(policies);
  return WriteFile(path, j.dump(2) + "\n");
}

absl::Status WriteJobsCsv(const std::string& path, const Trace& trace,
                          const std::vector<PolicyResult>& results) {
  std::string out =
      "policy,trace_index,name,job_id,state,submit,deadline,start,end,pool,zone,gpus,spot,runs,"
      "cost_usd,carbon_kg,energy_kwh,mean_g_per_kwh,reject_code\n";
  for (const PolicyResult& r : results) {
    for (const JobOutcome& o : r.outcomes) {
      if (o.trace_index < 0) continue;
      std::vector<std::string> runs;
      for (const auto& [a, b] : o.slots) runs.push_back(absl::StrCat(Iso(a), "/", Iso(b)));
      double mean = o.energy_wh > 0 ? static_cast<double>(o.carbon_mg) / o.energy_wh : 0;
      absl::StrAppend(
          &out,
          absl::StrFormat(
              "%s,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s,%d,%d,%s,%.6f,%.6f,%.6f,%.2f,%s\n",
              Quote(r.policy.name), o.trace_index, Quote(trace.jobs[o.trace_index].name), o.job_id,
              scheduler::StateName(o.state), Iso(o.submit), Iso(o.deadline), Iso(o.start),
              Iso(o.end), Quote(o.pool_id), Quote(o.zone), o.gpus, o.spot, absl::StrJoin(runs, ";"),
              Usd(o.cost_micros), Kg(o.carbon_mg), o.energy_wh / 1e3, mean, o.reject_code));
    }
  }
  return WriteFile(path, out);
}

absl::Status WriteIntensityCsv(const std::string& path, const std::vector<PolicyResult>& results,
                               const providers::Inventory& inventory, absl::CivilDay day) {
  const absl::Time from = absl::FromCivil(day, absl::UTCTimeZone());
  const absl::Time to = from + absl::Hours(24);
  std::set<std::string> zones;
  for (const PolicyResult& r : results) {
    for (const JobOutcome& o : r.outcomes) {
      for (const auto& [a, b] : o.slots) {
        if (a < to && b > from && !o.zone.empty()) zones.insert(o.zone);
      }
    }
  }
  std::string out = "zone,time,g_per_kwh,estimated\n";
  for (const std::string& z : zones) {
    auto it = inventory.zones.find(z);
    for (absl::Time t = from; t <= to; t += absl::Hours(1)) {
      double v = inventory.default_intensity_g_per_kwh;
      bool estimated = true;
      if (it != inventory.zones.end() && it->second) {
        const providers::CarbonSeries& s = *it->second;
        estimated = s.values().empty() || t < s.start() || t >= s.end();
        v = s.At(t);
      }
      absl::StrAppend(&out, absl::StrFormat("%s,%s,%.3f,%d\n", Quote(z), Iso(t), v, estimated));
    }
  }
  return WriteFile(path, out);
}

}  // namespace greenlight::sim
