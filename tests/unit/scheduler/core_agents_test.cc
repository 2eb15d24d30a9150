// Jobs on node agents through the core (core_agents.cc): registration, the
// heartbeat's orders and reports, spend charged on measured energy, and the
// bad reports that are refused with nothing written. The agent binary and
// the daemon's AgentService are driven for real by their own tests.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/error_details.h"
#include "common/proto_time.h"
#include "tests/testing/core_harness.h"
#include "tests/testing/status_testing.h"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;
using ::greenlight::testing::CoreHarness;
using ::greenlight::testing::MakeJob;
using ::greenlight::testing::MakeTeam;
using ::testing::HasSubstr;

constexpr char kPool[] = "onprem/local-1/box";
constexpr double kPue = 1.25;

v1::NodePool AgentPool() {
  v1::NodePool p;
  p.set_id(kPool);
  p.set_provider("onprem");
  p.set_region("local-1");
  p.set_grid_zone("DE");
  p.set_instance_type("box");
  p.set_gpu_type("A100");
  p.set_gpus_per_node(2);
  p.set_price_micros_per_node_hour(3'600'000);  // $3.60 per node-hour: $0.001 a second
  p.set_gpu_power_w(400);
  p.set_pue(kPue);
  p.set_executor(v1::POOL_EXECUTOR_AGENT);
  return p;
}

v1::RegisterNodeRequest Node(const std::string& name) {
  v1::RegisterNodeRequest r;
  r.set_node(name);
  r.set_pool_id(kPool);
  r.set_hostname(name);
  r.set_energy_measured(true);
  for (int i = 0; i < 2; ++i) {
    v1::GpuDevice& g = *r.add_gpus();
    g.set_index(i);
    g.set_uuid("GPU-" + name + "-" + std::to_string(i));
    g.set_name("NVIDIA A100-SXM4-40GB");
  }
  return r;
}

v1::JobReport Report(const std::string& job, v1::JobReportKind kind, int64_t seq,
                     std::vector<double> wh = {}) {
  v1::JobReport r;
  r.set_job_id(job);
  r.set_kind(kind);
  r.set_sequence(seq);
  r.set_pid(4242);
  for (size_t i = 0; i < wh.size(); ++i) {
    v1::GpuEnergy& e = *r.add_energy();
    e.set_index(static_cast<int>(i));
    e.set_energy_wh(wh[i]);
  }
  return r;
}

class CoreAgentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(h_.Open());
    ASSERT_OK(core().SetTeam(MakeTeam("ml", 0)));
    ASSERT_OK(core().UpsertPools({AgentPool()}));
    ASSERT_OK(core().RegisterNode(Node("node-a"), "t-agent", kPool));
  }
  SchedulerCore& core() { return h_.core(); }

  v1::Job SubmitToAgents(int gpus = 1) {
    v1::JobSpec spec = MakeJob("ml", gpus, absl::Hours(1));
    spec.add_regions("local-1");
    spec.mutable_command()->add_argv("/bin/true");
    auto r = core().Submit(spec);
    EXPECT_OK(r.status());
    return r.ok() ? r->job : v1::Job();
  }
  absl::StatusOr<v1::HeartbeatResponse> Beat(std::vector<v1::JobReport> reports,
                                             std::vector<std::string> running = {},
                                             const std::string& node = "node-a") {
    v1::HeartbeatRequest req;
    req.set_node(node);
    for (auto& r : reports) *req.add_reports() = r;
    for (auto& id : running) req.add_running_job_ids(id);
    return core().Heartbeat(req, "t-agent", kPool);
  }
  v1::Job Get(const std::string& id) { return *core().GetJob(id); }

  CoreHarness h_;
};

