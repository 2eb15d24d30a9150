// A SchedulerCore wired for deterministic tests: a ManualClock, a temporary
// SQLite store, the simulated executor and a small hand-built inventory with
// real catalog prices (SkyPilot AWS catalog, eu-central-1 and us-east-1) and
// one carbon series per grid zone. Commands go through the queue and the
// writer thread as in the daemon, without automatic ticks (Tick() is the only
// thing that moves jobs) and with quotes always on current capacity.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "greenlight/v1/types.pb.h"
#include "services/providers/carbon_series.h"
#include "services/providers/inventory.h"
#include "services/providers/pool.h"
#include "services/scheduler/core.h"
#include "services/scheduler/executor.h"
#include "services/scheduler/invariants.h"
#include "services/store/sqlite_store.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::testing {

// Tuesday 2026-03-10 08:00 UTC: on an hour boundary, mid-month.
inline absl::Time TestStart() {
  return absl::FromCivil(absl::CivilSecond(2026, 3, 10, 8, 0, 0), absl::UTCTimeZone());
}
inline absl::Time Utc(int y, int mo, int d, int h, int mi = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, 0), absl::UTCTimeZone());
}

// p4d.24xlarge in eu-central-1: 8 x A100 at $40.94475 per node-hour (SkyPilot
// AWS catalog). 400 W per A100 (SXM TDP), PUE 1.1.
inline constexpr char kP4dPool[] = "aws/eu-central-1/p4d.24xlarge";
inline constexpr int64_t kP4dPriceMicros = 40'944'750;
inline constexpr double kA100Watts = 400;
inline constexpr double kPue = 1.1;
// Energy of one GPU-hour on that pool, Wh.
inline constexpr double kWhPerGpuHour = kA100Watts * kPue;

inline providers::Pool MakePool(std::string id, std::string region, std::string zone,
                                std::string instance, std::string gpu, int gpus_per_node, int nodes,
                                int64_t price_micros, double watts = kA100Watts,
                                double pue = kPue) {
  providers::Pool p;
  p.id = std::move(id);
  p.provider = p.id.substr(0, p.id.find('/'));
  p.region = std::move(region);
  p.zone = std::move(zone);
  p.instance_type = std::move(instance);
  p.gpu_type = std::move(gpu);
  p.gpus_per_node = gpus_per_node;
  p.nodes = nodes;
  p.free_nodes = nodes;
  p.price_micros_per_node_hour = price_micros;
  p.gpu_power_w = watts;
  p.pue = pue;
  p.speed = 1.0;
  return p;
}

// The forecast used at admission: hourly from 2026-02-20, strictly rising by
// 0.05 g/kWh per hour, so the earliest start is always the greenest and jobs
// start at once (no time shifting in tests that do not ask for it).
inline std::vector<double> RisingValues(double first, int hours) {
  std::vector<double> v(hours);
  for (int i = 0; i < hours; ++i) v[i] = first + 0.05 * i;
  return v;
}
inline absl::Time SeriesStart() { return Utc(2026, 2, 20, 0); }
inline constexpr int kSeriesHours = 24 * 60;

// Real hourly means of the German grid, 2019-12-20 00:00 .. 2019-12-21 23:00
// UTC (Let's Wait Awhile dataset, data/carbon/lwa2020_ger_ci.csv), gCO2e/kWh.
inline const std::vector<double>& GermanDay() {
  static const std::vector<double> v = {
      217.8, 215.5, 211.7, 210.1, 213.1, 236.4, 265.8, 263.6, 248.5, 235.8, 231.5, 234.3,
      234.8, 242.6, 248.6, 252.9, 256.6, 259.3, 257.3, 254.8, 234.4, 217.0, 206.7, 200.2,
      192.7, 190.4, 191.7, 197.7, 207.8, 238.0, 271.5, 279.8, 278.5, 274.4, 273.7, 281.1,
      287.6, 298.3, 308.1, 301.9, 290.8, 291.3, 292.7, 293.4, 290.1, 275.6, 244.1, 218.6};
  return v;
}

inline providers::CarbonSeriesPtr MakeSeries(const std::string& zone, absl::Time start,
                                             std::vector<double> values, double avg) {
  auto s = std::make_shared<providers::CarbonSeries>(zone, start, absl::Hours(1), std::move(values),
                                                     avg);
  s->set_source("test");
  return s;
}

// One pool (2 nodes x 8 A100) in zone DE with a rising forecast.
inline providers::Inventory SmallInventory(int nodes = 2) {
  providers::Inventory inv;
  inv.pools.push_back(
      MakePool(kP4dPool, "eu-central-1", "DE", "p4d.24xlarge", "A100", 8, nodes, kP4dPriceMicros));
  inv.zones["DE"] = MakeSeries("DE", SeriesStart(), RisingValues(200, kSeriesHours), 350);
  providers::GpuModel a100;
  a100.name = "A100";
  a100.power_w = kA100Watts;
  a100.speed = 1.0;
  inv.gpus.Add(a100, {"a100-40gb"});
  inv.default_intensity_g_per_kwh = 400;
  return inv;
}

