// greenlight-sim: replays a job trace through greenlight's scheduler core on
// virtual time, once per placement policy, and reports cost, carbon, energy,
// waits and deadline misses per policy (docs/REPLAY.md).
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/log.h"
#include "services/providers/inventory.h"
#include "services/sim/replay.h"
#include "services/sim/replay_report.h"
#include "services/sim/trace.h"

ABSL_FLAG(std::string, trace, "data/traces/alibaba_gpu_v2023_openb_pod_list_default.csv",
          "job trace: an Alibaba GPU 2023 pod list or a simple CSV (docs/REPLAY.md)");
ABSL_FLAG(std::string, trace_format, "auto", "alibaba | simple | auto (by the header)");
ABSL_FLAG(std::string, config, "deploy/config/demo.yaml",
          "greenlightd config: pools, carbon series, placement defaults, teams");
ABSL_FLAG(absl::Time, start, absl::FromCivil(absl::CivilDay(2022, 1, 3), absl::UTCTimeZone()),
          "virtual time of the trace's second 0 (RFC 3339); the carbon series must cover the "
          "replay (the shipped 2020 series are shifted by whole weeks to this year)");
ABSL_FLAG(std::string, policies, "baseline,greenest-now,shift,interruptible,balanced",
          "policies to compare, the first is the reference; also name=mode[+shift]"
          "[+interruptible][@usd_per_tonne]");
ABSL_FLAG(absl::Duration, tick, absl::Minutes(10),
          "scheduling step while jobs run or wait (planned starts and ends are exact)");
ABSL_FLAG(absl::Duration, accrual_interval, absl::Hours(24),
          "running jobs are charged at least this often (the core's accrual_interval; charges "
          "are exact per hour whatever the interval)");
ABSL_FLAG(absl::Duration, slack, absl::Hours(24),
          "slack rule: deadline = submit + duration + max(slack, slack_factor x duration)");
ABSL_FLAG(double, slack_factor, 0, "see --slack");
ABSL_FLAG(double, carbon_price_usd_per_tonne, -1,
          "carbon price of the balanced policy (default: the config's default)");
ABSL_FLAG(std::string, team, "alibaba",
          "team of Alibaba pods, and of simple-trace rows without a team");
ABSL_FLAG(double, team_cost_budget_usd, 0, "monthly cost budget of trace teams (0 = unlimited)");
ABSL_FLAG(double, team_carbon_budget_kg, 0, "monthly carbon budget of trace teams (0 = unlimited)");
ABSL_FLAG(int, team_gpu_quota, 0, "GPU quota of trace teams (0 = unlimited)");
ABSL_FLAG(bool, config_teams, true,
          "create the config's teams too (a trace team of the same name takes their budgets)");
ABSL_FLAG(int, nodes_per_pool, 64,
          "nodes of every pool (0 = the config's data.nodes_per_pool; the demo's 4 is a toy "
          "size that the carbon-aware policies saturate, docs/REPLAY.md)");
ABSL_FLAG(std::string, regions, "",
          "regions every job may use, under every policy: empty = all, 'series' = the regions "
          "whose grid zone has an hourly carbon series, or a comma-separated list");
ABSL_FLAG(int64_t, max_jobs, 0, "replay only the first N jobs of the trace (0 = all)");
ABSL_FLAG(std::string, store, "memory",
          "memory (store::MemoryStore), or sqlite: one SQLite file per policy in $TMPDIR "
          "(synchronous=NORMAL), to compare");
ABSL_FLAG(int, threads, 2, "policies replayed in parallel (each on its own core)");
ABSL_FLAG(int, check_invariants_every, 0,
          "also run CheckInvariants() every N ticks (0 = at the end only)");
ABSL_FLAG(std::string, out_dir, "",
          "write summary.csv, summary.json, jobs.csv, intensity.csv "
          "and the plots here");
ABSL_FLAG(bool, plot, true, "with --out_dir: draw the PNGs with --python and --plot_script");
ABSL_FLAG(std::string, python, "/usr/bin/python3", "Python with matplotlib (Debian's)");
ABSL_FLAG(std::string, plot_script, "services/sim/plot_replay.py", "the plotting script");
ABSL_FLAG(std::string, sample_day, "",
          "day of the intensity plot, YYYY-MM-DD (default: the day with the most jobs "
          "submitted)");
ABSL_FLAG(double, progress_seconds, 2, "progress line on stderr every this many seconds (0 = off)");

