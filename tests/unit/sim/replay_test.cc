// Trace replay (services/sim/replay.h, trace.h): trace parsing, hand-checked
// outcomes on tiny inventories, the baseline policy, and a short replay of
// the real Alibaba trace on the demo inventory through every policy.
#include "services/sim/replay.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/providers/inventory.h"
#include "services/sim/trace.h"
#include "services/store/memory_store.h"
#include "tests/testing/core_harness.h"

namespace greenlight::sim {
namespace {

using ::testing::HasSubstr;
using testing::MakePool;

constexpr char kAlibabaHeader[] =
    "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
    "deletion_time,scheduled_time\n";

// Monday 2026-03-02 00:00 UTC.
absl::Time Start() { return absl::FromCivil(absl::CivilDay(2026, 3, 2), absl::UTCTimeZone()); }

// ---------------------------------------------------------------------------
// Parsing.

TEST(ParseAlibabaTrace, MapsPodsToJobsAndCountsWhatItDropped) {
  std::string text = absl::StrCat(
      kAlibabaHeader,
      "pod-a,1000,1024,1,1000,,LS,Running,100,7300,160\n"               // 2 h from scheduling
      "pod-cpu,1000,1024,0,0,,LS,Running,50,500,50\n"                   // CPU only: skipped
      "pod-pending,1000,1024,1,1000,,BE,Pending,60,90,\n"               // never ran: skipped
      "pod-share,1000,1024,1,460,V100M16|V100M32,LS,Failed,10,40,20\n"  // 20 s, shared GPU
      "pod-8,1000,1024,8,1000,G2,LS,Running,5,9000,5\n");               // censored at the end
  AlibabaOptions options;
  options.team = "ali";
  options.gpu_type = [](absl::string_view g) -> std::string {
    return g == "V100M16" || g == "V100M32" ? "V100" : "";  // G2 has no pool
  };
  absl::StatusOr<Trace> t = ParseAlibabaTrace(text, "pods.csv", options);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->format, "alibaba");
  EXPECT_EQ(t->stats.rows, 5);
  EXPECT_EQ(t->stats.skipped_cpu_only, 1);
  EXPECT_EQ(t->stats.skipped_never_scheduled, 1);
  EXPECT_EQ(t->stats.fractional_gpu, 1);
  EXPECT_EQ(t->stats.raised_to_min_duration, 1);
  EXPECT_EQ(t->stats.censored, 1);
  EXPECT_EQ(t->stats.gpu_spec_unavailable, 1);
  ASSERT_EQ(t->jobs.size(), 3u);
  // By submit time.
  EXPECT_EQ(t->jobs[0].name, "pod-8");
  EXPECT_EQ(t->jobs[0].gpus, 8);
  EXPECT_TRUE(t->jobs[0].gpu_types.empty());
  EXPECT_EQ(t->jobs[1].name, "pod-share");
  EXPECT_EQ(t->jobs[1].submit, absl::Seconds(10));
  EXPECT_EQ(t->jobs[1].gpus, 1);
  EXPECT_EQ(t->jobs[1].duration, kMinJobDuration);
  EXPECT_THAT(t->jobs[1].gpu_types, ::testing::ElementsAre("V100"));
  EXPECT_EQ(t->jobs[2].name, "pod-a");
  EXPECT_EQ(t->jobs[2].submit, absl::Seconds(100));
  EXPECT_EQ(t->jobs[2].duration, absl::Seconds(7300 - 160));
  EXPECT_EQ(t->jobs[2].team, "ali");
  EXPECT_TRUE(t->jobs[2].checkpointable);
  EXPECT_FALSE(t->jobs[2].has_deadline);
}

TEST(ParseSimpleTrace, ReadsEveryColumnWithDefaults) {
  const std::string text =
      "# a comment line\n"
      "submit,gpus,duration,gpu_type,team,deadline,checkpointable,name,max_cost_usd,max_carbon_kg\n"
      "3600,2,4h,a100-40gb,vision,30h,false,train-a,12.5,3\n"
      "# another\n"
      "60,1,5400,,,,,,,\n";
  absl::StatusOr<Trace> t = ParseSimpleTrace(
      text, "jobs.csv", "default-team",
      [](absl::string_view g) -> std::string { return g == "a100-40gb" ? "A100" : ""; });
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_EQ(t->jobs.size(), 2u);
  const TraceJob& a = t->jobs[1];
  EXPECT_EQ(a.name, "train-a");
  EXPECT_EQ(a.submit, absl::Hours(1));
  EXPECT_EQ(a.gpus, 2);
  EXPECT_EQ(a.duration, absl::Hours(4));
  EXPECT_THAT(a.gpu_types, ::testing::ElementsAre("A100"));
  EXPECT_EQ(a.team, "vision");
  EXPECT_TRUE(a.has_deadline);
  EXPECT_EQ(a.deadline, absl::Hours(30));
  EXPECT_FALSE(a.checkpointable);
  EXPECT_EQ(a.max_cost_micros, 12'500'000);
  EXPECT_EQ(a.max_carbon_mg, 3'000'000);
  EXPECT_EQ(a.line, 3);
  const TraceJob& b = t->jobs[0];
  EXPECT_EQ(b.name, "line-5");
  EXPECT_EQ(b.submit, absl::Minutes(1));
  EXPECT_EQ(b.duration, absl::Minutes(90));
  EXPECT_EQ(b.team, "default-team");
  EXPECT_FALSE(b.has_deadline);
  EXPECT_TRUE(b.checkpointable);
  EXPECT_TRUE(b.gpu_types.empty());
}

TEST(ParseTraces, BadRowsNameFileLineAndColumn) {
  struct Case {
    std::string name;
    bool alibaba;
    std::string text;
    std::string where;  // expected "file:line:column"
    std::string what;
  };
  const std::string simple_header = "submit,gpus,duration,gpu_type,deadline,checkpointable\n";
  for (const Case& c : std::vector<Case>{
           {"alibaba gpu count not a number", true,
            absl::StrCat(kAlibabaHeader, "p,1,1,1,1000,,LS,Running,0,10,0\n",
                         "p,1,1,x,1000,,LS,Running,0,10,0\n"),
            "trace.csv:3:4", "not an integer"},
           {"alibaba deleted before created", true,
            absl::StrCat(kAlibabaHeader, "p,1,1,1,1000,,LS,Running,50,10,50\n"), "trace.csv:2:10",
            "before creation_time"},
           {"alibaba scheduled before created", true,
            absl::StrCat(kAlibabaHeader, "p,1,1,1,1000,,LS,Running,50,100,40\n"), "trace.csv:2:11",
            "before creation_time"},
           {"simple zero gpus", false, absl::StrCat(simple_header, "0,0,1h,,,\n"), "trace.csv:2:2",
            "between 1 and 4096"},
           {"simple duration not a duration", false,
            absl::StrCat(simple_header, "# c\n0,1,soon,,,\n"), "trace.csv:3:3",
            "not seconds or a duration"},
           {"simple duration under a minute", false, absl::StrCat(simple_header, "0,1,30,,,\n"),
            "trace.csv:2:3", "at least 1 minute"},
           {"simple unknown gpu", false, absl::StrCat(simple_header, "0,1,1h,Z9000,,\n"),
            "trace.csv:2:4", "unknown GPU type"},
           {"simple deadline too early", false, absl::StrCat(simple_header, "0,1,2h,,1h,\n"),
            "trace.csv:2:5", "before submit + duration"},
           {"simple bad checkpointable", false, absl::StrCat(simple_header, "0,1,2h,,,maybe\n"),
            "trace.csv:2:6", "not true/false"},
           {"simple missing field", false, absl::StrCat(simple_header, "0,1,2h\n"), "trace.csv:2:4",
            "expected 6 fields"},
       }) {
    absl::StatusOr<Trace> t = c.alibaba ? ParseAlibabaTrace(c.text, "trace.csv")
                                        : ParseSimpleTrace(c.text, "trace.csv", "t",
                                                           [](absl::string_view g) -> std::string {
                                                             return g == "A100" ? "A100" : "";
                                                           });
    ASSERT_FALSE(t.ok()) << c.name;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.where)) << c.name;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.what)) << c.name;
  }
}

