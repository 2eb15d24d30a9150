// The job lifecycle: state changes and their events, allocation against the
// capacity calendar, accrual through the accountant, and the tick's phases.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "services/budget/period.h"
#include "services/scheduler/core.h"
#include "services/scheduler/job_state.h"
#include "services/scheduler/legacy_text.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;
using greenlight::v1::Job;
using greenlight::v1::JobEvent;
using greenlight::v1::JobState;

// ---------------------------------------------------------------------------
// States and events.

void SchedulerCore::SetJobState(Job& job, JobState to) {
  if (job.state() == v1::JOB_STATE_PLANNED) calendar_.Unbook(job.sequence());
  jobs_.SetState(job, to);
  if (to == v1::JOB_STATE_PLANNED) BookJob(job);
}

void SchedulerCore::Transition(Txn& txn, Job& job, JobState to, const std::string& message) {
  absl::Status st = CheckTransition(job.state(), to);
  if (!st.ok()) {
    // A bug, never user input: refuse the move and keep the job as it is.
    GL_LOG_ERROR("illegal transition refused", F("job", job.id()), F("error", st.message()));
    return;
  }
  SetJobState(job, to);
  job.set_message(message);
  if (to != v1::JOB_STATE_PENDING) SetPending(job, v1::PENDING_REASON_UNSPECIFIED);
  Emit(txn, job, v1::JOB_EVENT_TYPE_STATE, message);
}

void SchedulerCore::Emit(Txn& txn, const Job& job, v1::JobEventType type,
                         const std::string& message) {
  JobEvent e;
  e.set_revision(writer_.next_revision++);
  e.set_job_id(job.id());
  e.set_team(job.spec().team());
  SetEventType(e, type);
  e.set_state(job.state());
  *e.mutable_time() = ToProto(options_.clock->Now());
  e.set_message(message);
  if (Job* stored = job.id().empty() ? nullptr : jobs_.Find(job.id())) {
    Job& j = *stored;
    j.set_revision(e.revision());
    // Events stay small: the job without its payload and without the quote's
    // runners-up (GetJob has both). Swapping them out around the copy costs
    // nothing, where copying and clearing them was a fifth of the writer.
    v1::Quote quote;
    std::string payload;
    quote.Swap(j.mutable_quote());
    payload.swap(*j.mutable_spec()->mutable_payload());
    *e.mutable_job() = j;
    quote.Swap(j.mutable_quote());
    payload.swap(*j.mutable_spec()->mutable_payload());
    v1::Quote* q = e.mutable_job()->mutable_quote();
    q->set_feasible(j.quote().feasible());
    q->set_summary(j.quote().summary());
    q->set_pools_considered(j.quote().pools_considered());
    q->set_not_now(j.quote().not_now());
    txn.dirty.insert(job.id());
  }
  txn.batch.events.push_back(std::move(e));
}

void SchedulerCore::EmitTeamAlerts(Txn& txn, const AlertBaseline& baseline,
                                   const std::string& period) {
  for (const TeamAlert& a : CrossedTeamAlerts(ledger_, baseline, period)) {
    Job pseudo;  // team-level event: no job
    pseudo.mutable_spec()->set_team(a.team);
    Emit(txn, pseudo, v1::JOB_EVENT_TYPE_BUDGET_ALERT, a.message);
  }
}

// ---------------------------------------------------------------------------
// Nodes, quota and the capacity calendar.

bool SchedulerCore::QuotaAllowsJob(const Job& job) const {
  return QuotaAllows(ledger_, nodes_, job);
}

bool SchedulerCore::TryAllocate(Job& job, absl::Time now) {
  std::optional<Allocation> a = nodes_.Find(job.placement().pool_id(), job.spec().gpus());
  if (!a) return false;
  if (calendar_.HasBookings(a->pool)) {
    const int whole = nodes_.WholeNodesTaken(*a);  // wholly free nodes this job would take
    const absl::Time end = now + FromProto(job.remaining());
    if (whole > 0 &&
        calendar_.MaxBooked(a->pool, now, end) + whole > nodes_.FreeWholeNodes(a->pool))
      return false;
  }
  nodes_.Take(job.id(), job.spec().team(), job.spec().gpus(), *std::move(a));
  return true;
}

