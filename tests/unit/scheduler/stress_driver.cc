#include "tests/unit/scheduler/stress_driver.h"

#include <sqlite3.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gtest/gtest.h"
#include "services/budget/period.h"
#include "services/scheduler/core.h"
#include "services/scheduler/invariants.h"
#include "services/scheduler/job_state.h"
#include "services/store/sqlite_store.h"
#include "tests/testing/core_harness.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::scheduler::stress {
namespace {

using ::greenlight::testing::MakePool;
using ::greenlight::testing::MakeSeries;
using ::greenlight::testing::MakeTeam;
using ::greenlight::testing::RisingValues;
using ::greenlight::testing::TempDir;
using ::greenlight::testing::Utc;
using v1::Job;
using v1::JobSpec;

const std::vector<std::string> kChildren = {"t0", "t1", "t2", "t3", "t4", "t5"};
const std::vector<std::string> kAllTeams = {"org", "t0", "t1", "t2", "t3", "t4", "t5", "solo"};

// Three pools in two zones with real catalog prices (SkyPilot AWS catalog).
providers::Inventory StressInventory() {
  providers::Inventory inv;
  inv.pools.push_back(MakePool("aws/eu-central-1/p4d.24xlarge", "eu-central-1", "DE",
                               "p4d.24xlarge", "A100", 8, 6, 40'944'750));
  inv.pools.push_back(MakePool("aws/us-east-1/p4d.24xlarge", "us-east-1", "US-PJM", "p4d.24xlarge",
                               "A100", 8, 6, 32'772'600));
  inv.pools.push_back(MakePool("aws/us-east-1/g5.xlarge", "us-east-1", "US-PJM", "g5.xlarge",
                               "A10G", 1, 24, 1'006'000, 300, 1.1));
  absl::Time start = Utc(2026, 3, 20, 0);
  inv.zones["DE"] = MakeSeries("DE", start, RisingValues(300, 24 * 40), 350);
  inv.zones["US-PJM"] = MakeSeries("US-PJM", start, RisingValues(380, 24 * 40), 400);
  inv.default_intensity_g_per_kwh = 400;
  return inv;
}

// Collects invariant violations from every thread (gtest asserts are
// thread-safe, but a short list with context reads better).
class Violations {
 public:
  void Add(const std::string& what) {
    count_.fetch_add(1);
    std::lock_guard<std::mutex> l(mu_);
    if (first_.size() < 20) first_.push_back(what);
  }
  int count() const { return count_.load(); }
  std::string Summary() const {
    std::lock_guard<std::mutex> l(mu_);
    std::string s;
    for (const auto& f : first_) absl::StrAppend(&s, "\n  ", f);
    return s;
  }

