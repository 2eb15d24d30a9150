// Families of greenlightd's /metrics; see scheduler_metrics.h for conventions.
#include "services/metrics/scheduler_metrics.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"

namespace greenlight::metrics {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;

// The only places ledger integers become floating-point base units.
double UsdFromMicros(int64_t micros) { return static_cast<double>(micros) / 1e6; }
double KgFromMg(int64_t mg) { return static_cast<double>(mg) / 1e6; }
double GramsFromMg(double mg) { return mg / 1e3; }

Family<Gauge>& GaugeFamily(prometheus::Registry& r, const std::string& name,
                           const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}
Family<Counter>& CounterFamily(prometheus::Registry& r, const std::string& name,
                               const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}
Family<Histogram>& HistogramFamily(prometheus::Registry& r, const std::string& name,
                                   const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

// Sets the series `*slot` of `family` to `value` when `present`, creating it
// if needed; removes it when not present.
void SetOrRemove(Family<Gauge>& family, Gauge*& slot, const Labels& labels, bool present,
                 double value) {
  if (!present) {
    if (slot != nullptr) family.Remove(slot);
    slot = nullptr;
    return;
  }
  if (slot == nullptr) slot = &family.Add(labels);
  slot->Set(value);
}

void RemoveIfSet(Family<Gauge>& family, Gauge*& slot) {
  if (slot != nullptr) family.Remove(slot);
  slot = nullptr;
}

using PairKey = std::pair<std::string, std::string>;

// Sets the series of `values` (labels k1, k2 from the key) and removes the
// series in `shown` that `values` no longer has.
void ReplaceGauges(Family<Gauge>& family, const char* k1, const char* k2,
                   const std::map<PairKey, double>& values, std::map<PairKey, Gauge*>& shown) {
  std::map<PairKey, Gauge*> next;
  for (const auto& [key, value] : values) {
    Gauge* gauge = nullptr;
    if (auto it = shown.find(key); it != shown.end()) {
      gauge = it->second;
      shown.erase(it);
    } else {
      gauge = &family.Add({{k1, key.first}, {k2, key.second}});
    }
    gauge->Set(value);
    next[key] = gauge;
  }
  for (auto& [key, gauge] : shown) family.Remove(gauge);
  shown = std::move(next);
}

// Sets the counts of `values`; a key shown before but absent now stays at 0
// (the key sets are small: states, reasons).
template <typename Key, typename AddSeries>
void SetKeepingZeros(const std::map<Key, int>& values, std::map<Key, Gauge*>& shown,
                     AddSeries add) {
  for (auto& [key, gauge] : shown)
    if (!values.contains(key)) gauge->Set(0);
  for (const auto& [key, count] : values) {
    Gauge*& gauge = shown[key];
    if (gauge == nullptr) gauge = &add(key);
    gauge->Set(count);
  }
}

void AddNonNegative(Counter* counter, double amount) {
  // Counters only go up; a negative prediction would be a bug upstream, and
  // prometheus-cpp would silently ignore it anyway.
  if (amount > 0) counter->Increment(amount);
}

}  // namespace

const std::vector<double>& PlacementSecondsBuckets() {
  // Placement is O(pools x slots) and must stay well under a millisecond.
  static const std::vector<double> kBuckets = {25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3,
                                               5e-3,  10e-3, 25e-3,  50e-3,  100e-3, 250e-3, 1.0};
  return kBuckets;
}

const std::vector<double>& CommitSecondsBuckets() {
  // One fsync'd SQLite transaction per group: milliseconds on SSDs.
  static const std::vector<double> kBuckets = {100e-6, 250e-6, 500e-6, 1e-3,   2.5e-3, 5e-3, 10e-3,
                                               25e-3,  50e-3,  100e-3, 250e-3, 500e-3, 1.0,  2.5};
  return kBuckets;
}

const std::vector<double>& BatchSizeBuckets() {
  static const std::vector<double> kBuckets = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096};
  return kBuckets;
}

