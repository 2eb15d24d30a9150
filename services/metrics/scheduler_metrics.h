// The Prometheus families greenlightd exports on /metrics: team budgets in USD
// and kg CO2e, grid carbon intensity, GPU prices, and the scheduler's health.
// The scheduler pushes plain-struct samples; this library knows nothing of it.
//
// Conventions (see docs/METRICS.md for the full list and the PromQL recipes):
// - Every name starts with `greenlight_` and ends with its unit: `_usd`,
//   `_kg` (CO2e), `_grams_per_hour`, `_seconds`; counters end in `_total`.
// - Ledger integers (micro-USD, mg CO2e) are converted to doubles here, once.
// - Labels are bounded: team, parent, region, zone, gpu_type, state, reason.
//   Never a job id.
// - A budget of 0 means "unlimited": the team then has NO budget and NO
//   remaining series for that dimension (likewise no gpu_quota series for an
//   unlimited quota). Ratios such as spent / budget therefore simply have no
//   result for unlimited teams, so alerts cannot fire on them, and sums of
//   remaining budgets never become +Inf.
//
// Thread-safe: any method may be called from any thread while /metrics is
// being scraped.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace greenlight::metrics {

// Label names. Values of these labels come from bounded sets (config-defined
// teams, zones, regions and GPU types, job states, reason codes).
inline constexpr char kTeamLabel[] = "team";
inline constexpr char kParentLabel[] = "parent";
inline constexpr char kRegionLabel[] = "region";
inline constexpr char kZoneLabel[] = "zone";
inline constexpr char kGpuTypeLabel[] = "gpu_type";
inline constexpr char kStateLabel[] = "state";
inline constexpr char kReasonLabel[] = "reason";
inline constexpr char kVersionLabel[] = "version";
inline constexpr char kPoolLabel[] = "pool";
inline constexpr char kNodeLabel[] = "node";
inline constexpr char kBasisLabel[] = "basis";

// One team in the current budget period (the UTC month), in ledger units.
struct TeamSample {
  std::string team;
  std::string parent;              // "" when the team has no parent
  int64_t cost_budget_micros = 0;  // 0 = unlimited
  int64_t cost_spent_micros = 0;
  int64_t cost_reserved_micros = 0;
  int64_t carbon_budget_mg = 0;  // 0 = unlimited
  int64_t carbon_spent_mg = 0;
  int64_t carbon_reserved_mg = 0;
  // Current accrual rate of the team's running jobs.
  double cost_burn_micros_per_hour = 0;
  double carbon_burn_mg_per_hour = 0;
  int running_gpus = 0;
  int gpu_quota = 0;  // 0 = unlimited
  // Pending jobs by reason code ("QUOTA", "CAPACITY", ...). A reason seen
  // before but absent now is exported as 0 (the set of reasons is small).
  std::map<std::string, int> pending_by_reason;
};

// Carbon intensity of one grid zone, now.
struct ZoneSample {
  std::string zone;
  double intensity_g_per_kwh = 0;
  // Live API data: seconds since its last successful fetch. Series files:
  // seconds since the start of the slot in use.
  double data_age_seconds = 0;
  // True when the scheduler fell back to the annual average (no fresh data).
  bool stale = false;
  // The zone has no series and no live source: its annual average is all
  // there is, by configuration. Only its intensity is exported; a stale flag
  // of 1 and a growing age would alert forever on a setup that is fine.
  bool annual_only = false;
};

// On-demand price of one GPU of `gpu_type` in `region` (cheapest pool).
struct PriceSample {
  std::string region;
  std::string gpu_type;
  double usd_per_gpu_hour = 0;
};

// One admitted placement next to the carbon-blind baseline of the same job
// (cheapest pool, start as soon as possible), both as predicted at admission.
struct DecisionSample {
  std::string team;
  int64_t cost_micros = 0;
  int64_t carbon_mg = 0;
  int64_t baseline_cost_micros = 0;
  int64_t baseline_carbon_mg = 0;
};

