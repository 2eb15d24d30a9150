// Reads (committed state only) and the snapshots and requests quotes use.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "services/budget/period.h"
#include "services/scheduler/core.h"
#include "services/scheduler/job_state.h"
#include "services/scheduler/proto_conversion.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;
using greenlight::v1::Job;
using greenlight::v1::JobEvent;

// ---------------------------------------------------------------------------
// What quotes see.

placement::Snapshot SchedulerCore::BuildSnapshot(const std::string& team, bool ignore_capacity,
                                                 bool fresh) const {
  SnapshotBuilder::Sources in;
  in.nodes = &nodes_;
  in.zones = &zones_;
  in.bookings = calendar_.view();
  in.ledger = &ledger_;
  return snapshots_.Build(in, options_.clock->Now(), team, ignore_capacity, fresh);
}

placement::UnknownGrid SchedulerCore::TeamUnknownGrid(const std::string& team) const {
  const v1::Team* t = ledger_.FindTeam(team);
  return t ? placement::UnknownGridFromName(t->unknown_grid())
           : placement::UnknownGrid::kPessimistic;
}

std::string SchedulerCore::CanonicalGpuLocked(const std::string& name) const {
  std::string c = options_.inventory.gpus.Canonical(name);
  if (!c.empty()) return c;
  // Pools added through the API may carry GPU types the table lacks.
  return nodes_.HasGpuType(name) ? name : "";
}

placement::JobRequest SchedulerCore::ToRequestLocked(const v1::JobSpec& spec) const {
  // Not CanonicalGpu(): it takes mu_, which every caller already holds (a
  // second reader lock deadlocks behind a waiting writer).
  return ToRequest(spec, options_.clock->Now(), options_.default_mode,
                   [this](const std::string& g) { return CanonicalGpuLocked(g); });
}

absl::Status SchedulerCore::ValidateLocked(const v1::JobSpec& spec) const {
  ValidationContext ctx;
  ctx.now = options_.clock->Now();
  ctx.canonical_gpu = [this](const std::string& n) { return CanonicalGpuLocked(n); };
  ctx.region_known = [this](const std::string& r) { return nodes_.HasRegion(r); };
  ctx.team_exists = [this](const std::string& t) { return ledger_.FindTeam(t) != nullptr; };
  return ValidateJobSpec(spec, ctx);
}

std::string SchedulerCore::CanonicalGpu(const std::string& name) const {
  absl::ReaderMutexLock l(&mu_);
  return CanonicalGpuLocked(name);
}

// ---------------------------------------------------------------------------
// Jobs and events.

absl::StatusOr<Job> SchedulerCore::GetJob(const std::string& id) const {
  CommittedReadLock l(this);
  const Job* j = jobs_.Find(id);
  if (!j) return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
  return *j;
}

absl::StatusOr<ListJobsPage> SchedulerCore::ListJobs(const ListJobsQuery& q) const {
  CommittedReadLock l(this);
  return jobs_.List(q);
}

absl::StatusOr<std::string> SchedulerCore::JobIdForRequest(const std::string& request_id) const {
  CommittedReadLock l(this);
  if (const std::string* id = jobs_.IdForRequest(request_id)) return *id;
  return absl::NotFoundError(absl::StrCat("no job with request_id '", request_id, "'"));
}

absl::StatusOr<std::vector<JobEvent>> SchedulerCore::EventsAfter(int64_t after, int limit,
                                                                 const std::string& team,
                                                                 const std::string& job_id,
                                                                 int64_t* scanned_to) {
  return events_.After(after, limit, team, job_id, scanned_to);
}

int64_t SchedulerCore::WaitForEvents(int64_t after, absl::Time deadline) {
  return events_.WaitFor(after, deadline);
}

std::map<std::string, int> SchedulerCore::JobsByState() const {
  CommittedReadLock l(this);
  return jobs_.CountByState();
}

AgentRegistry::Counters SchedulerCore::AgentCounters() const {
  CommittedReadLock l(this);
  return agents_.counters();
}

// ---------------------------------------------------------------------------
// Teams and usage.