SchedulerMetrics::SchedulerMetrics(prometheus::Registry& r, std::string version)
    : build_info_(GaugeFamily(r, "greenlight_build_info",
                              "Always 1; the version label says which greenlightd is running.")),
      team_cost_budget_(GaugeFamily(r, "greenlight_team_cost_budget_usd",
                                    "Cost budget of the team for the current UTC month, USD. "
                                    "Absent when the budget is unlimited.")),
      team_cost_spent_(GaugeFamily(r, "greenlight_team_cost_spent_usd",
                                   "Cost accrued by the team's jobs this month, USD.")),
      team_cost_reserved_(GaugeFamily(r, "greenlight_team_cost_reserved_usd",
                                      "Cost reserved by admitted, unfinished jobs, USD.")),
      team_cost_remaining_(GaugeFamily(r, "greenlight_team_cost_remaining_usd",
                                       "Budget - spent - reserved, USD (negative when "
                                       "overspent). Absent when the budget is unlimited.")),
      team_carbon_budget_(GaugeFamily(r, "greenlight_team_carbon_budget_kg",
                                      "Carbon budget of the team for the current UTC month, kg "
                                      "CO2e. Absent when the budget is unlimited.")),
      team_carbon_emitted_(
          GaugeFamily(r, "greenlight_team_carbon_emitted_kg",
                      "Emissions accrued by the team's jobs this month, kg CO2e.")),
      team_carbon_reserved_(
          GaugeFamily(r, "greenlight_team_carbon_reserved_kg",
                      "Emissions reserved by admitted, unfinished jobs, kg CO2e.")),
      team_carbon_remaining_(GaugeFamily(r, "greenlight_team_carbon_remaining_kg",
                                         "Budget - emitted - reserved, kg CO2e (negative when "
                                         "overspent). Absent when the budget is unlimited.")),
      team_cost_burn_(GaugeFamily(r, "greenlight_team_cost_burn_rate_usd_per_hour",
                                  "Current cost accrual rate of the team's running jobs, USD/h.")),
      team_carbon_burn_(GaugeFamily(r, "greenlight_team_carbon_burn_rate_grams_per_hour",
                                    "Current emission rate of the team's running jobs, g CO2e/h.")),
      team_running_gpus_(
          GaugeFamily(r, "greenlight_team_running_gpus", "GPUs held by the team's running jobs.")),
      team_gpu_quota_(GaugeFamily(r, "greenlight_team_gpu_quota",
                                  "Max concurrent GPUs of the team. Absent when unlimited.")),
      team_pending_jobs_(GaugeFamily(r, "greenlight_team_pending_jobs",
                                     "Admitted jobs of the team waiting to run, by reason.")),
      zone_intensity_(GaugeFamily(r, "greenlight_zone_carbon_intensity_grams_per_kwh",
                                  "Grid carbon intensity of the zone now, g CO2e/kWh.")),
      zone_data_age_(GaugeFamily(r, "greenlight_zone_carbon_data_age_seconds",
                                 "Age of the zone's carbon-intensity data, seconds: since the last "
                                 "successful fetch for live API data, since the start of the "
                                 "slot in use for series files.")),
      zone_data_stale_(GaugeFamily(r, "greenlight_zone_carbon_data_stale",
                                   "1 when the zone has no fresh data and the annual average "
                                   "is used, else 0.")),
      gpu_price_(GaugeFamily(r, "greenlight_region_gpu_price_usd_per_gpu_hour",
                             "On-demand price of one GPU-hour in the region's cheapest pool of "
                             "that GPU type, USD.")),
      jobs_(GaugeFamily(r, "greenlight_jobs", "Jobs known to the scheduler, by state.")),
      queue_depth_family_(GaugeFamily(r, "greenlight_scheduler_queue_depth",
                                      "Commands waiting for the scheduler core.")),
      agent_nodes_(GaugeFamily(r, "greenlight_agent_nodes",
                               "Registered agent nodes, by pool and state (READY, LOST).")),
      agent_heartbeat_age_(GaugeFamily(r, "greenlight_agent_heartbeat_age_seconds",
                                       "Wall seconds since the node's last heartbeat.")),
      agent_energy_(CounterFamily(r, "greenlight_agent_energy_wh_total",
                                  "Facility energy charged for jobs on agent nodes, Wh, by basis: "
                                  "measured (GPU counters) or modelled (GPU table power).")),
      agent_starts_(CounterFamily(r, "greenlight_agent_job_starts_total",
                                  "Processes reported started by agent nodes.")),
      agent_failures_(CounterFamily(r, "greenlight_agent_job_failures_total",
                                    "Jobs on agent nodes that ended FAILED or were requeued, by "
                                    "reason.")),
      admissions_(CounterFamily(r, "greenlight_admissions_total", "Jobs admitted, by team.")),
      rejections_(CounterFamily(r, "greenlight_rejections_total",
                                "Submissions refused at admission, by reason.")),
      decision_cost_(CounterFamily(r, "greenlight_placed_cost_usd_total",
                                   "Predicted cost of admitted placements, USD.")),
      decision_carbon_(CounterFamily(r, "greenlight_placed_carbon_kg_total",
                                     "Predicted emissions of admitted placements, kg CO2e.")),
      baseline_cost_(CounterFamily(r, "greenlight_baseline_cost_usd_total",
                                   "Predicted cost of the carbon-blind baseline (cheapest pool, "
                                   "start at once) of the same admitted jobs, USD.")),
      baseline_carbon_(CounterFamily(r, "greenlight_baseline_carbon_kg_total",
                                     "Predicted emissions of the carbon-blind baseline of the "
                                     "same admitted jobs, kg CO2e.")),
      placement_seconds_family_(HistogramFamily(r, "greenlight_placement_duration_seconds",
                                                "Time to compute one placement decision.")),
      commit_seconds_family_(HistogramFamily(r, "greenlight_store_commit_duration_seconds",
                                             "Time to commit one group of commands to the store.")),
      batch_size_family_(HistogramFamily(r, "greenlight_group_commit_batch_size",
                                         "Commands committed together in one store transaction.")),
      queue_depth_(queue_depth_family_.Add({})),
      placement_seconds_(placement_seconds_family_.Add({}, PlacementSecondsBuckets())),
      commit_seconds_(commit_seconds_family_.Add({}, CommitSecondsBuckets())),
      batch_size_(batch_size_family_.Add({}, BatchSizeBuckets())) {
  build_info_.Add({{kVersionLabel, std::move(version)}}).Set(1);
}