void SchedulerCore::BookJob(const Job& job) {
  const int pool = nodes_.PoolIndex(job.placement().pool_id());
  const int nodes = job.placement().nodes();
  if (pool < 0 || nodes <= 0) return;
  placement::PoolBookings windows;
  if (job.placement().slots_size() > 0) {
    for (const auto& sl : job.placement().slots())
      windows.push_back({FromProto(sl.start()), FromProto(sl.end()), nodes});
  } else {
    windows.push_back(
        {FromProto(job.placement().start()), FromProto(job.placement().end()), nodes});
  }
  calendar_.Book(job.sequence(), pool, std::move(windows));
}

bool SchedulerCore::CalendarAllowsPlan(const Job& job, bool capacity_blind) const {
  const int pool = nodes_.PoolIndex(job.placement().pool_id());
  if (pool < 0 || !calendar_.HasBookings(pool)) return true;
  const int free = capacity_blind ? nodes_.pools()[pool].pool.nodes : nodes_.FreeWholeNodes(pool);
  const int nodes = std::max(1, job.placement().nodes());
  auto clear = [&](const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
    return calendar_.MaxBooked(pool, FromProto(a), FromProto(b)) + nodes <= free;
  };
  if (job.placement().slots_size() == 0)
    return clear(job.placement().start(), job.placement().end());
  for (const auto& sl : job.placement().slots())
    if (!clear(sl.start(), sl.end())) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Start, wait, finish.

void SchedulerCore::StartJob(Txn& txn, Job& job, absl::Time now) {
  if (OnAgentPool(job)) {
    BeginOnAgent(txn, job, now);  // RUNNING when the agent reports the start
    return;
  }
  *job.mutable_start_time() = ToProto(now);
  *job.mutable_accrued_until() = ToProto(now);
  txn.launches.push_back({job.id(), FromProto(job.remaining())});
  Transition(txn, job, v1::JOB_STATE_RUNNING, RunningMessage(job));
}

void SchedulerCore::WaitForNodes(Txn& txn, Job& job) {
  SetPending(job, QuotaAllowsJob(job) ? v1::PENDING_REASON_CAPACITY : v1::PENDING_REASON_QUOTA);
  Transition(txn, job, v1::JOB_STATE_PENDING, absl::StrCat("waiting for ", WaitingFor(job)));
}

void SchedulerCore::SyncReserved(Job& job) const {
  const budget::JobAccount* a = ledger_.FindJob(job.id());
  job.set_reserved_cost_micros(a ? a->cost_reserved_micros : 0);
  job.set_reserved_carbon_mg(a ? a->carbon_reserved_mg : 0);
}

void SchedulerCore::FinishJob(Txn& txn, Job& job, JobState to, v1::LedgerKind kind,
                              const std::string& message, absl::Time now) {
  if (nodes_.Release(job.id())) writer_.capacity_changed = true;
  txn.kills.push_back(job.id());
  const auto rows = ledger_.Release(job.id(), now, kind, message);
  txn.batch.ledger.insert(txn.batch.ledger.end(), rows.begin(), rows.end());
  SyncReserved(job);
  *job.mutable_end_time() = ToProto(now);
  Transition(txn, job, to, message);
}

absl::StatusOr<Job> SchedulerCore::Cancel(const std::string& id, const std::string& reason) {
  return queue_.Call<Job>([this, id, reason](Txn& txn) -> absl::StatusOr<Job> {
    Job* found = jobs_.Find(id);
    if (!found) return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
    Job& j = *found;
    if (IsTerminal(j.state())) {
      return WithReason(absl::FailedPreconditionError(
                            absl::StrCat("job ", id, " is already ", StateName(j.state()),
                                         "; only unfinished jobs can be cancelled")),
                        reason::kJobFinished, {{"state", StateName(j.state())}});
    }
    absl::Time now = options_.clock->Now();
    // Agent jobs were charged up to their last report; the stop order goes
    // out with the node's next heartbeat.
    if (j.state() == v1::JOB_STATE_RUNNING && !OnAgentPool(j)) AccrueJob(txn, j, now);
    if (!IsTerminal(j.state())) {
      FinishJob(txn, j, v1::JOB_STATE_CANCELLED, v1::LEDGER_KIND_RELEASE,
                reason.empty() ? "cancelled by user" : absl::StrCat("cancelled: ", reason), now);
    }
    return j;
  });
}

// ---------------------------------------------------------------------------
// Accrual.

void SchedulerCore::AccrueJob(Txn& txn, Job& job, absl::Time now) {
  const absl::Time from = FromProto(job.accrued_until());
  if (now <= from) return;  // a clock that went backwards charges nothing
  const int pool_index = nodes_.PoolIndex(job.placement().pool_id());
  if (pool_index < 0) return;
  const providers::Pool& pool = nodes_.pools()[pool_index].pool;
  const placement::UnknownGrid policy = TeamUnknownGrid(job.spec().team());
  const absl::Duration remaining = FromProto(job.remaining());
  Charges charges =
      ChargesOver(RateOf(job, pool), RunWindowsOf(job), from, now, remaining,
                  [&](absl::Time t) { return zones_.IntensityAt(pool.zone, t, nullptr, policy); });
  bool stop = false;
  std::string stop_reason;
  for (const PeriodCharge& c : charges.periods) {
    stop = ChargePeriod(txn, job, c, now, &stop_reason);
    if (stop) break;
  }
  *job.mutable_remaining() =
      ToProtoDuration(std::max(absl::ZeroDuration(), remaining - charges.computed));
  *job.mutable_accrued_until() = ToProto(charges.until);
  SyncReserved(job);
  txn.dirty.insert(job.id());
  if (stop) {
    FinishJob(txn, job, v1::JOB_STATE_BUDGET_EXHAUSTED, v1::LEDGER_KIND_RELEASE, stop_reason, now);
  } else if (FromProto(job.remaining()) <= absl::ZeroDuration()) {
    FinishJob(txn, job, v1::JOB_STATE_SUCCEEDED, v1::LEDGER_KIND_SETTLE,
              absl::StrCat(
                  "completed: cost ", Money::FromMicros(job.accrued_cost_micros()).ToString(),
                  " (forecast ", Money::FromMicros(job.quote().chosen().cost_micros()).ToString(),
                  "), carbon ", Carbon::FromMg(job.accrued_carbon_mg()).ToString(), " (forecast ",
                  Carbon::FromMg(job.quote().chosen().carbon_mg()).ToString(), ")"),
              now);
  }
}

bool SchedulerCore::ChargePeriod(Txn& txn, Job& job, const PeriodCharge& c, absl::Time now,
                                 std::string* stop_reason, const std::string& energy_basis) {
  int64_t cost = RoundToInt64(c.cost_micros), carbon = RoundToInt64(c.carbon_mg);
  int64_t energy_mwh = RoundToInt64(c.energy_wh * 1000);
  const auto& spec = job.spec();
  // Job caps: charge up to the cap, then stop.
  CapCut cut = CutAtJobCaps(spec, job.accrued_cost_micros(), job.accrued_carbon_mg(), cost, carbon);
  bool stop = cut.stop;
  if (stop) *stop_reason = cut.reason;
  if (cut.fraction < 1.0) {
    cost = static_cast<int64_t>(cost * cut.fraction);
    carbon = static_cast<int64_t>(carbon * cut.fraction);
    energy_mwh = static_cast<int64_t>(energy_mwh * cut.fraction);
  }
  // The team budget: the ledger charges what fits (team and parent).
  AlertBaseline before = BaselineForAlerts(ledger_, spec.team(), c.period);
  budget::AccrueResult r = ledger_.Accrue(
      job.id(), c.at, now, cost, carbon, energy_mwh,
      energy_basis.empty() ? "running" : absl::StrCat("running; energy ", energy_basis));
  txn.batch.ledger.insert(txn.batch.ledger.end(), r.rows.begin(), r.rows.end());
  int64_t charged_cost = 0, charged_carbon = 0, charged_energy = 0;
  for (const auto& row : r.rows) {
    charged_cost += row.cost_spent_micros;
    charged_carbon += row.carbon_spent_mg;
    charged_energy += row.energy_spent_mwh;
  }
  job.set_accrued_cost_micros(job.accrued_cost_micros() + charged_cost);
  job.set_accrued_carbon_mg(job.accrued_carbon_mg() + charged_carbon);
  job.set_accrued_energy_wh(job.accrued_energy_wh() + charged_energy / 1000.0);
  if (r.fraction < 1.0) {
    stop = true;
    *stop_reason = absl::StrCat("team '", spec.team(), "' ", r.limit, " reached");
  }
  EmitTeamAlerts(txn, before, c.period);
  if (std::optional<std::string> alert = JobAlert(ledger_, job)) {
    job.set_alerted(true);
    Emit(txn, job, v1::JOB_EVENT_TYPE_BUDGET_ALERT, *alert);
  }
  return stop;
}

// ---------------------------------------------------------------------------
// The tick.

void SchedulerCore::DoTick(Txn& txn, absl::Time now) {
  NoteClock(now);
  LoseSilentNodes(txn, now);
  AccrueRunning(txn, now);
  StopTeamsOverBudget(txn, now);
  StartDueJobs(txn, now);
  FailLateJobs(txn, now);
  ReplanWaiting(txn, now);
}

void SchedulerCore::NoteClock(absl::Time now) {
  if (now < writer_.last_tick) {
    if (!writer_.clock_behind) {
      GL_LOG_WARN("clock went backwards; nothing is charged until it catches up",
                  F("now", absl::FormatTime(now)), F("last", absl::FormatTime(writer_.last_tick)));
    }
    writer_.clock_behind = true;
  } else {
    writer_.clock_behind = false;
  }
  writer_.last_tick = std::max(writer_.last_tick, now);
}

namespace {
std::vector<Job*> Jobs(const JobTable::BySequence& index) {
  std::vector<Job*> out;
  out.reserve(index.size());
  for (const auto& [_, j] : index) out.push_back(j);
  return out;
}
}  // namespace

void SchedulerCore::AccrueRunning(Txn& txn, absl::Time now) {
  // A copy, in submit order, since jobs change state (and index) below.
  for (Job* j : Jobs(jobs_.running())) {
    if (j->state() != v1::JOB_STATE_RUNNING) continue;
    if (OnAgentPool(*j)) continue;  // charged on its agent's reports (core_agents.cc)
    absl::Time since = FromProto(j->accrued_until());
    bool due = now - since >= options_.accrual_interval ||
               now >= since + FromProto(j->remaining()) ||  // finishes (contiguous runs)
               j->placement().slots_size() > 1;             // split runs: charge every tick
    // Near a cap, charge every tick so the job stops at the cap, not after.
    constexpr double kNearCap = 0.8;  // of the job's cap (not an alert ratio)
    const auto& spec = j->spec();
    if (spec.max_cost_micros() > 0 && j->accrued_cost_micros() > kNearCap * spec.max_cost_micros())
      due = true;
    if (spec.max_carbon_mg() > 0 && j->accrued_carbon_mg() > kNearCap * spec.max_carbon_mg())
      due = true;
    if (due) AccrueJob(txn, *j, now);
  }
}

void SchedulerCore::StopTeamsOverBudget(Txn& txn, absl::Time now) {
  // Teams whose policy is "stop" stop their running jobs once the budget is spent.
  absl::flat_hash_set<std::string> stop_teams;
  const std::string period = budget::PeriodOf(now);
  for (const auto& t : ledger_.Teams()) {
    if (t.budget_policy() != v1::BUDGET_POLICY_STOP) continue;
    if (ledger_.CostHeadroom(t.name(), period) == 0 ||
        ledger_.CarbonHeadroom(t.name(), period) == 0)
      stop_teams.insert(t.name());
  }
  if (stop_teams.empty()) return;
  for (Job* j : Jobs(jobs_.running())) {
    if (!stop_teams.contains(j->spec().team())) continue;
    FinishJob(txn, *j, v1::JOB_STATE_BUDGET_EXHAUSTED, v1::LEDGER_KIND_RELEASE,
              absl::StrCat("team '", j->spec().team(),
                           "' budget spent; team policy is to stop running jobs"),
              now);
  }
}

void SchedulerCore::StartDueJobs(Txn& txn, absl::Time now) {
  // Planned jobs whose start has come, in submit order.
  for (Job* j : jobs_.PlannedDue(now)) {
    if (j->state() != v1::JOB_STATE_PLANNED) continue;
    calendar_.Unbook(j->sequence());  // its own booking is what it now takes
    if (QuotaAllowsJob(*j) && TryAllocate(*j, now)) {
      StartJob(txn, *j, now);
    } else {
      WaitForNodes(txn, *j);
    }
  }
}

void SchedulerCore::FailLateJobs(Txn& txn, absl::Time now) {
  // Waiting jobs that can no longer meet their deadline (now + remaining >
  // deadline, i.e. their latest start is before now) fail and give their
  // reservation back, instead of running late.
  for (Job* j : jobs_.PendingPastLatestStart(now)) {
    if (j->state() != v1::JOB_STATE_PENDING) continue;
    FinishJob(txn, *j, v1::JOB_STATE_FAILED, v1::LEDGER_KIND_RELEASE,
              absl::StrCat("deadline ", FormatUtc(FromProto(j->spec().deadline())),
                           " can no longer be met (waited for ", WaitingFor(*j), ")"),
              now);
  }
}

}  // namespace greenlight::scheduler