// Node agents (greenlight-agent) and the jobs they run. Node series are
// bounded by the registered nodes; reasons and bases are small fixed sets.
struct AgentSample {
  struct Node {
    std::string pool;
    std::string node;
    std::string state;  // "READY", "LOST"
    // Wall seconds since its last heartbeat; < 0 = none since greenlightd started.
    double heartbeat_age_seconds = -1;
  };
  std::vector<Node> nodes;
  // Totals since greenlightd started (exported as counters).
  double energy_measured_wh = 0;            // facility energy charged on GPU counters
  double energy_modelled_wh = 0;            // charged on the GPU table's power
  int64_t starts = 0;                       // STARTED reports applied
  std::map<std::string, int64_t> failures;  // "exit_code", "signal", "failed_to_start", ...
};

// Bucket bounds, exposed so tests and dashboards agree with the code.
const std::vector<double>& PlacementSecondsBuckets();
const std::vector<double>& CommitSecondsBuckets();
const std::vector<double>& BatchSizeBuckets();

class SchedulerMetrics {
 public:
  // Builds every family in `registry`, which must outlive this object.
  // `version` becomes greenlight_build_info{version}.
  explicit SchedulerMetrics(prometheus::Registry& registry, std::string version = "dev");
  SchedulerMetrics(const SchedulerMetrics&) = delete;
  SchedulerMetrics& operator=(const SchedulerMetrics&) = delete;

  // Replaces the per-team gauges with `teams`: series of teams absent from
  // `teams` (deleted teams) are removed; a team whose parent changed gets new
  // series. Counters (admissions, decisions) are kept.
  void SetTeams(const std::vector<TeamSample>& teams);
  // Replaces the per-zone gauges; zones absent from `zones` are removed.
  void SetZones(const std::vector<ZoneSample>& zones);
  // Replaces the price gauges; (region, gpu_type) pairs absent are removed.
  void SetPrices(const std::vector<PriceSample>& prices);
  // Jobs by state (e.g. "PENDING", "RUNNING"); a state seen before but absent
  // now is exported as 0.
  void SetJobsByState(const std::map<std::string, int>& jobs_by_state);
  void SetQueueDepth(int depth);
  // Node gauges (nodes absent now are removed; a (pool, state) seen before
  // stays at 0) and the agent counters, advanced to the sample's totals.
  void SetAgents(const AgentSample& agents);

  void RecordAdmission(const std::string& team);
  // `reason` is a bounded code ("budget", "max_cost", "invalid_argument", ...).
  void RecordRejection(const std::string& reason);
  // Adds the decision's predicted cost and carbon, and its baseline's, to the
  // team's counters; avoided = baseline - chosen (see docs/METRICS.md).
  void RecordDecision(const DecisionSample& decision);

  void ObservePlacementSeconds(double seconds);
  void ObserveCommitSeconds(double seconds);
  void ObserveBatchSize(int commands);

 private:
  struct TeamSeries {
    prometheus::Labels labels;  // {team, parent}
    prometheus::Gauge* cost_budget = nullptr;
    prometheus::Gauge* cost_spent = nullptr;
    prometheus::Gauge* cost_reserved = nullptr;
    prometheus::Gauge* cost_remaining = nullptr;
    prometheus::Gauge* carbon_budget = nullptr;
    prometheus::Gauge* carbon_emitted = nullptr;
    prometheus::Gauge* carbon_reserved = nullptr;
    prometheus::Gauge* carbon_remaining = nullptr;
    prometheus::Gauge* cost_burn = nullptr;
    prometheus::Gauge* carbon_burn = nullptr;
    prometheus::Gauge* running_gpus = nullptr;
    prometheus::Gauge* gpu_quota = nullptr;
    std::map<std::string, prometheus::Gauge*> pending_by_reason;
  };
  struct ZoneSeries {
    prometheus::Gauge* intensity = nullptr;
    prometheus::Gauge* age = nullptr;
    prometheus::Gauge* stale = nullptr;
  };
  struct DecisionCounters {
    prometheus::Counter* cost = nullptr;
    prometheus::Counter* carbon = nullptr;
    prometheus::Counter* baseline_cost = nullptr;
    prometheus::Counter* baseline_carbon = nullptr;
  };