// Store wrapper that can be told to fail the next commits (disk trouble) or
// to hold them (a slow disk: the writer waits inside Commit, as during an
// fsync, while callers quote and queue the next batch).
class FailingStore final : public store::Store {
 public:
  explicit FailingStore(store::Store* inner) : inner_(inner) {}
  void FailNextCommits(int n) { fail_ = n; }
  void HoldCommits() {
    absl::MutexLock l(&gate_mu_);
    hold_ = true;
  }
  void ReleaseCommits() {
    absl::MutexLock l(&gate_mu_);
    hold_ = false;
  }
  // Blocks until a commit waits at the gate.
  void AwaitHeldCommit() {
    absl::MutexLock l(&gate_mu_);
    gate_mu_.Await(absl::Condition(&held_));
  }
  absl::Status Commit(const store::Batch& batch) override {
    {
      absl::MutexLock l(&gate_mu_);
      held_ = hold_;
      auto released = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(gate_mu_) { return !hold_; };
      gate_mu_.Await(absl::Condition(&released));
      held_ = false;
    }
    if (fail_.load() > 0) {
      --fail_;
      return absl::UnavailableError("store: injected failure: disk I/O error");
    }
    return inner_->Commit(batch);
  }
  absl::StatusOr<store::Snapshot> Load() override { return inner_->Load(); }
  absl::StatusOr<std::vector<greenlight::v1::JobEvent>> EventsAfter(int64_t after,
                                                                    int limit) override {
    return inner_->EventsAfter(after, limit);
  }

 private:
  store::Store* inner_;
  std::atomic<int> fail_{0};
  absl::Mutex gate_mu_;
  bool hold_ ABSL_GUARDED_BY(gate_mu_) = false;
  bool held_ ABSL_GUARDED_BY(gate_mu_) = false;
};

class CoreHarness {
 public:
  explicit CoreHarness(providers::Inventory inventory = SmallInventory(),
                       absl::Time start = TestStart())
      : clock_(start), inventory_(std::move(inventory)) {
    options_.tick_interval = absl::ZeroDuration();
    options_.max_view_age = absl::ZeroDuration();
  }
  ~CoreHarness() { Close(); }

  // Options applied to every (re)created core.
  scheduler::CoreOptions& options() { return options_; }

  absl::Status Open() {
    if (!dir_.ok()) return absl::InternalError("no temp dir");
    auto s = store::SqliteStore::Open({dir_.File("greenlight.db"), "full"});
    if (!s.ok()) return s.status();
    store_ = std::move(*s);
    failing_ = std::make_unique<FailingStore>(store_.get());
    executor_ = std::make_unique<scheduler::SimulatedExecutor>();
    scheduler::CoreOptions o = options_;
    o.clock = &clock_;
    o.store = failing_.get();
    o.executor = executor_.get();
    o.inventory = inventory_;
    auto c = scheduler::SchedulerCore::Create(std::move(o));
    if (!c.ok()) return c.status();
    core_ = std::move(*c);
    core_->Start();
    return absl::OkStatus();
  }
  // Drops the core and the store (like a process exit) and opens both again
  // on the same file.
  absl::Status Restart() {
    Close();
    return Open();
  }
  void Close() {
    core_.reset();
    failing_.reset();
    store_.reset();
    executor_.reset();
  }

  scheduler::SchedulerCore& core() { return *core_; }
  ManualClock& clock() { return clock_; }
  FailingStore& failing_store() { return *failing_; }
  std::string store_path() const { return dir_.File("greenlight.db"); }
  const TempDir& dir() const { return dir_; }

  // Advances the clock and runs one scheduling step.
  absl::Status Advance(absl::Duration d) {
    clock_.Advance(d);
    return core_->Tick();
  }

 private:
  TempDir dir_;
  ManualClock clock_;
  providers::Inventory inventory_;
  scheduler::CoreOptions options_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<FailingStore> failing_;
  std::unique_ptr<scheduler::SimulatedExecutor> executor_;
  std::unique_ptr<scheduler::SchedulerCore> core_;
};

// A team with the given monthly cost budget in whole dollars (0 = unlimited),
// carbon budget in kg and GPU quota.
inline greenlight::v1::Team MakeTeam(const std::string& name, int64_t cost_usd,
                                     int64_t carbon_kg = 0, int quota = 0,
                                     const std::string& parent = "") {
  greenlight::v1::Team t;
  t.set_name(name);
  t.set_parent(parent);
  t.set_monthly_cost_budget_micros(cost_usd * 1'000'000);
  t.set_monthly_carbon_budget_mg(carbon_kg * 1'000'000);
  t.set_gpu_quota(quota);
  return t;
}

// A job of `gpus` GPUs running for `hours` (fixed duration), no caps.
inline greenlight::v1::JobSpec MakeJob(const std::string& team, int gpus, absl::Duration run) {
  greenlight::v1::JobSpec s;
  s.set_team(team);
  s.set_name(absl::StrCat("train-", gpus, "gpu"));
  s.set_gpus(gpus);
  s.mutable_duration()->set_seconds(absl::ToInt64Seconds(run));
  return s;
}

}  // namespace greenlight::testing
