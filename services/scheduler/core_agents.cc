// Jobs on node agents (greenlight-agent, proto/greenlight/v1/executor.proto):
// registration, heartbeats and their reports, and spend charged on what the
// node measured. The orders of a heartbeat are worked out from the job table
// each time (launch what is STARTING here and not yet running, stop what runs
// here and should not), so neither side keeps an outbox to lose.
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "services/scheduler/core.h"
#include "services/scheduler/job_state.h"
#include "services/scheduler/legacy_text.h"
#include "services/scheduler/proto_conversion.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;
using v1::Job;

namespace {

constexpr absl::Duration kDefaultGrace = absl::Seconds(30);

absl::Status CheckNodeName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 63;
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-');
  if (!ok) return InvalidField("node", "must be 1-63 chars [a-z0-9.-]");
  return absl::OkStatus();
}

absl::Status CheckRegistration(const v1::RegisterNodeRequest& req) {
  RETURN_IF_ERROR(CheckNodeName(req.node()));
  if (req.pool_id().empty()) return InvalidField("pool_id", "is required");
  for (int i = 0; i < req.gpus_size(); ++i) {
    if (req.gpus(i).index() != i) {
      return InvalidField(absl::StrCat("gpus[", i, "].index"),
                          absl::StrCat("must be ", i, " (GPUs are listed by index from 0)"));
    }
  }
  return absl::OkStatus();
}

double TotalEnergyWh(const v1::JobReport& r) {
  double total = 0;
  for (const auto& e : r.energy()) total += e.energy_wh();
  return total;
}

// Reports a lost node sends late for a job it no longer has: acknowledged,
// not applied (the job was charged up to the node's last report).
bool FromLostNode(const Job& job, const std::string& node) {
  if (job.node() == node) return false;
  for (const auto& n : job.lost_nodes())
    if (n == node) return true;
  return false;
}

// A split job between two of its slots: the start of its next slot, or
// InfinitePast when it may run now (inside a slot, not split, or after its
// last slot: it runs on until it exits).
absl::Time NextSlotStart(const Job& job, absl::Time now) {
  if (job.placement().slots_size() < 2) return absl::InfinitePast();
  absl::Time next = absl::InfinitePast();
  for (const auto& sl : job.placement().slots()) {
    const absl::Time start = FromProto(sl.start()), end = FromProto(sl.end());
    if (start <= now && now < end) return absl::InfinitePast();
    if (start > now && (next == absl::InfinitePast() || start < next)) next = start;
  }
  return next;
}

std::string ExitText(const v1::JobReport& r) {
  if (r.signal() > 0) return absl::StrCat("killed by signal ", r.signal());
  return absl::StrCat("exit code ", r.exit_code());
}

}  // namespace

absl::StatusOr<v1::RegisterNodeResponse> SchedulerCore::RegisterNode(
    const v1::RegisterNodeRequest& req, const std::string& token_id,
    const std::string& token_pool) {
  RETURN_IF_ERROR(CheckRegistration(req));
  if (!token_pool.empty() && token_pool != req.pool_id()) {
    return absl::PermissionDeniedError(absl::StrCat("pool_id: this agent token is bound to pool '",
                                                    token_pool, "', not '", req.pool_id(), "'"));
  }
  return queue_.Call<v1::RegisterNodeResponse>(
      [this, req, token_id](Txn& txn) -> absl::StatusOr<v1::RegisterNodeResponse> {
        const v1::NodePool* known = agents_.FindPool(req.pool_id());
        if (known && known->gpus_per_node() > 0 && req.gpus_size() != known->gpus_per_node()) {
          return absl::FailedPreconditionError(
              absl::StrCat("gpus: node '", req.node(), "' has ", req.gpus_size(), " GPU(s); pool '",
                           req.pool_id(), "' has ", known->gpus_per_node(), " per node"));
        }
        const absl::Time now = options_.clock->Now();
        ASSIGN_OR_RETURN(v1::NodePool pool, agents_.Register(req, token_id, now));
        RETURN_IF_ERROR(nodes_.Upsert(PoolFromProto(pool, options_.inventory.gpus)));
        SyncAgentNodes(pool.id());
        txn.batch.pools.push_back(pool);
        writer_.capacity_changed = true;  // a new node may let waiting jobs start
        v1::RegisterNodeResponse resp;
        *resp.mutable_node() = *agents_.FindNode(req.node()).node;
        *resp.mutable_heartbeat_interval() = ToProtoDuration(options_.agent_heartbeat_interval);
        *resp.mutable_lease_timeout() = ToProtoDuration(options_.agent_lease_timeout);
        GL_LOG_INFO("agent node registered", F("node", req.node()), F("pool", req.pool_id()),
                    F("gpus", req.gpus_size()),
                    F("energy", req.energy_measured() ? "measured" : "modelled"),
                    F("agent_version", req.agent_version()));
        return resp;
      });
}