 private:
  std::atomic<int> count_{0};
  mutable std::mutex mu_;
  std::vector<std::string> first_;
};

// A retried request must carry the same spec: derive it from the id.
JobSpec SpecForRequest(int rid) {
  std::mt19937 rng(static_cast<uint32_t>(rid) * 7919u + 17u);
  JobSpec s = ::greenlight::testing::MakeJob(kChildren[rng() % kChildren.size()], 1 << (rng() % 4),
                                             absl::Minutes(30 + rng() % 300));
  s.set_request_id(absl::StrCat("retry-", rid));
  s.set_max_cost_micros(static_cast<int64_t>(rng() % 2) * 400'000'000);
  return s;
}

JobSpec RandomSpec(std::mt19937& rng, absl::Time now) {
  const std::vector<std::string> teams = {"t0", "t1", "t2", "t3", "t4", "t5", "solo", "org"};
  static const int kGpus[] = {1, 1, 2, 4, 8, 8, 16, 24};
  JobSpec s = ::greenlight::testing::MakeJob(
      teams[rng() % teams.size()], kGpus[rng() % 8],
      absl::Minutes(std::uniform_int_distribution<int>(15, 8 * 60)(rng)));
  s.set_name(absl::StrCat("stress-", rng() % 100000));
  int caps = rng() % 4;
  if (caps == 1 || caps == 3)
    s.set_max_cost_micros(std::uniform_int_distribution<int64_t>(2, 900)(rng) * 1'000'000);
  if (caps == 2 || caps == 3)
    s.set_max_carbon_mg(std::uniform_int_distribution<int64_t>(200, 90'000)(rng) * 1'000);
  s.set_priority(std::uniform_int_distribution<int>(-5, 5)(rng));
  if (rng() % 4 == 0) s.add_gpu_types(rng() % 2 ? "A100" : "A10G");
  if (rng() % 10 == 0)
    *s.mutable_not_before() =
        ToProto(now + absl::Minutes(std::uniform_int_distribution<int>(1, 600)(rng)));
  if (rng() % 8 == 0) s.set_checkpointable(true);
  if (rng() % 8 == 0) *s.mutable_deadline() = ToProto(now + absl::Hours(30));
  s.set_mode(static_cast<v1::PlacementMode>(rng() % 4));
  return s;
}

v1::Team RandomTeam(std::mt19937& rng, const std::string& name) {
  v1::Team t = MakeTeam(name, std::uniform_int_distribution<int64_t>(200, 6000)(rng),
                        std::uniform_int_distribution<int64_t>(50, 900)(rng),
                        static_cast<int>(rng() % 5) * 8, "org");
  if (rng() % 5 == 0) t.set_monthly_cost_budget_micros(0);
  if (name == "t4") (*t.mutable_gpu_quota_by_type())["A100"] = 8 + static_cast<int>(rng() % 3) * 8;
  t.set_budget_policy(rng() % 3 == 0 ? v1::BUDGET_POLICY_STOP : v1::BUDGET_POLICY_FINISH);
  t.set_alert_ratio(0.5 + 0.1 * (rng() % 5));
  return t;
}

bool Allowed(absl::StatusCode code, std::initializer_list<absl::StatusCode> ok) {
  for (auto c : ok)
    if (c == code) return true;
  return false;
}

// Per (team, period) sums of the raw ledger table, read with the sqlite3 C
// API, bypassing the store and the core.
struct RawSums {
  int64_t cost_spent = 0, cost_reserved = 0, carbon_spent = 0, carbon_reserved = 0, energy = 0;
  RawSums& operator+=(const RawSums& o) {
    cost_spent += o.cost_spent;
    cost_reserved += o.cost_reserved;
    carbon_spent += o.carbon_spent;
    carbon_reserved += o.carbon_reserved;
    energy += o.energy;
    return *this;
  }
};

class RawLedger {
 public:
  explicit RawLedger(const std::string& path) {
    ok_ = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK;
  }
  ~RawLedger() { sqlite3_close_v2(db_); }
  bool ok() const { return ok_; }
  // Runs `sql` and calls `row` for each result row.
  template <typename F>
  bool Query(const std::string& sql, F row) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) != SQLITE_OK) return false;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) row(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE;
  }
  static std::string Text(sqlite3_stmt* s, int i) {
    const unsigned char* p = sqlite3_column_text(s, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }

 private:
  sqlite3* db_ = nullptr;
  bool ok_ = false;
};

absl::Time PeriodTime(const std::string& period) {
  std::vector<std::string> parts = absl::StrSplit(period, '-');
  int y = 0, m = 0;
  if (parts.size() == 2) {
    y = std::stoi(parts[0]);
    m = std::stoi(parts[1]);
  }
  return absl::FromCivil(absl::CivilDay(y, m, 15), absl::UTCTimeZone());
}

}  // namespace

