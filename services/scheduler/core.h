// SchedulerCore: the facade of greenlight's scheduler. Callers enqueue
// commands (command_queue.h); one writer thread applies them to the state,
// commits each batch to the store in one transaction (group commit), and only
// then answers every caller. Reads are served from the in-memory state, which
// only ever holds committed data when the state lock is free.
//
// The state has one owner per kind (docs/SCHEDULER.md draws them): the job
// table, node allocation, the capacity-calendar book, the zones, the budget
// ledger, limits and alerts, the event log. The facade owns them and the
// locks, and composes them into admission (core_admission.cc), the tick's
// lifecycle phases (core_lifecycle.cc) and the reads (core_reads.cc).
//
// Time comes from a Clock: the daemon ticks on wall time (optionally scaled),
// tests and the replay simulator drive Tick() with a ManualClock.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/error_details.h"
#include "greenlight/v1/admin.pb.h"
#include "greenlight/v1/executor.pb.h"
#include "greenlight/v1/types.pb.h"
#include "services/budget/ledger.h"
#include "services/placement/engine.h"
#include "services/providers/inventory.h"
#include "services/scheduler/accountant.h"
#include "services/scheduler/agent_registry.h"
#include "services/scheduler/capacity_book.h"
#include "services/scheduler/command_queue.h"
#include "services/scheduler/event_log.h"
#include "services/scheduler/executor.h"
#include "services/scheduler/job_table.h"
#include "services/scheduler/limits.h"
#include "services/scheduler/node_allocator.h"
#include "services/scheduler/snapshot_builder.h"
#include "services/scheduler/txn.h"
#include "services/scheduler/zone_table.h"
#include "services/store/store.h"

namespace greenlight::scheduler {

// Status payload key under which FAILED_PRECONDITION carries the best quote
// (the gRPC adapter forwards it in google.rpc.Status details).
inline constexpr char kQuotePayloadUrl[] = "type.googleapis.com/greenlight.v1.Quote";
// The RESOURCE_EXHAUSTED of SubmitOptions.only_if_it_can_start_now (the job
// would have to wait) carries reason::kCannotStartNow (common/error_details.h)
// with metadata "cause" = CAPACITY or QUOTA.

// How SetCarbonSeries labels and keeps a series. The defaults are those of
// an Inventory.SetCarbonSeries call; live sources (carbon_refresher.h) pass
// their own source, stale flag and fetch time, and persist only data they
// fetched (the last good data is served again after a restart, see
// RestoreLiveCarbon), not the placeholder of a zone without any. The stale
// flag is not stored: it is worked out again from the fetch time.
struct CarbonSeriesMeta {
  std::string source = "api:SetCarbonSeries";  // GridZone.source
  bool stale = false;  // true: every query answers with the annual average (estimated)
  absl::Time updated = absl::InfinitePast();  // GridZone.updated; InfinitePast = now
  bool persist = true;
};

struct CoreOptions {
  Clock* clock = nullptr;          // required
  store::Store* store = nullptr;   // required
  Executor* executor = nullptr;    // required
  providers::Inventory inventory;  // pools, zones and GPU table from config
  placement::Mode default_mode = placement::Mode::kBalanced;
  int64_t default_carbon_price_micros_per_tonne = 100'000'000;  // $100/t
  absl::Duration horizon = absl::Hours(168);
  absl::Duration slot = absl::Hours(1);
  // Commands waiting beyond this are refused with RESOURCE_EXHAUSTED.
  int max_queue = 4096;
  // At most this many commands per group commit.
  int max_batch = 512;
  // Longest a caller waits for its command. Not picked up by then: the
  // command is withdrawn (nothing written) and the caller gets UNAVAILABLE.
  // Picked up but not committed after twice this (store stalled): the
  // outcome is unknown and the caller gets DEADLINE_EXCEEDED (retry with the
  // same request_id; submits are idempotent).
  absl::Duration command_timeout = absl::Seconds(30);
  // Wall-time period of automatic ticks; 0 = only explicit Tick() calls.
  absl::Duration tick_interval = absl::Milliseconds(200);
  // Running jobs are charged at least this often (simulated time), at their
  // completion and when they may reach a cap; each charge is a ledger row and a
  // job row, so per-tick charging of thousands of jobs would swamp the store.
  absl::Duration accrual_interval = absl::Minutes(15);
  // Recent events kept in memory for watchers; older ones come from the store.
  int event_ring = 20000;
  // Quotes on the writer thread's daemon may see capacity this old (the
  // writer re-checks it), so that the pool views are not rebuilt for every
  // small batch; 0 = always current. Inline commands (no Start) always are.
  absl::Duration max_view_age = absl::Milliseconds(10);
  // Observers (metrics); called on the writer thread after each commit.
  std::function<void(double commit_seconds, int batch_size)> on_commit;
  // Node agents (executor.proto): how often they heartbeat, and how long
  // without one marks their node lost.
  absl::Duration agent_heartbeat_interval = absl::Seconds(1);
  absl::Duration agent_lease_timeout = absl::Seconds(15);  // wall time
  // The core clock's seconds per wall second (the demo's clock.time_scale):
  // leases are wall time, so the lease on the core clock is this x longer.
  double agent_clock_scale = 1.0;
  std::function<void(double seconds)> on_placement;
};

struct SubmitOptions {
  // Refuse with RESOURCE_EXHAUSTED, writing nothing, a job that would have
  // to wait for capacity or GPU quota: for callers that cannot queue (the
  // Kubernetes webhook without Kueue). Planned (time-shifted) jobs are
  // admitted as usual.
  bool only_if_it_can_start_now = false;
};

struct SubmitResult {
  greenlight::v1::Job job;
  bool deduplicated = false;
};

// A consistent view for invariant checks and metrics.
struct TeamView {
  greenlight::v1::Team team;
  greenlight::v1::Usage usage;
  std::map<std::string, int> pending_by_reason;
  double cost_burn_micros_per_hour = 0;
  double carbon_burn_mg_per_hour = 0;
};

class SchedulerCore {
 public:
  static absl::StatusOr<std::unique_ptr<SchedulerCore>> Create(CoreOptions options);
  ~SchedulerCore();

