// The facade: creation, restore from the store, and the writer's batch step.
// Admission, the lifecycle and the reads are in core_*.cc beside this file.
#include "services/scheduler/core.h"

#include <algorithm>

#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "services/scheduler/job_state.h"
#include "services/scheduler/legacy_text.h"
#include "services/scheduler/proto_conversion.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

absl::StatusOr<std::unique_ptr<SchedulerCore>> SchedulerCore::Create(CoreOptions options) {
  if (!options.clock || !options.store || !options.executor)
    return absl::InvalidArgumentError("SchedulerCore: clock, store and executor are required");
  std::unique_ptr<SchedulerCore> core(new SchedulerCore(std::move(options)));
  RETURN_IF_ERROR(core->LoadFromStore());
  return core;
}

SchedulerCore::SchedulerCore(CoreOptions options)
    : options_(std::move(options)),
      zones_(options_.inventory.default_intensity_g_per_kwh),
      snapshots_(SnapshotBuilder::Settings{options_.slot, options_.horizon,
                                           options_.default_carbon_price_micros_per_tonne}),
      events_(options_.store, options_.event_ring),
      queue_(CommandQueue::Options{options_.max_queue, options_.max_batch, options_.command_timeout,
                                   options_.tick_interval},
             [this](CommandQueue::Batch& batch) { ProcessBatch(batch); }) {}

SchedulerCore::~SchedulerCore() { Stop(); }

void SchedulerCore::Start() {
  {
    absl::MutexLock l(&mu_);
    snapshots_.set_max_view_age(options_.max_view_age);
  }
  queue_.Start();
}

void SchedulerCore::Stop() { queue_.Stop(); }

absl::Status SchedulerCore::LoadFromStore() {
  ASSIGN_OR_RETURN(store::Snapshot snap, options_.store->Load());
  absl::MutexLock l(&mu_);
  ledger_ = budget::BudgetLedger();
  for (auto t : snap.teams) {
    // Rows of an older release carry only the text; bad text stays finish.
    NormalizeBudgetPolicy(t, BudgetPolicyOf(t).value_or(v1::BUDGET_POLICY_FINISH));
    ledger_.SetTeam(t);
  }
  for (const auto& r : snap.ledger) ledger_.Apply(r);
  tokens_.clear();
  for (const auto& t : snap.tokens) tokens_[t.info.id()] = t;
  LoadPools(snap);
  ZoneTable::ZoneMap zones = options_.inventory.zones;
  zones_.Reset(std::move(zones));
  for (const auto& z : snap.zones) {
    auto s = std::make_shared<providers::CarbonSeries>(z.name, absl::FromUnixMicros(z.start_us),
                                                       absl::Seconds(z.step_s), z.values,
                                                       z.annual_average);
    s->set_source(z.source);
    zones_.Put(z.name, std::move(s), absl::FromUnixMicros(z.updated_us));
  }
  LoadJobs(snap);
  writer_.next_revision = snap.last_revision + 1;
  writer_.capacity_changed = true;
  events_.Reset(snap.last_revision);
  // Pools and capacity were rebuilt (also after a failed commit): so are the views.
  snapshots_.Invalidate();
  calendar_.RebuildView();
  over_limits_.Note(ledger_, nodes_);
  return absl::OkStatus();
}

void SchedulerCore::LoadPools(const store::Snapshot& snap) {
  // Pools: configured inventory, overridden by pools stored through the API.
  std::vector<providers::Pool> pools = options_.inventory.pools;
  agents_.Clear();
  for (const auto& sp : snap.pools) {
    if (sp.executor() == v1::POOL_EXECUTOR_AGENT) agents_.PutPool(sp);
    providers::Pool p = PoolFromProto(sp, options_.inventory.gpus);
    auto it = std::find_if(pools.begin(), pools.end(), [&](const auto& x) { return x.id == p.id; });
    if (it != pools.end())
      *it = p;
    else
      pools.push_back(p);
  }
  nodes_.Reset(std::move(pools));
}