void RunStress(const StressConfig& config) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.File("stress.db");
  // Starts six hours before a month ends, so jobs cross into April.
  ManualClock clock(Utc(2026, 3, 31, 18));
  auto store_or = store::SqliteStore::Open({path, "full"});
  ASSERT_TRUE(store_or.ok()) << store_or.status();
  std::unique_ptr<store::SqliteStore> store = std::move(*store_or);
  SimulatedExecutor executor;
  CoreOptions opts;
  opts.clock = &clock;
  opts.store = store.get();
  opts.executor = &executor;
  opts.inventory = StressInventory();
  opts.tick_interval = absl::Milliseconds(1);
  opts.accrual_interval = absl::Minutes(15);
  auto core_or = SchedulerCore::Create(opts);
  ASSERT_TRUE(core_or.ok()) << core_or.status();
  std::unique_ptr<SchedulerCore> core = std::move(*core_or);

  std::mt19937 setup_rng(config.seed);
  ASSERT_TRUE(core->SetTeam(MakeTeam("org", 40'000, 3'000)).ok());
  for (const auto& t : kChildren) {
    auto st = core->SetTeam(RandomTeam(setup_rng, t));
    ASSERT_TRUE(st.ok()) << st.status();
  }
  ASSERT_TRUE(core->SetTeam(MakeTeam("solo", 3'000, 300, 16)).ok());
  core->Start();

  Violations violations;
  std::atomic<bool> done{false};
  std::mutex ids_mu;
  std::vector<std::string> ids;
  std::atomic<int> submitted{0}, rejected{0}, cancelled{0}, team_changes{0}, series_changes{0};
  std::atomic<int> observations{0};

  auto observe = [&](const char* where) {
    absl::Status st = scheduler::CheckInvariants(*core);
    observations.fetch_add(1);
    if (!st.ok()) violations.Add(absl::StrCat(where, ": ", st.ToString()));
  };

  // The clock: mostly forward, sometimes a jump back; stops 10 days in.
  std::thread clock_thread([&] {
    std::mt19937 rng(config.seed ^ 0x5eed);
    const absl::Time end = Utc(2026, 4, 10, 0);
    while (!done.load()) {
      if (clock.Now() < end) {
        if (rng() % 200 == 0) {
          clock.Advance(-absl::Hours(2));
        } else {
          clock.Advance(absl::Minutes(1 + rng() % config.max_clock_step_minutes));
        }
      }
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
  });
  // An observer that only reads.
  std::thread observer([&] {
    while (!done.load()) {
      observe("observer");
      for (const auto& v : core->TeamViews()) {
        if (v.usage.cost_reserved_micros() < 0 || v.usage.carbon_reserved_mg() < 0)
          violations.Add(absl::StrCat("negative reservation in usage of ", v.team.name()));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

  std::vector<std::thread> workers;
  for (int w = 0; w < config.threads; ++w) {
    workers.emplace_back([&, w] {
      std::mt19937 rng(config.seed * 1000 + static_cast<uint32_t>(w));
      for (int op = 0; op < config.ops_per_thread; ++op) {
        int dice = static_cast<int>(rng() % 100);
        if (dice < 50) {
          JobSpec spec = RandomSpec(rng, clock.Now());
          auto r = core->Submit(spec);
          if (r.ok()) {
            submitted.fetch_add(1);
            std::lock_guard<std::mutex> l(ids_mu);
            ids.push_back(r->job.id());
          } else {
            rejected.fetch_add(1);
            if (!Allowed(r.status().code(), {absl::StatusCode::kResourceExhausted,
                                             absl::StatusCode::kFailedPrecondition}))
              violations.Add(absl::StrCat("submit: ", r.status().ToString()));
          }
        } else if (dice < 58) {
          int rid = static_cast<int>(rng() % 48);
          auto r = core->Submit(SpecForRequest(rid));
          if (r.ok()) {
            std::lock_guard<std::mutex> l(ids_mu);
            if (!r->deduplicated) ids.push_back(r->job.id());
          } else if (!Allowed(r.status().code(), {absl::StatusCode::kResourceExhausted,
                                                  absl::StatusCode::kFailedPrecondition})) {
            violations.Add(absl::StrCat("retried submit: ", r.status().ToString()));
          }
        } else if (dice < 78) {
          std::string id;
          {
            std::lock_guard<std::mutex> l(ids_mu);
            if (!ids.empty()) id = ids[rng() % ids.size()];
          }
          if (id.empty()) continue;
          auto r = core->Cancel(id, "stress");
          if (r.ok()) {
            cancelled.fetch_add(1);
            // A job that reached its end or a cap by the cancel's time is
            // charged up to then and ends in that state instead.
            if (!IsTerminal(r->state()))
              violations.Add(absl::StrCat("cancel left the job ", StateName(r->state())));
            if (r->reserved_cost_micros() != 0 || r->reserved_carbon_mg() != 0)
              violations.Add(absl::StrCat("cancelled job still holds a reservation: ", id));
          } else if (r.status().code() != absl::StatusCode::kFailedPrecondition) {
            violations.Add(absl::StrCat("cancel: ", r.status().ToString()));
          }
        } else if (dice < 86) {
          auto r = core->SetTeam(RandomTeam(rng, kChildren[rng() % kChildren.size()]));
          if (!r.ok()) violations.Add(absl::StrCat("set team: ", r.status().ToString()));
          team_changes.fetch_add(1);
        } else if (dice < 91) {
          const char* zone = rng() % 2 ? "DE" : "US-PJM";
          absl::Time start = absl::FromUnixSeconds(absl::ToUnixSeconds(clock.Now()) / 3600 * 3600) -
                             absl::Hours(24);
          std::vector<double> values(96);
          for (double& v : values) v = std::uniform_real_distribution<double>(40, 900)(rng);
          auto r = core->SetCarbonSeries(zone, start, absl::Hours(1), values, 0);
          if (!r.ok()) violations.Add(absl::StrCat("carbon series: ", r.status().ToString()));
          series_changes.fetch_add(1);
        } else {
          const std::string& team = kAllTeams[rng() % kAllTeams.size()];
          auto u = core->GetUsage(team, clock.Now());
          if (!u.ok()) violations.Add(absl::StrCat("usage: ", u.status().ToString()));
          ListJobsQuery q;
          q.team = team;
          q.page_size = 50;
          if (!core->ListJobs(q).ok()) violations.Add("list jobs failed");
        }
        observe("worker");
      }
    });
  }
  for (auto& t : workers) t.join();
  // Quiesce: the clock stops, then a few ticks let waiting jobs start.
  done.store(true);
  clock_thread.join();
  observer.join();
  for (int i = 0; i < 3; ++i) {
    absl::Status st = core->Tick();
    EXPECT_TRUE(st.ok()) << st;
  }
  observe("quiescent");
  EXPECT_EQ(violations.count(), 0) << violations.Summary();
  // Budgets run out as the month goes on, so most late submits are refused;
  // the load must still have admitted and cancelled plenty.
  EXPECT_GT(submitted.load(), 500);
  EXPECT_GT(cancelled.load(), 100);
  EXPECT_GT(team_changes.load(), 0);
  EXPECT_GT(series_changes.load(), 0);

  // No job waits while it could run: capacity and quota are free for it.
  std::map<std::string, int> free_nodes, gpus_per_node;
  for (const auto& p : core->ListPools()) {
    free_nodes[p.id()] = p.free_nodes();
    gpus_per_node[p.id()] = p.gpus_per_node();
  }
  // Nodes booked by planned jobs (the capacity calendar), rebuilt here from
  // their placements: a waiting job may not start into them.
  struct Window {
    absl::Time start, end;
    int nodes;
  };
  std::map<std::string, std::vector<Window>> booked;
  ListJobsQuery planned;
  planned.states = {v1::JOB_STATE_PLANNED};
  planned.page_size = 1000;
  do {
    auto page = core->ListJobs(planned);
    ASSERT_TRUE(page.ok()) << page.status();
    planned.page_token = page->next_page_token;
    for (const Job& j : page->jobs) {
      const auto& p = j.placement();
      if (p.slots_size() == 0) {
        booked[p.pool_id()].push_back({FromProto(p.start()), FromProto(p.end()), p.nodes()});
      }
      for (const auto& sl : p.slots())
        booked[p.pool_id()].push_back({FromProto(sl.start()), FromProto(sl.end()), p.nodes()});
    }
  } while (!planned.page_token.empty());
  // The most nodes booked at any instant of [from, to).
  auto max_booked = [&](const std::string& pool, absl::Time from, absl::Time to) {
    int most = 0;
    for (const Window& at : booked[pool]) {
      absl::Time t = std::max(from, at.start);
      if (t >= to || t >= at.end) continue;
      int n = 0;
      for (const Window& w : booked[pool]) n += w.start <= t && t < w.end ? w.nodes : 0;
      most = std::max(most, n);
    }
    return most;
  };
  int stuck = 0;
  {
    ListJobsQuery q;
    q.states = {v1::JOB_STATE_PENDING};
    q.page_size = 1000;
    auto page = core->ListJobs(q);
    ASSERT_TRUE(page.ok());
    for (const Job& j : page->jobs) {
      auto team = core->GetTeam(j.spec().team());
      auto usage = core->GetUsage(j.spec().team(), clock.Now());
      if (!team.ok() || !usage.ok()) continue;
      const std::string& pool = j.placement().pool_id();
      int gpn = gpus_per_node[pool];
      int need = gpn > 0 ? (j.spec().gpus() + gpn - 1) / gpn : 1 << 20;
      absl::Time now = clock.Now();
      bool capacity =
          free_nodes[pool] - max_booked(pool, now, now + FromProto(j.remaining())) >= need;
      bool quota =
          team->gpu_quota() == 0 || usage->running_gpus() + j.spec().gpus() <= team->gpu_quota();
      bool typed = team->gpu_quota_by_type().count(j.placement().gpu_type()) == 0;
      if (capacity && quota && typed && ++stuck <= 5) {
        ADD_FAILURE() << "job " << j.id() << " (" << j.spec().gpus() << " GPUs, "
                      << v1::PendingReason_Name(j.pending()) << ") waits although " << pool
                      << " has " << free_nodes[pool]
                      << " free nodes and the team's quota allows it";
      }
    }
  }

  // Usage views and the live state, then a restart on the same file.
  std::map<std::pair<std::string, std::string>, v1::Usage> live_usage;
  std::map<std::string, Job> live_jobs;
  core->Stop();
  std::vector<v1::Team> teams = core->ListTeams();
  {
    std::lock_guard<std::mutex> l(ids_mu);
    for (const auto& id : ids) {
      auto j = core->GetJob(id);
      ASSERT_TRUE(j.ok()) << j.status();
      live_jobs[id] = *j;
    }
  }

  // --- The raw ledger, read with the sqlite3 C API.
  RawLedger raw(path);
  ASSERT_TRUE(raw.ok());
  std::map<std::pair<std::string, std::string>, RawSums> own;  // (team, period)
  std::set<std::string> periods;
  ASSERT_TRUE(
      raw.Query("SELECT team, period, SUM(cost_spent_micros), SUM(cost_reserved_micros), "
                "SUM(carbon_spent_mg), SUM(carbon_reserved_mg), SUM(energy_spent_mwh) "
                "FROM ledger GROUP BY team, period",
                [&](sqlite3_stmt* s) {
                  RawSums r{sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                            sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5),
                            sqlite3_column_int64(s, 6)};
                  own[{RawLedger::Text(s, 0), RawLedger::Text(s, 1)}] = r;
                  periods.insert(RawLedger::Text(s, 1));
                }));
  EXPECT_GE(periods.size(), 2u) << "the run crosses a month boundary";
  for (const v1::Team& t : teams) {
    for (const std::string& period : periods) {
      RawSums want = own[{t.name(), period}];
      for (const v1::Team& c : teams)
        if (c.parent() == t.name()) want += own[{c.name(), period}];
      auto u = core->GetUsage(t.name(), PeriodTime(period));
      ASSERT_TRUE(u.ok()) << u.status();
      live_usage[{t.name(), period}] = *u;
      std::string where = absl::StrCat(t.name(), " ", period);
      EXPECT_EQ(u->cost_spent_micros(), want.cost_spent) << where;
      EXPECT_EQ(u->cost_reserved_micros(), want.cost_reserved) << where;
      EXPECT_EQ(u->carbon_spent_mg(), want.carbon_spent) << where;
      EXPECT_EQ(u->carbon_reserved_mg(), want.carbon_reserved) << where;
      EXPECT_DOUBLE_EQ(u->energy_spent_wh(), want.energy / 1000.0) << where;
      EXPECT_GE(want.cost_reserved, 0) << where;
      EXPECT_GE(want.carbon_reserved, 0) << where;
    }
  }

  // Each job: exactly one reserve row; at most one release/settle, exactly
  // one once finished; charges equal the job's accrual; nothing left
  // reserved by finished jobs.
  struct JobRows {
    int reserves = 0, closes = 0;
    RawSums sums;
  };
  std::map<std::string, JobRows> by_job;
  ASSERT_TRUE(
      raw.Query("SELECT job_id, kind, cost_spent_micros, cost_reserved_micros, carbon_spent_mg, "
                "carbon_reserved_mg, energy_spent_mwh FROM ledger WHERE job_id <> '' ORDER BY id",
                [&](sqlite3_stmt* s) {
                  JobRows& r = by_job[RawLedger::Text(s, 0)];
                  std::string kind = RawLedger::Text(s, 1);
                  r.reserves += kind == "reserve";
                  r.closes += kind == "release" || kind == "settle";
                  r.sums += RawSums{sqlite3_column_int64(s, 2), sqlite3_column_int64(s, 3),
                                    sqlite3_column_int64(s, 4), sqlite3_column_int64(s, 5),
                                    sqlite3_column_int64(s, 6)};
                  if (sqlite3_column_int64(s, 2) < 0 || sqlite3_column_int64(s, 4) < 0)
                    ADD_FAILURE() << "negative charge in a " << kind << " row";
                }));
  std::set<std::string> stored_ids;
  ASSERT_TRUE(raw.Query("SELECT id FROM jobs",
                        [&](sqlite3_stmt* s) { stored_ids.insert(RawLedger::Text(s, 0)); }));
  EXPECT_EQ(stored_ids.size(), live_jobs.size()) << "every acknowledged job is stored, once";
  int checked = 0;
  for (const auto& [id, job] : live_jobs) {
    EXPECT_TRUE(stored_ids.count(id)) << id;
    const JobRows& r = by_job[id];
    EXPECT_EQ(r.reserves, 1) << id << " reserved " << r.reserves << " times";
    EXPECT_EQ(r.closes, IsTerminal(job.state()) ? 1 : 0) << id << " " << StateName(job.state());
    EXPECT_EQ(r.sums.cost_spent, job.accrued_cost_micros()) << id;
    EXPECT_EQ(r.sums.carbon_spent, job.accrued_carbon_mg()) << id;
    EXPECT_EQ(r.sums.cost_reserved, job.reserved_cost_micros()) << id;
    EXPECT_EQ(r.sums.carbon_reserved, job.reserved_carbon_mg()) << id;
    if (IsTerminal(job.state())) {
      EXPECT_EQ(r.sums.cost_reserved, 0) << id;
      EXPECT_EQ(r.sums.carbon_reserved, 0) << id;
    }
    if (job.spec().max_cost_micros() > 0) {
      EXPECT_LE(job.accrued_cost_micros(), job.spec().max_cost_micros()) << id;
    }
    if (job.spec().max_carbon_mg() > 0) {
      EXPECT_LE(job.accrued_carbon_mg(), job.spec().max_carbon_mg()) << id;
    }
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(live_jobs.size()));
  int dup_requests = 0;
  ASSERT_TRUE(
      raw.Query("SELECT team, request_id, COUNT(*) FROM jobs WHERE request_id <> '' "
                "GROUP BY team, request_id HAVING COUNT(*) > 1",
                [&](sqlite3_stmt*) { ++dup_requests; }));
  EXPECT_EQ(dup_requests, 0) << "a request_id made two jobs";
  int64_t events = 0, min_rev = 0, max_rev = 0;
  ASSERT_TRUE(
      raw.Query("SELECT COUNT(*), MIN(revision), MAX(revision) FROM events", [&](sqlite3_stmt* s) {
        events = sqlite3_column_int64(s, 0);
        min_rev = sqlite3_column_int64(s, 1);
        max_rev = sqlite3_column_int64(s, 2);
      }));
  EXPECT_EQ(min_rev, 1);
  EXPECT_EQ(max_rev, events) << "event revisions have gaps";
  EXPECT_EQ(core->revision(), max_rev);

  // --- Restart on the same file: the same state comes back.
  core.reset();
  store.reset();
  store_or = store::SqliteStore::Open({path, "full"});
  ASSERT_TRUE(store_or.ok()) << store_or.status();
  store = std::move(*store_or);
  SimulatedExecutor executor2;
  opts.store = store.get();
  opts.executor = &executor2;
  core_or = SchedulerCore::Create(opts);
  ASSERT_TRUE(core_or.ok()) << core_or.status();
  core = std::move(*core_or);
  absl::Status inv = scheduler::CheckInvariants(*core);
  EXPECT_TRUE(inv.ok()) << "after restart: " << inv;
  for (const auto& [key, want] : live_usage) {
    auto u = core->GetUsage(key.first, PeriodTime(key.second));
    ASSERT_TRUE(u.ok());
    EXPECT_EQ(u->cost_reserved_micros(), want.cost_reserved_micros())
        << key.first << " " << key.second;
    EXPECT_EQ(u->cost_spent_micros(), want.cost_spent_micros()) << key.first << " " << key.second;
    EXPECT_EQ(u->carbon_reserved_mg(), want.carbon_reserved_mg()) << key.first << " " << key.second;
    EXPECT_EQ(u->running_gpus(), want.running_gpus()) << key.first << " " << key.second;
  }
  for (const auto& [id, job] : live_jobs) {
    auto j = core->GetJob(id);
    ASSERT_TRUE(j.ok()) << id;
    EXPECT_EQ(j->state(), job.state()) << id;
    EXPECT_EQ(j->accrued_cost_micros(), job.accrued_cost_micros()) << id;
  }
  EXPECT_EQ(core->revision(), max_rev);
  std::printf(
      "stress: %d submitted, %d refused, %d cancelled, %d team changes, %d series updates, "
      "%d invariant checks, %zu periods, %lld events\n",
      submitted.load(), rejected.load(), cancelled.load(), team_changes.load(),
      series_changes.load(), observations.load(), periods.size(), static_cast<long long>(events));
}

}  // namespace greenlight::scheduler::stress
