#include "services/scheduler/core.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "google/protobuf/util/message_differencer.h"
#include "services/budget/period.h"
#include "services/placement/bin_packing.h"
#include "services/scheduler/job_state.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

using greenlight::v1::Job;
using greenlight::v1::JobEvent;
using greenlight::v1::JobSpec;
using greenlight::v1::JobState;

struct SchedulerCore::Txn {
  store::Batch batch;
  absl::flat_hash_set<std::string> dirty;  // job ids to write
  std::vector<std::pair<std::string, absl::Duration>> launches;
  std::vector<std::string> kills;
};

namespace {

std::string RequestKey(const std::string& team, const std::string& rid) {
  return absl::StrCat(team, std::string(1, '\0'), rid);
}

placement::Mode ModeOf(v1::PlacementMode m, placement::Mode def) {
  switch (m) {
    case v1::PLACEMENT_MODE_CHEAPEST:
      return placement::Mode::kCheapest;
    case v1::PLACEMENT_MODE_GREENEST:
      return placement::Mode::kGreenest;
    case v1::PLACEMENT_MODE_BALANCED:
      return placement::Mode::kBalanced;
    default:
      return def;
  }
}

v1::NodePool PoolToProto(const providers::Pool& p, int free_nodes) {
  v1::NodePool out;
  out.set_id(p.id);
  out.set_provider(p.provider);
  out.set_region(p.region);
  out.set_grid_zone(p.zone);
  out.set_instance_type(p.instance_type);
  out.set_gpu_type(p.gpu_type);
  out.set_gpus_per_node(p.gpus_per_node);
  out.set_nodes(p.nodes);
  out.set_price_micros_per_node_hour(p.price_micros_per_node_hour);
  out.set_spot_price_micros_per_node_hour(p.spot_price_micros_per_node_hour);
  out.set_gpu_power_w(p.gpu_power_w);
  out.set_pue(p.pue);
  out.set_free_nodes(free_nodes);
  return out;
}

double Hours(absl::Duration d) { return absl::ToDoubleHours(d); }

}  // namespace

absl::StatusOr<std::unique_ptr<SchedulerCore>> SchedulerCore::Create(CoreOptions options) {
  if (!options.clock || !options.store || !options.executor)
    return absl::InvalidArgumentError("SchedulerCore: clock, store and executor are required");
  std::unique_ptr<SchedulerCore> core(new SchedulerCore(std::move(options)));
  RETURN_IF_ERROR(core->LoadFromStore());
  return core;
}

SchedulerCore::SchedulerCore(CoreOptions options) : options_(std::move(options)) {}

SchedulerCore::~SchedulerCore() { Stop(); }