TEST_F(CoreAgentsTest, NodeIsCapacityAndShowsInListPools) {
  bool found = false;
  for (const auto& p : core().ListPools()) {
    if (p.id() != kPool) continue;
    found = true;
    EXPECT_EQ(p.executor(), v1::POOL_EXECUTOR_AGENT);
    EXPECT_EQ(p.nodes(), 1);
    ASSERT_EQ(p.agent_nodes_size(), 1);
    EXPECT_EQ(p.agent_nodes(0).name(), "node-a");
    EXPECT_EQ(p.agent_nodes(0).state(), v1::NODE_STATE_READY);
    EXPECT_EQ(p.agent_nodes(0).gpus_size(), 2);
  }
  EXPECT_TRUE(found);
}

TEST_F(CoreAgentsTest, JobStartsOnlyWhenTheAgentSaysSoAndIsChargedOnMeasuredEnergy) {
  v1::Job job = SubmitToAgents();
  ASSERT_EQ(job.state(), v1::JOB_STATE_STARTING) << job.message();
  EXPECT_EQ(job.node(), "node-a");
  ASSERT_EQ(job.gpu_indices_size(), 1);

  // The first heartbeat carries the assignment; a node that runs it already gets none.
  auto resp = Beat({});
  ASSERT_OK(resp.status());
  ASSERT_EQ(resp->launch_size(), 1);
  EXPECT_EQ(resp->launch(0).job_id(), job.id());
  EXPECT_EQ(resp->launch(0).command().argv(0), "/bin/true");
  ASSERT_OK(Beat({}, {job.id()}).status());
  EXPECT_EQ(Beat({}, {job.id()})->launch_size(), 0);
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_STATE_STARTING) << "nothing reported yet";

  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_STARTED, 1)}, {job.id()}).status());
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_STATE_RUNNING);
  const absl::Time started = h_.clock().Now();

  h_.clock().Advance(absl::Seconds(100));
  auto ack = Beat({Report(job.id(), v1::JOB_REPORT_KIND_PROGRESS, 2, {12.5})}, {job.id()});
  ASSERT_OK(ack.status());
  EXPECT_EQ(ack->acknowledged().at(job.id()), 2);
  h_.clock().Advance(absl::Seconds(100));
  v1::JobReport exited = Report(job.id(), v1::JOB_REPORT_KIND_EXITED, 3, {30.0});
  ASSERT_OK(Beat({exited}, {job.id()}).status());

  v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.message();
  EXPECT_TRUE(done.energy_measured());
  // Computed apart: 30 Wh at the GPUs x PUE x the zone's intensity of that hour.
  auto series = core().ZoneSeries("DE");
  ASSERT_TRUE(series.has_value());
  const double intensity = series->first->At(started);
  const double facility_wh = 30.0 * kPue;
  EXPECT_NEAR(done.accrued_energy_wh(), facility_wh, 1e-3);
  EXPECT_NEAR(static_cast<double>(done.accrued_carbon_mg()), facility_wh * intensity, 1.0);
  // $3.60 a node-hour for half a node (1 of 2 GPUs) over 200 s.
  EXPECT_NEAR(static_cast<double>(done.accrued_cost_micros()), 200 * 1'000 / 2.0, 1.0);

  // A report resent after the answer was lost is acknowledged, not charged again.
  auto again = Beat({exited});
  ASSERT_OK(again.status());
  EXPECT_EQ(again->acknowledged().at(job.id()), 3);
  EXPECT_EQ(Get(job.id()).accrued_carbon_mg(), done.accrued_carbon_mg());
}