  // Starts the writer thread (ticks every tick_interval when > 0). Without
  // it, commands run on the caller's thread: for single-threaded drivers
  // only (the replay), which would pay a thread handoff per command.
  void Start();
  // Drains the queue, stops the thread. Idempotent.
  void Stop();

  // --- Scheduler API (domain types are the API's protos).
  absl::StatusOr<SubmitResult> Submit(const greenlight::v1::JobSpec& spec,
                                      const SubmitOptions& options = {});
  absl::StatusOr<greenlight::v1::Quote> Estimate(const greenlight::v1::JobSpec& spec, int top_k);
  absl::StatusOr<greenlight::v1::Job> GetJob(const std::string& id) const;
  absl::StatusOr<ListJobsPage> ListJobs(const ListJobsQuery& q) const;
  absl::StatusOr<greenlight::v1::Job> Cancel(const std::string& id, const std::string& reason);
  // The job admitted with this request_id (any team), or NOT_FOUND.
  absl::StatusOr<std::string> JobIdForRequest(const std::string& request_id) const;
  // Committed events with revision > after that match the filters, at most
  // `limit`. *scanned_to is the last revision examined: resume from it.
  absl::StatusOr<std::vector<greenlight::v1::JobEvent>> EventsAfter(int64_t after, int limit,
                                                                    const std::string& team,
                                                                    const std::string& job_id,
                                                                    int64_t* scanned_to);
  // Blocks until revision > after or `deadline`; returns the current revision.
  int64_t WaitForEvents(int64_t after, absl::Time deadline);
  int64_t revision() const { return events_.revision(); }

  // --- Budgets.
  absl::StatusOr<greenlight::v1::Team> SetTeam(const greenlight::v1::Team& team);
  absl::StatusOr<greenlight::v1::Team> GetTeam(const std::string& name) const;
  std::vector<greenlight::v1::Team> ListTeams() const;
  absl::StatusOr<greenlight::v1::Usage> GetUsage(const std::string& team, absl::Time at) const;
  std::vector<TeamView> TeamViews() const;

  // --- Inventory.
  std::vector<greenlight::v1::NodePool> ListPools() const;
  absl::StatusOr<int> UpsertPools(const std::vector<greenlight::v1::NodePool>& pools);
  absl::StatusOr<greenlight::v1::GridZone> SetCarbonSeries(const std::string& zone,
                                                           absl::Time start, absl::Duration step,
                                                           std::vector<double> values,
                                                           double annual_average,
                                                           const CarbonSeriesMeta& meta = {});
  std::vector<greenlight::v1::GridZone> ListZones() const;
  // A zone's series and its GridZone.updated; nullopt for an unknown zone.
  std::optional<std::pair<providers::CarbonSeriesPtr, absl::Time>> ZoneSeries(
      const std::string& zone) const;
  // Canonical GPU name or "" (for validation and the webhook).
  std::string CanonicalGpu(const std::string& name) const;

  // --- Node agents (core_agents.cc; proto/greenlight/v1/executor.proto).
  // `token_pool` is the agent token's pool ("" for an admin caller).
  absl::StatusOr<greenlight::v1::RegisterNodeResponse> RegisterNode(
      const greenlight::v1::RegisterNodeRequest& req, const std::string& token_id,
      const std::string& token_pool);
  absl::StatusOr<greenlight::v1::HeartbeatResponse> Heartbeat(
      const greenlight::v1::HeartbeatRequest& req, const std::string& token_id,
      const std::string& token_pool);