namespace {

using greenlight::F;
namespace sim = greenlight::sim;

int Fail(const std::string& message) {
  std::fprintf(stderr, "greenlight-sim: %s\n", message.c_str());
  return 2;
}

std::string Thousands(int64_t v) {
  const std::string digits = absl::StrCat(v < 0 ? -v : v);
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "greenlight-sim [--trace=FILE] [--config=FILE] [--policies=...] [--out_dir=DIR]\n"
      "Replays a job trace through greenlight's scheduler core on virtual time, once per\n"
      "placement policy, and compares cost, carbon, energy, waits and deadline misses.");
  absl::ParseCommandLine(argc, argv);
  greenlight::SetLogLevel(greenlight::LogLevel::kWarn);
  const absl::Time load0 = absl::Now();

  auto cfg = greenlight::LoadConfig(absl::GetFlag(FLAGS_config));
  if (!cfg.ok()) return Fail(absl::StrCat("config: ", cfg.status().message()));
  // The replay runs at --start, not now: align the historical series to it.
  cfg->align_series_to_now = true;
  if (absl::GetFlag(FLAGS_nodes_per_pool) > 0)
    cfg->nodes_per_pool = absl::GetFlag(FLAGS_nodes_per_pool);
  const absl::Time start = absl::GetFlag(FLAGS_start);
  auto inventory = greenlight::providers::LoadInventory(*cfg, start);
  if (!inventory.ok()) return Fail(absl::StrCat("inventory: ", inventory.status().message()));

  // GPU names of the trace: canonical names with at least one pool.
  std::set<std::string> pool_gpus;
  for (const auto& p : inventory->pools) pool_gpus.insert(p.gpu_type);
  auto gpu_with_pool = [&](absl::string_view name) -> std::string {
    std::string c = inventory->gpus.Canonical(name);
    return pool_gpus.contains(c) ? c : std::string();
  };
  sim::AlibabaOptions alibaba;
  alibaba.team = absl::GetFlag(FLAGS_team);
  alibaba.gpu_type = gpu_with_pool;
  auto trace = sim::LoadTrace(absl::GetFlag(FLAGS_trace), absl::GetFlag(FLAGS_trace_format),
                              alibaba, absl::GetFlag(FLAGS_team), [&](absl::string_view name) {
                                return inventory->gpus.Canonical(name);
                              });
  if (!trace.ok()) return Fail(std::string(trace.status().message()));
  const int64_t max_jobs = absl::GetFlag(FLAGS_max_jobs);
  if (max_jobs > 0 && static_cast<int64_t>(trace->jobs.size()) > max_jobs) {
    trace->jobs.resize(max_jobs);
  }
  if (trace->jobs.empty()) return Fail(absl::StrCat(trace->source, ": no jobs to replay"));

  double price_usd = absl::GetFlag(FLAGS_carbon_price_usd_per_tonne);
  if (price_usd < 0) price_usd = cfg->default_carbon_price_usd_per_tonne;
  auto policies = sim::SelectPolicies(absl::GetFlag(FLAGS_policies),
                                      static_cast<int64_t>(std::llround(price_usd * 1e6)));
  if (!policies.ok()) return Fail(std::string(policies.status().message()));