TEST(ParseSimpleTrace, MissingRequiredColumnIsNamed) {
  absl::StatusOr<Trace> t = ParseSimpleTrace("submit,gpus\n0,1\n", "jobs.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()),
              HasSubstr("jobs.csv:1: missing column 'duration'"));
}

// ---------------------------------------------------------------------------
// Hand-checked replays on one-pool inventories.

// 400 W x PUE 1.1 = 440 W per GPU (core_harness's A100 pool).
constexpr double kWattsPerGpu = testing::kA100Watts * testing::kPue;

// Split runs are charged at every tick (10 minutes), each charge rounded to
// whole milligrams: a 2-hour run may be off by one per charge.
constexpr double kRoundingMg = 13;

providers::GpuModel A100() {
  return providers::GpuModel{.name = "A100", .power_w = testing::kA100Watts, .speed = 1.0};
}

// Hourly series over 20 days from Start(), value(hour of day).
providers::Inventory OnePool(const std::function<double(int)>& value, int nodes = 2,
                             int gpus_per_node = 8) {
  providers::Inventory inv;
  inv.pools.push_back(MakePool("aws/eu-central-1/p4d.24xlarge", "eu-central-1", "DE",
                               "p4d.24xlarge", "A100", gpus_per_node, nodes,
                               testing::kP4dPriceMicros));
  std::vector<double> v(24 * 20);
  for (size_t i = 0; i < v.size(); ++i) v[i] = value(static_cast<int>(i % 24));
  inv.zones["DE"] = testing::MakeSeries("DE", Start(), std::move(v), 300);
  inv.gpus.Add(A100(), {"a100-40gb"});
  return inv;
}