void SchedulerMetrics::SetTeams(const std::vector<TeamSample>& teams) {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_set<std::string> present;
  for (const TeamSample& sample : teams) {
    present.insert(sample.team);
    auto it = teams_.find(sample.team);
    if (it != teams_.end() && it->second.labels.at(kParentLabel) != sample.parent) {
      // The parent is part of every series' identity: start over.
      RemoveTeam(it->second);
      teams_.erase(it);
      it = teams_.end();
    }
    if (it == teams_.end()) {
      it = teams_.emplace(sample.team, TeamSeries{}).first;
      it->second.labels = {{kTeamLabel, sample.team}, {kParentLabel, sample.parent}};
    }
    UpdateTeam(sample, it->second);
  }
  for (auto it = teams_.begin(); it != teams_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    RemoveTeam(it->second);
    teams_.erase(it++);
  }
}

void SchedulerMetrics::UpdateTeam(const TeamSample& s, TeamSeries& t) {
  const Labels& l = t.labels;
  const bool cost_limited = s.cost_budget_micros > 0;
  const bool carbon_limited = s.carbon_budget_mg > 0;
  // Remaining is computed in integers first, so it is exact before the one conversion.
  const int64_t cost_remaining =
      s.cost_budget_micros - s.cost_spent_micros - s.cost_reserved_micros;
  const int64_t carbon_remaining = s.carbon_budget_mg - s.carbon_spent_mg - s.carbon_reserved_mg;
  SetOrRemove(team_cost_budget_, t.cost_budget, l, cost_limited,
              UsdFromMicros(s.cost_budget_micros));
  SetOrRemove(team_cost_spent_, t.cost_spent, l, true, UsdFromMicros(s.cost_spent_micros));
  SetOrRemove(team_cost_reserved_, t.cost_reserved, l, true, UsdFromMicros(s.cost_reserved_micros));
  SetOrRemove(team_cost_remaining_, t.cost_remaining, l, cost_limited,
              UsdFromMicros(cost_remaining));
  SetOrRemove(team_carbon_budget_, t.carbon_budget, l, carbon_limited,
              KgFromMg(s.carbon_budget_mg));
  SetOrRemove(team_carbon_emitted_, t.carbon_emitted, l, true, KgFromMg(s.carbon_spent_mg));
  SetOrRemove(team_carbon_reserved_, t.carbon_reserved, l, true, KgFromMg(s.carbon_reserved_mg));
  SetOrRemove(team_carbon_remaining_, t.carbon_remaining, l, carbon_limited,
              KgFromMg(carbon_remaining));
  SetOrRemove(team_cost_burn_, t.cost_burn, l, true, s.cost_burn_micros_per_hour / 1e6);
  SetOrRemove(team_carbon_burn_, t.carbon_burn, l, true, GramsFromMg(s.carbon_burn_mg_per_hour));
  SetOrRemove(team_running_gpus_, t.running_gpus, l, true, s.running_gpus);
  SetOrRemove(team_gpu_quota_, t.gpu_quota, l, s.gpu_quota > 0, s.gpu_quota);

  for (auto& [reason, gauge] : t.pending_by_reason) {
    if (!s.pending_by_reason.contains(reason)) gauge->Set(0);
  }
  for (const auto& [reason, count] : s.pending_by_reason) {
    Gauge*& gauge = t.pending_by_reason[reason];
    if (gauge == nullptr) {
      Labels labels = l;
      labels[kReasonLabel] = reason;
      gauge = &team_pending_jobs_.Add(labels);
    }
    gauge->Set(count);
  }
}