void SchedulerCore::LoadJobs(store::Snapshot& snap) {
  jobs_.Clear();
  calendar_.Clear();
  for (auto& j : snap.jobs) {
    UpgradeLegacy(j);
    v1::Job& stored = jobs_.Add(std::move(j));
    if (stored.state() == v1::JOB_STATE_PLANNED) BookJob(stored);
  }
  // Running jobs get their nodes back and resume on the executor (no
  // calendar check: they hold those nodes already).
  for (const auto& [_, j] : jobs_.running()) {
    std::optional<Allocation> a;
    const AgentRegistry::NodeRef on = agents_.FindNode(j->node());
    if (on.node != nullptr && OnAgentPool(*j)) {
      // The node it was given, not a best fit: the agent runs it there.
      a = Allocation{nodes_.PoolIndex(j->placement().pool_id()),
                     {{on.node->slot(), j->spec().gpus()}}};
    } else {
      a = nodes_.Find(j->placement().pool_id(), j->spec().gpus());
    }
    if (a && a->pool >= 0) {
      nodes_.Take(j->id(), j->spec().team(), j->spec().gpus(), *std::move(a));
    } else {
      GL_LOG_WARN("running job lost its capacity on restart", F("job", j->id()),
                  F("pool", j->placement().pool_id()));
    }
    // Agent jobs: the agent reports what it still runs at its next heartbeat.
    if (!OnAgentPool(*j)) options_.executor->Launch(j->id(), FromProto(j->remaining()));
  }
  for (const auto& pool : agents_.Pools()) SyncAgentNodes(pool.id());
}

void SchedulerCore::ProcessBatch(CommandQueue::Batch& batch) {
  mu_.Lock();
  absl::Time apply_start = absl::Now();
  Txn txn;
  batch.Apply(txn);
  if (batch.tick()) DoTick(txn, options_.clock->Now());
  snapshots_.Refresh(nodes_);
  // Not throttled: a quote planned against an old calendar is refused by
  // the writer and quoted again (Submit).
  calendar_.RebuildView();
  for (const auto& id : txn.dirty) txn.batch.jobs.push_back(*jobs_.Find(id));
  // Keep job rows in sequence order for a stable file layout.
  std::sort(txn.batch.jobs.begin(), txn.batch.jobs.end(),
            [](const v1::Job& a, const v1::Job& b) { return a.sequence() < b.sequence(); });
  // Release the state for the fsync: submitters quote the next batch meanwhile.
  commit_mu_.Lock();
  mu_.Unlock();
  absl::Time t0 = absl::Now();
  absl::Status commit = options_.store->Commit(txn.batch);
  double secs = absl::ToDoubleSeconds(absl::Now() - t0);
  commit_mu_.Unlock();
  GL_LOG_DEBUG("group commit", F("commands", batch.size()), F("tick", batch.tick() ? 1 : 0),
               F("jobs", txn.batch.jobs.size()), F("ledger", txn.batch.ledger.size()),
               F("apply_ms", absl::ToDoubleMilliseconds(t0 - apply_start)),
               F("commit_ms", secs * 1000));
  if (!commit.ok()) {
    GL_LOG_ERROR("store commit failed; state reloaded from the store", F("error", commit.message()),
                 F("commands", batch.size()));
    // Nothing of this batch is durable: forget it by reloading what is.
    // The executor is reset too, since launches were never acknowledged.
    for (const auto& [id, _] : txn.launches) options_.executor->Kill(id);
    absl::Status reload = LoadFromStore();
    if (!reload.ok())
      GL_LOG_ERROR("reload after failed commit failed", F("error", reload.message()));
  } else {
    absl::MutexLock l(&mu_);
    AfterCommit(txn, secs, static_cast<int>(batch.size()));
  }
  batch.Complete(commit);
}

void SchedulerCore::AfterCommit(Txn& txn, double commit_seconds, int commands) {
  for (const auto& id : txn.kills) options_.executor->Kill(id);
  for (const auto& [id, d] : txn.launches) options_.executor->Launch(id, d);
  if (options_.on_commit && !txn.batch.empty()) options_.on_commit(commit_seconds, commands);
  events_.Publish(std::move(txn.batch.events));
}

}  // namespace greenlight::scheduler