absl::Status SchedulerCore::LoadFromStore() {
  ASSIGN_OR_RETURN(store::Snapshot snap, options_.store->Load());
  absl::MutexLock l(&mu_);
  jobs_.clear();
  order_.clear();
  by_request_.clear();
  active_.clear();
  running_.clear();
  pending_.clear();
  planned_by_start_.clear();
  pending_by_latest_start_.clear();
  index_key_.clear();
  bookings_.clear();
  booked_deltas_.clear();
  booked_profiles_.clear();
  booked_dirty_.clear();
  booking_view_.reset();
  allocations_.clear();
  running_gpus_.clear();
  running_gpus_by_type_.clear();
  ledger_ = budget::BudgetLedger();
  tokens_.clear();
  // Pools: configured inventory, overridden by pools stored through the API.
  pools_.clear();
  pool_index_.clear();
  regions_.clear();
  std::vector<providers::Pool> pools = options_.inventory.pools;
  for (const auto& sp : snap.pools) {
    providers::Pool p;
    p.id = sp.id();
    p.provider = sp.provider();
    p.region = sp.region();
    p.zone = sp.grid_zone();
    p.instance_type = sp.instance_type();
    p.gpu_type = sp.gpu_type();
    p.gpus_per_node = sp.gpus_per_node();
    p.nodes = sp.nodes();
    p.price_micros_per_node_hour = sp.price_micros_per_node_hour();
    p.spot_price_micros_per_node_hour = sp.spot_price_micros_per_node_hour();
    p.gpu_power_w = sp.gpu_power_w();
    p.pue = sp.pue() > 0 ? sp.pue() : 1.0;
    const auto* g = options_.inventory.gpus.Find(p.gpu_type);
    p.speed = g ? g->speed : 1.0;
    if (p.gpu_power_w <= 0 && g) p.gpu_power_w = g->power_w;
    auto it = std::find_if(pools.begin(), pools.end(), [&](const auto& x) { return x.id == p.id; });
    if (it != pools.end())
      *it = p;
    else
      pools.push_back(p);
  }
  std::sort(pools.begin(), pools.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  for (auto& p : pools) {
    PoolState ps;
    ps.pool = p;
    ps.pool.free_nodes = p.nodes;
    ps.free_gpus.assign(p.nodes, p.gpus_per_node);
    pool_index_[p.id] = static_cast<int>(pools_.size());
    regions_.insert(p.region);
    pools_.push_back(std::move(ps));
  }
  zones_ = options_.inventory.zones;
  for (const auto& z : snap.zones) {
    auto s = std::make_shared<providers::CarbonSeries>(z.name, absl::FromUnixMicros(z.start_us),
                                                       absl::Seconds(z.step_s), z.values,
                                                       z.annual_average);
    s->set_source(z.source);
    zones_[z.name] = s;
    zone_updated_[z.name] = absl::FromUnixMicros(z.updated_us);
  }
  for (const auto& t : snap.teams) ledger_.SetTeam(t);
  for (const auto& r : snap.ledger) ledger_.Apply(r);
  for (const auto& t : snap.tokens) tokens_[t.info.id()] = t;
  next_sequence_ = 1;
  for (auto& j : snap.jobs) {
    std::string id = j.id();
    next_sequence_ = std::max(next_sequence_, j.sequence() + 1);
    order_.push_back(id);
    if (!j.spec().request_id().empty())
      by_request_[RequestKey(j.spec().team(), j.spec().request_id())] = id;
    Job& stored = jobs_[id];
    stored = std::move(j);
    if (!IsTerminal(stored.state())) {
      active_[stored.sequence()] = &stored;
      IndexJob(stored);
    }
  }
  // Running jobs get their nodes back and resume on the executor.
  for (const auto& id : order_) {
    Job& j = jobs_[id];
    if (j.state() != v1::JOB_STATE_RUNNING) continue;
    if (!Reallocate(j)) {
      GL_LOG_WARN("running job lost its capacity on restart", F("job", id),
                  F("pool", j.placement().pool_id()));
    }
    options_.executor->Launch(id, FromProto(j.remaining()));
  }
  next_revision_ = snap.last_revision + 1;
  revision_ = snap.last_revision;
  {
    absl::MutexLock el(&events_mu_);
    ring_.clear();
  }
  capacity_changed_ = true;
  zones_view_ = std::make_shared<const ZoneMap>(zones_);
  // Pools and capacity were rebuilt (also after a failed commit): so are the views.
  pool_view_.reset();
  pool_view_free_.reset();
  view_dirty_ = true;
  RebuildBookingView();
  NoteOverLimits();
  return absl::OkStatus();
}

void SchedulerCore::NoteOverLimits() {
  auto fresh_budget = std::move(over_budget_);
  auto fresh_quota = std::move(over_quota_);
  over_budget_.clear();
  over_quota_.clear();
  // Use noted before can only have shrunk: keep the smaller figure, so that
  // a later SetTeam cannot hide an increase.
  auto keep = [](int64_t noted, int64_t now) { return noted > 0 ? std::min(noted, now) : now; };
  for (const auto& [team, period] : ledger_.TeamPeriods()) {
    const v1::Team* own = ledger_.FindTeam(team);
    if (!own) continue;
    for (const v1::Team* t : {own, ledger_.FindTeam(own->parent())}) {
      if (!t) continue;
      budget::Totals r = ledger_.RollupTotals(t->name(), period);
      int64_t cost = SatAdd(r.cost_spent_micros, r.cost_reserved_micros);
      int64_t carbon = SatAdd(r.carbon_spent_mg, r.carbon_reserved_mg);
      bool over_cost =
          t->monthly_cost_budget_micros() > 0 && cost > t->monthly_cost_budget_micros();
      bool over_carbon =
          t->monthly_carbon_budget_mg() > 0 && carbon > t->monthly_carbon_budget_mg();
      if (!over_cost && !over_carbon) continue;
      std::string key = RequestKey(t->name(), period);
      std::pair<int64_t, int64_t> before = fresh_budget[key];
      over_budget_[key] = {over_cost ? keep(before.first, cost) : 0,
                           over_carbon ? keep(before.second, carbon) : 0};
    }
  }
  for (const auto& [team, gpus] : running_gpus_) {
    const v1::Team* t = ledger_.FindTeam(team);
    if (t && t->gpu_quota() > 0 && gpus > t->gpu_quota())
      over_quota_[team] = static_cast<int>(keep(fresh_quota[team], gpus));
  }
  for (const auto& [team, by_type] : running_gpus_by_type_) {
    const v1::Team* t = ledger_.FindTeam(team);
    if (!t) continue;
    for (const auto& [type, gpus] : by_type) {
      auto q = t->gpu_quota_by_type().find(type);
      std::string key = RequestKey(team, type);
      if (q != t->gpu_quota_by_type().end() && q->second > 0 && gpus > q->second)
        over_quota_[key] = static_cast<int>(keep(fresh_quota[key], gpus));
    }
  }
}

void SchedulerCore::Start() {
  if (started_) return;
  started_ = true;
  writer_ = std::thread([this] { WriterLoop(); });
}

void SchedulerCore::Stop() {
  {
    absl::MutexLock l(&queue_mu_);
    if (stopping_) {
      // fallthrough to join
    }
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

int SchedulerCore::queue_depth() const {
  absl::MutexLock l(&queue_mu_);
  return static_cast<int>(queue_.size());
}

absl::Status SchedulerCore::Run(std::function<absl::Status(Txn&)> apply) {
  auto cmd = std::make_unique<Command>();
  cmd->apply = std::move(apply);
  std::future<absl::Status> f = cmd->done.get_future();
  std::shared_ptr<std::atomic<int>> state = cmd->state;
  {
    absl::MutexLock l(&queue_mu_);
    if (stopping_)
      return WithReason(
          absl::UnavailableError(
              "scheduler is shutting down; retry on another replica or after restart"),
          reason::kUnavailable);
    if (static_cast<int>(queue_.size()) >= options_.max_queue)
      return WithReason(
          absl::ResourceExhaustedError(absl::StrCat("scheduler overloaded: ", queue_.size(),
                                                    " commands queued; retry with backoff")),
          reason::kQueueFull);
    queue_.push_back(std::move(cmd));
  }
  if (!started_) {
    // No writer thread (tests driving the core synchronously): process inline.
    std::vector<std::unique_ptr<Command>> batch;
    {
      absl::MutexLock l(&queue_mu_);
      while (!queue_.empty()) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    ProcessBatch(batch, false);
  }
  // Every wait is bounded: a stalled store (or a writer stuck behind one)
  // must not pin the caller's thread forever.
  if (options_.command_timeout == absl::InfiniteDuration()) return f.get();
  const auto timeout = absl::ToChronoMilliseconds(options_.command_timeout);
  if (f.wait_for(timeout) == std::future_status::ready) return f.get();
  int expected = Command::kQueued;
  if (state->compare_exchange_strong(expected, Command::kWithdrawn)) {
    return absl::UnavailableError(absl::StrCat(
        "scheduler did not take the request within ",
        absl::FormatDuration(options_.command_timeout),
        " (overloaded or the store is stalled); nothing was written; retry with backoff"));
  }
  if (f.wait_for(timeout) == std::future_status::ready) return f.get();
  // The command may still be writing into the caller's frame: wait for the
  // in-memory apply (CPU only, short) before returning.
  while (state->load() == Command::kApplying) absl::SleepFor(absl::Milliseconds(1));
  return absl::DeadlineExceededError(absl::StrCat(
      "the store has not confirmed the write within ",
      absl::FormatDuration(2 * options_.command_timeout),
      "; the outcome is unknown: retry with the same request_id (submits are idempotent) or check "
      "with GetJob"));
}

void SchedulerCore::WriterLoop() {
  absl::Time next_tick = absl::Now() + options_.tick_interval;
  for (;;) {
    std::vector<std::unique_ptr<Command>> batch;
    bool tick = false;
    {
      absl::MutexLock l(&queue_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return !queue_.empty() || stopping_ || tick_requested_;
      };
      if (options_.tick_interval > absl::ZeroDuration()) {
        queue_mu_.AwaitWithDeadline(absl::Condition(&ready), next_tick);
      } else {
        queue_mu_.Await(absl::Condition(&ready));
      }
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      if (stopping_ && batch.empty()) return;
      tick_requested_ = false;
    }
    if (options_.tick_interval > absl::ZeroDuration() && absl::Now() >= next_tick) {
      tick = true;
      next_tick = absl::Now() + options_.tick_interval;
    }
    if (!batch.empty() || tick) ProcessBatch(batch, tick);
  }
}

void SchedulerCore::ProcessBatch(std::vector<std::unique_ptr<Command>>& batch, bool tick) {
  std::vector<absl::Status> results(batch.size());
  std::vector<JobEvent> committed;
  bool ok = true;
  absl::Status commit_status;
  {
    mu_.Lock();
    absl::Time apply_start = absl::Now();
    Txn txn;
    for (size_t i = 0; i < batch.size(); ++i) {
      int expected = Command::kQueued;
      if (!batch[i]->state->compare_exchange_strong(expected, Command::kApplying)) {
        results[i] = absl::UnavailableError("withdrawn by its caller after a timeout");
        continue;
      }
      results[i] = batch[i]->apply(txn);
      batch[i]->state->store(Command::kApplied);
    }
    if (tick) DoTick(txn, options_.clock->Now());
    // Quotes may see capacity up to 10 ms old (the writer re-checks it), so
    // that the pool view is not rebuilt for every small batch.
    if (view_dirty_ && (!started_ || absl::Now() - last_view_rebuild_ > absl::Milliseconds(10))) {
      RebuildPoolViews();
    }
    // Not throttled: a quote planned against an old calendar is refused by
    // the writer and quoted again (Submit).
    if (!booked_dirty_.empty()) RebuildBookingView();
    for (const auto& id : txn.dirty) txn.batch.jobs.push_back(jobs_[id]);
    // Keep job rows in sequence order for a stable file layout.
    std::sort(txn.batch.jobs.begin(), txn.batch.jobs.end(),
              [](const Job& a, const Job& b) { return a.sequence() < b.sequence(); });
    // Release the state for the fsync: submitters quote the next batch meanwhile.
    commit_mu_.Lock();
    mu_.Unlock();
    absl::Time t0 = absl::Now();
    commit_status = options_.store->Commit(txn.batch);
    double secs = absl::ToDoubleSeconds(absl::Now() - t0);
    commit_mu_.Unlock();
    GL_LOG_DEBUG("group commit", F("commands", batch.size()), F("tick", tick ? 1 : 0),
                 F("jobs", txn.batch.jobs.size()), F("ledger", txn.batch.ledger.size()),
                 F("apply_ms", absl::ToDoubleMilliseconds(t0 - apply_start)),
                 F("commit_ms", secs * 1000));
    if (!commit_status.ok()) {
      ok = false;
      GL_LOG_ERROR("store commit failed; state reloaded from the store",
                   F("error", commit_status.message()), F("commands", batch.size()));
      // Nothing of this batch is durable: forget it by reloading what is.
      // The executor is reset too, since launches were never acknowledged.
      for (const auto& [id, _] : txn.launches) options_.executor->Kill(id);
      absl::Status reload = LoadFromStore();
      if (!reload.ok())
        GL_LOG_ERROR("reload after failed commit failed", F("error", reload.message()));
      mu_.Lock();
    } else {
      mu_.Lock();
      for (const auto& id : txn.kills) options_.executor->Kill(id);
      for (const auto& [id, d] : txn.launches) options_.executor->Launch(id, d);
      committed = std::move(txn.batch.events);
      if (options_.on_commit && !txn.batch.empty())
        options_.on_commit(secs, static_cast<int>(batch.size()));
    }
    mu_.Unlock();
  }
  if (ok && !committed.empty()) {
    absl::MutexLock el(&events_mu_);
    for (auto& e : committed) ring_.push_back(std::move(e));
    while (static_cast<int>(ring_.size()) > options_.event_ring) ring_.pop_front();
    revision_ = ring_.back().revision();
    events_cv_.SignalAll();
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!ok && results[i].ok()) {
      results[i] = absl::UnavailableError(absl::StrCat("not stored: ", commit_status.message(),
                                                       "; nothing was written, retry later"));
    }
    batch[i]->done.set_value(results[i]);
  }
}

// ---------------------------------------------------------------------------
// Snapshots and conversions.

void SchedulerCore::RebuildPoolViews() {
  // Only capacity changed (the views are reset when pools change) and no
  // snapshot holds the capacity view (its use count cannot grow while mu_ is
  // held exclusively): refresh the free counts in place rather than copying
  // every pool twice after each batch that starts or ends a job. The view was
  // created non-const, so writing through it is defined.
  if (pool_view_ && pool_view_free_ && pool_view_.use_count() == 1 &&
      pool_view_->size() == pools_.size()) {
    // use_count() is a relaxed load: without this fence the last reader's
    // reads of the view need not happen before the writes below (a data race
    // by the C++ memory model, reported by TSan). The acquire fence pairs
    // with the release of that reader's shared_ptr decrement.
    std::atomic_thread_fence(std::memory_order_acquire);
    auto& view = const_cast<std::vector<providers::Pool>&>(*pool_view_);
    for (size_t i = 0; i < pools_.size(); ++i) {
      placement::SummarizeFreeCapacity(view[i].gpus_per_node, pools_[i].free_gpus, &view[i]);
    }
    view_dirty_ = false;
    return;
  }
  auto with_capacity = std::make_shared<std::vector<providers::Pool>>();
  auto all_free = std::make_shared<std::vector<providers::Pool>>();
  with_capacity->reserve(pools_.size());
  all_free->reserve(pools_.size());
  for (const auto& ps : pools_) {
    providers::Pool p = ps.pool;
    p.free_gpus_on_partial_nodes.clear();
    p.free_nodes = p.nodes;
    all_free->push_back(p);
    placement::SummarizeFreeCapacity(p.gpus_per_node, ps.free_gpus, &p);
    with_capacity->push_back(std::move(p));
  }
  pool_view_ = std::move(with_capacity);
  pool_view_free_ = std::move(all_free);
  view_dirty_ = false;
  last_view_rebuild_ = absl::Now();
}

placement::Snapshot SchedulerCore::BuildSnapshot(const std::string& team, bool ignore_capacity,
                                                 bool fresh) const {
  placement::Snapshot s;
  s.now = options_.clock->Now();
  s.slot = options_.slot;
  s.horizon = options_.horizon;
  s.shared_zones = zones_view_;
  s.default_intensity_g_per_kwh = options_.inventory.default_intensity_g_per_kwh;
  s.default_carbon_price_micros_per_tonne = options_.default_carbon_price_micros_per_tonne;
  if (!fresh && pool_view_ && (started_ ? true : !view_dirty_)) {
    s.shared_pools = ignore_capacity ? pool_view_free_ : pool_view_;
  } else {
    s.pools.reserve(pools_.size());
    for (const auto& ps : pools_) {
      providers::Pool p = ps.pool;
      p.free_gpus_on_partial_nodes.clear();
      if (ignore_capacity) {
        p.free_nodes = p.nodes;
      } else {
        placement::SummarizeFreeCapacity(p.gpus_per_node, ps.free_gpus, &p);
      }
      s.pools.push_back(std::move(p));
    }
  }
  // Also when capacity is ignored (a waiting job's plan): a plan may wait for
  // running jobs to end, never take nodes booked by planned ones.
  s.bookings = booking_view_;
  const v1::Team* t = ledger_.FindTeam(team);
  std::string period = budget::PeriodOf(s.now);
  s.team.cost_headroom_micros = ledger_.CostHeadroom(team, period);
  s.team.carbon_headroom_mg = ledger_.CarbonHeadroom(team, period);
  if (t && t->gpu_quota() > 0) {
    s.team.gpu_quota_total = t->gpu_quota();
    auto it = running_gpus_.find(team);
    int used = it == running_gpus_.end() ? 0 : it->second;
    s.team.gpu_quota_free = ignore_capacity ? t->gpu_quota() : std::max(0, t->gpu_quota() - used);
  }
  s.team.carbon_price_micros_per_tonne = t && t->carbon_price_micros_per_tonne() > 0
                                             ? t->carbon_price_micros_per_tonne()
                                             : options_.default_carbon_price_micros_per_tonne;
  if (t) s.team.unknown_grid = placement::UnknownGridFromName(t->unknown_grid());
  return s;
}

placement::UnknownGrid SchedulerCore::TeamUnknownGrid(const std::string& team) const {
  const v1::Team* t = ledger_.FindTeam(team);
  return t ? placement::UnknownGridFromName(t->unknown_grid())
           : placement::UnknownGrid::kPessimistic;
}

absl::StatusOr<placement::JobRequest> SchedulerCore::ToRequest(const JobSpec& spec) const {
  placement::JobRequest r;
  r.gpus = spec.gpus();
  for (const auto& g : spec.gpu_types()) {
    // Not CanonicalGpu(): it takes mu_, which every caller already holds
    // (a second reader lock deadlocks behind a waiting writer, and the writer
    // itself calls this from ReplanWaiting).
    std::string c = options_.inventory.gpus.Canonical(g);
    for (size_t i = 0; c.empty() && i < pools_.size(); ++i)
      if (pools_[i].pool.gpu_type == g) c = g;
    r.gpu_types.push_back(c);
  }
  if (spec.work_case() == JobSpec::kReferenceGpuHours) {
    r.reference_gpu_hours = spec.reference_gpu_hours();
  } else {
    r.duration = FromProto(spec.duration());
  }
  r.max_cost_micros = spec.max_cost_micros();
  r.max_carbon_mg = spec.max_carbon_mg();
  absl::Time now = options_.clock->Now();
  r.not_before = spec.has_not_before() ? std::max(now, FromProto(spec.not_before())) : now;
  r.deadline = spec.has_deadline() ? FromProto(spec.deadline()) : absl::InfiniteFuture();
  r.checkpointable = spec.checkpointable();
  r.regions.assign(spec.regions().begin(), spec.regions().end());
  r.mode = ModeOf(spec.mode(), options_.default_mode);
  r.carbon_price_micros_per_tonne = spec.carbon_price_micros_per_tonne();
  return r;
}

v1::Placement SchedulerCore::ToPlacement(const placement::Option& o,
                                         const placement::Snapshot& s) const {
  v1::Placement p;
  if (o.pool >= 0 && o.pool < static_cast<int>(s.Pools().size())) {
    const auto& pool = s.Pools()[o.pool];
    p.set_pool_id(pool.id);
    p.set_provider(pool.provider);
    p.set_region(pool.region);
    p.set_grid_zone(pool.zone);
    p.set_instance_type(pool.instance_type);
    p.set_gpu_type(pool.gpu_type);
  } else {
    p.set_pool_id(o.pool_id);
  }
  p.set_nodes(o.nodes);
  p.set_spot(o.spot);
  *p.mutable_start() = ToProto(o.start);
  *p.mutable_end() = ToProto(o.end);
  for (const auto& sl : o.slots) {
    auto* ts = p.add_slots();
    *ts->mutable_start() = ToProto(sl.start);
    *ts->mutable_end() = ToProto(sl.end);
  }
  p.set_cost_micros(o.cost_micros);
  p.set_carbon_mg(o.carbon_mg);
  p.set_energy_wh(o.energy_wh);
  p.set_objective_micros(o.objective_micros);
  p.set_mean_intensity_g_per_kwh(o.mean_intensity);
  p.set_carbon_estimated(o.carbon_estimated);
  p.set_why_not(o.why_not);
  p.set_unknown_grid(o.unknown_grid);
  p.set_carbon_basis(o.carbon_basis);
  return p;
}

v1::Quote SchedulerCore::ToQuote(const placement::Decision& d, const placement::Snapshot& s) const {
  v1::Quote q;
  q.set_feasible(d.feasible);
  q.set_not_now(d.not_now);
  if (d.feasible)
    *q.mutable_chosen() = ToPlacement(d.chosen, s);
  else if (d.has_best_over_cap)
    *q.mutable_chosen() = ToPlacement(d.best_over_cap, s);
  for (const auto& a : d.alternatives) *q.add_alternatives() = ToPlacement(a, s);
  if (d.has_baseline) *q.mutable_baseline() = ToPlacement(d.baseline, s);
  for (const auto& [reason, n] : d.rejections) {
    auto* r = q.add_rejections();
    r->set_reason(reason);
    r->set_pools(n);
  }
  q.set_summary(d.summary);
  q.set_pools_considered(d.pools_considered);
  return q;
}

std::string SchedulerCore::CanonicalGpu(const std::string& name) const {
  std::string c = options_.inventory.gpus.Canonical(name);
  if (!c.empty()) return c;
  // Pools added through the API may carry GPU types the table lacks.
  absl::ReaderMutexLock l(&mu_);
  for (const auto& ps : pools_)
    if (ps.pool.gpu_type == name) return name;
  return "";
}

absl::Status SchedulerCore::ValidateLocked(const JobSpec& spec) const {
  ValidationContext ctx;
  ctx.now = options_.clock->Now();
  ctx.canonical_gpu = [this](const std::string& n) {
    std::string c = options_.inventory.gpus.Canonical(n);
    if (!c.empty()) return c;
    for (const auto& ps : pools_)
      if (ps.pool.gpu_type == n) return n;
    return std::string();
  };
  ctx.region_known = [this](const std::string& r) { return regions_.contains(r); };
  ctx.team_exists = [this](const std::string& t) { return ledger_.FindTeam(t) != nullptr; };
  return ValidateJobSpec(spec, ctx);
}

// ---------------------------------------------------------------------------
// Submit / Estimate / Cancel.

absl::StatusOr<v1::Quote> SchedulerCore::Estimate(const JobSpec& spec, int top_k) {
  placement::JobRequest req;
  placement::Snapshot snap;
  {
    absl::ReaderMutexLock l(&mu_);
    RETURN_IF_ERROR(ValidateLocked(spec));
    ASSIGN_OR_RETURN(req, ToRequest(spec));
    snap = BuildSnapshot(spec.team(), false);
  }
  req.top_k = top_k <= 0 ? 5 : std::min(top_k, 50);
  absl::Time t0 = absl::Now();
  placement::Decision d = engine_.Place(req, snap);
  if (options_.on_placement) options_.on_placement(absl::ToDoubleSeconds(absl::Now() - t0));
  return ToQuote(d, snap);
}

namespace {
// Submit quotes outside the writer, so two submits may plan into the same
// booked window; the writer refuses the later plan with this status and it is
// quoted again against the new calendar.
constexpr int kCalendarAttempts = 4;
constexpr char kCalendarConflictPayloadUrl[] = "greenlight.internal/calendar-conflict";
}  // namespace

absl::StatusOr<SubmitResult> SchedulerCore::Submit(const JobSpec& spec,
                                                   const SubmitOptions& submit_options) {
  for (int attempt = 1;; ++attempt) {
    // The last attempt keeps its plan whatever the calendar says; its start
    // still waits for free nodes (TryAllocate).
    auto r = SubmitAttempt(spec, submit_options, /*check_calendar=*/attempt < kCalendarAttempts);
    if (r.ok() || !r.status().GetPayload(kCalendarConflictPayloadUrl).has_value()) return r;
  }
}

absl::StatusOr<SubmitResult> SchedulerCore::SubmitAttempt(const JobSpec& spec,
                                                          const SubmitOptions& submit_options,
                                                          bool check_calendar) {
  placement::JobRequest req;
  placement::Snapshot snap;
  std::string dedup_id;
  {
    absl::ReaderMutexLock l(&mu_);
    if (!spec.request_id().empty()) {
      auto it = by_request_.find(RequestKey(spec.team(), spec.request_id()));
      if (it != by_request_.end()) dedup_id = it->second;
    }
    if (dedup_id.empty()) {
      RETURN_IF_ERROR(ValidateLocked(spec));
      ASSIGN_OR_RETURN(req, ToRequest(spec));
      snap = BuildSnapshot(spec.team(), false);
    }
  }
  auto dedup = [&](const std::string& id) -> absl::StatusOr<SubmitResult> {
    auto job = GetJob(id);
    if (!job.ok()) return job.status();
    if (!google::protobuf::util::MessageDifferencer::Equals(job->spec(), spec)) {
      return absl::AlreadyExistsError(absl::StrCat("spec.request_id: '", spec.request_id(),
                                                   "' was already used by job ", id,
                                                   " with a different spec; use a new request_id"));
    }
    return SubmitResult{*job, true};
  };
  if (!dedup_id.empty()) return dedup(dedup_id);

  absl::Time t0 = absl::Now();
  placement::Decision d = engine_.Place(req, snap);
  placement::Snapshot used = snap;
  bool capacity_blind = false;  // planned as if every node were free: a waiting job
  if (!d.feasible) {
    // Would it fit if capacity and quota were free? Then it waits.
    placement::Snapshot free_snap;
    {
      absl::ReaderMutexLock l(&mu_);
      free_snap = BuildSnapshot(spec.team(), true);
    }
    placement::Decision d2 = engine_.Place(req, free_snap);
    bool team_budget_only = false;
    if (!d2.feasible) {
      // Does the team budget alone stand in the way?
      placement::Snapshot unlimited = free_snap;
      unlimited.team.cost_headroom_micros = -1;
      unlimited.team.carbon_headroom_mg = -1;
      placement::Decision d3 = engine_.Place(req, unlimited);
      if (d3.feasible) {
        team_budget_only = true;
        d2 = d3;
      }
    }
    if (d2.feasible && !team_budget_only) {
      // It waits (quota or capacity, decided live when it is stored).
      d = d2;
      used = free_snap;
      capacity_blind = true;
    } else if (team_budget_only) {
      absl::ReaderMutexLock l(&mu_);
      absl::Status st = ledger_.CheckHeadroom(spec.team(), budget::PeriodOf(snap.now),
                                              d2.chosen.cost_micros, d2.chosen.carbon_mg);
      if (st.ok()) {
        st = WithReason(absl::ResourceExhaustedError(
                            absl::StrCat("team '", spec.team(), "' budget: ", d.summary)),
                        reason::kTeamBudgetExhausted, {{"team", spec.team()}});
      }
      return st;  // the ledger's own reason names the team and the budget
    } else {
      v1::Quote q = ToQuote(d, snap);
      absl::Status st = absl::FailedPreconditionError(
          absl::StrCat("no placement meets the job's constraints: ", d.summary));
      st.SetPayload(kQuotePayloadUrl, absl::Cord(q.SerializeAsString()));
      return WithReason(std::move(st), reason::kCapExceeded);
    }
  }
  if (options_.on_placement) options_.on_placement(absl::ToDoubleSeconds(absl::Now() - t0));
  v1::Quote quote = ToQuote(d, used);
  // The snapshots share the pool view; release them before the batch so that
  // it can refresh the view in place (RebuildPoolViews).
  snap = placement::Snapshot();
  used = placement::Snapshot();
  if (options_.on_quoted) options_.on_quoted();

  SubmitResult result;
  absl::Status st = Run([&](Txn& txn) -> absl::Status {
    absl::Time now = options_.clock->Now();
    if (!spec.request_id().empty()) {
      auto it = by_request_.find(RequestKey(spec.team(), spec.request_id()));
      if (it != by_request_.end()) {
        dedup_id = it->second;
        return absl::OkStatus();
      }
    }
    if (!ledger_.FindTeam(spec.team()))
      return absl::InvalidArgumentError(
          absl::StrCat("spec.team: unknown team '", spec.team(), "'"));
    {
      // A job larger than the team's whole quota for its GPU type can never run.
      const v1::Team* team = ledger_.FindTeam(spec.team());
      auto q = team->gpu_quota_by_type().find(quote.chosen().gpu_type());
      if (q != team->gpu_quota_by_type().end() && q->second > 0 && spec.gpus() > q->second) {
        return WithReason(absl::FailedPreconditionError(absl::StrCat(
                              "spec.gpus: ", spec.gpus(), " ", quote.chosen().gpu_type(),
                              " GPUs exceed team '", spec.team(), "' quota of ", q->second,
                              " for that type; ask for a larger quota or "
                              "allow other spec.gpu_types")),
                          reason::kGpuTypeQuota, {{"gpu_type", quote.chosen().gpu_type()}});
      }
    }
    Job job;
    job.set_id(NewJobId());
    *job.mutable_spec() = spec;
    *job.mutable_placement() = quote.chosen();
    *job.mutable_quote() = std::move(quote);  // this command runs once
    *job.mutable_submit_time() = ToProto(now);
    job.set_sequence(next_sequence_);
    absl::Duration runtime = FromProto(job.placement().end()) - FromProto(job.placement().start());
    if (job.placement().slots_size() > 0) {
      runtime = absl::ZeroDuration();
      for (const auto& sl : job.placement().slots())
        runtime += FromProto(sl.end()) - FromProto(sl.start());
    }
    *job.mutable_remaining() = ToProtoDuration(runtime);
    if (submit_options.only_if_it_can_start_now && FromProto(job.placement().start()) <= now) {
      // Checked before anything changes, so a refusal leaves no trace.
      const bool quota = QuotaAllows(job);
      if (!quota || !FindAllocation(job)) {
        absl::Status st = absl::ResourceExhaustedError(absl::StrCat(
            "team '", spec.team(), "' cannot start ", spec.gpus(), " ", job.placement().gpu_type(),
            " GPU(s) now: ",
            quota ? absl::StrCat("no free capacity in pool ", job.placement().pool_id())
                  : "team GPU quota is full"));
        return WithReason(std::move(st), reason::kCannotStartNow,
                          {{"cause", quota ? "CAPACITY" : "QUOTA"}});
      }
    }
    // Every plan is made against the calendar (a waiting job's against all nodes).
    if (check_calendar && FromProto(job.placement().start()) > now &&
        !CalendarAllowsPlan(job, capacity_blind)) {
      // Booked by a job stored since the quote: nothing written, quote again.
      absl::Status st = absl::AbortedError("capacity calendar changed since the quote");
      st.SetPayload(kCalendarConflictPayloadUrl, absl::Cord("1"));
      return st;
    }
    AlertBaseline before = BaselineForAlerts(spec.team(), budget::PeriodOf(now));
    auto rows = ledger_.Reserve(job.id(), spec.team(), now, job.placement().cost_micros(),
                                job.placement().carbon_mg(), "admission quote");
    if (!rows.ok()) return rows.status();
    ++next_sequence_;
    txn.batch.ledger.insert(txn.batch.ledger.end(), rows->begin(), rows->end());
    job.set_reserved_cost_micros(job.placement().cost_micros());
    job.set_reserved_carbon_mg(job.placement().carbon_mg());
    std::string id = job.id();
    order_.push_back(id);
    if (!spec.request_id().empty()) by_request_[RequestKey(spec.team(), spec.request_id())] = id;
    Job& j = jobs_.try_emplace(id, std::move(job)).first->second;
    active_[j.sequence()] = &j;
    // One SUBMITTED event carries the job in its initial state.
    absl::Time start = FromProto(j.placement().start());
    JobState initial;
    std::string why;
    if (start <= now && QuotaAllows(j) && TryAllocate(j, now)) {
      initial = v1::JOB_STATE_RUNNING;
      *j.mutable_start_time() = ToProto(now);
      *j.mutable_accrued_until() = ToProto(now);
      txn.launches.push_back({j.id(), FromProto(j.remaining())});
      why = absl::StrCat("running on ", j.placement().pool_id(), " (", j.placement().nodes(),
                         " node(s))");
    } else if (start <= now) {
      j.set_pending_reason(QuotaAllows(j) ? "CAPACITY" : "QUOTA");
      initial = v1::JOB_STATE_PENDING;
      why = absl::StrCat("waiting for ", j.pending_reason() == "QUOTA" ? "GPU quota" : "capacity");
    } else {
      initial = v1::JOB_STATE_PLANNED;
      why = absl::StrCat("planned start ",
                         absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", start, absl::UTCTimeZone()));
    }
    RETURN_IF_ERROR(CheckTransition(j.state(), initial));
    j.set_state(initial);
    IndexJob(j);
    j.set_message(why);
    Emit(txn, j, "SUBMITTED", absl::StrCat(why, "; ", j.quote().summary()));
    MaybeTeamAlerts(txn, before, budget::PeriodOf(now));
    result.job = j;
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  if (!dedup_id.empty() && result.job.id().empty()) return dedup(dedup_id);
  return result;
}

absl::StatusOr<Job> SchedulerCore::Cancel(const std::string& id, const std::string& reason) {
  Job out;
  RETURN_IF_ERROR(Run([&](Txn& txn) -> absl::Status {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
    Job& j = it->second;
    if (IsTerminal(j.state())) {
      return WithReason(absl::FailedPreconditionError(
                            absl::StrCat("job ", id, " is already ", StateName(j.state()),
                                         "; only unfinished jobs can be cancelled")),
                        reason::kJobFinished, {{"state", StateName(j.state())}});
    }
    absl::Time now = options_.clock->Now();
    if (j.state() == v1::JOB_STATE_RUNNING) AccrueJob(txn, j, now);
    if (!IsTerminal(j.state())) {
      FinishJob(txn, j, v1::JOB_STATE_CANCELLED, "release",
                reason.empty() ? "cancelled by user" : absl::StrCat("cancelled: ", reason), now);
    }
    out = j;
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::string> SchedulerCore::JobIdForRequest(const std::string& request_id) const {
  CommittedReadLock l(this);
  for (const auto& [key, id] : by_request_) {
    size_t z = key.find('\0');
    if (z != std::string::npos && key.compare(z + 1, std::string::npos, request_id) == 0) return id;
  }
  return absl::NotFoundError(absl::StrCat("no job with request_id '", request_id, "'"));
}

// ---------------------------------------------------------------------------
// State changes.

void SchedulerCore::Emit(Txn& txn, const Job& job, const std::string& type,
                         const std::string& message) {
  JobEvent e;
  e.set_revision(next_revision_++);
  e.set_job_id(job.id());
  e.set_team(job.spec().team());
  e.set_type(type);
  e.set_state(job.state());
  *e.mutable_time() = ToProto(options_.clock->Now());
  e.set_message(message);
  if (!job.id().empty()) {
    Job& j = jobs_[job.id()];
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

void SchedulerCore::Transition(Txn& txn, Job& job, JobState to, const std::string& message) {
  absl::Status st = CheckTransition(job.state(), to);
  if (!st.ok()) {
    // A bug, never user input: refuse the move and keep the job as it is.
    GL_LOG_ERROR("illegal transition refused", F("job", job.id()), F("error", st.message()));
    return;
  }
  UnindexJob(job);
  job.set_state(to);
  IndexJob(job);
  job.set_message(message);
  if (to != v1::JOB_STATE_PENDING) job.clear_pending_reason();
  if (IsTerminal(to)) active_.erase(job.sequence());
  Emit(txn, job, "STATE", message);
}

void SchedulerCore::IndexJob(Job& job) {
  const int64_t seq = job.sequence();
  switch (job.state()) {
    case v1::JOB_STATE_RUNNING:
      running_[seq] = &job;
      break;
    case v1::JOB_STATE_PLANNED: {
      // The placement of a planned job does not change until it starts.
      absl::Time start = FromProto(job.placement().start());
      planned_by_start_.insert({start, seq});
      index_key_[seq] = start;
      BookJob(job);
      break;
    }
    case v1::JOB_STATE_PENDING:
      pending_[seq] = &job;
      if (job.spec().has_deadline()) {
        absl::Time latest = FromProto(job.spec().deadline()) - FromProto(job.remaining());
        pending_by_latest_start_.insert({latest, seq});
        index_key_[seq] = latest;
      }
      break;
    default:
      break;
  }
}

void SchedulerCore::UnindexJob(const Job& job) {
  const int64_t seq = job.sequence();
  auto key = index_key_.find(seq);
  switch (job.state()) {
    case v1::JOB_STATE_RUNNING:
      running_.erase(seq);
      break;
    case v1::JOB_STATE_PLANNED:
      if (key != index_key_.end()) planned_by_start_.erase({key->second, seq});
      UnbookJob(seq);
      break;
    case v1::JOB_STATE_PENDING:
      pending_.erase(seq);
      if (key != index_key_.end()) pending_by_latest_start_.erase({key->second, seq});
      break;
    default:
      break;
  }
  if (key != index_key_.end()) index_key_.erase(key);
}

bool SchedulerCore::QuotaAllows(const Job& job) const {
  const v1::Team* t = ledger_.FindTeam(job.spec().team());
  if (!t) return false;
  if (t->gpu_quota() > 0) {
    auto it = running_gpus_.find(job.spec().team());
    int used = it == running_gpus_.end() ? 0 : it->second;
    if (used + job.spec().gpus() > t->gpu_quota()) return false;
  }
  auto q = t->gpu_quota_by_type().find(job.placement().gpu_type());
  if (q != t->gpu_quota_by_type().end() && q->second > 0) {
    int used = 0;
    auto it = running_gpus_by_type_.find(job.spec().team());
    if (it != running_gpus_by_type_.end()) {
      auto k = it->second.find(job.placement().gpu_type());
      if (k != it->second.end()) used = k->second;
    }
    if (used + job.spec().gpus() > q->second) return false;
  }
  return true;
}

std::optional<SchedulerCore::Allocation> SchedulerCore::FindAllocation(const Job& job) const {
  auto pit = pool_index_.find(job.placement().pool_id());
  if (pit == pool_index_.end()) return std::nullopt;
  const PoolState& ps = pools_[pit->second];
  int g = job.spec().gpus();
  int gpn = ps.pool.gpus_per_node;
  if (gpn <= 0) return std::nullopt;
  Allocation a;
  a.pool = pit->second;
  if (g <= gpn) {
    // Best fit: the node with the fewest free GPUs that still fits, so whole
    // nodes stay free for multi-node jobs.
    int best = -1;
    for (int i = 0; i < static_cast<int>(ps.free_gpus.size()); ++i) {
      if (ps.free_gpus[i] >= g && (best < 0 || ps.free_gpus[i] < ps.free_gpus[best])) best = i;
    }
    if (best < 0) return std::nullopt;
    a.nodes.push_back({best, g});
  } else {
    int need = (g + gpn - 1) / gpn;
    for (int i = 0;
         i < static_cast<int>(ps.free_gpus.size()) && static_cast<int>(a.nodes.size()) < need;
         ++i) {
      if (ps.free_gpus[i] == gpn) a.nodes.push_back({i, gpn});
    }
    if (static_cast<int>(a.nodes.size()) < need) return std::nullopt;
  }
  return a;
}

bool SchedulerCore::TryAllocate(Job& job, absl::Time now) {
  std::optional<Allocation> a = FindAllocation(job);
  if (!a) return false;
  auto booked = booked_deltas_.find(a->pool);
  if (booked != booked_deltas_.end()) {
    const PoolState& ps = pools_[a->pool];
    int whole = 0;  // wholly free nodes this job would take
    for (const auto& [n, k] : a->nodes) whole += ps.free_gpus[n] == ps.pool.gpus_per_node;
    const absl::Time end = now + FromProto(job.remaining());
    if (whole > 0 &&
        placement::MaxBooked(booked->second, absl::ToUnixNanos(now), absl::ToUnixNanos(end)) +
                whole >
            FreeWholeNodes(a->pool))
      return false;
  }
  ApplyAllocation(job, *std::move(a));
  return true;
}

bool SchedulerCore::Reallocate(Job& job) {
  std::optional<Allocation> a = FindAllocation(job);
  if (!a) return false;
  ApplyAllocation(job, *std::move(a));
  return true;
}

void SchedulerCore::ApplyAllocation(Job& job, Allocation a) {
  PoolState& ps = pools_[a.pool];
  const int g = job.spec().gpus();
  for (const auto& [n, k] : a.nodes) ps.free_gpus[n] -= k;
  view_dirty_ = true;
  running_gpus_[job.spec().team()] += g;
  running_gpus_by_type_[job.spec().team()][ps.pool.gpu_type] += g;
  allocations_[job.id()] = std::move(a);
}

int SchedulerCore::FreeWholeNodes(int pool) const {
  const PoolState& ps = pools_[pool];
  int n = 0;
  for (int f : ps.free_gpus) n += f == ps.pool.gpus_per_node;
  return n;
}

void SchedulerCore::BookJob(const Job& job) {
  auto pit = pool_index_.find(job.placement().pool_id());
  if (pit == pool_index_.end() || job.placement().nodes() <= 0) return;
  JobBooking b;
  b.pool = pit->second;
  const int nodes = job.placement().nodes();
  if (job.placement().slots_size() > 0) {
    for (const auto& sl : job.placement().slots())
      b.windows.push_back({FromProto(sl.start()), FromProto(sl.end()), nodes});
  } else {
    b.windows.push_back(
        {FromProto(job.placement().start()), FromProto(job.placement().end()), nodes});
  }
  placement::BookingDeltas& deltas = booked_deltas_[b.pool];
  for (const auto& w : b.windows) placement::AddBooking(w, +1, &deltas);
  booked_dirty_.insert(b.pool);
  bookings_[job.sequence()] = std::move(b);
}

void SchedulerCore::UnbookJob(int64_t sequence) {
  auto it = bookings_.find(sequence);
  if (it == bookings_.end()) return;
  const int pool = it->second.pool;
  auto d = booked_deltas_.find(pool);
  if (d != booked_deltas_.end()) {
    for (const auto& w : it->second.windows) placement::AddBooking(w, -1, &d->second);
    if (d->second.empty()) booked_deltas_.erase(d);
  }
  booked_dirty_.insert(pool);
  bookings_.erase(it);
}

void SchedulerCore::RebuildBookingView() {
  if (booked_dirty_.empty()) return;
  for (int pool : booked_dirty_) {
    auto d = booked_deltas_.find(pool);
    if (d == booked_deltas_.end()) {
      booked_profiles_.erase(pool);
    } else {
      booked_profiles_[pool] = std::make_shared<const placement::BookedProfile>(d->second);
    }
  }
  booked_dirty_.clear();
  // Profiles are shared: the table copies pointers only.
  booking_view_ = booked_profiles_.empty() ? nullptr
                                           : std::make_shared<const placement::BookingTable>(
                                                 booked_profiles_.begin(), booked_profiles_.end());
}

bool SchedulerCore::CalendarAllowsPlan(const Job& job, bool capacity_blind) {
  auto pit = pool_index_.find(job.placement().pool_id());
  if (pit == pool_index_.end()) return true;
  auto booked = booked_deltas_.find(pit->second);
  if (booked == booked_deltas_.end()) return true;
  const int free = capacity_blind ? pools_[pit->second].pool.nodes : FreeWholeNodes(pit->second);
  const int nodes = std::max(1, job.placement().nodes());
  auto clear = [&](const google::protobuf::Timestamp& a, const google::protobuf::Timestamp& b) {
    return placement::MaxBooked(booked->second, absl::ToUnixNanos(FromProto(a)),
                                absl::ToUnixNanos(FromProto(b))) +
               nodes <=
           free;
  };
  if (job.placement().slots_size() == 0)
    return clear(job.placement().start(), job.placement().end());
  for (const auto& sl : job.placement().slots())
    if (!clear(sl.start(), sl.end())) return false;
  return true;
}

void SchedulerCore::FreeAllocation(const std::string& job_id) {
  auto it = allocations_.find(job_id);
  if (it == allocations_.end()) return;
  PoolState& ps = pools_[it->second.pool];
  const Job& j = jobs_[job_id];
  for (const auto& [n, k] : it->second.nodes) ps.free_gpus[n] += k;
  view_dirty_ = true;
  running_gpus_[j.spec().team()] -= j.spec().gpus();
  running_gpus_by_type_[j.spec().team()][ps.pool.gpu_type] -= j.spec().gpus();
  allocations_.erase(it);
  capacity_changed_ = true;
}

void SchedulerCore::StartJob(Txn& txn, Job& job, absl::Time now) {
  *job.mutable_start_time() = ToProto(now);
  *job.mutable_accrued_until() = ToProto(now);
  txn.launches.push_back({job.id(), FromProto(job.remaining())});
  Transition(txn, job, v1::JOB_STATE_RUNNING,
             absl::StrCat("running on ", job.placement().pool_id(), " (", job.placement().nodes(),
                          " node(s))"));
}

void SchedulerCore::FinishJob(Txn& txn, Job& job, JobState to, const std::string& kind,
                              const std::string& message, absl::Time now) {
  FreeAllocation(job.id());
  txn.kills.push_back(job.id());
  ApplyLedger(txn, ledger_.Release(job.id(), now, kind, message));
  const budget::JobAccount* a = ledger_.FindJob(job.id());
  job.set_reserved_cost_micros(a ? a->cost_reserved_micros : 0);
  job.set_reserved_carbon_mg(a ? a->carbon_reserved_mg : 0);
  *job.mutable_end_time() = ToProto(now);
  Transition(txn, job, to, message);
}

void SchedulerCore::ApplyLedger(Txn& txn, const std::vector<store::LedgerRow>& rows) {
  txn.batch.ledger.insert(txn.batch.ledger.end(), rows.begin(), rows.end());
}

double SchedulerCore::IntensityAt(const std::string& zone, absl::Time t, bool* estimated,
                                  placement::UnknownGrid policy) const {
  auto it = zones_.find(zone);
  if (it == zones_.end() || !it->second) {
    if (estimated) *estimated = true;
    return options_.inventory.default_intensity_g_per_kwh;
  }
  const auto& s = *it->second;
  if (s.unknown_grid()) {
    // Charged as the team's quote assumed (an unknown grid has no real figure).
    if (estimated) *estimated = true;
    return placement::UnknownGridIntensity(s, policy,
                                           options_.inventory.default_intensity_g_per_kwh);
  }
  if (s.stale() || t < s.start() || t >= s.end()) {
    if (estimated) *estimated = true;
    return s.annual_average();
  }
  return s.At(t);
}

void SchedulerCore::AccrueJob(Txn& txn, Job& job, absl::Time now) {
  absl::Time from = FromProto(job.accrued_until());
  if (now <= from) return;  // a clock that went backwards charges nothing
  auto pit = pool_index_.find(job.placement().pool_id());
  if (pit == pool_index_.end()) return;
  const providers::Pool& pool = pools_[pit->second].pool;
  int64_t price = job.placement().spot() && pool.spot_price_micros_per_node_hour > 0
                      ? pool.spot_price_micros_per_node_hour
                      : pool.price_micros_per_node_hour;
  double nodes = std::max(1, job.placement().nodes());
  // Sub-node jobs pay for their share of the node.
  double node_share = job.spec().gpus() < pool.gpus_per_node
                          ? static_cast<double>(job.spec().gpus()) / pool.gpus_per_node
                          : nodes;
  double watts = job.spec().gpus() * pool.gpu_power_w * pool.pue;
  absl::Duration remaining = FromProto(job.remaining());
  // Run windows: the placement's slots, or [start, +inf) for contiguous jobs.
  std::vector<std::pair<absl::Time, absl::Time>> windows;
  if (job.placement().slots_size() > 1) {
    for (const auto& sl : job.placement().slots())
      windows.push_back({FromProto(sl.start()), FromProto(sl.end())});
    // Work the slots could not hold (the job started after its first slot,
    // e.g. it waited for capacity) runs right after the last one: without
    // this the job would never finish and would hold its nodes forever.
    windows.push_back({windows.back().second, absl::InfiniteFuture()});
  } else {
    windows.push_back({absl::InfinitePast(), absl::InfiniteFuture()});
  }
  // Charge per segment cut at hour, month and window boundaries, so each hour
  // pays its own intensity and each month its own part.
  struct Charge {
    double cost = 0, carbon = 0, energy = 0;
    absl::Time at;
  };
  std::map<std::string, Charge> by_period;
  absl::Duration computed = absl::ZeroDuration();
  absl::Time t = from;
  while (t < now && computed < remaining) {
    absl::Time next =
        std::min(now, absl::FromUnixSeconds((absl::ToUnixSeconds(t) / 3600 + 1) * 3600));
    next = std::min(next, budget::PeriodEnd(t));
    bool inside = false;
    for (const auto& [ws, we] : windows) {
      if (t >= ws && t < we) {
        inside = true;
        next = std::min(next, we);
        break;
      }
      if (ws > t) next = std::min(next, ws);
    }
    if (inside) {
      absl::Duration seg = std::min(next - t, remaining - computed);
      next = t + seg;
      double h = Hours(seg);
      double energy = watts * h;
      bool est = false;
      double intensity = IntensityAt(pool.zone, t, &est, TeamUnknownGrid(job.spec().team()));
      Charge& c = by_period[budget::PeriodOf(t)];
      c.at = t;
      c.cost += static_cast<double>(price) * node_share * h;
      c.energy += energy;
      c.carbon += MgFromWhAndIntensity(energy, intensity);
      computed += seg;
    }
    if (next <= t) break;
    t = next;
  }
  absl::Time new_until = t;
  bool stop = false;
  std::string stop_reason;
  for (auto& [period, c] : by_period) {
    int64_t cost = RoundToInt64(c.cost), carbon = RoundToInt64(c.carbon);
    int64_t energy_mwh = RoundToInt64(c.energy * 1000);
    // Job caps: charge up to the cap, then stop.
    double f = 1.0;
    const auto& spec = job.spec();
    if (spec.max_cost_micros() > 0 && job.accrued_cost_micros() + cost >= spec.max_cost_micros() &&
        cost > 0) {
      f = std::min(f,
                   static_cast<double>(spec.max_cost_micros() - job.accrued_cost_micros()) / cost);
      stop = true;
      stop_reason = absl::StrCat("accrued cost reached the job cap ",
                                 Money::FromMicros(spec.max_cost_micros()).ToString());
    }
    if (spec.max_carbon_mg() > 0 && job.accrued_carbon_mg() + carbon >= spec.max_carbon_mg() &&
        carbon > 0) {
      double fc = static_cast<double>(spec.max_carbon_mg() - job.accrued_carbon_mg()) / carbon;
      if (fc < f || !stop)
        stop_reason = absl::StrCat("accrued carbon reached the job cap ",
                                   Carbon::FromMg(spec.max_carbon_mg()).ToString());
      f = std::min(f, fc);
      stop = true;
    }
    f = std::clamp(f, 0.0, 1.0);
    if (f < 1.0) {
      cost = static_cast<int64_t>(cost * f);
      carbon = static_cast<int64_t>(carbon * f);
      energy_mwh = static_cast<int64_t>(energy_mwh * f);
    }
    AlertBaseline before = BaselineForAlerts(spec.team(), period);
    budget::AccrueResult r =
        ledger_.Accrue(job.id(), c.at, now, cost, carbon, energy_mwh, "running");
    ApplyLedger(txn, r.rows);
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
      stop_reason = absl::StrCat("team '", spec.team(), "' ", r.limit, " reached");
    }
    MaybeTeamAlerts(txn, before, period);
    // Job-level alert at the team's alert ratio of the job's cap.
    const v1::Team* team = ledger_.FindTeam(spec.team());
    double ratio = team ? AlertRatioOf(*team) : kDefaultAlertRatio;
    if (!job.alerted() &&
        ((spec.max_cost_micros() > 0 &&
          job.accrued_cost_micros() >= ratio * spec.max_cost_micros()) ||
         (spec.max_carbon_mg() > 0 && job.accrued_carbon_mg() >= ratio * spec.max_carbon_mg()))) {
      job.set_alerted(true);
      Emit(txn, job, "BUDGET_ALERT", absl::StrFormat("job reached %.0f%% of its cap", ratio * 100));
    }
    if (stop) break;
  }
  *job.mutable_remaining() =
      (ToProtoDuration(std::max(absl::ZeroDuration(), remaining - computed)));
  *job.mutable_accrued_until() = ToProto(new_until);
  const budget::JobAccount* a = ledger_.FindJob(job.id());
  job.set_reserved_cost_micros(a ? a->cost_reserved_micros : 0);
  job.set_reserved_carbon_mg(a ? a->carbon_reserved_mg : 0);
  txn.dirty.insert(job.id());
  if (stop) {
    FinishJob(txn, job, v1::JOB_STATE_BUDGET_EXHAUSTED, "release", stop_reason, now);
  } else if (FromProto(job.remaining()) <= absl::ZeroDuration()) {
    FinishJob(txn, job, v1::JOB_STATE_SUCCEEDED, "settle",
              absl::StrCat(
                  "completed: cost ", Money::FromMicros(job.accrued_cost_micros()).ToString(),
                  " (forecast ", Money::FromMicros(job.quote().chosen().cost_micros()).ToString(),
                  "), carbon ", Carbon::FromMg(job.accrued_carbon_mg()).ToString(), " (forecast ",
                  Carbon::FromMg(job.quote().chosen().carbon_mg()).ToString(), ")"),
              now);
  }
}

SchedulerCore::AlertBaseline SchedulerCore::BaselineForAlerts(const std::string& team,
                                                              const std::string& period) const {
  AlertBaseline b;
  b.team = team;
  b.team_before = ledger_.RollupTotals(team, period);
  const v1::Team* t = ledger_.FindTeam(team);
  if (t && !t->parent().empty() && ledger_.FindTeam(t->parent())) {
    b.parent = t->parent();
    b.parent_before = ledger_.RollupTotals(b.parent, period);
  }
  return b;
}

void SchedulerCore::MaybeTeamAlerts(Txn& txn, const AlertBaseline& baseline,
                                    const std::string& period) {
  MaybeTeamAlert(txn, baseline.team, baseline.team_before, period);
  if (!baseline.parent.empty())
    MaybeTeamAlert(txn, baseline.parent, baseline.parent_before, period);
}

void SchedulerCore::MaybeTeamAlert(Txn& txn, const std::string& team, const budget::Totals& before,
                                   const std::string& period) {
  const v1::Team* t = ledger_.FindTeam(team);
  if (!t) return;
  double ratio = AlertRatioOf(*t);
  // The period that was charged, not the clock's: a job charged for last
  // month at a tick in this month compares last month with itself.
  budget::Totals after = ledger_.RollupTotals(team, period);
  auto crossed = [&](int64_t budget, int64_t b, int64_t a) {
    return budget > 0 && b < ratio * budget && a >= ratio * budget;
  };
  std::string what;
  if (crossed(t->monthly_cost_budget_micros(),
              before.cost_spent_micros + before.cost_reserved_micros,
              after.cost_spent_micros + after.cost_reserved_micros))
    what = "cost";
  else if (crossed(t->monthly_carbon_budget_mg(),
                   before.carbon_spent_mg + before.carbon_reserved_mg,
                   after.carbon_spent_mg + after.carbon_reserved_mg))
    what = "carbon";
  if (what.empty()) return;
  Job pseudo;  // team-level event: no job
  pseudo.mutable_spec()->set_team(team);
  Emit(txn, pseudo, "BUDGET_ALERT",
       absl::StrFormat("team '%s' reached %.0f%% of its monthly %s budget", team, ratio * 100,
                       what));
}

void SchedulerCore::DoTick(Txn& txn, absl::Time now) {
  if (now < last_tick_) {
    if (!clock_behind_) {
      GL_LOG_WARN("clock went backwards; nothing is charged until it catches up",
                  F("now", absl::FormatTime(now)), F("last", absl::FormatTime(last_tick_)));
    }
    clock_behind_ = true;
  } else {
    clock_behind_ = false;
  }
  last_tick_ = std::max(last_tick_, now);
  for (const auto& c : options_.executor->Poll()) {
    auto it = jobs_.find(c.job_id);
    if (it == jobs_.end() || it->second.state() != v1::JOB_STATE_RUNNING) continue;
    AccrueJob(txn, it->second, now);
    if (it->second.state() == v1::JOB_STATE_RUNNING) {
      FinishJob(txn, it->second, c.succeeded ? v1::JOB_STATE_SUCCEEDED : v1::JOB_STATE_FAILED,
                c.succeeded ? "settle" : "release", c.message, now);
    }
  }
  // Copies, in submit order, since jobs change state (and index) below.
  std::vector<Job*> running;
  running.reserve(running_.size());
  for (const auto& [_, j] : running_) running.push_back(j);
  for (Job* j : running) {
    if (j->state() != v1::JOB_STATE_RUNNING) continue;
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
  // Teams whose policy is "stop" stop their running jobs once the budget is spent.
  absl::flat_hash_set<std::string> stop_teams;
  std::string period = budget::PeriodOf(now);
  for (const auto& t : ledger_.Teams()) {
    if (t.on_budget_exhausted() != "stop") continue;
    if (ledger_.CostHeadroom(t.name(), period) == 0 ||
        ledger_.CarbonHeadroom(t.name(), period) == 0)
      stop_teams.insert(t.name());
  }
  if (!stop_teams.empty()) {
    for (Job* j : running) {
      if (j->state() != v1::JOB_STATE_RUNNING || !stop_teams.contains(j->spec().team())) continue;
      FinishJob(txn, *j, v1::JOB_STATE_BUDGET_EXHAUSTED, "release",
                absl::StrCat("team '", j->spec().team(),
                             "' budget spent; team policy is to stop running jobs"),
                now);
    }
  }
  // Planned jobs whose start has come, in submit order.
  auto by_sequence = [](const Job* a, const Job* b) { return a->sequence() < b->sequence(); };
  std::vector<Job*> due;
  for (auto it = planned_by_start_.begin(); it != planned_by_start_.end() && it->first <= now; ++it)
    due.push_back(active_.at(it->second));
  std::sort(due.begin(), due.end(), by_sequence);
  for (Job* j : due) {
    if (j->state() != v1::JOB_STATE_PLANNED) continue;
    UnbookJob(j->sequence());  // its own booking is what it now takes
    if (QuotaAllows(*j) && TryAllocate(*j, now)) {
      StartJob(txn, *j, now);
    } else {
      j->set_pending_reason(QuotaAllows(*j) ? "CAPACITY" : "QUOTA");
      Transition(
          txn, *j, v1::JOB_STATE_PENDING,
          absl::StrCat("waiting for ", j->pending_reason() == "QUOTA" ? "GPU quota" : "capacity"));
    }
  }
  // Waiting jobs that can no longer meet their deadline (now + remaining >
  // deadline, i.e. their latest start is before now) fail and give their
  // reservation back, instead of running late.
  std::vector<Job*> late;
  for (auto it = pending_by_latest_start_.begin();
       it != pending_by_latest_start_.end() && it->first < now; ++it)
    late.push_back(active_.at(it->second));
  std::sort(late.begin(), late.end(), by_sequence);
  for (Job* j : late) {
    if (j->state() != v1::JOB_STATE_PENDING) continue;
    absl::Time deadline = FromProto(j->spec().deadline());
    FinishJob(txn, *j, v1::JOB_STATE_FAILED, "release",
              absl::StrCat("deadline ",
                           absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", deadline, absl::UTCTimeZone()),
                           " can no longer be met (waited for ",
                           j->pending_reason() == "QUOTA" ? "GPU quota" : "capacity", ")"),
              now);
  }
  ReplanWaiting(txn, now);
}

void SchedulerCore::ReplanWaiting(Txn& txn, absl::Time now) {
  // Only freed capacity, a raised quota or new pools can let a waiting job run.
  if (!capacity_changed_) return;
  capacity_changed_ = false;
  // Waiting jobs by team, each team's queue by priority then submit order;
  // teams take turns so that one team's backlog cannot starve another.
  std::map<std::string, std::vector<Job*>> by_team;
  for (const auto& [_, j] : pending_) by_team[j->spec().team()].push_back(j);
  for (auto& [_, v] : by_team) {
    std::sort(v.begin(), v.end(), [](Job* a, Job* b) {
      if (a->spec().priority() != b->spec().priority())
        return a->spec().priority() > b->spec().priority();
      return a->sequence() < b->sequence();
    });
  }
  // Moving a job to another pool needs a placement run; bound them per tick so
  // a long queue cannot stall the writer (the rest wait for the next tick).
  int replans_left = 16;
  bool retry_later = false;
  size_t round = 0;
  bool any = true;
  auto running_gpus = [this](const std::string& team) {
    auto it = running_gpus_.find(team);
    return it == running_gpus_.end() ? 0 : it->second;
  };
  while (any) {
    any = false;
    // In each round the team with the fewest running GPUs goes first, then the
    // one whose waiting job is oldest: when capacity frees up one job at a
    // time, teams take turns (in name order the first team took every turn).
    std::vector<std::pair<std::string, std::vector<Job*>*>> turns;
    for (auto& [name, queue] : by_team)
      if (round < queue.size()) turns.push_back({name, &queue});
    std::sort(turns.begin(), turns.end(), [&](const auto& a, const auto& b) {
      int ra = running_gpus(a.first), rb = running_gpus(b.first);
      if (ra != rb) return ra < rb;
      return (*a.second)[round]->sequence() < (*b.second)[round]->sequence();
    });
    for (auto& [team, queue] : turns) {
      any = true;
      Job& j = *(*queue)[round];
      if (!QuotaAllows(j)) {
        if (j.pending_reason() != "QUOTA") {
          j.set_pending_reason("QUOTA");
          txn.dirty.insert(j.id());
        }
        continue;
      }
      // Same pool first: the reservation was made for it.
      if (TryAllocate(j, now)) {
        StartJob(txn, j, now);
        continue;
      }
      if (j.pending_reason() != "CAPACITY") {  // quota allows it now; nodes do not
        j.set_pending_reason("CAPACITY");
        txn.dirty.insert(j.id());
      }
      if (replans_left <= 0) {
        retry_later = true;
        continue;
      }
      --replans_left;
      // Try another pool now, within the job's reservation.
      auto req = ToRequest(j.spec());
      if (!req.ok()) continue;
      RebuildBookingView();  // this tick's changes too
      placement::Snapshot snap = BuildSnapshot(team, false, /*fresh=*/true);
      req->not_before = now;
      req->top_k = 0;
      req->max_cost_micros = req->max_cost_micros > 0
                                 ? std::min<int64_t>(req->max_cost_micros, j.reserved_cost_micros())
                                 : j.reserved_cost_micros();
      snap.team.cost_headroom_micros = -1;
      snap.team.carbon_headroom_mg = -1;
      placement::Decision d = engine_.Place(*req, snap);
      if (!d.feasible || d.chosen.start > now || d.chosen.carbon_mg > j.reserved_carbon_mg())
        continue;
      v1::Placement p = ToPlacement(d.chosen, snap);
      v1::Placement old = j.placement();
      google::protobuf::Duration old_remaining = j.remaining();
      *j.mutable_placement() = p;
      absl::Duration runtime = d.chosen.runtime > absl::ZeroDuration()
                                   ? d.chosen.runtime
                                   : d.chosen.end - d.chosen.start;
      *j.mutable_remaining() = ToProtoDuration(runtime);
      if (TryAllocate(j, now)) {
        StartJob(txn, j, now);
      } else {
        *j.mutable_placement() = old;
        *j.mutable_remaining() = old_remaining;
      }
    }
    ++round;
  }
  if (retry_later) capacity_changed_ = true;
}

// ---------------------------------------------------------------------------
// Reads.

absl::StatusOr<Job> SchedulerCore::GetJob(const std::string& id) const {
  CommittedReadLock l(this);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
  return it->second;
}

absl::StatusOr<ListJobsPage> SchedulerCore::ListJobs(const ListJobsQuery& q) const {
  int size = q.page_size <= 0 ? 100 : q.page_size;
  if (size > 1000) return absl::InvalidArgumentError("page_size: must be at most 1000");
  int64_t after = 0;
  if (!q.page_token.empty()) {
    if (!absl::SimpleAtoi(q.page_token, &after) || after < 0)
      return absl::InvalidArgumentError("page_token: not a token returned by ListJobs");
  }
  ListJobsPage page;
  CommittedReadLock l(this);
  // order_[i] has sequence >= i + 1; find the first with sequence > after.
  auto it = std::partition_point(order_.begin(), order_.end(), [&](const std::string& id) {
    return jobs_.at(id).sequence() <= after;
  });
  for (; it != order_.end(); ++it) {
    const Job& j = jobs_.at(*it);
    if (!q.team.empty() && j.spec().team() != q.team) continue;
    if (!q.states.empty() &&
        std::find(q.states.begin(), q.states.end(), j.state()) == q.states.end())
      continue;
    if (static_cast<int>(page.jobs.size()) == size) {
      page.next_page_token = absl::StrCat(page.jobs.back().sequence());
      break;
    }
    page.jobs.push_back(j);
  }
  return page;
}

absl::StatusOr<std::vector<JobEvent>> SchedulerCore::EventsAfter(int64_t after, int limit,
                                                                 const std::string& team,
                                                                 const std::string& job_id,
                                                                 int64_t* scanned_to) {
  std::vector<JobEvent> out;
  auto match = [&](const JobEvent& e) {
    return (team.empty() || e.team() == team) && (job_id.empty() || e.job_id() == job_id);
  };
  int64_t cursor = after;
  {
    absl::MutexLock l(&events_mu_);
    if (!ring_.empty() && ring_.front().revision() <= cursor + 1) {
      auto it = std::lower_bound(ring_.begin(), ring_.end(), cursor + 1,
                                 [](const JobEvent& e, int64_t r) { return e.revision() < r; });
      for (; it != ring_.end() && static_cast<int>(out.size()) < limit; ++it) {
        cursor = it->revision();
        if (match(*it)) out.push_back(*it);
      }
      *scanned_to = cursor;
      return out;
    }
  }
  // Older than the ring: read the store (committed events only).
  int64_t head = revision_.load();
  bool done = false;
  while (!done && cursor < head && static_cast<int>(out.size()) < limit) {
    ASSIGN_OR_RETURN(auto events, options_.store->EventsAfter(cursor, 1000));
    if (events.empty()) break;
    for (auto& e : events) {
      if (e.revision() > head || static_cast<int>(out.size()) >= limit) {
        done = true;
        break;
      }
      cursor = e.revision();
      if (match(e)) out.push_back(std::move(e));
    }
  }
  *scanned_to = cursor;
  return out;
}

int64_t SchedulerCore::WaitForEvents(int64_t after, absl::Time deadline) {
  absl::MutexLock l(&events_mu_);
  while (revision_.load() <= after) {
    if (events_cv_.WaitWithDeadline(&events_mu_, deadline)) break;
  }
  return revision_.load();
}

absl::StatusOr<v1::Team> SchedulerCore::SetTeam(const v1::Team& team_in) {
  v1::Team out;
  RETURN_IF_ERROR(Run([&](Txn& txn) -> absl::Status {
    RETURN_IF_ERROR(ValidateTeam(
        team_in, [this](const std::string& n) { return ledger_.FindTeam(n) != nullptr; }));
    v1::Team team = team_in;
    if (team.alert_ratio() == 0) team.set_alert_ratio(kDefaultAlertRatio);
    if (team.on_budget_exhausted().empty()) team.set_on_budget_exhausted("finish");
    if (team.unknown_grid().empty()) team.set_unknown_grid("pessimistic");
    // Two levels: a parent may not itself have a parent, nor a team with children become a child.
    if (!team.parent().empty()) {
      const v1::Team* p = ledger_.FindTeam(team.parent());
      if (p && !p->parent().empty())
        return absl::InvalidArgumentError(absl::StrCat(
            "team.parent: '", team.parent(), "' already has a parent; two levels at most"));
      for (const auto& t : ledger_.Teams())
        if (t.parent() == team.name())
          return absl::InvalidArgumentError(absl::StrCat(
              "team.parent: '", team.name(), "' has child teams and cannot have a parent"));
    }
    absl::Time now = options_.clock->Now();
    const v1::Team* old = ledger_.FindTeam(team.name());
    std::string change =
        old == nullptr
            ? absl::StrCat("created: cost budget ",
                           Money::FromMicros(team.monthly_cost_budget_micros()).ToString(),
                           ", carbon budget ",
                           Carbon::FromMg(team.monthly_carbon_budget_mg()).ToString(),
                           ", gpu quota ", team.gpu_quota())
            : absl::StrCat(
                  "cost budget ", Money::FromMicros(old->monthly_cost_budget_micros()).ToString(),
                  " -> ", Money::FromMicros(team.monthly_cost_budget_micros()).ToString(),
                  ", carbon budget ", Carbon::FromMg(old->monthly_carbon_budget_mg()).ToString(),
                  " -> ", Carbon::FromMg(team.monthly_carbon_budget_mg()).ToString(),
                  ", gpu quota ", old->gpu_quota(), " -> ", team.gpu_quota());
    ledger_.SetTeam(team);
    txn.batch.teams.push_back(team);
    txn.batch.ledger.push_back(ledger_.BudgetChange(team.name(), now, change));
    capacity_changed_ = true;  // a raised quota may let waiting jobs start
    NoteOverLimits();          // a lowered budget or quota is not an overshoot
    out = team;
    return absl::OkStatus();
  }));
  return out;
}

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
  auto it = running_gpus_.find(team);
  u.set_running_gpus(it == running_gpus_.end() ? 0 : it->second);
  u.set_gpu_quota(t ? t->gpu_quota() : 0);
  if (running < 0 || pending < 0) {
    running = 0;
    pending = 0;
    for (const auto& [_, j] : active_) {
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

std::vector<TeamView> SchedulerCore::TeamViews() const {
  CommittedReadLock l(this);
  absl::Time now = options_.clock->Now();
  // One pass over the unfinished jobs, not one per team (1,000 teams scrape fast).
  absl::flat_hash_map<std::string, std::pair<int, int>> counts;  // team -> running, pending
  for (const auto& [_, j] : active_) {
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
  for (const auto& [_, jp] : active_) {
    const Job& j = *jp;
    auto it = index.find(j.spec().team());
    if (it == index.end()) continue;
    TeamView& v = out[it->second];
    if (j.state() == v1::JOB_STATE_PENDING) {
      v.pending_by_reason[j.pending_reason().empty() ? "CAPACITY" : j.pending_reason()]++;
    } else if (j.state() == v1::JOB_STATE_PLANNED) {
      v.pending_by_reason["PLANNED"]++;
    } else if (j.state() == v1::JOB_STATE_RUNNING) {
      // Burn rate: the job's placement rates (cost and carbon per hour of run).
      absl::Duration d = FromProto(j.placement().end()) - FromProto(j.placement().start());
      double h = std::max(1e-9, absl::ToDoubleHours(d));
      v.cost_burn_micros_per_hour += j.placement().cost_micros() / h;
      v.carbon_burn_mg_per_hour += j.placement().carbon_mg() / h;
      // Parents burn with their children.
      const v1::Team* t = ledger_.FindTeam(j.spec().team());
      if (t && !t->parent().empty()) {
        auto p = index.find(t->parent());
        if (p != index.end()) {
          out[p->second].cost_burn_micros_per_hour += j.placement().cost_micros() / h;
          out[p->second].carbon_burn_mg_per_hour += j.placement().carbon_mg() / h;
        }
      }
    }
  }
  return out;
}

std::map<std::string, int> SchedulerCore::JobsByState() const {
  CommittedReadLock l(this);
  std::map<std::string, int> out;
  for (const auto& [_, j] : jobs_) out[StateName(j.state())]++;
  return out;
}

// ---------------------------------------------------------------------------
// Inventory.

std::vector<v1::NodePool> SchedulerCore::ListPools() const {
  CommittedReadLock l(this);
  std::vector<v1::NodePool> out;
  for (const auto& ps : pools_) {
    int full = 0;
    for (int f : ps.free_gpus) full += f == ps.pool.gpus_per_node;
    out.push_back(PoolToProto(ps.pool, full));
  }
  return out;
}

absl::StatusOr<int> SchedulerCore::UpsertPools(const std::vector<v1::NodePool>& pools) {
  for (size_t i = 0; i < pools.size(); ++i) {
    const auto& p = pools[i];
    std::string f = absl::StrCat("pools[", i, "]");
    if (p.id().empty() || p.id().size() > 256)
      return absl::InvalidArgumentError(absl::StrCat(f, ".id: required, at most 256 bytes"));
    if (p.region().empty()) return absl::InvalidArgumentError(absl::StrCat(f, ".region: required"));
    if (p.gpu_type().empty())
      return absl::InvalidArgumentError(absl::StrCat(f, ".gpu_type: required"));
    if (p.gpus_per_node() <= 0 || p.gpus_per_node() > 64)
      return absl::InvalidArgumentError(absl::StrCat(f, ".gpus_per_node: must be 1..64"));
    if (p.nodes() < 0 || p.nodes() > 1'000'000)
      return absl::InvalidArgumentError(absl::StrCat(f, ".nodes: must be 0..1,000,000"));
    if (p.price_micros_per_node_hour() <= 0)
      return absl::InvalidArgumentError(
          absl::StrCat(f, ".price_micros_per_node_hour: must be > 0"));
    if (p.spot_price_micros_per_node_hour() < 0)
      return absl::InvalidArgumentError(
          absl::StrCat(f, ".spot_price_micros_per_node_hour: must be >= 0"));
    if (p.pue() != 0 && (p.pue() < 1.0 || p.pue() > 3.0))
      return absl::InvalidArgumentError(absl::StrCat(f, ".pue: must be in [1, 3] (0 = default)"));
    if (p.gpu_power_w() < 0 || p.gpu_power_w() > 5000)
      return absl::InvalidArgumentError(absl::StrCat(f, ".gpu_power_w: must be in [0, 5000]"));
  }
  int n = 0;
  RETURN_IF_ERROR(Run([&](Txn& txn) -> absl::Status {
    for (const auto& p : pools) {
      providers::Pool pool;
      pool.id = p.id();
      pool.provider = p.provider();
      pool.region = p.region();
      pool.zone = p.grid_zone().empty() ? p.region() : p.grid_zone();
      pool.instance_type = p.instance_type();
      pool.gpu_type = p.gpu_type();
      pool.gpus_per_node = p.gpus_per_node();
      pool.nodes = p.nodes();
      pool.price_micros_per_node_hour = p.price_micros_per_node_hour();
      pool.spot_price_micros_per_node_hour = p.spot_price_micros_per_node_hour();
      const auto* g = options_.inventory.gpus.Find(p.gpu_type());
      pool.gpu_power_w = p.gpu_power_w() > 0 ? p.gpu_power_w() : (g ? g->power_w : 300.0);
      pool.pue = p.pue() > 0 ? p.pue() : 1.1;
      pool.speed = g ? g->speed : 1.0;
      auto it = pool_index_.find(pool.id);
      if (it != pool_index_.end()) {
        PoolState& ps = pools_[it->second];
        // Keep allocations: grow or shrink only the free tail.
        int used_nodes = 0;
        for (int i = 0; i < static_cast<int>(ps.free_gpus.size()); ++i)
          if (ps.free_gpus[i] != ps.pool.gpus_per_node) used_nodes = i + 1;
        if (pool.nodes < used_nodes || pool.gpus_per_node != ps.pool.gpus_per_node) {
          if (pool.gpus_per_node != ps.pool.gpus_per_node && used_nodes > 0)
            return absl::FailedPreconditionError(
                absl::StrCat("pools: ", pool.id, " has running jobs; cannot change gpus_per_node"));
          pool.nodes = std::max(pool.nodes, used_nodes);
        }
        ps.free_gpus.resize(pool.nodes, pool.gpus_per_node);
        ps.pool = pool;
      } else {
        PoolState ps;
        ps.pool = pool;
        ps.free_gpus.assign(pool.nodes, pool.gpus_per_node);
        pool_index_[pool.id] = static_cast<int>(pools_.size());
        pools_.push_back(std::move(ps));
      }
      regions_.insert(pool.region);
      view_dirty_ = true;
      pool_view_.reset();  // static fields changed: no in-place refresh
      pool_view_free_.reset();
      txn.batch.pools.push_back(PoolToProto(pool, 0));
      ++n;
    }
    capacity_changed_ = true;
    return absl::OkStatus();
  }));
  return n;
}

absl::StatusOr<v1::GridZone> SchedulerCore::SetCarbonSeries(const std::string& zone,
                                                            absl::Time start, absl::Duration step,
                                                            std::vector<double> values,
                                                            double annual_average,
                                                            const CarbonSeriesMeta& meta) {
  if (zone.empty() || zone.size() > 64)
    return absl::InvalidArgumentError("zone: required, at most 64 bytes");
  if (step < absl::Minutes(1) || step > absl::Hours(24))
    return absl::InvalidArgumentError("step: must be between 1 minute and 24 hours");
  if (values.empty() || values.size() > 100'000)
    return absl::InvalidArgumentError("points: between 1 and 100,000 points");
  for (size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i]) || values[i] < 0 || values[i] > 5000)
      return absl::InvalidArgumentError(
          absl::StrCat("points[", i, "].g_per_kwh: must be in [0, 5000]"));
  }
  if (!std::isfinite(annual_average) || annual_average < 0 || annual_average > 5000)
    return absl::InvalidArgumentError("annual_average_g_per_kwh: must be in [0, 5000]");
  v1::GridZone out;
  RETURN_IF_ERROR(Run([&](Txn& txn) -> absl::Status {
    double avg = annual_average;
    auto it = zones_.find(zone);
    if (avg == 0) avg = it != zones_.end() && it->second ? it->second->annual_average() : 0;
    if (avg == 0) {
      double s = 0;
      for (double v : values) s += v;
      avg = s / values.size();
    }
    auto series = std::make_shared<providers::CarbonSeries>(zone, start, step, values, avg);
    series->set_source(meta.source);
    series->set_stale(meta.stale);
    absl::Time now = options_.clock->Now();
    absl::Time updated = meta.updated == absl::InfinitePast() ? now : meta.updated;
    zones_[zone] = series;
    zones_view_ = std::make_shared<const ZoneMap>(zones_);
    zone_updated_[zone] = updated;
    store::ZoneRow row;
    row.name = zone;
    row.start_us = absl::ToUnixMicros(start);
    row.step_s = absl::ToInt64Seconds(step);
    row.values = std::move(values);
    row.annual_average = avg;
    row.source = series->source();
    row.updated_us = absl::ToUnixMicros(updated);
    if (meta.persist) txn.batch.zones.push_back(std::move(row));
    out.set_name(zone);
    out.set_annual_average_g_per_kwh(avg);
    *out.mutable_step() = ToProtoDuration(step);
    *out.mutable_series_start() = ToProto(series->start());
    *out.mutable_series_end() = ToProto(series->end());
    out.set_points(static_cast<int>(series->values().size()));
    out.set_source(series->source());
    *out.mutable_updated() = ToProto(updated);
    out.set_current_g_per_kwh(IntensityAt(zone, now, nullptr));
    return absl::OkStatus();
  }));
  return out;
}

std::vector<v1::GridZone> SchedulerCore::ListZones() const {
  CommittedReadLock l(this);
  absl::Time now = options_.clock->Now();
  std::vector<v1::GridZone> out;
  for (const auto& [name, s] : zones_) {
    if (!s) continue;
    v1::GridZone z;
    z.set_name(name);
    if (s->unknown_grid()) {
      z.set_unknown_grid(true);
      z.set_pessimistic_g_per_kwh(s->annual_average());
      z.set_pessimistic_basis(s->unknown_basis());
    } else {
      z.set_annual_average_g_per_kwh(s->annual_average());
    }
    *z.mutable_step() = ToProtoDuration(s->step());
    *z.mutable_series_start() = ToProto(s->start());
    *z.mutable_series_end() = ToProto(s->end());
    z.set_points(static_cast<int>(s->values().size()));
    z.set_source(s->source());
    auto u = zone_updated_.find(name);
    if (u != zone_updated_.end()) *z.mutable_updated() = ToProto(u->second);
    z.set_current_g_per_kwh(IntensityAt(name, now, nullptr));
    out.push_back(std::move(z));
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a.name() < b.name(); });
  return out;
}

std::optional<std::pair<providers::CarbonSeriesPtr, absl::Time>> SchedulerCore::ZoneSeries(
    const std::string& zone) const {
  CommittedReadLock l(this);
  auto it = zones_.find(zone);
  if (it == zones_.end() || !it->second) return std::nullopt;
  auto u = zone_updated_.find(zone);
  return std::make_pair(it->second, u != zone_updated_.end() ? u->second : absl::InfinitePast());
}

absl::Status SchedulerCore::PutToken(const store::TokenRow& token) {
  return Run([&](Txn& txn) -> absl::Status {
    tokens_[token.info.id()] = token;
    txn.batch.tokens.push_back(token);
    return absl::OkStatus();
  });
}

std::vector<store::TokenRow> SchedulerCore::Tokens() const {
  CommittedReadLock l(this);
  std::vector<store::TokenRow> out;
  for (const auto& [_, t] : tokens_) out.push_back(t);
  return out;
}

absl::Status SchedulerCore::Tick() {
  return Run([this](Txn& txn) -> absl::Status {
    DoTick(txn, options_.clock->Now());
    return absl::OkStatus();
  });
}

absl::Status SchedulerCore::CheckInvariants() const {
  CommittedReadLock l(this);
  // Budgets: spent + reserved <= budget for every team and its parent (rollup)
  // in every period with rows; use left over a lowered budget may only shrink.
  for (const auto& [team, period] : ledger_.TeamPeriods()) {
    const v1::Team* own = ledger_.FindTeam(team);
    if (!own) continue;
    for (const v1::Team* t : {own, ledger_.FindTeam(own->parent())}) {
      if (!t) continue;
      budget::Totals r = ledger_.RollupTotals(t->name(), period);
      int64_t cost_limit = t->monthly_cost_budget_micros();
      int64_t carbon_limit = t->monthly_carbon_budget_mg();
      auto over = over_budget_.find(RequestKey(t->name(), period));
      if (over != over_budget_.end()) {
        cost_limit = std::max(cost_limit, over->second.first);
        carbon_limit = std::max(carbon_limit, over->second.second);
      }
      if (t->monthly_cost_budget_micros() > 0 &&
          SatAdd(r.cost_spent_micros, r.cost_reserved_micros) > cost_limit)
        return absl::InternalError(
            absl::StrCat("cost budget overshot: team ", t->name(), " ", period));
      if (t->monthly_carbon_budget_mg() > 0 &&
          SatAdd(r.carbon_spent_mg, r.carbon_reserved_mg) > carbon_limit)
        return absl::InternalError(
            absl::StrCat("carbon budget overshot: team ", t->name(), " ", period));
      if (r.cost_reserved_micros < 0 || r.carbon_reserved_mg < 0)
        return absl::InternalError(
            absl::StrCat("negative reservation: team ", t->name(), " ", period));
    }
  }
  // Quota (total and per GPU type); use left over a lowered quota may only shrink.
  auto quota_limit = [this](const std::string& key, int quota) {
    auto it = over_quota_.find(key);
    return it == over_quota_.end() ? quota : std::max(quota, it->second);
  };
  for (const auto& [team, gpus] : running_gpus_) {
    const v1::Team* t = ledger_.FindTeam(team);
    if (t && t->gpu_quota() > 0 && gpus > quota_limit(team, t->gpu_quota()))
      return absl::InternalError(absl::StrCat("gpu quota exceeded: team ", team));
    if (gpus < 0) return absl::InternalError(absl::StrCat("negative running gpus: team ", team));
  }
  for (const auto& [team, by_type] : running_gpus_by_type_) {
    const v1::Team* t = ledger_.FindTeam(team);
    for (const auto& [type, gpus] : by_type) {
      if (gpus < 0)
        return absl::InternalError(absl::StrCat("negative running gpus: team ", team, " ", type));
      if (!t) continue;
      auto q = t->gpu_quota_by_type().find(type);
      if (q != t->gpu_quota_by_type().end() && q->second > 0 &&
          gpus > quota_limit(RequestKey(team, type), q->second))
        return absl::InternalError(absl::StrCat("gpu quota of ", type, " exceeded: team ", team));
    }
  }
  // Jobs agree with the ledger; finished jobs hold no reservation.
  for (const auto& [id, j] : jobs_) {
    const budget::JobAccount* a = ledger_.FindJob(id);
    if (!a) return absl::InternalError(absl::StrCat("job without ledger rows: ", id));
    if (IsTerminal(j.state()) &&
        (a->open || a->cost_reserved_micros != 0 || a->carbon_reserved_mg != 0))
      return absl::InternalError(absl::StrCat("finished job still holds a reservation: ", id));
    if (a->cost_accrued_micros != j.accrued_cost_micros() ||
        a->carbon_accrued_mg != j.accrued_carbon_mg())
      return absl::InternalError(absl::StrCat("job accrual differs from the ledger: ", id));
    if (j.spec().max_cost_micros() > 0 && j.accrued_cost_micros() > j.spec().max_cost_micros())
      return absl::InternalError(absl::StrCat("job cap overshot: ", id));
    if (j.spec().max_carbon_mg() > 0 && j.accrued_carbon_mg() > j.spec().max_carbon_mg())
      return absl::InternalError(absl::StrCat("job carbon cap overshot: ", id));
  }
  // The by-state indexes hold exactly the unfinished jobs of their state.
  size_t planned = 0, with_deadline = 0;
  for (const auto& [seq, j] : active_) {
    const std::map<int64_t, Job*>* index = nullptr;
    if (j->state() == v1::JOB_STATE_RUNNING) index = &running_;
    if (j->state() == v1::JOB_STATE_PENDING) index = &pending_;
    if (j->state() == v1::JOB_STATE_PLANNED) ++planned;
    if (j->state() == v1::JOB_STATE_PENDING && j->spec().has_deadline()) ++with_deadline;
    if (index && (!index->contains(seq) || index->at(seq) != j))
      return absl::InternalError(absl::StrCat("job missing from its state index: ", j->id()));
  }
  if (running_.size() + pending_.size() + planned != active_.size() ||
      planned_by_start_.size() != planned || pending_by_latest_start_.size() != with_deadline ||
      index_key_.size() != planned + with_deadline)
    return absl::InternalError("state indexes out of step with the jobs");
  // The capacity calendar: one booking per planned job, and the per-pool
  // deltas are exactly the sum of the bookings' windows.
  if (bookings_.size() != planned)
    return absl::InternalError(absl::StrCat("capacity calendar: ", bookings_.size(),
                                            " bookings for ", planned, " planned jobs"));
  absl::flat_hash_map<int, placement::BookingDeltas> deltas;
  for (const auto& [seq, b] : bookings_) {
    auto it = active_.find(seq);
    if (it == active_.end() || it->second->state() != v1::JOB_STATE_PLANNED)
      return absl::InternalError(
          absl::StrCat("capacity calendar: booking of job #", seq, ", which is not planned"));
    for (const auto& w : b.windows) placement::AddBooking(w, +1, &deltas[b.pool]);
  }
  for (auto it = deltas.begin(); it != deltas.end();) {
    if (it->second.empty()) {
      deltas.erase(it++);
    } else {
      ++it;
    }
  }
  if (deltas != booked_deltas_)
    return absl::InternalError("capacity calendar: booked nodes out of step with the bookings");
  // Capacity.
  for (const auto& ps : pools_) {
    for (int f : ps.free_gpus)
      if (f < 0 || f > ps.pool.gpus_per_node)
        return absl::InternalError(absl::StrCat("capacity broken: ", ps.pool.id));
  }
  return absl::OkStatus();
}

}  // namespace greenlight::scheduler