void SchedulerMetrics::RemoveTeam(TeamSeries& t) {
  RemoveIfSet(team_cost_budget_, t.cost_budget);
  RemoveIfSet(team_cost_spent_, t.cost_spent);
  RemoveIfSet(team_cost_reserved_, t.cost_reserved);
  RemoveIfSet(team_cost_remaining_, t.cost_remaining);
  RemoveIfSet(team_carbon_budget_, t.carbon_budget);
  RemoveIfSet(team_carbon_emitted_, t.carbon_emitted);
  RemoveIfSet(team_carbon_reserved_, t.carbon_reserved);
  RemoveIfSet(team_carbon_remaining_, t.carbon_remaining);
  RemoveIfSet(team_cost_burn_, t.cost_burn);
  RemoveIfSet(team_carbon_burn_, t.carbon_burn);
  RemoveIfSet(team_running_gpus_, t.running_gpus);
  RemoveIfSet(team_gpu_quota_, t.gpu_quota);
  for (auto& [reason, gauge] : t.pending_by_reason) RemoveIfSet(team_pending_jobs_, gauge);
  t.pending_by_reason.clear();
}

void SchedulerMetrics::SetZones(const std::vector<ZoneSample>& zones) {
  absl::MutexLock lock(&mu_);
  absl::flat_hash_set<std::string> present;
  for (const ZoneSample& z : zones) {
    present.insert(z.zone);
    ZoneSeries& s = zones_[z.zone];
    const Labels labels = {{kZoneLabel, z.zone}};
    SetOrRemove(zone_intensity_, s.intensity, labels, true, z.intensity_g_per_kwh);
    SetOrRemove(zone_data_age_, s.age, labels, !z.annual_only, z.data_age_seconds);
    SetOrRemove(zone_data_stale_, s.stale, labels, !z.annual_only, z.stale ? 1 : 0);
  }
  for (auto it = zones_.begin(); it != zones_.end();) {
    if (present.contains(it->first)) {
      ++it;
      continue;
    }
    RemoveIfSet(zone_intensity_, it->second.intensity);
    RemoveIfSet(zone_data_age_, it->second.age);
    RemoveIfSet(zone_data_stale_, it->second.stale);
    zones_.erase(it++);
  }
}

void SchedulerMetrics::SetPrices(const std::vector<PriceSample>& prices) {
  absl::MutexLock lock(&mu_);
  std::map<PairKey, double> values;  // a duplicate in the input: the last one wins
  for (const PriceSample& p : prices) values[{p.region, p.gpu_type}] = p.usd_per_gpu_hour;
  ReplaceGauges(gpu_price_, kRegionLabel, kGpuTypeLabel, values, prices_);
}