  sim::ReplayOptions options;
  options.start = start;
  options.tick = absl::GetFlag(FLAGS_tick);
  options.accrual_interval = absl::GetFlag(FLAGS_accrual_interval);
  options.slack = absl::GetFlag(FLAGS_slack);
  options.slack_factor = absl::GetFlag(FLAGS_slack_factor);
  if (options.tick < absl::Seconds(1)) return Fail("--tick: must be at least 1s");
  if (options.slack < absl::ZeroDuration() || options.slack_factor < 0) {
    return Fail("--slack and --slack_factor: must be >= 0");
  }
  options.horizon = absl::Hours(cfg->horizon_hours);
  options.default_carbon_price_micros_per_tonne =
      static_cast<int64_t>(std::llround(cfg->default_carbon_price_usd_per_tonne * 1e6));
  options.default_mode = cfg->default_mode == "cheapest" ? greenlight::v1::PLACEMENT_MODE_CHEAPEST
                         : cfg->default_mode == "greenest"
                             ? greenlight::v1::PLACEMENT_MODE_GREENEST
                             : greenlight::v1::PLACEMENT_MODE_BALANCED;
  options.team_defaults.monthly_cost_budget_micros =
      static_cast<int64_t>(std::llround(absl::GetFlag(FLAGS_team_cost_budget_usd) * 1e6));
  options.team_defaults.monthly_carbon_budget_mg =
      static_cast<int64_t>(std::llround(absl::GetFlag(FLAGS_team_carbon_budget_kg) * 1e6));
  options.team_defaults.gpu_quota = absl::GetFlag(FLAGS_team_gpu_quota);
  options.check_invariants_every = absl::GetFlag(FLAGS_check_invariants_every);
  if (absl::GetFlag(FLAGS_store) == "sqlite") {
    options.sqlite_dir = std::filesystem::temp_directory_path().string();
  } else if (absl::GetFlag(FLAGS_store) != "memory") {
    return Fail("--store: memory or sqlite");
  }
  const std::string regions = absl::GetFlag(FLAGS_regions);
  if (regions == "series") {
    // spec.regions holds plain region names (the core validates them against
    // pool regions), and one name may belong to several providers: keep a
    // name only when every pool of it has an hourly series (lambda's
    // us-west-1 is not in CAISO's grid, aws's is).
    std::set<std::string> with_series, without;
    for (const auto& p : inventory->pools) {
      auto it = inventory->zones.find(p.zone);
      bool series = it != inventory->zones.end() && it->second && !it->second->values().empty();
      (series ? with_series : without).insert(p.region);
    }
    for (const auto& r : with_series) {
      if (!without.contains(r)) options.regions.push_back(r);
    }
    std::fprintf(stderr, "greenlight-sim: --regions=series: %s\n",
                 absl::StrJoin(options.regions, ",").c_str());
  } else if (!regions.empty()) {
    options.regions = absl::StrSplit(regions, ',', absl::SkipWhitespace());
  }
  if (absl::GetFlag(FLAGS_config_teams)) {
    for (const auto& t : cfg->teams) {
      greenlight::v1::Team team;
      team.set_name(t.name);
      team.set_parent(t.parent);
      team.set_monthly_cost_budget_micros(static_cast<int64_t>(t.monthly_cost_budget_usd * 1e6));
      team.set_monthly_carbon_budget_mg(static_cast<int64_t>(t.monthly_carbon_budget_kg * 1e6));
      team.set_gpu_quota(t.gpu_quota);
      team.set_carbon_price_micros_per_tonne(
          static_cast<int64_t>(t.carbon_price_usd_per_tonne * 1e6));
      options.teams.push_back(std::move(team));
    }
  }

  // Where the series stop covering the replay, the core uses annual averages.
  sim::RunInfo info;
  absl::Duration latest = absl::ZeroDuration();
  for (const auto& j : trace->jobs) {
    latest = std::max(
        latest, j.submit + j.duration + std::max(options.slack, j.duration * options.slack_factor));
  }
  const absl::Time needed = start + latest + options.horizon;
  for (const auto& [zone, series] : inventory->zones) {
    if (!series || series->values().empty()) continue;
    if (series->start() > start || series->end() < needed) {
      info.notes.push_back(absl::StrCat(
          "zone ", zone, ": series covers ",
          absl::FormatTime("%Y-%m-%d", series->start(), absl::UTCTimeZone()), " to ",
          absl::FormatTime("%Y-%m-%d", series->end(), absl::UTCTimeZone()),
          ", the replay may need ", absl::FormatTime("%Y-%m-%d", start, absl::UTCTimeZone()),
          " to ", absl::FormatTime("%Y-%m-%d", needed, absl::UTCTimeZone()),
          "; hours outside use the annual average"));
    }
  }
  for (const auto& note : info.notes)
    std::fprintf(stderr, "greenlight-sim: note: %s\n", note.c_str());

  const auto& st = trace->stats;
  std::fprintf(
      stderr,
      "greenlight-sim: %s (%s): %s rows, %s jobs replayed (%s CPU-only and %s never "
      "scheduled skipped, %s fractional GPUs counted whole, %s raised to 1 min, %s "
      "censored at the trace end); %zu pools, %zu policies on %d threads; loaded in %.2f s\n",
      trace->source.c_str(), trace->format.c_str(), Thousands(st.rows).c_str(),
      Thousands(static_cast<int64_t>(trace->jobs.size())).c_str(),
      Thousands(st.skipped_cpu_only).c_str(), Thousands(st.skipped_never_scheduled).c_str(),
      Thousands(st.fractional_gpu).c_str(), Thousands(st.raised_to_min_duration).c_str(),
      Thousands(st.censored).c_str(), inventory->pools.size(), policies->size(),
      absl::GetFlag(FLAGS_threads), absl::ToDoubleSeconds(absl::Now() - load0));