absl::StatusOr<v1::HeartbeatResponse> SchedulerCore::Heartbeat(const v1::HeartbeatRequest& req,
                                                               const std::string& token_id,
                                                               const std::string& token_pool) {
  RETURN_IF_ERROR(CheckNodeName(req.node()));
  return queue_.Call<v1::HeartbeatResponse>(
      [this, req, token_id, token_pool](Txn& txn) -> absl::StatusOr<v1::HeartbeatResponse> {
        AgentRegistry::NodeRef ref = agents_.FindNode(req.node());
        if (ref.node == nullptr) {
          return absl::NotFoundError(
              absl::StrCat("node: '", req.node(), "' is not registered; register it first"));
        }
        if ((!token_pool.empty() && token_pool != ref.pool->id()) ||
            (!token_pool.empty() && ref.node->token_id() != token_id)) {
          return absl::PermissionDeniedError(
              absl::StrCat("node: '", req.node(), "' belongs to another agent token"));
        }
        RETURN_IF_ERROR(CheckReports(req));  // nothing is applied unless all are valid
        const absl::Time now = options_.clock->Now();
        agents_.NoteHeartbeat(req.node(), now);
        if (agents_.SetState(req.node(), v1::NODE_STATE_READY)) {  // it was lost
          const std::string pool_id = ref.pool->id();
          SyncAgentNodes(pool_id);
          txn.batch.pools.push_back(*agents_.FindPool(pool_id));
          writer_.capacity_changed = true;
          GL_LOG_INFO("agent node back: heartbeats again", F("node", req.node()),
                      F("pool", pool_id), F("jobs_reported", req.running_job_ids_size()));
        }
        for (const v1::JobReport& r : req.reports()) ApplyReport(txn, r, req.node(), now);
        v1::HeartbeatResponse resp = OrdersFor(req, now);
        auto& acked = *resp.mutable_acknowledged();
        for (const v1::JobReport& r : req.reports()) {
          const Job* j = jobs_.Find(r.job_id());
          if (j == nullptr || FromLostNode(*j, req.node())) {
            acked[r.job_id()] = std::max(acked[r.job_id()], r.sequence());
          } else {
            acked[r.job_id()] = j->report_sequence();
          }
        }
        return resp;
      });
}

absl::Status SchedulerCore::CheckReports(const v1::HeartbeatRequest& req) const {
  for (int i = 0; i < req.reports_size(); ++i) {
    const v1::JobReport& r = req.reports(i);
    const std::string f = absl::StrCat("reports[", i, "]");
    const Job* j = jobs_.Find(r.job_id());
    if (j == nullptr) {
      return InvalidField(f + ".job_id", absl::StrCat("no job '", r.job_id(), "'"));
    }
    if (j->node() != req.node() && !FromLostNode(*j, req.node())) {
      return InvalidField(
          f + ".job_id", absl::StrCat("job ", r.job_id(), " was not given to node '", req.node(),
                                      "'", j->node().empty() ? "" : " but to '" + j->node() + "'"));
    }
    if (r.kind() == v1::JOB_REPORT_KIND_UNSPECIFIED || !v1::JobReportKind_IsValid(r.kind())) {
      return InvalidField(f + ".kind", "must be STARTED, PROGRESS, EXITED or FAILED_TO_START");
    }
    for (int k = 0; k < r.energy_size(); ++k) {
      const double wh = r.energy(k).energy_wh();
      if (!std::isfinite(wh) || wh < 0) {
        return InvalidField(absl::StrCat(f, ".energy[", k, "].energy_wh"),
                            "must be a finite number >= 0");
      }
    }
    if (FromLostNode(*j, req.node())) continue;  // acknowledged, not applied
    if (r.sequence() <= j->report_sequence() || IsTerminal(j->state())) continue;  // applied
    const double total = TotalEnergyWh(r);
    if (r.energy_size() > 0 && total + 1e-9 < j->measured_energy_wh()) {
      return InvalidField(f + ".energy",
                          absl::StrCat("energy went backwards for job ", r.job_id(), ": ", total,
                                       " Wh after ", j->measured_energy_wh(), " Wh"));
    }
  }
  return absl::OkStatus();
}

