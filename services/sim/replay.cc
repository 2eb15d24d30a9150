#include "services/sim/replay.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "services/budget/period.h"
#include "services/placement/engine.h"
#include "services/scheduler/core.h"
#include "services/scheduler/executor.h"
#include "services/scheduler/invariants.h"
#include "services/scheduler/job_state.h"
#include "services/store/memory_store.h"
#include "services/store/sqlite_store.h"

namespace greenlight::sim {

using greenlight::v1::Job;
using greenlight::v1::JobSpec;
using greenlight::v1::PlacementMode;

std::vector<Policy> DefaultPolicies(int64_t balanced_carbon_price_micros_per_tonne) {
  std::vector<Policy> out;
  out.push_back({"baseline", "carbon-blind cheapest-now: cheapest pool, start at once",
                 v1::PLACEMENT_MODE_CHEAPEST, /*shift=*/false, /*interruptible=*/false, 0});
  out.push_back({"greenest-now", "lowest-carbon pool (region and GPU), start at once",
                 v1::PLACEMENT_MODE_GREENEST, false, false, 0});
  out.push_back({"shift", "lowest-carbon pool and start within the deadline, one contiguous run",
                 v1::PLACEMENT_MODE_GREENEST, true, false, 0});
  out.push_back({"interruptible",
                 "as shift, and checkpointable: lowest-carbon slots before the deadline",
                 v1::PLACEMENT_MODE_GREENEST, true, true, 0});
  out.push_back({"balanced",
                 "cost + carbon x carbon price over pools and starts within the deadline",
                 v1::PLACEMENT_MODE_BALANCED, true, false, balanced_carbon_price_micros_per_tonne});
  return out;
}

namespace {

absl::StatusOr<PlacementMode> ParseMode(absl::string_view s) {
  if (s == "cheapest") return v1::PLACEMENT_MODE_CHEAPEST;
  if (s == "greenest") return v1::PLACEMENT_MODE_GREENEST;
  if (s == "balanced") return v1::PLACEMENT_MODE_BALANCED;
  return absl::InvalidArgumentError(
      absl::StrCat("--policies: mode '", s, "' is not cheapest, greenest or balanced"));
}

// "name=mode[+shift][+interruptible][@usd_per_tonne]".
absl::StatusOr<Policy> ParseCustomPolicy(absl::string_view entry) {
  std::pair<absl::string_view, absl::string_view> kv =
      absl::StrSplit(entry, absl::MaxSplits('=', 1));
  Policy p;
  p.name = std::string(absl::StripAsciiWhitespace(kv.first));
  if (p.name.empty())
    return absl::InvalidArgumentError(absl::StrCat("--policies: '", entry, "' has no name"));
  absl::string_view rest = kv.second;
  std::pair<absl::string_view, absl::string_view> at =
      absl::StrSplit(rest, absl::MaxSplits('@', 1));
  std::vector<absl::string_view> parts = absl::StrSplit(at.first, '+');
  ASSIGN_OR_RETURN(p.mode, ParseMode(parts[0]));
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i] == "shift") {
      p.shift = true;
    } else if (parts[i] == "interruptible") {
      p.interruptible = true;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--policies: '", parts[i], "' in '", entry,
                                                     "' is not shift or interruptible"));
    }
  }
  if (!at.second.empty()) {
    double usd;
    if (!absl::SimpleAtod(at.second, &usd) || usd < 0 || usd > 1e6) {
      return absl::InvalidArgumentError(
          absl::StrCat("--policies: carbon price in '", entry, "' must be 0..1e6 USD per tonne"));
    }
    p.carbon_price_micros_per_tonne = static_cast<int64_t>(std::llround(usd * 1e6));
  }
  p.description = absl::StrCat("custom: ", rest);
  return p;
}

}  // namespace