  // --- Tokens (stored hashed; see services/scheduler/auth.h).
  absl::Status PutToken(const store::TokenRow& token);
  std::vector<store::TokenRow> Tokens() const;

  // --- Time.
  // Runs one scheduling step at clock->Now() through the queue and waits.
  absl::Status Tick();
  const Clock* clock() const { return options_.clock; }
  // The core clock's seconds per wall second, for leases (CoreOptions).
  double agent_clock_scale() const { return options_.agent_clock_scale; }

  // Jobs by state, for metrics.
  std::map<std::string, int> JobsByState() const;
  AgentRegistry::Counters AgentCounters() const;
  int queue_depth() const { return queue_.depth(); }

 private:
  friend class InvariantChecker;  // services/scheduler/invariants.h (tests, replay)

  explicit SchedulerCore(CoreOptions options);
  absl::Status LoadFromStore();
  void LoadPools(const store::Snapshot& snap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LoadJobs(store::Snapshot& snap) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The writer's step: applies a batch, commits it, answers its callers.
  void ProcessBatch(CommandQueue::Batch& batch);
  // What a committed batch releases: executor orders, events, observers.
  void AfterCommit(Txn& txn, double commit_seconds, int commands)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Snapshots and requests (run with mu_ held, shared or exclusive).
  placement::Snapshot BuildSnapshot(const std::string& team, bool ignore_capacity,
                                    bool fresh = false) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  placement::JobRequest ToRequestLocked(const greenlight::v1::JobSpec& spec) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  std::string CanonicalGpuLocked(const std::string& name) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  absl::Status ValidateLocked(const greenlight::v1::JobSpec& spec) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  // --- Admission (core_admission.cc): dedup, quote, classify the refusal,
  // then in the writer: reserve and allocate.
  struct Admission;
  // The validated request and the snapshot to quote it on.
  absl::Status QuoteInputs(const greenlight::v1::JobSpec& spec, placement::JobRequest* req,
                           placement::Snapshot* snap) const;
  absl::StatusOr<SubmitResult> SubmitAttempt(const greenlight::v1::JobSpec& spec,
                                             const SubmitOptions& submit_options,
                                             bool check_calendar);
  absl::StatusOr<SubmitResult> Deduplicated(const std::string& id,
                                            const greenlight::v1::JobSpec& spec) const;
  // The quote an admitted job keeps, or the refusal (budget, caps).
  absl::StatusOr<Admission> Quote(const greenlight::v1::JobSpec& spec);
  // Why a job that cannot be placed even on free capacity is refused: the
  // team budget (RESOURCE_EXHAUSTED) or its own constraints (with the quote).
  absl::Status Refusal(const greenlight::v1::JobSpec& spec, const placement::JobRequest& req,
                       const placement::Decision& d, const placement::Snapshot& snap,
                       placement::Snapshot free_snap);
  absl::StatusOr<SubmitResult> Admit(Txn& txn, Admission& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckCanStartNow(const greenlight::v1::Job& job) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Places the admitted job in its first state (RUNNING, PENDING or PLANNED).
  void PlaceAdmitted(Txn& txn, greenlight::v1::Job& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Lifecycle (core_lifecycle.cc).
  void SetJobState(greenlight::v1::Job& job, greenlight::v1::JobState to)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Transition(Txn& txn, greenlight::v1::Job& job, greenlight::v1::JobState to,
                  const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(Txn& txn, const greenlight::v1::Job& job, greenlight::v1::JobEventType type,
            const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitTeamAlerts(Txn& txn, const AlertBaseline& baseline, const std::string& period)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes nodes for the job in its placement's pool now, if they are free and
  // (capacity calendar) leave every node booked by a planned job free for
  // [now, now + remaining).
  bool TryAllocate(greenlight::v1::Job& job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BookJob(const greenlight::v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The windows of a planned job fit beside the bookings of others, in the
  // nodes free now (`capacity_blind`: in all the pool's nodes).
  bool CalendarAllowsPlan(const greenlight::v1::Job& job, bool capacity_blind) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  bool QuotaAllowsJob(const greenlight::v1::Job& job) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void StartJob(Txn& txn, greenlight::v1::Job& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WaitForNodes(Txn& txn, greenlight::v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The job's reserved amounts as the ledger has them now.
  void SyncReserved(greenlight::v1::Job& job) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void FinishJob(Txn& txn, greenlight::v1::Job& job, greenlight::v1::JobState to,
                 greenlight::v1::LedgerKind ledger_kind, const std::string& message, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Charges the job up to `now` (the accountant's charges, the job's caps,
  // the team's budget) and ends it at a cap or when its work is done.
  void AccrueJob(Txn& txn, greenlight::v1::Job& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Books one period's charge; true when a cap or the team budget stops the job.
  // `energy_basis` ("measured" or "modelled" on agent nodes, "" for the
  // simulated executor) goes in the ledger rows' reason.
  bool ChargePeriod(Txn& txn, greenlight::v1::Job& job, const PeriodCharge& c, absl::Time now,
                    std::string* stop_reason, const std::string& energy_basis = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The tick, as named phases in this order: nodes whose lease ran out,
  // accrual, teams over budget, due starts, deadline failures, re-planning.
  void DoTick(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteClock(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AccrueRunning(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopTeamsOverBudget(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartDueJobs(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailLateJobs(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Re-planning of waiting jobs with cross-team fairness (core_replan.cc).
  void ReplanWaiting(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Re-places a job that waits for capacity in another pool that has it now,
  // within its reservation; true when it took nodes there.
  bool MoveToAnotherPool(greenlight::v1::Job& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --- Jobs on node agents (core_agents.cc).
  bool OnAgentPool(const greenlight::v1::Job& job) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Gives a job that took nodes in an agent pool its node and GPUs, and
  // makes it STARTING (false: it cannot run there; it was failed).
  void BeginOnAgent(Txn& txn, greenlight::v1::Job& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckReports(const greenlight::v1::HeartbeatRequest& req) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void ApplyReport(Txn& txn, const greenlight::v1::JobReport& r, const std::string& node,
                   absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Charges a job on an agent from accrued_until to `now` with the energy
  // its GPUs measured in total so far (modelled when its node has no counters).
  void ChargeMeasured(Txn& txn, greenlight::v1::Job& job, double total_energy_wh, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  greenlight::v1::HeartbeatResponse OrdersFor(const greenlight::v1::HeartbeatRequest& req,
                                              absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Tick phase: agent nodes silent past their lease are lost; their jobs
  // are requeued (checkpointable) or failed (node_lost).
  void LoseSilentNodes(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LeaveLostNode(Txn& txn, greenlight::v1::Job& job, const std::string& node, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the lost nodes of an agent pool out of the allocator and puts the
  // others back (after a registration, a loss, a return, a load).
  void SyncAgentNodes(const std::string& pool_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // `running`/`pending` job counts when the caller has them (-1 = count here).
  greenlight::v1::Usage UsageLocked(const std::string& team, absl::Time at, int running = -1,
                                    int pending = -1) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  placement::UnknownGrid TeamUnknownGrid(const std::string& team) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  greenlight::v1::GridZone ZoneToProto(const std::string& name, const providers::CarbonSeries& s,
                                       absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  CoreOptions options_;
  placement::PlacementEngine engine_;

  // The state. The writer holds mu_ exclusively while it applies a batch, then
  // takes commit_mu_ and releases mu_ for the fsync, so that submitters can
  // validate and quote the next batch meanwhile. Reads that return data take
  // both (mu_ first, then commit_mu_, shared): they only see committed state.
  mutable absl::Mutex mu_;
  mutable absl::Mutex commit_mu_;
  class CommittedReadLock {
   public:
    explicit CommittedReadLock(const SchedulerCore* c) ABSL_SHARED_LOCK_FUNCTION(c->mu_) : c_(c) {
      c_->mu_.ReaderLock();
      c_->commit_mu_.ReaderLock();
    }
    ~CommittedReadLock() ABSL_UNLOCK_FUNCTION() {
      c_->commit_mu_.ReaderUnlock();
      c_->mu_.ReaderUnlock();
    }

   private:
    const SchedulerCore* c_;
  };
  JobTable jobs_ ABSL_GUARDED_BY(mu_);
  NodeAllocator nodes_ ABSL_GUARDED_BY(mu_);
  CapacityBook calendar_ ABSL_GUARDED_BY(mu_);
  ZoneTable zones_ ABSL_GUARDED_BY(mu_);
  SnapshotBuilder snapshots_ ABSL_GUARDED_BY(mu_);
  budget::BudgetLedger ledger_ ABSL_GUARDED_BY(mu_);
  OverLimits over_limits_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, store::TokenRow> tokens_ ABSL_GUARDED_BY(mu_);
  AgentRegistry agents_ ABSL_GUARDED_BY(mu_);
  // The writer's own bookkeeping.
  struct WriterState {
    int64_t next_revision = 1;
    absl::Time last_tick = absl::InfinitePast();
    bool clock_behind = false;     // warn once per backwards jump
    bool capacity_changed = true;  // waiting jobs may start: re-plan them
  };
  WriterState writer_ ABSL_GUARDED_BY(mu_);
  EventLog events_;
  CommandQueue queue_;
};

}  // namespace greenlight::scheduler