TraceJob MakeJob(std::string name, absl::Duration submit, absl::Duration run, int gpus = 1) {
  TraceJob j;
  j.name = std::move(name);
  j.submit = submit;
  j.gpus = gpus;
  j.duration = run;
  j.team = std::string("t");
  return j;
}

Trace OneJob(absl::Duration submit, absl::Duration run) {
  Trace t;
  t.jobs.push_back(MakeJob("job", submit, run));
  return t;
}

ReplayOptions Options() {
  ReplayOptions o;
  o.start = Start();
  o.check_invariants_every = 1;
  o.drain_limit = absl::Hours(24 * 10);  // a job that never ends fails fast
  return o;
}

Policy Named(const std::string& name) {
  for (const Policy& p : DefaultPolicies(100'000'000))
    if (p.name == name) return p;
  ADD_FAILURE() << "no policy " << name;
  return {};
}

PolicyResult MustReplay(const Trace& trace, const std::string& policy,
                        const providers::Inventory& inv, const ReplayOptions& options = Options()) {
  absl::StatusOr<PolicyResult> r = ReplayPolicy(trace, Named(policy), inv, options);
  EXPECT_TRUE(r.ok()) << policy << ": " << r.status();
  if (!r.ok()) return {};
  EXPECT_TRUE(r->invariants.ok()) << policy << ": " << r->invariants;
  EXPECT_EQ(r->ledger_cost_micros, r->cost_micros) << policy;
  EXPECT_EQ(r->ledger_carbon_mg, r->carbon_mg) << policy;
  EXPECT_EQ(r->unfinished, 0) << policy;
  return *r;
}