void SchedulerCore::ApplyReport(Txn& txn, const v1::JobReport& r, const std::string& node,
                                absl::Time now) {
  Job& job = *jobs_.Find(r.job_id());
  if (FromLostNode(job, node)) return;                // it was requeued or failed
  if (r.sequence() <= job.report_sequence()) return;  // resent after a restart
  job.set_report_sequence(r.sequence());
  txn.dirty.insert(job.id());
  if (IsTerminal(job.state())) return;  // stopped here already; nothing more is charged
  const double energy = r.energy_size() > 0 ? TotalEnergyWh(r) : -1;
  switch (r.kind()) {
    case v1::JOB_REPORT_KIND_STARTED:
      if (job.state() == v1::JOB_STATE_STARTING) {
        *job.mutable_start_time() = ToProto(now);
        *job.mutable_accrued_until() = ToProto(now);
        job.set_measured_energy_wh(0);
        ++agents_.counters().starts;
        Transition(txn, job, v1::JOB_STATE_RUNNING,
                   absl::StrCat("running on node ", job.node(), " (pid ", r.pid(), ")"));
      }
      break;
    case v1::JOB_REPORT_KIND_PROGRESS:
      if (job.state() == v1::JOB_STATE_RUNNING) ChargeMeasured(txn, job, energy, now);
      break;
    case v1::JOB_REPORT_KIND_EXITED:
      if (job.state() == v1::JOB_STATE_RUNNING) ChargeMeasured(txn, job, energy, now);
      if (IsTerminal(job.state())) break;  // a cap stopped it
      if (const absl::Time next = NextSlotStart(job, now);
          next != absl::InfinitePast() && job.state() == v1::JOB_STATE_RUNNING &&
          (r.exit_code() != 0 || r.signal() != 0)) {
        // Stopped at the end of its carbon slot: it keeps its node and
        // resumes there (GREENLIGHT_RESUME=1) when the next slot begins.
        Transition(txn, job, v1::JOB_STATE_STARTING,
                   absl::StrCat("stopped at the end of its carbon slot (", ExitText(r),
                                "); resumes on node ", job.node(), " at ", FormatUtc(next)));
        break;
      }
      if (r.exit_code() == 0 && r.signal() == 0 && job.state() == v1::JOB_STATE_RUNNING) {
        FinishJob(txn, job, v1::JOB_STATE_SUCCEEDED, v1::LEDGER_KIND_SETTLE,
                  absl::StrCat("completed on node ", job.node(), ": cost ",
                               Money::FromMicros(job.accrued_cost_micros()).ToString(), ", carbon ",
                               Carbon::FromMg(job.accrued_carbon_mg()).ToString(), ", ",
                               job.accrued_energy_wh(), " Wh ",
                               job.energy_measured() ? "measured" : "modelled"),
                  now);
      } else {
        ++agents_.counters().failures[r.signal() > 0 ? "signal" : "exit_code"];
        FinishJob(txn, job, v1::JOB_STATE_FAILED, v1::LEDGER_KIND_RELEASE,
                  absl::StrCat("failed on node ", job.node(), ": ", ExitText(r),
                               r.reason().empty() ? "" : absl::StrCat(" (", r.reason(), ")")),
                  now);
      }
      break;
    case v1::JOB_REPORT_KIND_FAILED_TO_START:
      ++agents_.counters().failures["failed_to_start"];
      FinishJob(txn, job, v1::JOB_STATE_FAILED, v1::LEDGER_KIND_RELEASE,
                absl::StrCat("failed to start on node ", job.node(), ": ", r.reason()), now);
      break;
    default:
      break;
  }
}