absl::StatusOr<std::vector<Policy>> SelectPolicies(const std::string& names,
                                                   int64_t balanced_carbon_price_micros_per_tonne) {
  std::vector<Policy> all = DefaultPolicies(balanced_carbon_price_micros_per_tonne);
  std::vector<Policy> out;
  for (absl::string_view name : absl::StrSplit(names, ',', absl::SkipWhitespace())) {
    name = absl::StripAsciiWhitespace(name);
    if (absl::StrContains(name, '=')) {
      ASSIGN_OR_RETURN(Policy p, ParseCustomPolicy(name));
      out.push_back(std::move(p));
      continue;
    }
    auto it = std::find_if(all.begin(), all.end(), [&](const Policy& p) { return p.name == name; });
    if (it == all.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--policies: unknown policy '", name,
                       "' (baseline, greenest-now, shift, interruptible, balanced, or "
                       "name=mode[+shift][+interruptible][@usd_per_t])"));
    }
    out.push_back(*it);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (out[i].name == out[j].name) {
        return absl::InvalidArgumentError(absl::StrCat("--policies: '", out[i].name, "' twice"));
      }
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("--policies: no policy named");
  return out;
}

absl::Time TraceDeadline(const TraceJob& job, const ReplayOptions& options) {
  absl::Time submit = options.start + job.submit;
  if (job.has_deadline) return options.start + job.deadline;
  absl::Duration slack = std::max(options.slack, job.duration * options.slack_factor);
  // The API accepts deadlines within 366 days of submission.
  return std::min(submit + job.duration + slack, submit + absl::Hours(24 * 365));
}

JobSpec BuildSpec(const TraceJob& job, const Policy& policy, const ReplayOptions& options,
                  absl::Time submit) {
  JobSpec spec;
  spec.set_team(job.team);
  spec.set_name(job.name.substr(0, 256));
  spec.set_gpus(job.gpus);
  for (const auto& g : job.gpu_types) spec.add_gpu_types(g);
  *spec.mutable_duration() = ToProtoDuration(job.duration);
  spec.set_max_cost_micros(job.max_cost_micros);
  spec.set_max_carbon_mg(job.max_carbon_mg);
  spec.set_mode(policy.mode);
  spec.set_checkpointable(policy.interruptible && job.checkpointable);
  spec.set_carbon_price_micros_per_tonne(policy.carbon_price_micros_per_tonne);
  for (const auto& r : options.regions) spec.add_regions(r);
  // Run-now policies leave the engine no start but now; shifting policies
  // give it the job's own deadline.
  absl::Time deadline = policy.shift ? TraceDeadline(job, options) : submit + job.duration;
  *spec.mutable_deadline() = ToProto(deadline);
  return spec;
}

namespace {

bool IsCapRejection(const absl::Status& st) {
  if (st.code() == absl::StatusCode::kResourceExhausted) return true;  // team budget
  if (st.code() != absl::StatusCode::kFailedPrecondition) return false;
  absl::optional<absl::Cord> payload = st.GetPayload(scheduler::kQuotePayloadUrl);
  if (!payload) return false;
  v1::Quote q;
  if (!q.ParseFromString(std::string(*payload))) return false;
  for (const auto& r : q.rejections()) {
    if (r.reason() == placement::kReasonMaxCost || r.reason() == placement::kReasonMaxCarbon ||
        r.reason() == placement::kReasonTeamBudget) {
      return true;
    }
  }
  return false;
}

// The team of `name` at the top of its hierarchy (GetUsage of it rolls up the children).
std::string RootOf(const std::string& name, const std::vector<v1::Team>& teams) {
  for (const auto& t : teams) {
    if (t.name() == name && !t.parent().empty()) return t.parent();
  }
  return name;
}

void RemoveDb(const std::string& path) {
  std::error_code ec;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix, ec);
}

double ThreadCpuSeconds() {
  timespec ts;
  if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

}  // namespace