TEST_F(CoreAgentsTest, ExitCodeAndStartFailureFailTheJobWithTheReason) {
  v1::Job a = SubmitToAgents();
  v1::Job b = SubmitToAgents();
  ASSERT_EQ(b.state(), v1::JOB_STATE_STARTING);
  v1::JobReport no_start = Report(b.id(), v1::JOB_REPORT_KIND_FAILED_TO_START, 1);
  no_start.set_reason("execvpe(\"train\") failed: No such file or directory");
  v1::JobReport crash = Report(a.id(), v1::JOB_REPORT_KIND_EXITED, 2);
  crash.set_exit_code(3);
  ASSERT_OK(Beat({Report(a.id(), v1::JOB_REPORT_KIND_STARTED, 1), crash, no_start}).status());
  EXPECT_EQ(Get(a.id()).state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(Get(a.id()).message(), HasSubstr("exit code 3"));
  EXPECT_EQ(Get(b.id()).state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(Get(b.id()).message(), HasSubstr("No such file"));
  EXPECT_EQ(Get(b.id()).reserved_cost_micros(), 0) << "its reservation is released";
}

TEST_F(CoreAgentsTest, CancelSendsAStopOrder) {
  v1::Job job = SubmitToAgents();
  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_STARTED, 1)}, {job.id()}).status());
  ASSERT_OK(core().Cancel(job.id(), "wrong lr").status());
  auto resp = Beat({}, {job.id()});
  ASSERT_OK(resp.status());
  ASSERT_EQ(resp->stop_size(), 1);
  EXPECT_EQ(resp->stop(0).job_id(), job.id());
  EXPECT_THAT(resp->stop(0).reason(), HasSubstr("CANCELLED"));
}

TEST_F(CoreAgentsTest, BadReportsAreRefusedWithNothingApplied) {
  v1::Job job = SubmitToAgents();
  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_STARTED, 1)}, {job.id()}).status());
  h_.clock().Advance(absl::Seconds(10));
  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_PROGRESS, 2, {5})}, {job.id()}).status());
  const v1::Job before = Get(job.id());
  ASSERT_OK(core().RegisterNode(Node("node-b"), "t-agent", kPool));
  struct Case {
    std::string name;
    v1::JobReport report;
    std::string node;
    std::string field;
  };
  v1::JobReport started_too = Report(job.id(), v1::JOB_REPORT_KIND_STARTED, 3);
  for (const Case& c : std::vector<Case>{
           {"unknown job", Report("j-0000000000000000", v1::JOB_REPORT_KIND_STARTED, 1), "node-a",
            "reports[0].job_id"},
           {"job of another node", started_too, "node-b", "reports[0].job_id"},
           {"energy backwards", Report(job.id(), v1::JOB_REPORT_KIND_PROGRESS, 3, {4}), "node-a",
            "reports[0].energy"},
           {"negative energy", Report(job.id(), v1::JOB_REPORT_KIND_PROGRESS, 3, {-1}), "node-a",
            "reports[0].energy[0].energy_wh"},
           {"NaN energy",
            Report(job.id(), v1::JOB_REPORT_KIND_PROGRESS, 3,
                   {std::numeric_limits<double>::quiet_NaN()}),
            "node-a", "reports[0].energy[0].energy_wh"},
       }) {
    auto r = Beat({c.report}, {}, c.node);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.name << r.status();
    ASSERT_FALSE(FieldViolations(r.status()).empty()) << c.name;
    EXPECT_EQ(FieldViolations(r.status())[0].first, c.field) << c.name;
  }
  const v1::Job after = Get(job.id());
  EXPECT_EQ(after.accrued_carbon_mg(), before.accrued_carbon_mg());
  EXPECT_EQ(after.report_sequence(), before.report_sequence());
}

