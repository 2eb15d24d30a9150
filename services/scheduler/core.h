// SchedulerCore: the single writer of greenlight. Callers enqueue commands;
// one thread drains the queue, applies the commands to the in-memory state,
// commits them to the store in one transaction (group commit), and only then
// answers every caller. Reads are served from the in-memory state, which only
// ever holds committed data when the state lock is free.
//
// Time comes from a Clock: the daemon ticks on wall time (optionally scaled),
// tests and the replay simulator drive Tick() with a ManualClock.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/error_details.h"
#include "greenlight/v1/admin.pb.h"
#include "greenlight/v1/types.pb.h"
#include "services/budget/ledger.h"
#include "services/placement/engine.h"
#include "services/providers/inventory.h"
#include "services/scheduler/executor.h"
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
  // Observers (metrics); called on the writer thread after each commit.
  std::function<void(double commit_seconds, int batch_size)> on_commit;
  std::function<void(double seconds)> on_placement;
  // Called by Submit between its quote and its write (outside every lock):
  // tests use it to interleave another submit there.
  std::function<void()> on_quoted;
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

struct ListJobsQuery {
  std::string team;
  std::vector<greenlight::v1::JobState> states;
  int page_size = 100;
  std::string page_token;
};

struct ListJobsPage {
  std::vector<greenlight::v1::Job> jobs;
  std::string next_page_token;
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

  // Starts the writer thread (ticks every tick_interval when > 0).
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
  int64_t revision() const { return revision_.load(); }

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

  // --- Tokens (stored hashed; see services/scheduler/auth.h).
  absl::Status PutToken(const store::TokenRow& token);
  std::vector<store::TokenRow> Tokens() const;

  // --- Time.
  // Runs one scheduling step at clock->Now() through the queue and waits.
  absl::Status Tick();
  const Clock* clock() const { return options_.clock; }

  // Checks every invariant (budget, quota, ledger = usage, capacity); for tests.
  absl::Status CheckInvariants() const;
  // Jobs by state, for metrics.
  std::map<std::string, int> JobsByState() const;
  int queue_depth() const;

 private:
  struct Txn;
  struct Command {
    enum State : int { kQueued, kApplying, kApplied, kWithdrawn };
    std::function<absl::Status(Txn&)> apply;
    std::promise<absl::Status> done;
    // kQueued -> kApplying -> kApplied by the writer, or kQueued -> kWithdrawn
    // by a caller whose wait timed out (the writer then skips it). Shared: the
    // caller may outlive the command and the command the caller.
    std::shared_ptr<std::atomic<int>> state = std::make_shared<std::atomic<int>>(kQueued);
  };
  struct Allocation {
    int pool = -1;
    std::vector<std::pair<int, int>> nodes;  // (node index, gpus)
  };
  struct PoolState {
    providers::Pool pool;
    std::vector<int> free_gpus;  // per node
  };

  explicit SchedulerCore(CoreOptions options);
  absl::Status LoadFromStore();
  absl::Status Run(std::function<absl::Status(Txn&)> apply);
  void WriterLoop();
  void ProcessBatch(std::vector<std::unique_ptr<Command>>& batch, bool tick);