absl::StatusOr<PolicyResult> ReplayPolicy(const Trace& trace, const Policy& policy,
                                          const providers::Inventory& inventory,
                                          const ReplayOptions& options, ReplayProgress* progress) {
  const absl::Time wall0 = absl::Now();
  const double cpu0 = ThreadCpuSeconds();
  PolicyResult result;
  result.policy = policy;

  ManualClock clock(options.start);
  // Nobody watches a replay: keep no events (each embeds a copy of its job).
  store::MemoryStore memory(store::MemoryStoreOptions{.max_events = 0});
  std::unique_ptr<store::SqliteStore> sqlite;
  std::string sqlite_path;
  if (!options.sqlite_dir.empty()) {
    sqlite_path =
        absl::StrCat(options.sqlite_dir, "/greenlight-sim-", getpid(), "-", policy.name, ".db");
    RemoveDb(sqlite_path);
    ASSIGN_OR_RETURN(sqlite, store::SqliteStore::Open({sqlite_path, "normal"}));
  }
  store::Store& store = sqlite ? static_cast<store::Store&>(*sqlite) : memory;
  scheduler::SimulatedExecutor executor;
  scheduler::CoreOptions co;
  co.clock = &clock;
  co.store = &store;
  co.executor = &executor;
  co.inventory = inventory;
  switch (options.default_mode) {
    case v1::PLACEMENT_MODE_CHEAPEST:
      co.default_mode = placement::Mode::kCheapest;
      break;
    case v1::PLACEMENT_MODE_GREENEST:
      co.default_mode = placement::Mode::kGreenest;
      break;
    default:
      co.default_mode = placement::Mode::kBalanced;
      break;
  }
  co.default_carbon_price_micros_per_tonne = options.default_carbon_price_micros_per_tonne;
  co.horizon = options.horizon;
  co.slot = options.slot;
  co.tick_interval = absl::ZeroDuration();  // no writer thread: commands run inline
  co.accrual_interval = options.accrual_interval;
  co.event_ring = 1024;
  ASSIGN_OR_RETURN(std::unique_ptr<scheduler::SchedulerCore> core,
                   scheduler::SchedulerCore::Create(std::move(co)));

  // Teams: the given ones (config), then every other team the trace names.
  std::vector<v1::Team> teams = options.teams;
  std::set<std::string> trace_teams;
  for (const auto& j : trace.jobs) trace_teams.insert(j.team);
  for (const auto& name : trace_teams) {
    if (std::any_of(teams.begin(), teams.end(),
                    [&](const v1::Team& t) { return t.name() == name; }))
      continue;
    v1::Team t;
    t.set_name(name);
    t.set_monthly_cost_budget_micros(options.team_defaults.monthly_cost_budget_micros);
    t.set_monthly_carbon_budget_mg(options.team_defaults.monthly_carbon_budget_mg);
    t.set_gpu_quota(options.team_defaults.gpu_quota);
    teams.push_back(std::move(t));
  }
  for (const auto& t : teams) {
    auto st = core->SetTeam(t);
    if (!st.ok()) {
      return absl::Status(st.status().code(),
                          absl::StrCat("team '", t.name(), "': ", st.status().message()));
    }
  }
  std::set<std::string> roots;
  for (const auto& name : trace_teams) roots.insert(RootOf(name, teams));

  const size_t n = trace.jobs.size();
  result.outcomes.resize(n);
  absl::flat_hash_map<std::string, int> index_of;
  index_of.reserve(n);
  // Exact wake-ups: the planned starts and ends the core announced, so that
  // shifted jobs start on their slot, not up to a tick late.
  std::priority_queue<absl::Time, std::vector<absl::Time>, std::greater<>> wake;
  const absl::Time last_submit = n > 0 ? options.start + trace.jobs.back().submit : options.start;
  absl::Time last_tick = absl::InfinitePast();
  bool busy = false;
  size_t next = 0;
  auto any_active = [&]() {
    for (const auto& team : roots) {
      auto u = core->GetUsage(team, clock.Now());
      if (u.ok() && u->jobs_running() + u->jobs_pending() > 0) return true;
    }
    return false;
  };

  for (;;) {
    const absl::Time t_submit =
        next < n ? options.start + trace.jobs[next].submit : absl::InfiniteFuture();
    const absl::Time t_tick = busy ? last_tick + options.tick : absl::InfiniteFuture();
    while (!wake.empty() && wake.top() <= last_tick) wake.pop();
    const absl::Time t_wake = wake.empty() ? absl::InfiniteFuture() : wake.top();
    const absl::Time t = std::min({t_submit, t_tick, t_wake});
    if (t == absl::InfiniteFuture()) break;
    if (next >= n && t > last_submit + options.drain_limit) break;
    clock.Set(t);
    if (t > last_tick) {
      RETURN_IF_ERROR(core->Tick());
      last_tick = t;
      ++result.ticks;
      if (options.check_invariants_every > 0 &&
          result.ticks % options.check_invariants_every == 0) {
        absl::Status inv = scheduler::CheckInvariants(*core);
        if (!inv.ok() && result.invariants.ok()) {  // keep the first break
          result.invariants =
              absl::InternalError(absl::StrCat("at ", absl::FormatTime(t), ": ", inv.message()));
        }
      }
    }
    while (next < n && options.start + trace.jobs[next].submit <= t) {
      const TraceJob& tj = trace.jobs[next];
      JobOutcome& o = result.outcomes[next];
      o.trace_index = static_cast<int>(next);
      o.submit = t;
      o.deadline = TraceDeadline(tj, options);
      o.gpus = tj.gpus;
      ++result.jobs;
      absl::StatusOr<scheduler::SubmitResult> r = core->Submit(BuildSpec(tj, policy, options, t));
      if (r.ok()) {
        const Job& j = r->job;
        o.job_id = j.id();
        index_of[j.id()] = static_cast<int>(next);
        ++result.admitted;
        o.baseline_pool_id = j.quote().baseline().pool_id();
        o.baseline_cost_micros = j.quote().baseline().cost_micros();
        o.baseline_carbon_mg = j.quote().baseline().carbon_mg();
        if (j.state() == v1::JOB_STATE_PLANNED || j.state() == v1::JOB_STATE_RUNNING) {
          wake.push(FromProto(j.placement().start()));
          wake.push(FromProto(j.placement().end()));
        }
      } else {
        o.state = v1::JOB_STATE_REJECTED;
        o.reject_code = absl::StatusCodeToString(r.status().code());
        o.reject_message = std::string(r.status().message());
        o.cap_rejection = IsCapRejection(r.status());
        if (o.cap_rejection) {
          ++result.cap_rejections;
        } else {
          ++result.other_rejections;
        }
      }
      ++next;
    }
    busy = any_active();
    if (progress) {
      progress->submitted = static_cast<int64_t>(next);
      progress->virtual_seconds = absl::ToInt64Seconds(t - options.start);
    }
  }
  result.virtual_end = clock.Now();
  absl::Status inv = scheduler::CheckInvariants(*core);
  if (result.invariants.ok()) result.invariants = inv;

  // Read every job back from the core.
  scheduler::ListJobsQuery q;
  q.page_size = 1000;
  std::vector<double> waits;
  for (;;) {
    ASSIGN_OR_RETURN(scheduler::ListJobsPage page, core->ListJobs(q));
    for (const Job& j : page.jobs) {
      auto it = index_of.find(j.id());
      if (it == index_of.end()) continue;
      JobOutcome& o = result.outcomes[it->second];
      o.state = j.state();
      o.pool_id = j.placement().pool_id();
      o.zone = j.placement().grid_zone();
      o.spot = j.placement().spot();
      o.cost_micros = j.accrued_cost_micros();
      o.carbon_mg = j.accrued_carbon_mg();
      o.energy_wh = j.accrued_energy_wh();
      if (j.has_start_time()) o.start = FromProto(j.start_time());
      if (j.has_end_time()) o.end = FromProto(j.end_time());
      if (j.placement().slots_size() > 1) {
        for (const auto& s : j.placement().slots()) {
          o.slots.emplace_back(FromProto(s.start()), FromProto(s.end()));
        }
      } else if (o.start != absl::InfinitePast()) {
        // A contiguous run starts when the job did (it may have waited for capacity).
        absl::Duration run = FromProto(j.placement().end()) - FromProto(j.placement().start());
        o.slots.emplace_back(o.start, o.start + run);
      }
    }
    if (page.next_page_token.empty()) break;
    q.page_token = page.next_page_token;
  }
  for (const JobOutcome& o : result.outcomes) {
    result.cost_micros += o.cost_micros;
    result.carbon_mg += o.carbon_mg;
    result.energy_wh += o.energy_wh;
    result.baseline_cost_micros += o.baseline_cost_micros;
    result.baseline_carbon_mg += o.baseline_carbon_mg;
    if (o.state == v1::JOB_STATE_REJECTED) continue;
    if (o.start != absl::InfinitePast()) waits.push_back(absl::ToDoubleSeconds(o.start - o.submit));
    if (o.state == v1::JOB_STATE_SUCCEEDED) ++result.succeeded;
    if (o.state == v1::JOB_STATE_BUDGET_EXHAUSTED) ++result.budget_stopped;
    if (o.state == v1::JOB_STATE_FAILED) ++result.failed;
    if (!scheduler::IsTerminal(o.state)) ++result.unfinished;
    const bool late = o.state == v1::JOB_STATE_SUCCEEDED
                          ? o.end > o.deadline
                          : o.state == v1::JOB_STATE_FAILED || !scheduler::IsTerminal(o.state);
    if (late) ++result.deadline_misses;
    if (o.slots.size() > 1) ++result.split_jobs;
    if (o.spot) ++result.spot_jobs;
  }
  if (!waits.empty()) {
    double sum = 0;
    for (double w : waits) sum += w;
    result.mean_wait_s = sum / static_cast<double>(waits.size());
    result.p95_wait_s = Percentile(std::move(waits), 0.95);
  }
  // The ledger's totals, month by month.
  for (const auto& team : roots) {
    for (absl::Time m = budget::PeriodStart(options.start); m <= result.virtual_end;
         m = budget::PeriodEnd(m)) {
      ASSIGN_OR_RETURN(v1::Usage u, core->GetUsage(team, m));
      result.ledger_cost_micros += u.cost_spent_micros();
      result.ledger_carbon_mg += u.carbon_spent_mg();
    }
  }
  core.reset();  // its teardown is part of the replay's cost
  if (sqlite) {
    sqlite.reset();
    RemoveDb(sqlite_path);
  }
  result.wall_seconds = absl::ToDoubleSeconds(absl::Now() - wall0);
  result.cpu_seconds = ThreadCpuSeconds() - cpu0;
  if (progress) progress->done = true;
  return result;
}