TEST_F(CoreAgentsTest, TokensAreBoundToTheirPoolAndNode) {
  v1::RegisterNodeRequest other = Node("node-c");
  auto wrong_pool = core().RegisterNode(other, "t-agent", "onprem/elsewhere/box");
  EXPECT_EQ(wrong_pool.status().code(), absl::StatusCode::kPermissionDenied);
  auto stolen = core().RegisterNode(Node("node-a"), "t-other-agent", kPool);
  EXPECT_EQ(stolen.status().code(), absl::StatusCode::kPermissionDenied) << stolen.status();
  v1::HeartbeatRequest req;
  req.set_node("node-a");
  EXPECT_EQ(core().Heartbeat(req, "t-other-agent", kPool).status().code(),
            absl::StatusCode::kPermissionDenied);
  req.set_node("node-z");
  EXPECT_EQ(core().Heartbeat(req, "t-agent", kPool).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(CoreAgentsTest, NodesAndAgentJobsSurviveARestart) {
  v1::Job job = SubmitToAgents();
  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_STARTED, 1)}, {job.id()}).status());
  ASSERT_OK(h_.Restart());
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_STATE_RUNNING);
  h_.clock().Advance(absl::Seconds(60));
  auto resp = Beat({Report(job.id(), v1::JOB_REPORT_KIND_EXITED, 2, {1.0})}, {job.id()});
  ASSERT_OK(resp.status()) << "the node is still registered";
  EXPECT_EQ(resp->launch_size(), 0) << "not started twice";
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_STATE_SUCCEEDED);
}

v1::NodeState StateOf(SchedulerCore& core, const std::string& node) {
  for (const auto& p : core.ListPools())
    for (const auto& n : p.agent_nodes())
      if (n.name() == node) return n.state();
  return v1::NODE_STATE_UNSPECIFIED;
}