void SchedulerCore::ChargeMeasured(Txn& txn, Job& job, double total_energy_wh, absl::Time now) {
  const int pool_index = nodes_.PoolIndex(job.placement().pool_id());
  if (pool_index < 0) return;
  const providers::Pool& pool = nodes_.pools()[pool_index].pool;
  const absl::Time from = FromProto(job.accrued_until());
  const placement::UnknownGrid policy = TeamUnknownGrid(job.spec().team());
  auto intensity = [&](absl::Time t) { return zones_.IntensityAt(pool.zone, t, nullptr, policy); };
  const bool measured = total_energy_wh >= 0;
  Charges charges;
  if (measured) {
    const double delta = std::max(0.0, total_energy_wh - job.measured_energy_wh());
    charges = MeasuredChargesOver(RateOf(job, pool), from, now, delta, pool.pue, intensity);
    job.set_measured_energy_wh(std::max(job.measured_energy_wh(), total_energy_wh));
  } else {
    const std::vector<RunWindow> always = {{absl::InfinitePast(), absl::InfiniteFuture()}};
    charges =
        ChargesOver(RateOf(job, pool), always, from, now, absl::InfiniteDuration(), intensity);
  }
  job.set_energy_measured(measured);
  const double energy_before = job.accrued_energy_wh();
  bool stop = false;
  std::string stop_reason;
  for (const PeriodCharge& c : charges.periods) {
    stop = ChargePeriod(txn, job, c, now, &stop_reason, measured ? "measured" : "modelled");
    if (stop) break;
  }
  (measured ? agents_.counters().energy_measured_wh : agents_.counters().energy_modelled_wh) +=
      job.accrued_energy_wh() - energy_before;
  *job.mutable_accrued_until() = ToProto(std::max(from, now));
  // What is left of the quoted run time (for a requeue or a resume).
  *job.mutable_remaining() = ToProtoDuration(
      std::max(absl::ZeroDuration(),
               FromProto(job.remaining()) - std::max(absl::ZeroDuration(), now - from)));
  SyncReserved(job);
  txn.dirty.insert(job.id());
  if (stop) {
    FinishJob(txn, job, v1::JOB_STATE_BUDGET_EXHAUSTED, v1::LEDGER_KIND_RELEASE, stop_reason, now);
  }
}

v1::HeartbeatResponse SchedulerCore::OrdersFor(const v1::HeartbeatRequest& req,
                                               absl::Time now) const {
  v1::HeartbeatResponse resp;
  absl::flat_hash_set<std::string> running(req.running_job_ids().begin(),
                                           req.running_job_ids().end());
  for (const auto& [_, j] : jobs_.running()) {
    if (j->node() != req.node() || j->state() != v1::JOB_STATE_STARTING) continue;
    if (running.contains(j->id())) continue;  // started; its report is on the way
    if (NextSlotStart(*j, now) != absl::InfinitePast()) continue;  // between its slots
    v1::JobAssignment& a = *resp.add_launch();
    a.set_job_id(j->id());
    *a.mutable_command() = j->spec().command();
    *a.mutable_gpu_indices() = j->gpu_indices();
    *a.mutable_grace_period() = ToProtoDuration(kDefaultGrace);
    // It ran before: charged, or taken from a lost node before its first charge.
    a.set_resume(j->accrued_cost_micros() > 0 || j->accrued_energy_wh() > 0 ||
                 j->lost_nodes_size() > 0);
    a.set_team(j->spec().team());
    auto submitter = j->spec().labels().find("greenlight.submitter");
    if (submitter != j->spec().labels().end()) a.set_submitter(submitter->second);
  }
  for (const std::string& id : req.running_job_ids()) {
    const Job* j = jobs_.Find(id);
    std::string why;
    if (j == nullptr) {
      why = "unknown to greenlight";
    } else if (IsTerminal(j->state())) {
      why = absl::StrCat("job is ", StateName(j->state()), ": ", j->message());
    } else if (j->node() != req.node()) {
      why = FromLostNode(*j, req.node())
                ? absl::StrCat("this node was lost; the job was requeued: ", j->message())
                : absl::StrCat("job runs on node '", j->node(), "'");
    } else if (const absl::Time next = NextSlotStart(*j, now); next != absl::InfinitePast()) {
      why = absl::StrCat("end of its carbon slot; resumes at ", FormatUtc(next));
    } else {
      continue;  // wanted here: adopted
    }
    v1::StopOrder& s = *resp.add_stop();
    s.set_job_id(id);
    *s.mutable_grace_period() = ToProtoDuration(kDefaultGrace);
    s.set_reason(why);
  }
  return resp;
}

bool SchedulerCore::OnAgentPool(const Job& job) const {
  return agents_.IsAgentPool(job.placement().pool_id());
}