  // All below run with mu_ held (writer) or as readers.
  // `fresh` copies the pools as they are now (the writer, mid-batch); otherwise
  // the snapshot shares the pool view rebuilt after the last batch.
  placement::Snapshot BuildSnapshot(const std::string& team, bool ignore_capacity,
                                    bool fresh = false) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void RebuildPoolViews() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<placement::JobRequest> ToRequest(const greenlight::v1::JobSpec& spec) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  greenlight::v1::Quote ToQuote(const placement::Decision& d, const placement::Snapshot& s) const;
  greenlight::v1::Placement ToPlacement(const placement::Option& o,
                                        const placement::Snapshot& s) const;
  absl::Status ValidateLocked(const greenlight::v1::JobSpec& spec) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);

  void Transition(Txn& txn, greenlight::v1::Job& job, greenlight::v1::JobState to,
                  const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds the job to / removes it from the by-state indexes of its current state.
  void IndexJob(greenlight::v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexJob(const greenlight::v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Emit(Txn& txn, const greenlight::v1::Job& job, const std::string& type,
            const std::string& message) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes nodes for the job in its placement's pool now, if they are free and
  // (capacity calendar) leave every node booked by a planned job free for
  // [now, now + remaining).
  bool TryAllocate(greenlight::v1::Job& job, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives a job that was running at the last stop its nodes back (no calendar:
  // it holds them already).
  bool Reallocate(greenlight::v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyAllocation(greenlight::v1::Job& job, Allocation a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The capacity calendar (placement/capacity_calendar.h): each PLANNED job
  // books whole nodes of its pool for its run window(s); quotes plan around
  // the bookings and allocations leave booked nodes free.
  void BookJob(const greenlight::v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnbookJob(int64_t sequence) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The table snapshots share: the profiles of pools whose bookings changed
  // are rebuilt (once per batch; the writer's own checks read the deltas).
  void RebuildBookingView() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Wholly free nodes of a pool now.
  int FreeWholeNodes(int pool) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // The windows of a planned job fit beside the bookings of others, in the
  // nodes free now (`capacity_blind`: in all the pool's nodes).
  bool CalendarAllowsPlan(const greenlight::v1::Job& job, bool capacity_blind)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<SubmitResult> SubmitAttempt(const greenlight::v1::JobSpec& spec,
                                             const SubmitOptions& submit_options,
                                             bool check_calendar);
  // Best-fit nodes for the job in its placement's pool now, if any (no change).
  std::optional<Allocation> FindAllocation(const greenlight::v1::Job& job) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void FreeAllocation(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool QuotaAllows(const greenlight::v1::Job& job) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void StartJob(Txn& txn, greenlight::v1::Job& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishJob(Txn& txn, greenlight::v1::Job& job, greenlight::v1::JobState to,
                 const std::string& ledger_kind, const std::string& message, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AccrueJob(Txn& txn, greenlight::v1::Job& job, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DoTick(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReplanWaiting(Txn& txn, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ApplyLedger(Txn& txn, const std::vector<store::LedgerRow>& rows)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A team's and its parent's rollups in a period before a change: a change
  // that crosses either's alert ratio emits that team's BUDGET_ALERT.
  struct AlertBaseline {
    std::string team, parent;
    budget::Totals team_before, parent_before;
  };
  AlertBaseline BaselineForAlerts(const std::string& team, const std::string& period) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void MaybeTeamAlerts(Txn& txn, const AlertBaseline& baseline, const std::string& period)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `before` is the team's rollup in `period` before the change.
  void MaybeTeamAlert(Txn& txn, const std::string& team, const budget::Totals& before,
                      const std::string& period) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `running`/`pending` job counts when the caller has them (-1 = count here).
  greenlight::v1::Usage UsageLocked(const std::string& team, absl::Time at, int running = -1,
                                    int pending = -1) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // `policy`: how the job's team treats a zone whose grid is unknown.
  double IntensityAt(const std::string& zone, absl::Time t, bool* estimated,
                     placement::UnknownGrid policy = placement::UnknownGrid::kPessimistic) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  placement::UnknownGrid TeamUnknownGrid(const std::string& team) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void RebuildIndexes() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteOverLimits() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

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
  // node_hash_map: Job pointers stay valid while other jobs are added.
  absl::node_hash_map<std::string, greenlight::v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> order_ ABSL_GUARDED_BY(mu_);  // ids by sequence
  absl::flat_hash_map<std::string, std::string> by_request_
      ABSL_GUARDED_BY(mu_);  // team\0rid -> id
  // Unfinished jobs by sequence (submit order), so ticks need no sort.
  std::map<int64_t, greenlight::v1::Job*> active_ ABSL_GUARDED_BY(mu_);
  // The unfinished jobs again by state, so that a tick visits only what can
  // change (running jobs, planned jobs whose start came, waiting jobs that
  // can no longer meet their deadline), not every queued job five times a
  // second. Kept in step with job states by IndexJob/UnindexJob.
  std::map<int64_t, greenlight::v1::Job*> running_ ABSL_GUARDED_BY(mu_);  // by sequence
  std::map<int64_t, greenlight::v1::Job*> pending_ ABSL_GUARDED_BY(mu_);  // by sequence
  std::set<std::pair<absl::Time, int64_t>> planned_by_start_ ABSL_GUARDED_BY(mu_);
  // PENDING jobs with a deadline, by their latest start (deadline - remaining).
  std::set<std::pair<absl::Time, int64_t>> pending_by_latest_start_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, absl::Time> index_key_ ABSL_GUARDED_BY(mu_);  // key in those sets
  std::vector<PoolState> pools_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> pool_index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> regions_ ABSL_GUARDED_BY(mu_);
  using ZoneMap = absl::flat_hash_map<std::string, providers::CarbonSeriesPtr>;
  ZoneMap zones_ ABSL_GUARDED_BY(mu_);
  // zones_ as snapshots share it, replaced whenever zones_ changes.
  std::shared_ptr<const ZoneMap> zones_view_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Time> zone_updated_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, Allocation> allocations_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> running_gpus_ ABSL_GUARDED_BY(mu_);  // team -> gpus
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, int>> running_gpus_by_type_
      ABSL_GUARDED_BY(mu_);
  budget::BudgetLedger ledger_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, store::TokenRow> tokens_ ABSL_GUARDED_BY(mu_);
  int64_t next_sequence_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t next_revision_ ABSL_GUARDED_BY(mu_) = 1;
  absl::Time last_tick_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool clock_behind_ ABSL_GUARDED_BY(mu_) = false;  // warn once per backwards jump
  bool capacity_changed_ ABSL_GUARDED_BY(mu_) = true;
  struct JobBooking {
    int pool = -1;
    placement::PoolBookings windows;
  };
  absl::flat_hash_map<int64_t, JobBooking> bookings_ ABSL_GUARDED_BY(mu_);  // by sequence
  // Per pool, kept booking by booking (O(log b)); the writer checks against these.
  absl::flat_hash_map<int, placement::BookingDeltas> booked_deltas_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int, std::shared_ptr<const placement::BookedProfile>> booked_profiles_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<int> booked_dirty_ ABSL_GUARDED_BY(mu_);  // pools to re-profile
  std::shared_ptr<const placement::BookingTable> booking_view_ ABSL_GUARDED_BY(mu_);
  // Immutable pool views for quoting (with free capacity, and all free).
  std::shared_ptr<const std::vector<providers::Pool>> pool_view_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<const std::vector<providers::Pool>> pool_view_free_ ABSL_GUARDED_BY(mu_);
  bool view_dirty_ ABSL_GUARDED_BY(mu_) = true;
  absl::Time last_view_rebuild_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // Use left above a budget or quota when it was lowered below it (SetTeam, or
  // found at load). Lowering is allowed: the new limit binds admissions and
  // charges at once, so such use may only shrink. CheckInvariants holds use to
  // max(limit, noted use). Keys: team\0period (cost, carbon); team and
  // team\0gpu type (running GPUs).
  absl::flat_hash_map<std::string, std::pair<int64_t, int64_t>> over_budget_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> over_quota_ ABSL_GUARDED_BY(mu_);

  // Recent committed events for watchers.
  mutable absl::Mutex events_mu_;
  std::deque<greenlight::v1::JobEvent> ring_ ABSL_GUARDED_BY(events_mu_);
  absl::CondVar events_cv_;
  std::atomic<int64_t> revision_{0};

  // The command queue.
  mutable absl::Mutex queue_mu_;
  std::deque<std::unique_ptr<Command>> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool tick_requested_ ABSL_GUARDED_BY(queue_mu_) = false;
  std::thread writer_;
  bool started_ = false;
};

}  // namespace greenlight::scheduler