// The lease is 15 s (CoreOptions): a node silent for longer is lost, its
// capacity removed; a checkpointable job runs again elsewhere, a plain one
// fails with node_lost; late reports of the lost node are acknowledged and
// charge nothing; the node comes back when it heartbeats and is told to stop
// what it no longer has.
TEST_F(CoreAgentsTest, LostNodeRequeuesCheckpointableJobsAndFailsTheOthers) {
  v1::JobSpec spec = MakeJob("ml", 1, absl::Hours(1));
  spec.add_regions("local-1");
  spec.mutable_command()->add_argv("/bin/true");
  spec.set_checkpointable(true);
  auto a = core().Submit(spec);
  ASSERT_OK(a.status());
  v1::Job b = SubmitToAgents();
  const std::string ja = a->job.id(), jb = b.id();
  ASSERT_EQ(a->job.node(), "node-a");
  ASSERT_EQ(b.node(), "node-a");
  ASSERT_OK(core().RegisterNode(Node("node-b"), "t-agent", kPool));
  ASSERT_OK(
      Beat({Report(ja, v1::JOB_REPORT_KIND_STARTED, 1), Report(jb, v1::JOB_REPORT_KIND_STARTED, 1)},
           {ja, jb})
          .status());
  h_.clock().Advance(absl::Seconds(10));
  ASSERT_OK(Beat({Report(ja, v1::JOB_REPORT_KIND_PROGRESS, 2, {5}),
                  Report(jb, v1::JOB_REPORT_KIND_PROGRESS, 2, {5})},
                 {ja, jb})
                .status());
  const v1::Job charged = Get(ja);
  ASSERT_GT(charged.accrued_carbon_mg(), 0);
  for (int i = 0; i < 2; ++i) {  // node-b heartbeats on, node-a falls silent
    h_.clock().Advance(absl::Seconds(10));
    ASSERT_OK(Beat({}, {}, "node-b").status());
    ASSERT_OK(core().Tick());
    if (i == 0) {
      EXPECT_EQ(StateOf(core(), "node-a"), v1::NODE_STATE_READY) << "10 s: in lease";
    }
  }
  EXPECT_EQ(StateOf(core(), "node-a"), v1::NODE_STATE_LOST);
  EXPECT_EQ(StateOf(core(), "node-b"), v1::NODE_STATE_READY);

  v1::Job failed = Get(jb);
  EXPECT_EQ(failed.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(failed.message(), HasSubstr("node_lost"));
  EXPECT_EQ(failed.reserved_cost_micros(), 0);
  v1::Job moved = Get(ja);
  EXPECT_EQ(moved.state(), v1::JOB_STATE_STARTING) << moved.message();
  EXPECT_EQ(moved.node(), "node-b") << "requeued onto the node that is left";
  ASSERT_EQ(moved.lost_nodes_size(), 1);
  EXPECT_EQ(moved.lost_nodes(0), "node-a");
  EXPECT_EQ(moved.accrued_carbon_mg(), charged.accrued_carbon_mg()) << "spend is kept";
  EXPECT_LT(absl::ToInt64Seconds(FromProto(moved.remaining())), 3600) << "the run time is used";
  auto on_b = Beat({}, {}, "node-b");
  ASSERT_OK(on_b.status());
  ASSERT_EQ(on_b->launch_size(), 1);
  EXPECT_TRUE(on_b->launch(0).resume()) << "it ran before: GREENLIGHT_RESUME=1";

  // node-a comes back with a late report: acknowledged, nothing charged, and
  // it is told to stop both jobs.
  auto late = Beat({Report(ja, v1::JOB_REPORT_KIND_PROGRESS, 3, {50}),
                    Report(jb, v1::JOB_REPORT_KIND_PROGRESS, 3, {50})},
                   {ja, jb});
  ASSERT_OK(late.status());
  EXPECT_EQ(late->acknowledged().at(ja), 3);
  EXPECT_EQ(late->acknowledged().at(jb), 3);
  EXPECT_EQ(late->stop_size(), 2);
  EXPECT_EQ(Get(ja).accrued_carbon_mg(), charged.accrued_carbon_mg());
  EXPECT_EQ(Get(jb).accrued_carbon_mg(), failed.accrued_carbon_mg());
  EXPECT_EQ(StateOf(core(), "node-a"), v1::NODE_STATE_READY) << "back in service";
  // The new run numbers its reports from 1.
  ASSERT_OK(Beat({Report(ja, v1::JOB_REPORT_KIND_STARTED, 1)}, {ja}, "node-b").status());
  EXPECT_EQ(Get(ja).state(), v1::JOB_STATE_RUNNING);
  // The counters behind the metrics.
  const AgentRegistry::Counters c = core().AgentCounters();
  EXPECT_EQ(c.starts, 3);
  EXPECT_EQ(c.failures.at("node_lost"), 1);
  EXPECT_EQ(c.failures.at("node_lost_requeued"), 1);
  EXPECT_NEAR(c.energy_measured_wh, 2 * 5 * kPue, 1e-6) << "the late report is not counted";
  EXPECT_EQ(c.energy_modelled_wh, 0);
}

TEST_F(CoreAgentsTest, LostNodeStaysLostAcrossARestartAndGetsALeaseAfterIt) {
  h_.clock().Advance(absl::Seconds(20));
  ASSERT_OK(core().Tick());
  ASSERT_EQ(StateOf(core(), "node-a"), v1::NODE_STATE_LOST);
  ASSERT_OK(h_.Restart());
  EXPECT_EQ(StateOf(core(), "node-a"), v1::NODE_STATE_LOST);
  v1::Job job = SubmitToAgents();
  EXPECT_EQ(job.state(), v1::JOB_STATE_PENDING) << "no capacity on a lost node";
  ASSERT_OK(Beat({}).status());
  ASSERT_OK(core().Tick());
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_STATE_STARTING) << Get(job.id()).message();

  // A READY node gets a full lease after a restart (heartbeats are not stored).
  ASSERT_OK(h_.Restart());
  h_.clock().Advance(absl::Seconds(10));
  ASSERT_OK(core().Tick());
  h_.clock().Advance(absl::Seconds(10));
  ASSERT_OK(core().Tick());
  EXPECT_EQ(StateOf(core(), "node-a"), v1::NODE_STATE_READY) << "10 s since the restart's check";
  for (const auto& p : core().ListPools()) {
    for (const auto& n : p.agent_nodes()) {
      EXPECT_FALSE(n.has_last_heartbeat()) << n.name() << ": none since the restart";
    }
  }
}