absl::StatusOr<v1::Team> SchedulerCore::GetTeam(const std::string& name) const {
  CommittedReadLock l(this);
  const v1::Team* t = ledger_.FindTeam(name);
  if (!t) return absl::NotFoundError(absl::StrCat("name: no team '", name, "'"));
  return *t;
}

std::vector<v1::Team> SchedulerCore::ListTeams() const {
  CommittedReadLock l(this);
  return ledger_.Teams();
}

v1::Usage SchedulerCore::UsageLocked(const std::string& team, absl::Time at, int running,
                                     int pending) const {
  v1::Usage u;
  const v1::Team* t = ledger_.FindTeam(team);
  std::string period = budget::PeriodOf(at);
  budget::Totals r = ledger_.RollupTotals(team, period);
  u.set_team(team);
  *u.mutable_period_start() = ToProto(budget::PeriodStart(at));
  *u.mutable_period_end() = ToProto(budget::PeriodEnd(at));
  u.set_cost_budget_micros(t ? t->monthly_cost_budget_micros() : 0);
  u.set_cost_spent_micros(r.cost_spent_micros);
  u.set_cost_reserved_micros(r.cost_reserved_micros);
  if (u.cost_budget_micros() > 0)
    u.set_cost_remaining_micros(u.cost_budget_micros() - r.cost_spent_micros -
                                r.cost_reserved_micros);
  u.set_carbon_budget_mg(t ? t->monthly_carbon_budget_mg() : 0);
  u.set_carbon_spent_mg(r.carbon_spent_mg);
  u.set_carbon_reserved_mg(r.carbon_reserved_mg);
  if (u.carbon_budget_mg() > 0)
    u.set_carbon_remaining_mg(u.carbon_budget_mg() - r.carbon_spent_mg - r.carbon_reserved_mg);
  u.set_energy_spent_wh(r.energy_spent_mwh / 1000.0);
  u.set_running_gpus(nodes_.RunningGpus(team));
  u.set_gpu_quota(t ? t->gpu_quota() : 0);
  if (running < 0 || pending < 0) {
    running = 0;
    pending = 0;
    for (const auto& [_, j] : jobs_.active()) {
      if (j->spec().team() != team) continue;
      if (j->state() == v1::JOB_STATE_RUNNING)
        ++running;
      else
        ++pending;
    }
  }
  u.set_jobs_running(running);
  u.set_jobs_pending(pending);
  return u;
}

absl::StatusOr<v1::Usage> SchedulerCore::GetUsage(const std::string& team, absl::Time at) const {
  CommittedReadLock l(this);
  if (!ledger_.FindTeam(team))
    return absl::NotFoundError(absl::StrCat("team: no team '", team, "'"));
  return UsageLocked(team, at);
}

namespace {
// Burn rate: a running job's placement rates (cost and carbon per hour of run).
void AddBurn(const Job& j, TeamView* v) {
  absl::Duration d = FromProto(j.placement().end()) - FromProto(j.placement().start());
  double h = std::max(1e-9, absl::ToDoubleHours(d));
  v->cost_burn_micros_per_hour += j.placement().cost_micros() / h;
  v->carbon_burn_mg_per_hour += j.placement().carbon_mg() / h;
}
}  // namespace