void SchedulerMetrics::SetJobsByState(const std::map<std::string, int>& jobs_by_state) {
  absl::MutexLock lock(&mu_);
  SetKeepingZeros(jobs_by_state, jobs_by_state_, [this](const std::string& state) -> Gauge& {
    return jobs_.Add({{kStateLabel, state}});
  });
}

void SchedulerMetrics::SetQueueDepth(int depth) { queue_depth_.Set(depth); }

void SchedulerMetrics::SetAgents(const AgentSample& a) {
  absl::MutexLock lock(&mu_);
  std::map<PairKey, int> counts;
  std::map<PairKey, double> ages;
  for (const auto& n : a.nodes) {
    ++counts[{n.pool, n.state}];
    if (n.heartbeat_age_seconds >= 0) ages[{n.pool, n.node}] = n.heartbeat_age_seconds;
  }
  SetKeepingZeros(counts, nodes_by_state_, [this](const PairKey& key) -> Gauge& {
    return agent_nodes_.Add({{kPoolLabel, key.first}, {kStateLabel, key.second}});
  });
  ReplaceGauges(agent_heartbeat_age_, kPoolLabel, kNodeLabel, ages, heartbeat_ages_);
  // Counters: the growth of each total (a total never shrinks within a process).
  AddNonNegative(&agent_energy_.Add({{kBasisLabel, "measured"}}),
                 a.energy_measured_wh - agent_totals_.energy_measured_wh);
  AddNonNegative(&agent_energy_.Add({{kBasisLabel, "modelled"}}),
                 a.energy_modelled_wh - agent_totals_.energy_modelled_wh);
  AddNonNegative(&agent_starts_.Add({}), static_cast<double>(a.starts - agent_totals_.starts));
  for (const auto& [reason, total] : a.failures) {
    auto it = agent_totals_.failures.find(reason);
    const int64_t before = it == agent_totals_.failures.end() ? 0 : it->second;
    AddNonNegative(&agent_failures_.Add({{kReasonLabel, reason}}),
                   static_cast<double>(total - before));
  }
  agent_totals_ = a;
  agent_totals_.nodes.clear();
}

void SchedulerMetrics::RecordAdmission(const std::string& team) {
  absl::MutexLock lock(&mu_);
  Counter*& counter = admissions_by_team_[team];
  if (counter == nullptr) counter = &admissions_.Add({{kTeamLabel, team}});
  counter->Increment();
}

void SchedulerMetrics::RecordRejection(const std::string& reason) {
  absl::MutexLock lock(&mu_);
  Counter*& counter = rejections_by_reason_[reason];
  if (counter == nullptr) counter = &rejections_.Add({{kReasonLabel, reason}});
  counter->Increment();
}

void SchedulerMetrics::RecordDecision(const DecisionSample& d) {
  absl::MutexLock lock(&mu_);
  DecisionCounters& c = decisions_by_team_[d.team];
  if (c.cost == nullptr) {
    const Labels labels = {{kTeamLabel, d.team}};
    c.cost = &decision_cost_.Add(labels);
    c.carbon = &decision_carbon_.Add(labels);
    c.baseline_cost = &baseline_cost_.Add(labels);
    c.baseline_carbon = &baseline_carbon_.Add(labels);
  }
  AddNonNegative(c.cost, UsdFromMicros(d.cost_micros));
  AddNonNegative(c.carbon, KgFromMg(d.carbon_mg));
  AddNonNegative(c.baseline_cost, UsdFromMicros(d.baseline_cost_micros));
  AddNonNegative(c.baseline_carbon, KgFromMg(d.baseline_carbon_mg));
}

void SchedulerMetrics::ObservePlacementSeconds(double seconds) {
  placement_seconds_.Observe(seconds);
}

void SchedulerMetrics::ObserveCommitSeconds(double seconds) { commit_seconds_.Observe(seconds); }

void SchedulerMetrics::ObserveBatchSize(int commands) { batch_size_.Observe(commands); }

}  // namespace greenlight::metrics