// A checkpointable job split over low-carbon slots: stopped at the end of a
// slot, it keeps its node and is launched again (resume) when the next begins.
TEST_F(CoreAgentsTest, SplitJobStopsAtTheEndOfItsSlotAndResumesInTheNext) {
  // Two clean hours now, four dirty ones, two clean ones, then dirty.
  std::vector<double> grid(48, 900.0);
  grid[0] = grid[1] = grid[6] = grid[7] = 100.0;
  const absl::Time t0 = absl::FromUnixSeconds(absl::ToUnixSeconds(h_.clock().Now()) / 3600 * 3600);
  ASSERT_OK(core().SetCarbonSeries("DE", t0, absl::Hours(1), grid, 0));
  v1::JobSpec spec = MakeJob("ml", 1, absl::Hours(4));
  spec.add_regions("local-1");
  spec.mutable_command()->add_argv("/bin/true");
  spec.set_checkpointable(true);
  spec.set_mode(v1::PLACEMENT_MODE_GREENEST);
  *spec.mutable_deadline() = ToProto(h_.clock().Now() + absl::Hours(48));
  auto submitted = core().Submit(spec);
  ASSERT_OK(submitted.status());
  const v1::Job job = submitted->job;
  ASSERT_GE(job.placement().slots_size(), 2) << job.message();
  const absl::Time start0 = FromProto(job.placement().slots(0).start());
  const absl::Time end0 = FromProto(job.placement().slots(0).end());
  const absl::Time start1 = FromProto(job.placement().slots(1).start());
  ASSERT_LT(end0, start1);
  if (h_.clock().Now() < start0) h_.clock().Set(start0);
  ASSERT_OK(Beat({}).status());  // keeps the node within its lease
  ASSERT_OK(core().Tick());
  ASSERT_EQ(Get(job.id()).state(), v1::JOB_STATE_STARTING) << Get(job.id()).message();
  auto first = Beat({});
  ASSERT_OK(first.status());
  ASSERT_EQ(first->launch_size(), 1);
  EXPECT_FALSE(first->launch(0).resume());
  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_STARTED, 1)}, {job.id()}).status());

  h_.clock().Set(end0 + absl::Seconds(1));
  auto stop = Beat({Report(job.id(), v1::JOB_REPORT_KIND_PROGRESS, 2, {80})}, {job.id()});
  ASSERT_OK(stop.status());
  ASSERT_EQ(stop->stop_size(), 1);
  EXPECT_THAT(stop->stop(0).reason(), HasSubstr("end of its carbon slot"));
  v1::JobReport exited = Report(job.id(), v1::JOB_REPORT_KIND_EXITED, 3, {81});
  exited.set_signal(15);
  ASSERT_OK(Beat({exited}).status());
  v1::Job paused = Get(job.id());
  EXPECT_EQ(paused.state(), v1::JOB_STATE_STARTING) << paused.message();
  EXPECT_THAT(paused.message(), HasSubstr("resumes on node node-a"));
  EXPECT_EQ(paused.node(), "node-a");
  EXPECT_EQ(Beat({})->launch_size(), 0) << "not before its next slot";

  h_.clock().Set(start1);
  auto again = Beat({});
  ASSERT_OK(again.status());
  ASSERT_EQ(again->launch_size(), 1);
  EXPECT_TRUE(again->launch(0).resume());
  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_STARTED, 4)}, {job.id()}).status());
  h_.clock().Advance(absl::Minutes(5));
  ASSERT_OK(Beat({Report(job.id(), v1::JOB_REPORT_KIND_EXITED, 5, {20})}).status());
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << done.message();
  EXPECT_NEAR(done.accrued_energy_wh(), (81 + 20) * kPue, 1e-3) << "both runs, each once";
}

}  // namespace
}  // namespace greenlight::scheduler