  const absl::Duration span = trace->jobs.back().submit;
  const int64_t n = static_cast<int64_t>(trace->jobs.size());
  auto on_progress = [&](const std::vector<const sim::ReplayProgress*>& p, double elapsed) {
    std::string line = absl::StrFormat("greenlight-sim: %.1f s", elapsed);
    for (size_t i = 0; i < p.size(); ++i) {
      int64_t done = p[i]->submitted.load();
      absl::StrAppend(
          &line,
          absl::StrFormat("  %s %s", (*policies)[i].name,
                          p[i]->done  ? "done"
                          : done == 0 ? "queued"
                                      : absl::StrFormat("%d%% (day %d)", 100 * done / n,
                                                        p[i]->virtual_seconds.load() / 86400)));
    }
    (void)span;
    std::fprintf(stderr, "%s\n", line.c_str());
  };
  using ProgressFn = std::function<void(const std::vector<const sim::ReplayProgress*>&, double)>;
  const double progress_s = absl::GetFlag(FLAGS_progress_seconds);
  const absl::Time wall0 = absl::Now();
  auto results =
      sim::ReplayAll(*trace, *policies, *inventory, options, absl::GetFlag(FLAGS_threads),
                     absl::Seconds(progress_s > 0 ? progress_s : 1e9),
                     progress_s > 0 ? ProgressFn(on_progress) : ProgressFn());
  if (!results.ok()) return Fail(std::string(results.status().message()));
  const double wall = absl::ToDoubleSeconds(absl::Now() - wall0);

  std::cout << sim::FormatTable(*results);
  bool invariants_ok = true;
  double cpu = 0;
  std::vector<std::string> per_policy;
  for (const auto& r : *results) {
    cpu += r.cpu_seconds;
    per_policy.push_back(absl::StrFormat("%s %.2f", r.policy.name, r.cpu_seconds));
    if (!r.invariants.ok()) {
      invariants_ok = false;
      std::fprintf(stderr, "greenlight-sim: %s: invariant broken: %s\n", r.policy.name.c_str(),
                   r.invariants.ToString().c_str());
    }
    if (r.ledger_cost_micros != r.cost_micros || r.ledger_carbon_mg != r.carbon_mg) {
      invariants_ok = false;
      std::fprintf(stderr,
                   "greenlight-sim: %s: ledger (%lld micro-USD, %lld mg) differs from the jobs "
                   "(%lld, %lld)\n",
                   r.policy.name.c_str(), static_cast<long long>(r.ledger_cost_micros),
                   static_cast<long long>(r.ledger_carbon_mg),
                   static_cast<long long>(r.cost_micros), static_cast<long long>(r.carbon_mg));
    }
  }
  std::printf(
      "replayed %s jobs x %zu policies (%.1f simulated days) in %.2f s wall on %d threads "
      "(CPU %.2f s: %s); invariants %s\n",
      Thousands(n).c_str(), results->size(), absl::ToDoubleHours(span) / 24, wall,
      absl::GetFlag(FLAGS_threads), cpu, absl::StrJoin(per_policy, ", ").c_str(),
      invariants_ok ? "OK" : "BROKEN");

  const std::string out_dir = absl::GetFlag(FLAGS_out_dir);
  if (!out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) return Fail(absl::StrCat(out_dir, ": ", ec.message()));
    info.trace_source = trace->source;
    info.trace_format = trace->format;
    info.trace_stats = trace->stats;
    info.config_source = cfg->source_path;
    info.start = start;
    info.tick = options.tick;
    info.slack = options.slack;
    info.slack_factor = options.slack_factor;
    info.threads = absl::GetFlag(FLAGS_threads);
    info.wall_seconds = wall;
    info.sample_day = sim::BusiestDay(*trace, start);
    const std::string day = absl::GetFlag(FLAGS_sample_day);
    if (!day.empty() && !absl::ParseCivilTime(day, &info.sample_day)) {
      return Fail("--sample_day: not YYYY-MM-DD");
    }
    for (const auto& note : inventory->notes)
      info.notes.push_back(absl::StrCat("inventory: ", note));
    for (const absl::Status& s : std::vector<absl::Status>{
             sim::WriteSummaryCsv(out_dir + "/summary.csv", *results),
             sim::WriteSummaryJson(out_dir + "/summary.json", *results, info),
             sim::WriteJobsCsv(out_dir + "/jobs.csv", *trace, *results),
             sim::WriteIntensityCsv(out_dir + "/intensity.csv", *results, *inventory,
                                    info.sample_day),
         }) {
      if (!s.ok()) return Fail(std::string(s.message()));
    }
    std::printf("wrote %s/{summary.csv,summary.json,jobs.csv,intensity.csv}\n", out_dir.c_str());
    if (absl::GetFlag(FLAGS_plot)) {
      std::string cmd = absl::StrCat("'", absl::GetFlag(FLAGS_python), "' '",
                                     absl::GetFlag(FLAGS_plot_script), "' '", out_dir, "'");
      int rc = std::system(cmd.c_str());
      if (rc != 0) {
        std::fprintf(stderr,
                     "greenlight-sim: plotting failed (exit %d); the data is written, draw it "
                     "later with: %s\n",
                     WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, cmd.c_str());
      }
    }
  }
  return invariants_ok ? 0 : 1;
}