  void UpdateTeam(const TeamSample& sample, TeamSeries& series);
  void RemoveTeam(TeamSeries& series);

  // Families, built once in the constructor (names in the .cc file).
  prometheus::Family<prometheus::Gauge>& build_info_;
  prometheus::Family<prometheus::Gauge>& team_cost_budget_;
  prometheus::Family<prometheus::Gauge>& team_cost_spent_;
  prometheus::Family<prometheus::Gauge>& team_cost_reserved_;
  prometheus::Family<prometheus::Gauge>& team_cost_remaining_;
  prometheus::Family<prometheus::Gauge>& team_carbon_budget_;
  prometheus::Family<prometheus::Gauge>& team_carbon_emitted_;
  prometheus::Family<prometheus::Gauge>& team_carbon_reserved_;
  prometheus::Family<prometheus::Gauge>& team_carbon_remaining_;
  prometheus::Family<prometheus::Gauge>& team_cost_burn_;
  prometheus::Family<prometheus::Gauge>& team_carbon_burn_;
  prometheus::Family<prometheus::Gauge>& team_running_gpus_;
  prometheus::Family<prometheus::Gauge>& team_gpu_quota_;
  prometheus::Family<prometheus::Gauge>& team_pending_jobs_;
  prometheus::Family<prometheus::Gauge>& zone_intensity_;
  prometheus::Family<prometheus::Gauge>& zone_data_age_;
  prometheus::Family<prometheus::Gauge>& zone_data_stale_;
  prometheus::Family<prometheus::Gauge>& gpu_price_;
  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Family<prometheus::Gauge>& queue_depth_family_;
  prometheus::Family<prometheus::Gauge>& agent_nodes_;
  prometheus::Family<prometheus::Gauge>& agent_heartbeat_age_;
  prometheus::Family<prometheus::Counter>& agent_energy_;
  prometheus::Family<prometheus::Counter>& agent_starts_;
  prometheus::Family<prometheus::Counter>& agent_failures_;
  prometheus::Family<prometheus::Counter>& admissions_;
  prometheus::Family<prometheus::Counter>& rejections_;
  prometheus::Family<prometheus::Counter>& decision_cost_;
  prometheus::Family<prometheus::Counter>& decision_carbon_;
  prometheus::Family<prometheus::Counter>& baseline_cost_;
  prometheus::Family<prometheus::Counter>& baseline_carbon_;
  prometheus::Family<prometheus::Histogram>& placement_seconds_family_;
  prometheus::Family<prometheus::Histogram>& commit_seconds_family_;
  prometheus::Family<prometheus::Histogram>& batch_size_family_;

  // Unlabelled series, created once.
  prometheus::Gauge& queue_depth_;
  prometheus::Histogram& placement_seconds_;
  prometheus::Histogram& commit_seconds_;
  prometheus::Histogram& batch_size_;

  // Labelled series currently exported, so that updates skip the family's
  // label hashing and removals know what to remove.
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, TeamSeries> teams_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, ZoneSeries> zones_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> prices_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, prometheus::Gauge*> jobs_by_state_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, prometheus::Counter*> admissions_by_team_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, prometheus::Counter*> rejections_by_reason_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, DecisionCounters> decisions_by_team_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> nodes_by_state_
      ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, prometheus::Gauge*> heartbeat_ages_
      ABSL_GUARDED_BY(mu_);
  // Counters advanced by the growth of the sample's totals since the last one.
  AgentSample agent_totals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace greenlight::metrics