std::vector<TeamView> SchedulerCore::TeamViews() const {
  CommittedReadLock l(this);
  absl::Time now = options_.clock->Now();
  // One pass over the unfinished jobs, not one per team (1,000 teams scrape fast).
  absl::flat_hash_map<std::string, std::pair<int, int>> counts;  // team -> running, pending
  for (const auto& [_, j] : jobs_.active()) {
    auto& c = counts[j->spec().team()];
    if (j->state() == v1::JOB_STATE_RUNNING)
      ++c.first;
    else
      ++c.second;
  }
  std::vector<TeamView> out;
  absl::flat_hash_map<std::string, size_t> index;
  for (const auto& t : ledger_.Teams()) {
    TeamView v;
    v.team = t;
    auto c = counts.find(t.name());
    v.usage = c == counts.end() ? UsageLocked(t.name(), now, 0, 0)
                                : UsageLocked(t.name(), now, c->second.first, c->second.second);
    index[t.name()] = out.size();
    out.push_back(std::move(v));
  }
  for (const auto& [_, jp] : jobs_.active()) {
    const Job& j = *jp;
    auto it = index.find(j.spec().team());
    if (it == index.end()) continue;
    TeamView& v = out[it->second];
    if (j.state() == v1::JOB_STATE_PENDING) {
      v.pending_by_reason[j.pending() == v1::PENDING_REASON_QUOTA ? "QUOTA" : "CAPACITY"]++;
    } else if (j.state() == v1::JOB_STATE_PLANNED) {
      v.pending_by_reason["PLANNED"]++;
    } else if (j.state() == v1::JOB_STATE_RUNNING) {
      AddBurn(j, &v);
      // Parents burn with their children.
      const v1::Team* t = ledger_.FindTeam(j.spec().team());
      if (t && !t->parent().empty()) {
        auto p = index.find(t->parent());
        if (p != index.end()) AddBurn(j, &out[p->second]);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Inventory and tokens.

std::vector<v1::NodePool> SchedulerCore::ListPools() const {
  CommittedReadLock l(this);
  std::vector<v1::NodePool> out;
  const auto& pools = nodes_.pools();
  absl::flat_hash_map<std::string, v1::NodePool> agent_pools;
  for (auto& p : agents_.Pools()) agent_pools[p.id()] = std::move(p);
  for (size_t i = 0; i < pools.size(); ++i) {
    out.push_back(PoolToProto(pools[i].pool, nodes_.FreeWholeNodes(static_cast<int>(i))));
    auto agent = agent_pools.find(pools[i].pool.id);
    if (agent != agent_pools.end()) {
      out.back().set_executor(v1::POOL_EXECUTOR_AGENT);
      *out.back().mutable_agent_nodes() = agent->second.agent_nodes();
    }
  }
  return out;
}

v1::GridZone SchedulerCore::ZoneToProto(const std::string& name, const providers::CarbonSeries& s,
                                        absl::Time now) const {
  v1::GridZone z;
  z.set_name(name);
  if (s.unknown_grid()) {
    z.set_unknown_grid(true);
    z.set_pessimistic_g_per_kwh(s.annual_average());
    z.set_pessimistic_basis(s.unknown_basis());
  } else {
    z.set_annual_average_g_per_kwh(s.annual_average());
  }
  *z.mutable_step() = ToProtoDuration(s.step());
  *z.mutable_series_start() = ToProto(s.start());
  *z.mutable_series_end() = ToProto(s.end());
  z.set_points(static_cast<int>(s.values().size()));
  z.set_source(s.source());
  if (std::optional<absl::Time> u = zones_.Updated(name)) *z.mutable_updated() = ToProto(*u);
  z.set_current_g_per_kwh(
      zones_.IntensityAt(name, now, nullptr, placement::UnknownGrid::kPessimistic));
  return z;
}

std::vector<v1::GridZone> SchedulerCore::ListZones() const {
  CommittedReadLock l(this);
  absl::Time now = options_.clock->Now();
  std::vector<v1::GridZone> out;
  for (const auto& [name, s] : zones_.zones())
    if (s) out.push_back(ZoneToProto(name, *s, now));
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return out;
}

std::optional<std::pair<providers::CarbonSeriesPtr, absl::Time>> SchedulerCore::ZoneSeries(
    const std::string& zone) const {
  CommittedReadLock l(this);
  providers::CarbonSeriesPtr s = zones_.Find(zone);
  if (!s) return std::nullopt;
  return std::make_pair(s, zones_.Updated(zone).value_or(absl::InfinitePast()));
}

std::vector<store::TokenRow> SchedulerCore::Tokens() const {
  CommittedReadLock l(this);
  std::vector<store::TokenRow> out;
  for (const auto& [_, t] : tokens_) out.push_back(t);
  return out;
}

}  // namespace greenlight::scheduler
