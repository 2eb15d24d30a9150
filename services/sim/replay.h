// Trace replay on virtual time: every policy gets its own SchedulerCore (the
// daemon's core, placement engine and ledger) on a ManualClock, an in-memory
// store and the simulated executor. The replay only submits jobs and moves
// the clock; every decision (pool, start, split, waiting, accrual) is the
// core's. A policy is nothing but JobSpec fields: mode, deadline, checkpointable
// and carbon price. Rules and figures: docs/REPLAY.md.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"
#include "services/providers/inventory.h"
#include "services/sim/trace.h"

namespace greenlight::sim {

// How a policy submits jobs. Each maps to JobSpec fields only.
struct Policy {
  std::string name;
  std::string description;
  greenlight::v1::PlacementMode mode = greenlight::v1::PLACEMENT_MODE_CHEAPEST;
  // false: deadline = submit + duration, so the engine can only start the job
  // at once; true: the job's deadline (trace, else the slack rule), so the
  // engine may move its start within it.
  bool shift = false;
  // spec.checkpointable (for jobs the trace allows to checkpoint): the engine
  // may split the run over the lowest-carbon slots and use spot capacity.
  bool interruptible = false;
  // spec.carbon_price_micros_per_tonne; 0 = the team's or the core default.
  int64_t carbon_price_micros_per_tonne = 0;
};

// The five policies of docs/REPLAY.md, in table order: baseline (carbon-blind
// cheapest-now), greenest-now, shift, interruptible, balanced.
std::vector<Policy> DefaultPolicies(int64_t balanced_carbon_price_micros_per_tonne);
// Picks policies by name from DefaultPolicies (comma-separated list).
absl::StatusOr<std::vector<Policy>> SelectPolicies(const std::string& names,
                                                   int64_t balanced_carbon_price_micros_per_tonne);

// Budgets of every team the trace names (0 = unlimited).
struct TeamDefaults {
  int64_t monthly_cost_budget_micros = 0;
  int64_t monthly_carbon_budget_mg = 0;
  int gpu_quota = 0;
};

struct ReplayOptions {
  // Virtual time of trace offset 0; the carbon series must cover the replay.
  absl::Time start;
  // Scheduling step while jobs run or wait (the core also wakes exactly at
  // every planned start and planned end it announced).
  absl::Duration tick = absl::Minutes(10);
  // Slack rule for jobs without a deadline of their own:
  //   deadline = submit + duration + max(slack, slack_factor x duration).
  absl::Duration slack = absl::Hours(24);
  double slack_factor = 0;
  // Core settings (same meaning as greenlightd's config).
  absl::Duration horizon = absl::Hours(168);
  absl::Duration slot = absl::Hours(1);
  // How often running jobs are charged at least (the core's accrual_interval).
  // Charges are exact per hour segment whatever the interval; a long one only
  // writes fewer ledger rows (docs/REPLAY.md).
  absl::Duration accrual_interval = absl::Hours(24);
  int64_t default_carbon_price_micros_per_tonne = 100'000'000;
  greenlight::v1::PlacementMode default_mode = greenlight::v1::PLACEMENT_MODE_BALANCED;
  // spec.regions of every job under every policy (a scenario, not a policy):
  // empty = any region.
  std::vector<std::string> regions;
  TeamDefaults team_defaults;
  // Teams created before the trace's own (e.g. from the config), parents first.
  std::vector<greenlight::v1::Team> teams;
  // Run CheckInvariants() every this many ticks (0 = only at the end).
  int check_invariants_every = 0;
  // Empty: the in-memory store. Else a directory for one SQLite file per
  // policy (synchronous=NORMAL, removed afterwards), to compare the stores.
  std::string sqlite_dir;
  // Stop a policy's replay this long after the last submit even if jobs are
  // still waiting (they are reported as unfinished).
  absl::Duration drain_limit = absl::Hours(24 * 400);
};

// What became of one trace job under one policy.
struct JobOutcome {
  int trace_index = -1;
  std::string job_id;
  greenlight::v1::JobState state = greenlight::v1::JOB_STATE_UNSPECIFIED;
  std::string reject_code;  // Submit's error code name when rejected
  std::string reject_message;
  bool cap_rejection = false;
  absl::Time submit;
  absl::Time deadline;  // the trace job's deadline (or slack rule), the same for every policy
  absl::Time start = absl::InfinitePast();  // InfinitePast = never started
  absl::Time end = absl::InfinitePast();
  std::string pool_id;
  std::string zone;
  int gpus = 0;
  bool spot = false;
  std::vector<std::pair<absl::Time, absl::Time>> slots;  // the placement's runs
  int64_t cost_micros = 0;
  int64_t carbon_mg = 0;
  double energy_wh = 0;
  // The decision's carbon-blind baseline at submit (cheapest pool, at once).
  std::string baseline_pool_id;
  int64_t baseline_cost_micros = 0;
  int64_t baseline_carbon_mg = 0;
};

struct PolicyResult {
  Policy policy;
  int64_t jobs = 0;  // trace jobs submitted
  int64_t admitted = 0;
  int64_t succeeded = 0;
  int64_t budget_stopped = 0;    // BUDGET_EXHAUSTED
  int64_t failed = 0;            // FAILED: waited for capacity past its deadline
  int64_t unfinished = 0;        // still waiting or running when the replay stopped
  int64_t cap_rejections = 0;    // job caps or team budget cannot be met
  int64_t other_rejections = 0;  // deadline, GPU type, invalid
  int64_t cost_micros = 0;       // accrued, all jobs
  int64_t carbon_mg = 0;
  double energy_wh = 0;
  double mean_wait_s = 0;  // start - submit, started jobs
  double p95_wait_s = 0;
  // Admitted jobs not done by the trace deadline: finished late, failed (the
  // core fails a waiting job that can no longer meet its deadline) or unfinished.
  int64_t deadline_misses = 0;
  int64_t split_jobs = 0;
  int64_t spot_jobs = 0;
  int64_t baseline_cost_micros = 0;  // sum of the decisions' carbon-blind baselines
  int64_t baseline_carbon_mg = 0;
  // The ledger's view (GetUsage over every team and month): equals the job sums.
  int64_t ledger_cost_micros = 0;
  int64_t ledger_carbon_mg = 0;
  int64_t ticks = 0;
  absl::Time virtual_end;
  double wall_seconds = 0;
  double cpu_seconds = 0;  // CPU time of the replaying thread (robust to a busy machine)
  absl::Status invariants;
  std::vector<JobOutcome> outcomes;  // one per trace job, in trace order
};

// Live counters for progress lines (updated by the replaying thread).
struct ReplayProgress {
  std::atomic<int64_t> submitted{0};
  std::atomic<int64_t> virtual_seconds{0};  // since the start
  std::atomic<bool> done{false};
};

// The JobSpec a policy submits for a trace job submitted at `submit`.
greenlight::v1::JobSpec BuildSpec(const TraceJob& job, const Policy& policy,
                                  const ReplayOptions& options, absl::Time submit);
// The trace job's deadline: its own, else the slack rule.
absl::Time TraceDeadline(const TraceJob& job, const ReplayOptions& options);

// Replays the trace under one policy on a fresh core. Errors are setup
// failures (a bad inventory, a team the core refuses); rejected jobs are
// results.
absl::StatusOr<PolicyResult> ReplayPolicy(const Trace& trace, const Policy& policy,
                                          const providers::Inventory& inventory,
                                          const ReplayOptions& options,
                                          ReplayProgress* progress = nullptr);

// Every policy, `threads` at a time (each policy has its own core, so they
// share nothing but the read-only inventory). `on_progress` is called about
// every `progress_every` of wall time with the live counters.
absl::StatusOr<std::vector<PolicyResult>> ReplayAll(
    const Trace& trace, const std::vector<Policy>& policies, const providers::Inventory& inventory,
    const ReplayOptions& options, int threads, absl::Duration progress_every,
    const std::function<void(const std::vector<const ReplayProgress*>&, double elapsed_s)>&
        on_progress);

}  // namespace greenlight::sim