TEST(Replay, TimeShiftingSavesNothingUnderAConstantSeries) {
  providers::Inventory inv = OnePool([](int) { return 300.0; });
  Trace trace = OneJob(absl::Hours(12) + absl::Minutes(7), absl::Hours(2));
  PolicyResult base = MustReplay(trace, "baseline", inv);
  PolicyResult shift = MustReplay(trace, "shift", inv);
  // 1 GPU x 440 W x 2 h x 300 g/kWh = 264,000 mg, at once under both.
  EXPECT_EQ(base.carbon_mg, 264'000);
  EXPECT_EQ(shift.carbon_mg, base.carbon_mg);
  EXPECT_EQ(shift.cost_micros, base.cost_micros);
  ASSERT_EQ(shift.outcomes.size(), 1u);
  EXPECT_EQ(shift.outcomes[0].start, shift.outcomes[0].submit);
  EXPECT_EQ(shift.mean_wait_s, 0);
}

TEST(Replay, ShiftableJobMovesToTheCleanNightAndEmitsLess) {
  // 100 g/kWh from 00:00 to 06:00 UTC, 500 otherwise.
  providers::Inventory inv = OnePool([](int h) { return h < 6 ? 100.0 : 500.0; });
  Trace trace = OneJob(absl::Hours(12), absl::Hours(2));  // Monday 12:00, 2 h, deadline +26 h
  PolicyResult base = MustReplay(trace, "baseline", inv);
  PolicyResult shift = MustReplay(trace, "shift", inv);
  // 880 Wh at 500 at once; at 100 at night.
  EXPECT_EQ(base.carbon_mg, static_cast<int64_t>(kWattsPerGpu * 2 * 500));
  EXPECT_EQ(shift.carbon_mg, static_cast<int64_t>(kWattsPerGpu * 2 * 100));
  const JobOutcome& o = shift.outcomes[0];
  EXPECT_EQ(o.start, Start() + absl::Hours(24));  // the first clean hour, Tuesday 00:00
  EXPECT_EQ(o.end, o.start + absl::Hours(2));
  EXPECT_LE(o.end, o.deadline);
  EXPECT_EQ(shift.deadline_misses, 0);
  EXPECT_DOUBLE_EQ(shift.mean_wait_s, absl::ToDoubleSeconds(absl::Hours(12)));
  // Same pool, same price: shifting costs nothing here.
  EXPECT_EQ(shift.cost_micros, base.cost_micros);
}

TEST(Replay, InterruptibleEmitsNoMoreThanNonInterruptible) {
  // Two clean hours that are not adjacent: 02:00 and 05:00.
  providers::Inventory inv = OnePool([](int h) { return h == 2 || h == 5 ? 50.0 : 400.0; });
  Trace trace = OneJob(absl::Hours(12), absl::Hours(2));
  PolicyResult shift = MustReplay(trace, "shift", inv);
  PolicyResult split = MustReplay(trace, "interruptible", inv);
  EXPECT_LE(split.carbon_mg, shift.carbon_mg);
  // The contiguous run takes one clean hour at best; the split run both. A
  // split run is charged at every tick, each charge rounded to whole mg.
  EXPECT_EQ(shift.carbon_mg, static_cast<int64_t>(kWattsPerGpu * (50 + 400)));
  EXPECT_NEAR(split.carbon_mg, kWattsPerGpu * (50 + 50), kRoundingMg);
  EXPECT_EQ(split.split_jobs, 1);
  ASSERT_EQ(split.outcomes[0].slots.size(), 2u);
  EXPECT_EQ(split.outcomes[0].slots[0].first, Start() + absl::Hours(26));
  EXPECT_EQ(split.outcomes[0].slots[1].first, Start() + absl::Hours(29));
  EXPECT_EQ(split.deadline_misses, 0);
}

TEST(Replay, SplitJobThatWaitedPastItsSlotsStillFinishes) {
  // One single-GPU node. Job a (not checkpointable, no slack) takes the node
  // from 11:00 to 09:00; job b (checkpointable, 2 h), submitted while a
  // runs, waits for the node and is planned for the clean hours 02:00 and
  // 05:00, so it waits past both slots and must still run.
  providers::Inventory inv =
      OnePool([](int h) { return h == 2 || h == 5 ? 50.0 : 400.0; }, /*nodes=*/1,
              /*gpus_per_node=*/1);
  Trace trace;
  TraceJob a = MakeJob("a", absl::Hours(11), absl::Hours(22));
  a.checkpointable = false;
  a.has_deadline = true;
  a.deadline = a.submit + a.duration;  // no slack: now or never
  TraceJob b = MakeJob("b", absl::Hours(12), absl::Hours(2));
  trace.jobs = {a, b};
  PolicyResult r = MustReplay(trace, "interruptible", inv);
  ASSERT_EQ(r.outcomes.size(), 2u);
  EXPECT_EQ(r.succeeded, 2);
  const JobOutcome& ob = r.outcomes[1];
  EXPECT_EQ(ob.state, v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(ob.start, Start() + absl::Hours(33));  // when a ended, Tuesday 09:00
  EXPECT_LE(ob.end, Start() + absl::Hours(33) + absl::Hours(2) + Options().tick);
  // Charged for its whole 2 hours, at the dirty hours it actually ran in.
  EXPECT_NEAR(ob.carbon_mg, kWattsPerGpu * 2 * 400, kRoundingMg);
}

TEST(Replay, ANoSlackJobMayNotTakeHoursBookedForAPlannedOne) {
  // The same two jobs the other way round: b is planned first, for 02:00 and
  // 05:00, so those hours are booked; a, which would hold the node over them
  // and cannot wait, is refused instead of making b miss its plan.
  providers::Inventory inv =
      OnePool([](int h) { return h == 2 || h == 5 ? 50.0 : 400.0; }, /*nodes=*/1,
              /*gpus_per_node=*/1);
  Trace trace;
  TraceJob b = MakeJob("b", absl::Hours(12), absl::Hours(2));
  TraceJob a = MakeJob("a", absl::Hours(13), absl::Hours(20));
  a.checkpointable = false;
  a.has_deadline = true;
  a.deadline = a.submit + a.duration;
  trace.jobs = {b, a};
  PolicyResult r = MustReplay(trace, "interruptible", inv);
  ASSERT_EQ(r.outcomes.size(), 2u);
  EXPECT_EQ(r.outcomes[0].state, v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(r.outcomes[0].slots.size(), 2u);
  EXPECT_EQ(r.outcomes[0].slots[0].first, Start() + absl::Hours(26));
  EXPECT_EQ(r.outcomes[0].slots[1].first, Start() + absl::Hours(29));
  EXPECT_EQ(r.outcomes[1].state, v1::JOB_STATE_REJECTED) << r.outcomes[1].reject_message;
  EXPECT_THAT(r.outcomes[1].reject_message, ::testing::HasSubstr("capacity"));
}

TEST(Replay, BaselinePolicyIsTheDecisionsCheapestNow) {
  // A cheap dirty pool and a dear clean one, each with room for every job.
  providers::Inventory inv;
  inv.pools.push_back(MakePool("aws/us-east-1/p4d.24xlarge", "us-east-1", "US", "p4d.24xlarge",
                               "A100", 8, 8, 32'772'600));
  inv.pools.push_back(MakePool("aws/eu-north-1/p4d.24xlarge", "eu-north-1", "SE", "p4d.24xlarge",
                               "A100", 8, 8, 40'944'750));
  std::vector<double> dirty(24 * 20, 450), clean(24 * 20, 20);
  inv.zones["US"] = testing::MakeSeries("US", Start(), dirty, 450);
  inv.zones["SE"] = testing::MakeSeries("SE", Start(), clean, 20);
  inv.gpus.Add(A100(), {});
  Trace trace;
  for (int i = 0; i < 12; ++i) {
    trace.jobs.push_back(MakeJob(absl::StrCat("j", i), absl::Hours(3 * i) + absl::Minutes(i),
                                 absl::Minutes(30 + 20 * i), 1 + i % 8));
  }
  PolicyResult base = MustReplay(trace, "baseline", inv);
  PolicyResult green = MustReplay(trace, "greenest-now", inv);
  for (const JobOutcome& o : base.outcomes) {
    EXPECT_EQ(o.pool_id, "aws/us-east-1/p4d.24xlarge") << o.trace_index;
    EXPECT_EQ(o.pool_id, o.baseline_pool_id) << o.trace_index;
    EXPECT_EQ(o.start, o.submit) << o.trace_index;
  }
  // Accrued (per hour segment) against predicted (one product): equal up to
  // rounding, at most a unit per job.
  EXPECT_NEAR(base.cost_micros, base.baseline_cost_micros, 12);
  EXPECT_NEAR(base.carbon_mg, base.baseline_carbon_mg, 12);
  for (const JobOutcome& o : green.outcomes) {
    EXPECT_EQ(o.pool_id, "aws/eu-north-1/p4d.24xlarge") << o.trace_index;
    EXPECT_EQ(o.start, o.submit) << o.trace_index;
  }
  EXPECT_LT(green.carbon_mg, base.carbon_mg / 20);
  EXPECT_GT(green.cost_micros, base.cost_micros);
}

TEST(Replay, PoliciesDifferOnlyInTheirSpecFields) {
  TraceJob j = MakeJob("x", absl::Hours(5), absl::Hours(3), 4);
  ReplayOptions o = Options();
  o.slack = absl::Hours(10);
  const absl::Time submit = o.start + j.submit;
  for (const Policy& p : DefaultPolicies(250'000'000)) {
    v1::JobSpec s = BuildSpec(j, p, o, submit);
    EXPECT_EQ(s.gpus(), 4) << p.name;
    EXPECT_EQ(s.duration().seconds(), 3 * 3600) << p.name;
    EXPECT_EQ(s.mode(), p.mode) << p.name;
    EXPECT_EQ(s.checkpointable(), p.interruptible) << p.name;
    absl::Time deadline = absl::FromUnixSeconds(s.deadline().seconds());
    EXPECT_EQ(deadline, p.shift ? submit + absl::Hours(13) : submit + absl::Hours(3)) << p.name;
  }
  j.checkpointable = false;  // the trace forbids it: no policy may interrupt
  for (const Policy& p : DefaultPolicies(0)) {
    EXPECT_FALSE(BuildSpec(j, p, o, submit).checkpointable()) << p.name;
  }
}

TEST(SelectPolicies, ParsesNamesAndCustomSpecs) {
  auto p = SelectPolicies("baseline, shift-cheapest=cheapest+shift, dear=balanced+shift@1000", 1);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->size(), 3u);
  EXPECT_EQ((*p)[1].mode, v1::PLACEMENT_MODE_CHEAPEST);
  EXPECT_TRUE((*p)[1].shift);
  EXPECT_FALSE((*p)[1].interruptible);
  EXPECT_EQ((*p)[2].carbon_price_micros_per_tonne, 1'000'000'000);
  for (const char* bad : {"nope", "x=fastest", "x=cheapest+later", "baseline,baseline", ""}) {
    EXPECT_FALSE(SelectPolicies(bad, 1).ok()) << bad;
  }
}

// ---------------------------------------------------------------------------
// The replay's store.

store::Batch JobBatch(const std::string& id, int64_t sequence, int64_t revision) {
  store::Batch b;
  v1::Job j;
  j.set_id(id);
  j.set_sequence(sequence);
  b.jobs.push_back(j);
  v1::JobEvent e;
  e.set_revision(revision);
  e.set_job_id(id);
  b.events.push_back(e);
  store::LedgerRow r;
  r.job_id = id;
  r.kind = v1::LEDGER_KIND_RESERVE;
  b.ledger.push_back(r);
  return b;
}

TEST(MemoryStore, CommitsWholeBatchesAndLoadsThemBack) {
  store::MemoryStore s;
  ASSERT_TRUE(s.Commit(JobBatch("b", 2, 1)).ok());
  ASSERT_TRUE(s.Commit(JobBatch("a", 1, 2)).ok());
  // An update keeps the job's first sequence, like the SQLite upsert.
  store::Batch update = JobBatch("b", 9, 3);
  update.jobs[0].set_state(v1::JOB_STATE_RUNNING);
  ASSERT_TRUE(s.Commit(update).ok());
  // A refused batch (a revision that is not new) leaves nothing behind.
  store::Batch bad = JobBatch("c", 3, 3);
  EXPECT_FALSE(s.Commit(bad).ok());
  store::Batch bad_kind = JobBatch("d", 4, 4);
  bad_kind.ledger[0].kind = static_cast<v1::LedgerKind>(42);
  EXPECT_FALSE(s.Commit(bad_kind).ok());
  absl::StatusOr<store::Snapshot> snap = s.Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->jobs.size(), 2u);
  EXPECT_EQ(snap->jobs[0].id(), "a");
  EXPECT_EQ(snap->jobs[1].id(), "b");
  EXPECT_EQ(snap->jobs[1].sequence(), 2);
  EXPECT_EQ(snap->jobs[1].state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(snap->ledger.size(), 3u);
  EXPECT_EQ(snap->ledger[2].id, 3);
  EXPECT_EQ(snap->last_revision, 3);
  auto events = s.EventsAfter(1, 10);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].revision(), 2);
}

TEST(MemoryStore, SaysWhenEventsWereDropped) {
  store::MemoryStore s(store::MemoryStoreOptions{.max_events = 1});
  ASSERT_TRUE(s.Commit(JobBatch("a", 1, 1)).ok());
  ASSERT_TRUE(s.Commit(JobBatch("b", 2, 2)).ok());
  EXPECT_EQ(s.EventsAfter(0, 10).status().code(), absl::StatusCode::kOutOfRange);
  auto kept = s.EventsAfter(1, 10);
  ASSERT_TRUE(kept.ok());
  ASSERT_EQ(kept->size(), 1u);
  EXPECT_EQ((*kept)[0].revision(), 2);
  EXPECT_EQ(s.Load()->last_revision, 2);
}

// ---------------------------------------------------------------------------
// The real trace on the demo inventory.

TEST(Replay, FirstPodsOfTheAlibabaTraceThroughEveryPolicyKeepTheInvariants) {
  absl::StatusOr<Config> cfg = LoadConfig("deploy/config/demo.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  cfg->align_series_to_now = true;
  const absl::Time start = absl::FromCivil(absl::CivilDay(2022, 1, 3), absl::UTCTimeZone());
  absl::StatusOr<providers::Inventory> inv = providers::LoadInventory(*cfg, start);
  ASSERT_TRUE(inv.ok()) << inv.status();
  AlibabaOptions alibaba;
  absl::StatusOr<Trace> trace = LoadTrace(
      "data/traces/alibaba_gpu_v2023_openb_pod_list_default.csv", "auto", alibaba, "t", nullptr);
  ASSERT_TRUE(trace.ok()) << trace.status();
  EXPECT_EQ(trace->format, "alibaba");
  EXPECT_EQ(trace->stats.rows, 8152);
  trace->jobs.resize(250);
  ReplayOptions options;
  options.start = start;
  options.check_invariants_every = 500;
  absl::StatusOr<std::vector<PolicyResult>> results = ReplayAll(
      *trace, DefaultPolicies(100'000'000), *inv, options, 2, absl::Seconds(3600), nullptr);
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->size(), 5u);
  for (const PolicyResult& r : *results) {
    EXPECT_TRUE(r.invariants.ok()) << r.policy.name << ": " << r.invariants;
    EXPECT_EQ(r.jobs, 250) << r.policy.name;
    EXPECT_EQ(r.admitted + r.cap_rejections + r.other_rejections, r.jobs) << r.policy.name;
    // Every admitted job ends: it runs, or it fails when it waited for
    // capacity past its deadline (counted as a miss).
    EXPECT_EQ(r.succeeded + r.failed, r.admitted) << r.policy.name;
    EXPECT_LE(r.failed, r.deadline_misses) << r.policy.name;
    EXPECT_EQ(r.unfinished, 0) << r.policy.name;
    EXPECT_EQ(r.ledger_cost_micros, r.cost_micros) << r.policy.name;
    EXPECT_EQ(r.ledger_carbon_mg, r.carbon_mg) << r.policy.name;
    EXPECT_GT(r.energy_wh, 0) << r.policy.name;
  }
  // Carbon-aware policies never emit more than the carbon-blind baseline here.
  const PolicyResult& base = (*results)[0];
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_LT((*results)[i].carbon_mg, base.carbon_mg) << (*results)[i].policy.name;
  }
}

}  // namespace
}  // namespace greenlight::sim