absl::StatusOr<std::vector<PolicyResult>> ReplayAll(
    const Trace& trace, const std::vector<Policy>& policies, const providers::Inventory& inventory,
    const ReplayOptions& options, int threads, absl::Duration progress_every,
    const std::function<void(const std::vector<const ReplayProgress*>&, double elapsed_s)>&
        on_progress) {
  const size_t n = policies.size();
  std::vector<std::unique_ptr<ReplayProgress>> progress(n);
  std::vector<const ReplayProgress*> views(n);
  for (size_t i = 0; i < n; ++i) {
    progress[i] = std::make_unique<ReplayProgress>();
    views[i] = progress[i].get();
  }
  std::vector<absl::StatusOr<PolicyResult>> results(n, absl::UnknownError("not run"));
  absl::Mutex mu;
  size_t next = 0;
  int running = 0;
  auto worker = [&]() {
    for (;;) {
      size_t i;
      {
        absl::MutexLock l(&mu);
        if (next >= n) break;
        i = next++;
      }
      results[i] = ReplayPolicy(trace, policies[i], inventory, options, progress[i].get());
      progress[i]->done = true;
    }
    absl::MutexLock l(&mu);
    --running;
  };
  threads = std::max(1, std::min<int>(threads, static_cast<int>(n)));
  std::vector<std::thread> pool;
  {
    absl::MutexLock l(&mu);
    running = threads;
  }
  const absl::Time wall0 = absl::Now();
  for (int i = 0; i < threads; ++i) pool.emplace_back(worker);
  {
    absl::MutexLock l(&mu);
    auto finished = [&running]() { return running == 0; };
    while (!mu.AwaitWithTimeout(absl::Condition(&finished), progress_every)) {
      if (on_progress) {
        mu.Unlock();
        on_progress(views, absl::ToDoubleSeconds(absl::Now() - wall0));
        mu.Lock();
      }
    }
  }
  for (auto& t : pool) t.join();
  std::vector<PolicyResult> out;
  for (size_t i = 0; i < n; ++i) {
    if (!results[i].ok()) {
      return absl::Status(
          results[i].status().code(),
          absl::StrCat("policy ", policies[i].name, ": ", results[i].status().message()));
    }
    out.push_back(std::move(*results[i]));
  }
  return out;
}

}  // namespace greenlight::sim