void SchedulerCore::BeginOnAgent(Txn& txn, Job& job, absl::Time now) {
  const Allocation* a = nodes_.AllocationOf(job.id());
  const v1::AgentNode* node = a && a->nodes.size() == 1
                                  ? agents_.NodeAt(job.placement().pool_id(), a->nodes[0].first)
                                  : nullptr;
  if (node == nullptr) {
    FinishJob(txn, job, v1::JOB_STATE_FAILED, v1::LEDGER_KIND_RELEASE,
              a && a->nodes.size() > 1
                  ? "jobs on agent pools run on one node; multi-node jobs are not supported yet"
                  : "its agent node is not registered",
              now);
    return;
  }
  // The node's GPUs not given to the other jobs it holds.
  absl::flat_hash_set<int> used;
  for (const auto& [_, other] : jobs_.running()) {
    if (other->node() == node->name() && other->id() != job.id())
      used.insert(other->gpu_indices().begin(), other->gpu_indices().end());
  }
  job.clear_gpu_indices();
  for (const auto& g : node->gpus()) {
    if (job.gpu_indices_size() >= job.spec().gpus()) break;
    if (!used.contains(g.index())) job.add_gpu_indices(g.index());
  }
  job.set_node(node->name());
  *job.mutable_start_time() = ToProto(now);
  *job.mutable_accrued_until() = ToProto(now);
  Transition(txn, job, v1::JOB_STATE_STARTING,
             absl::StrCat("starting on node ", node->name(), " (GPUs ",
                          absl::StrJoin(job.gpu_indices(), ","), ")"));
}

void SchedulerCore::SyncAgentNodes(const std::string& pool_id) {
  const v1::NodePool* pool = agents_.FindPool(pool_id);
  const int index = nodes_.PoolIndex(pool_id);
  if (pool == nullptr || index < 0) return;
  for (const auto& n : pool->agent_nodes())
    nodes_.SetNodeOut(index, n.slot(), n.state() != v1::NODE_STATE_READY);
}

void SchedulerCore::LoseSilentNodes(Txn& txn, absl::Time now) {
  const absl::Duration lease = options_.agent_lease_timeout * options_.agent_clock_scale;
  for (const std::string& name : agents_.LoseSilentNodes(now, lease)) {
    const std::string pool_id = agents_.FindNode(name).pool->id();
    SyncAgentNodes(pool_id);
    txn.batch.pools.push_back(*agents_.FindPool(pool_id));
    writer_.capacity_changed = true;
    std::vector<Job*> on_node;
    for (const auto& [_, j] : jobs_.running())
      if (j->node() == name) on_node.push_back(j);
    GL_LOG_WARN("agent node lost: no heartbeat within its lease; its capacity is removed",
                F("node", name), F("pool", pool_id),
                F("lease", absl::FormatDuration(options_.agent_lease_timeout)),
                F("jobs", on_node.size()));
    for (Job* j : on_node) LeaveLostNode(txn, *j, name, now);
  }
}

void SchedulerCore::LeaveLostNode(Txn& txn, Job& job, const std::string& node, absl::Time now) {
  const std::string why = absl::StrCat("node_lost: node '", node, "' sent no heartbeat for ",
                                       absl::FormatDuration(options_.agent_lease_timeout));
  job.add_lost_nodes(node);
  ++agents_.counters().failures[job.spec().checkpointable() ? "node_lost_requeued" : "node_lost"];
  if (!job.spec().checkpointable()) {
    FinishJob(txn, job, v1::JOB_STATE_FAILED, v1::LEDGER_KIND_RELEASE,
              absl::StrCat(why, "; spend up to its last report is kept"), now);
    return;
  }
  // Checkpointable: back to the queue with what its measured run left; it
  // runs again (GREENLIGHT_RESUME=1) wherever nodes are free.
  if (nodes_.Release(job.id())) writer_.capacity_changed = true;
  job.clear_node();
  job.clear_gpu_indices();
  job.set_report_sequence(0);  // the next node numbers its reports from 1
  job.set_measured_energy_wh(0);
  txn.dirty.insert(job.id());
  SetPending(job, v1::PENDING_REASON_CAPACITY);
  Transition(txn, job, v1::JOB_STATE_PENDING,
             absl::StrCat(why, "; requeued (checkpointable), waiting for ", WaitingFor(job)));
}

}  // namespace greenlight::scheduler
