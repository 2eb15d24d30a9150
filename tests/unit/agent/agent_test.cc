// The Agent against an in-process fake of greenlightd's AgentService (our own
// service interface, on a loopback port), with the real ProcessRunner (a temp
// state dir) and the real test NVML library (tests/testing/fake_nvml) whose
// counters the test writes. Nothing here depends on timing: every wait is on a
// condition, with a deadline that only bounds a broken build.
#include "services/agent/agent.h"

#include <grpcpp/grpcpp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "greenlight/v1/executor.grpc.pb.h"
#include "gtest/gtest.h"
#include "services/agent/launch_plan.h"
#include "tests/testing/proc_table.h"
#include "tests/testing/status_testing.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::Duration kDeadline = absl::Seconds(20);
constexpr char kToken[] = "agent-secret-token";

bool WaitFor(const std::function<bool()>& cond, absl::Duration timeout = kDeadline) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (cond()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return cond();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fake greenlightd: records what the agent sends, answers with the orders
// the test queues, acknowledges every report it receives unless told not to.
class FakeAgentService final : public v1::AgentService::Service {
 public:
  grpc::Status RegisterNode(grpc::ServerContext* ctx, const v1::RegisterNodeRequest* req,
                            v1::RegisterNodeResponse* resp) override {
    absl::MutexLock l(&mu_);
    registrations_.push_back(*req);
    tokens_.push_back(Token(ctx));
    resp->mutable_node()->set_name(req->node());
    resp->mutable_node()->set_slot(0);
    *resp->mutable_heartbeat_interval() = ToProtoDuration(absl::Seconds(1));
    *resp->mutable_lease_timeout() = ToProtoDuration(absl::Seconds(10));
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override {
    absl::MutexLock l(&mu_);
    tokens_.push_back(Token(ctx));
    if (not_found_once_) {
      not_found_once_ = false;
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "node is not registered");
    }
    for (int i = 0; i < req->reports_size(); ++i) {
      if (req->reports(i).job_id() != refuse_job_) continue;
      // As greenlightd: the whole heartbeat, with the bad field named.
      ++refused_;
      google::rpc::BadRequest bad;
      auto* v = bad.add_field_violations();
      v->set_field(absl::StrCat("reports[", i, "].job_id"));
      v->set_description("no such job");
      google::rpc::Status details;
      details.set_code(grpc::StatusCode::INVALID_ARGUMENT);
      details.set_message(absl::StrCat("reports[", i, "].job_id: no such job"));
      details.add_details()->PackFrom(bad);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, details.message(),
                          details.SerializeAsString());
    }
    heartbeats_.push_back(*req);
    for (const v1::JobReport& r : req->reports()) {
      reports_.push_back(r);
      if (ack_) acked_[r.job_id()] = std::max(acked_[r.job_id()], r.sequence());
    }
    if (ack_) {
      for (const auto& [job, seq] : acked_) (*resp->mutable_acknowledged())[job] = seq;
    }
    for (v1::JobAssignment& a : launches_) *resp->add_launch() = std::move(a);
    launches_.clear();
    for (const auto& [job, order] : stops_) *resp->add_stop() = order;  // resent, as a server would
    return grpc::Status::OK;
  }

  void Launch(v1::JobAssignment a) {
    absl::MutexLock l(&mu_);
    launches_.push_back(std::move(a));
  }
  void Stop(const std::string& job, absl::Duration grace) {
    absl::MutexLock l(&mu_);
    v1::StopOrder& o = stops_[job];
    o.set_job_id(job);
    *o.mutable_grace_period() = ToProtoDuration(grace);
    o.set_reason("cancelled by the test");
  }
  void SetAck(bool ack) {
    absl::MutexLock l(&mu_);
    ack_ = ack;
  }
  void RefuseReportsOf(const std::string& job) {
    absl::MutexLock l(&mu_);
    refuse_job_ = job;
  }
  int Refused() {
    absl::MutexLock l(&mu_);
    return refused_;
  }
  void NotFoundOnce() {
    absl::MutexLock l(&mu_);
    not_found_once_ = true;
  }

  std::vector<v1::RegisterNodeRequest> Registrations() {
    absl::MutexLock l(&mu_);
    return registrations_;
  }
  std::vector<std::string> Tokens() {
    absl::MutexLock l(&mu_);
    return tokens_;
  }
  std::vector<v1::HeartbeatRequest> Heartbeats() {
    absl::MutexLock l(&mu_);
    return heartbeats_;
  }
  size_t HeartbeatCount() {
    absl::MutexLock l(&mu_);
    return heartbeats_.size();
  }
  // Every report received for `job`, resends included, in order of receipt.
  std::vector<v1::JobReport> Reports(const std::string& job) {
    absl::MutexLock l(&mu_);
    std::vector<v1::JobReport> out;
    for (const v1::JobReport& r : reports_) {
      if (r.job_id() == job) out.push_back(r);
    }
    return out;
  }
  // The first report of `kind` for `job` satisfying `pred`.
  std::optional<v1::JobReport> Find(
      const std::string& job, v1::JobReportKind kind,
      const std::function<bool(const v1::JobReport&)>& pred = nullptr) {
    for (const v1::JobReport& r : Reports(job)) {
      if (r.kind() == kind && (pred == nullptr || pred(r))) return r;
    }
    return std::nullopt;
  }
  int Count(const std::string& job, v1::JobReportKind kind) {
    int n = 0;
    for (const v1::JobReport& r : Reports(job)) n += r.kind() == kind ? 1 : 0;
    return n;
  }

 private:
  static std::string Token(grpc::ServerContext* ctx) {
    auto it = ctx->client_metadata().find("authorization");
    if (it == ctx->client_metadata().end()) return "";
    return std::string(it->second.data(), it->second.size());
  }

  absl::Mutex mu_;
  std::vector<v1::RegisterNodeRequest> registrations_;
  std::vector<std::string> tokens_;
  std::vector<v1::HeartbeatRequest> heartbeats_;
  std::vector<v1::JobReport> reports_;
  std::map<std::string, int64_t> acked_;
  std::vector<v1::JobAssignment> launches_;
  std::map<std::string, v1::StopOrder> stops_;
  bool ack_ = true;
  bool not_found_once_ = false;
  std::string refuse_job_;
  int refused_ = 0;
};

// Live members of process group `pgid` (pids).
std::vector<pid_t> GroupMembers(pid_t pgid) {
  std::vector<pid_t> out;
  for (const auto& e : ::greenlight::testing::GroupMembers(pgid)) out.push_back(e.pid);
  return out;
}

double Wh(int64_t mj) { return static_cast<double>(mj) / 3.6e6; }

std::optional<double> EnergyOf(const v1::JobReport& r, int index) {
  for (const v1::GpuEnergy& e : r.energy()) {
    if (e.index() == index) return e.energy_wh();
  }
  return std::nullopt;
}

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(tmp_.ok());
    ASSERT_NE(std::getenv("GREENLIGHT_BIN"), nullptr) << "run under ctest";
    setenv("GREENLIGHT_FAKE_NVML_FILE", nvml_file_.c_str(), 1);
    WriteCounters(1'000'000, 5'000'000);
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }

  void TearDown() override {
    StopAgent();
    // Kill whatever a failed test left running, through a runner of its own.
    ProcessRunner cleanup(state_, ProcessRunner::ExitRetention::kUntilForget);
    cleanup.Adopt();
    for (const std::string& id : cleanup.Running()) {
      cleanup.Stop(id, absl::ZeroDuration(), absl::Now()).IgnoreError();
    }
    WaitFor([&] {
      cleanup.CollectExited();
      return cleanup.Running().empty();
    });
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    unsetenv("GREENLIGHT_FAKE_NVML_FILE");
  }

  // Rewrites the fake NVML's file atomically (the library re-reads it on
  // every call): GPU 0 and GPU 1 with these total-energy counters.
  void WriteCounters(int64_t gpu0_mj, int64_t gpu1_mj) {
    const std::string tmp = nvml_file_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << "# index uuid name memory_mib power_limit_mw energy_mj power_mw util_pct\n"
          << "0 GPU-aaaa-0000 NVIDIA-H100-80GB-HBM3 81559 700000 " << gpu0_mj << " 250000 87\n"
          << "1 GPU-bbbb-1111 NVIDIA-H100-80GB-HBM3 81559 700000 " << gpu1_mj << " 240000 81\n";
      ASSERT_TRUE(out.good());
    }
    ASSERT_EQ(std::rename(tmp.c_str(), nvml_file_.c_str()), 0);
  }

  AgentOptions Options() {
    AgentOptions o;
    o.server = absl::StrCat("127.0.0.1:", port_);
    o.token = kToken;
    o.pool = "agent-pool";
    o.node = "node-1.test";
    o.hostname = "host-1";
    o.state_dir = state_;
    o.nvml_path = std::string(std::getenv("GREENLIGHT_BIN")) + "/testing/nvml/libnvidia-ml.so.1";
    o.heartbeat_interval = absl::Milliseconds(50);
    o.report_interval = absl::Milliseconds(100);
    o.grace = absl::Seconds(30);
    o.allow_root = geteuid() == 0;  // the tests run jobs as whoever runs them
    return o;
  }

  void StartAgent(AgentOptions o) {
    absl::StatusOr<std::unique_ptr<Agent>> agent = Agent::Create(std::move(o));
    ASSERT_OK(agent);
    agent_ = std::move(*agent);
    thread_ = std::thread([this] { run_status_ = agent_->Run(); });
  }
  void StartAgent() { StartAgent(Options()); }

  // Stops the agent (its jobs keep running) and waits for Run to return.
  void StopAgent() {
    if (agent_ == nullptr) return;
    agent_->Shutdown();
    thread_.join();
    EXPECT_OK(run_status_);
    agent_.reset();
  }

  static v1::JobAssignment Assignment(const std::string& id, std::vector<std::string> argv,
                                      std::vector<int> gpus) {
    v1::JobAssignment a;
    a.set_job_id(id);
    for (const std::string& arg : argv) a.mutable_command()->add_argv(arg);
    for (int g : gpus) a.add_gpu_indices(g);
    a.set_team("vision");
    a.set_submitter("alice@example.com");
    return a;
  }

  std::optional<v1::JobReport> WaitForReport(
      const std::string& job, v1::JobReportKind kind,
      const std::function<bool(const v1::JobReport&)>& pred = nullptr) {
    std::optional<v1::JobReport> found;
    WaitFor([&] {
      found = service_.Find(job, kind, pred);
      return found.has_value();
    });
    return found;
  }

  // Waits until the agent has sent `n` more heartbeats.
  bool WaitHeartbeats(size_t n) {
    const size_t target = service_.HeartbeatCount() + n;
    return WaitFor([&] { return service_.HeartbeatCount() >= target; });
  }

  std::string JobFile(const std::string& id, const std::string& name) {
    return absl::StrCat(state_, "/jobs/", id, "/", name);
  }

  testing::TempDir tmp_;
  std::string state_ = tmp_.File("state");
  std::string nvml_file_ = tmp_.File("nvml.txt");
  FakeAgentService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<Agent> agent_;
  std::thread thread_;
  absl::Status run_status_;
};

TEST_F(AgentTest, RegistersWithTheDiscoveredGpus) {
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return service_.HeartbeatCount() > 0; }));
  std::vector<v1::RegisterNodeRequest> regs = service_.Registrations();
  ASSERT_EQ(regs.size(), 1u);
  const v1::RegisterNodeRequest& r = regs[0];
  EXPECT_EQ(r.node(), "node-1.test");
  EXPECT_EQ(r.pool_id(), "agent-pool");
  EXPECT_EQ(r.hostname(), "host-1");
  EXPECT_EQ(r.agent_version(), kAgentVersion);
  EXPECT_TRUE(r.energy_measured());
  ASSERT_EQ(r.gpus_size(), 2);
  EXPECT_EQ(r.gpus(0).index(), 0);
  EXPECT_EQ(r.gpus(0).uuid(), "GPU-aaaa-0000");
  EXPECT_EQ(r.gpus(0).name(), "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(r.gpus(0).memory_bytes(), int64_t{81559} * 1024 * 1024);
  EXPECT_EQ(r.gpus(0).power_limit_mw(), 700000);
  EXPECT_EQ(r.gpus(1).index(), 1);
  EXPECT_EQ(r.gpus(1).uuid(), "GPU-bbbb-1111");
  for (const std::string& t : service_.Tokens()) EXPECT_EQ(t, absl::StrCat("Bearer ", kToken));
  EXPECT_EQ(service_.Heartbeats()[0].node(), "node-1.test");
  // The server asked for 1 s; the agent keeps its shorter interval.
  EXPECT_EQ(agent_->heartbeat_interval(), absl::Milliseconds(50));
}

TEST_F(AgentTest, DeclaredGpusWhenNvmlIsOffOrFailsReportNoEnergy) {
  AgentOptions bad = Options();
  bad.nvml_path = tmp_.File("no-such-libnvidia-ml.so.1");
  absl::StatusOr<std::unique_ptr<Agent>> refused = Agent::Create(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(bad.nvml_path));
  EXPECT_THAT(refused.status().message(), HasSubstr("--gpus"));

  AgentOptions o = bad;  // NVML fails to load, GPUs declared
  o.declared_gpus = 2;
  o.gpu_type = "T4";
  StartAgent(o);
  ASSERT_TRUE(WaitFor([&] { return service_.HeartbeatCount() > 0; }));
  const v1::RegisterNodeRequest r = service_.Registrations().at(0);
  EXPECT_FALSE(r.energy_measured());
  ASSERT_EQ(r.gpus_size(), 2);
  EXPECT_EQ(r.gpus(0).uuid(), "declared-0");
  EXPECT_EQ(r.gpus(1).uuid(), "declared-1");
  EXPECT_EQ(r.gpus(1).name(), "T4");

  service_.Launch(Assignment("modelled", {"/bin/sh", "-c", "exit 0"}, {0, 1}));
  std::optional<v1::JobReport> exited = WaitForReport("modelled", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code(), 0);
  for (const v1::JobReport& rep : service_.Reports("modelled")) EXPECT_EQ(rep.energy_size(), 0);
  StopAgent();

  AgentOptions off = Options();
  off.use_nvml = false;
  off.declared_gpus = 1;
  off.gpu_type = "A10";
  absl::StatusOr<std::unique_ptr<Agent>> declared = Agent::Create(off);
  ASSERT_OK(declared);
  EXPECT_FALSE((*declared)->registration().energy_measured());
  ASSERT_EQ((*declared)->registration().gpus_size(), 1);
  EXPECT_EQ((*declared)->registration().gpus(0).name(), "A10");
}

TEST_F(AgentTest, RunsACommandAndReportsStartedThenExited) {
  StartAgent();
  service_.Launch(Assignment(
      "job-a", {"/bin/sh", "-c", "echo $GREENLIGHT_JOB_ID $CUDA_VISIBLE_DEVICES; exit 4"}, {0, 1}));
  std::optional<v1::JobReport> exited = WaitForReport("job-a", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code(), 4);
  EXPECT_EQ(exited->signal(), 0);
  std::optional<v1::JobReport> started = service_.Find("job-a", v1::JOB_REPORT_KIND_STARTED);
  ASSERT_TRUE(started.has_value());
  EXPECT_GT(started->pid(), 0);
  EXPECT_EQ(exited->pid(), started->pid());
  EXPECT_LT(started->sequence(), exited->sequence());
  // STARTED was received before EXITED, and sequences only increase.
  std::vector<v1::JobReport> all = service_.Reports("job-a");
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().kind(), v1::JOB_REPORT_KIND_STARTED);
  for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].sequence(), all[i].sequence());
  EXPECT_EQ(ReadAll(JobFile("job-a", "stdout.log")), "job-a 0,1\n");
  // The assignment is on disk with its team and submitter.
  EXPECT_THAT(ReadAll(JobFile("job-a", "assignment.textpb")), HasSubstr("alice@example.com"));

  // The EXITED report was acknowledged: the process record goes, and the
  // same assignment again (not a resume) is not launched a second time.
  ASSERT_TRUE(WaitFor([&] { return !std::filesystem::exists(JobFile("job-a", "process")); }));
  service_.Launch(Assignment("job-a", {"/bin/sh", "-c", "echo again"}, {0}));
  ASSERT_TRUE(WaitHeartbeats(5));
  EXPECT_EQ(service_.Count("job-a", v1::JOB_REPORT_KIND_STARTED), 1);
  EXPECT_EQ(ReadAll(JobFile("job-a", "stdout.log")), "job-a 0,1\n");
}

TEST_F(AgentTest, EnergyReportsAreExactlyTheCounterDeltas) {
  StartAgent();
  service_.Launch(Assignment("energy", {"sleep", "100"}, {0, 1}));
  ASSERT_TRUE(WaitForReport("energy", v1::JOB_REPORT_KIND_STARTED).has_value());
  // The agent took its baseline (1'000'000 / 5'000'000 mJ) before STARTED.
  const int64_t d0 = 1'234'567, d1 = 89;
  WriteCounters(1'000'000 + d0, 5'000'000 + d1);
  std::optional<v1::JobReport> progress = WaitForReport(
      "energy", v1::JOB_REPORT_KIND_PROGRESS,
      [&](const v1::JobReport& r) { return EnergyOf(r, 0) == Wh(d0) && EnergyOf(r, 1) == Wh(d1); });
  ASSERT_TRUE(progress.has_value());
  EXPECT_EQ(progress->energy_size(), 2);
  EXPECT_EQ(progress->utilization_pct(), (87 + 81) / 2);

  const int64_t e0 = 7'200'000, e1 = 3'600'001;
  WriteCounters(1'000'000 + d0 + e0, 5'000'000 + d1 + e1);
  ASSERT_TRUE(WaitForReport("energy", v1::JOB_REPORT_KIND_PROGRESS, [&](const v1::JobReport& r) {
                return EnergyOf(r, 0) == Wh(d0 + e0) && EnergyOf(r, 1) == Wh(d1 + e1);
              }).has_value());
  service_.Stop("energy", absl::Seconds(30));
  std::optional<v1::JobReport> exited = WaitForReport("energy", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->signal(), SIGTERM);
  EXPECT_EQ(EnergyOf(*exited, 0), Wh(d0 + e0));
  EXPECT_EQ(EnergyOf(*exited, 1), Wh(d1 + e1));
}

TEST_F(AgentTest, UnacknowledgedReportsAreResentAcknowledgedOnesAreNot) {
  service_.SetAck(false);
  StartAgent();
  service_.Launch(Assignment("resend", {"sleep", "100"}, {0}));
  ASSERT_TRUE(WaitFor([&] { return service_.Count("resend", v1::JOB_REPORT_KIND_STARTED) >= 3; }));
  ASSERT_TRUE(WaitFor([&] { return service_.Count("resend", v1::JOB_REPORT_KIND_PROGRESS) >= 3; }));
  // Resent with the same sequence; at most one PROGRESS pending at a time.
  std::set<int64_t> started_seqs;
  for (const v1::JobReport& r : service_.Reports("resend")) {
    if (r.kind() == v1::JOB_REPORT_KIND_STARTED) started_seqs.insert(r.sequence());
  }
  EXPECT_EQ(started_seqs.size(), 1u);
  for (const v1::HeartbeatRequest& hb : service_.Heartbeats()) {
    int progress = 0;
    for (const v1::JobReport& r : hb.reports()) {
      progress += r.kind() == v1::JOB_REPORT_KIND_PROGRESS ? 1 : 0;
    }
    EXPECT_LE(progress, 1);
  }

  service_.SetAck(true);
  // Once a heartbeat after the ack carried no STARTED, none comes again.
  ASSERT_TRUE(WaitHeartbeats(2));
  const int started = service_.Count("resend", v1::JOB_REPORT_KIND_STARTED);
  ASSERT_TRUE(WaitHeartbeats(5));
  EXPECT_EQ(service_.Count("resend", v1::JOB_REPORT_KIND_STARTED), started);
  // The job is listed as running in every heartbeat.
  const v1::HeartbeatRequest last = service_.Heartbeats().back();
  EXPECT_THAT(last.running_job_ids(), ::testing::ElementsAre("resend"));
  EXPECT_THAT(ReadAll(JobFile("resend", "agent")), HasSubstr("started_acked 1"));
}

TEST_F(AgentTest, StopOrderKillsTheProcessGroupTermThenKillAfterTheGrace) {
  StartAgent();
  // Leaves on SIGTERM: its group (the shell and two sleeps) goes.
  service_.Launch(Assignment("polite", {"/bin/sh", "-c", "sleep 100 & sleep 100; wait"}, {}));
  // Ignores SIGTERM (says so): killed once the grace is over.
  service_.Launch(Assignment(
      "stubborn",
      {"/bin/sh", "-c", "trap 'echo got TERM' TERM; echo ready; while :; do sleep 0.05; done"},
      {}));
  std::optional<v1::JobReport> polite = WaitForReport("polite", v1::JOB_REPORT_KIND_STARTED);
  std::optional<v1::JobReport> stubborn = WaitForReport("stubborn", v1::JOB_REPORT_KIND_STARTED);
  ASSERT_TRUE(polite.has_value());
  ASSERT_TRUE(stubborn.has_value());
  const pid_t polite_pgid = static_cast<pid_t>(polite->pid());
  const pid_t stubborn_pgid = static_cast<pid_t>(stubborn->pid());
  ASSERT_TRUE(WaitFor([&] { return GroupMembers(polite_pgid).size() >= 3; }));
  ASSERT_TRUE(WaitFor([&] {
    return ReadAll(JobFile("stubborn", "stdout.log")).find("ready") != std::string::npos;
  }));

  service_.Stop("polite", absl::Seconds(30));
  service_.Stop("stubborn", absl::Milliseconds(200));
  std::optional<v1::JobReport> polite_exit = WaitForReport("polite", v1::JOB_REPORT_KIND_EXITED);
  std::optional<v1::JobReport> stubborn_exit =
      WaitForReport("stubborn", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(polite_exit.has_value());
  ASSERT_TRUE(stubborn_exit.has_value());
  EXPECT_EQ(polite_exit->signal(), SIGTERM);
  EXPECT_EQ(stubborn_exit->signal(), SIGKILL);
  EXPECT_THAT(ReadAll(JobFile("stubborn", "stdout.log")), HasSubstr("got TERM"));
  EXPECT_TRUE(GroupMembers(polite_pgid).empty());
  EXPECT_TRUE(GroupMembers(stubborn_pgid).empty());
}

TEST_F(AgentTest, RestartedAgentReadoptsTheJobAndEnergyDoesNotGoBackwards) {
  StartAgent();
  service_.Launch(Assignment("long", {"sleep", "100"}, {1}));
  std::optional<v1::JobReport> started = WaitForReport("long", v1::JOB_REPORT_KIND_STARTED);
  ASSERT_TRUE(started.has_value());
  const int64_t d1 = 1'800'000;  // 0.5 Wh
  WriteCounters(1'000'000, 5'000'000 + d1);
  ASSERT_TRUE(WaitForReport("long", v1::JOB_REPORT_KIND_PROGRESS, [&](const v1::JobReport& r) {
                return EnergyOf(r, 1) == Wh(d1);
              }).has_value());
  StopAgent();  // the job keeps running under its supervisor
  ASSERT_EQ(kill(static_cast<pid_t>(started->pid()), 0), 0);
  int64_t max_seq = 0;
  for (const v1::JobReport& r : service_.Reports("long")) max_seq = std::max(max_seq, r.sequence());
  const size_t heartbeats_before = service_.HeartbeatCount();

  StartAgent();  // the same state dir
  const int64_t d2 = 123'457;
  ASSERT_TRUE(WaitFor([&] { return service_.HeartbeatCount() > heartbeats_before; }));
  WriteCounters(1'000'000, 5'000'000 + d1 + d2);
  const double expected = Wh(d1) + Wh(d2);
  ASSERT_TRUE(WaitForReport("long", v1::JOB_REPORT_KIND_PROGRESS, [&](const v1::JobReport& r) {
                return EnergyOf(r, 1) == expected;
              }).has_value());
  EXPECT_EQ(service_.Registrations().size(), 2u);
  // Not started again: one STARTED, same pid, listed as running.
  EXPECT_EQ(service_.Count("long", v1::JOB_REPORT_KIND_STARTED), 1);
  EXPECT_THAT(service_.Heartbeats().back().running_job_ids(), ::testing::ElementsAre("long"));

  service_.Stop("long", absl::Seconds(30));
  std::optional<v1::JobReport> exited = WaitForReport("long", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->pid(), started->pid());
  EXPECT_EQ(exited->signal(), SIGTERM);
  EXPECT_EQ(EnergyOf(*exited, 1), expected);

  // By sequence: energy never goes backwards, and the restarted agent's
  // sequences continue above the first one's.
  std::map<int64_t, v1::JobReport> by_seq;
  for (const v1::JobReport& r : service_.Reports("long")) by_seq[r.sequence()] = r;
  double last = 0;
  for (const auto& [seq, r] : by_seq) {
    if (std::optional<double> e = EnergyOf(r, 1)) {
      EXPECT_GE(*e, last) << "sequence " << seq;
      last = *e;
    }
  }
  EXPECT_GT(exited->sequence(), max_seq);
}

TEST_F(AgentTest, ExitNotAcknowledgedBeforeARestartIsReportedByTheNextAgent) {
  service_.SetAck(false);
  StartAgent();
  service_.Launch(Assignment("quick", {"/bin/sh", "-c", "exit 9"}, {0}));
  ASSERT_TRUE(WaitForReport("quick", v1::JOB_REPORT_KIND_EXITED).has_value());
  StopAgent();  // dies with EXITED unacknowledged
  ASSERT_TRUE(std::filesystem::exists(JobFile("quick", "process")));

  service_.SetAck(true);
  const int exits_before = service_.Count("quick", v1::JOB_REPORT_KIND_EXITED);
  StartAgent();
  ASSERT_TRUE(
      WaitFor([&] { return service_.Count("quick", v1::JOB_REPORT_KIND_EXITED) > exits_before; }));
  std::vector<v1::JobReport> reports = service_.Reports("quick");
  EXPECT_EQ(reports.back().kind(), v1::JOB_REPORT_KIND_EXITED);
  EXPECT_EQ(reports.back().exit_code(), 9);
  // Acknowledged now: forgotten, and the next agent reports nothing more.
  ASSERT_TRUE(WaitFor([&] { return !std::filesystem::exists(JobFile("quick", "process")); }));
  EXPECT_THAT(ReadAll(JobFile("quick", "agent")), HasSubstr("phase done"));
  StopAgent();
  const size_t total = service_.Reports("quick").size();
  StartAgent();
  ASSERT_TRUE(WaitHeartbeats(3));
  EXPECT_EQ(service_.Reports("quick").size(), total);
}

TEST_F(AgentTest, JobGoneWhileTheAgentWasDownIsReportedLost) {
  StartAgent();
  service_.Launch(Assignment("vanish", {"sleep", "100"}, {0}));
  std::optional<v1::JobReport> started = WaitForReport("vanish", v1::JOB_REPORT_KIND_STARTED);
  ASSERT_TRUE(started.has_value());
  StopAgent();
  // As after a reboot: the supervisor and the job die, no exit is recorded.
  std::string process = ReadAll(JobFile("vanish", "process"));
  int64_t supervisor = 0;
  for (absl::string_view line : absl::StrSplit(process, '\n')) {
    std::vector<std::string> kv = absl::StrSplit(line, ' ');
    if (kv.size() == 2 && kv[0] == "supervisor_pid") {
      ASSERT_TRUE(absl::SimpleAtoi(kv[1], &supervisor));
    }
  }
  ASSERT_GT(supervisor, 0);
  ASSERT_EQ(kill(static_cast<pid_t>(supervisor), SIGKILL), 0);
  int st = 0;
  waitpid(static_cast<pid_t>(supervisor), &st, 0);  // forked by the in-process agent
  ASSERT_EQ(kill(static_cast<pid_t>(-started->pid()), SIGKILL), 0);
  ASSERT_TRUE(WaitFor([&] { return GroupMembers(static_cast<pid_t>(started->pid())).empty(); }));

  StartAgent();
  std::optional<v1::JobReport> exited = WaitForReport("vanish", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->signal(), SIGKILL);
  EXPECT_EQ(exited->reason(), kLostWhileDown);
}

TEST_F(AgentTest, JobEnvironmentIsCleanAndComplete) {
  ASSERT_EQ(setenv("GREENLIGHT_AGENT_TEST_MARKER", "agent-only", 1), 0);
  StartAgent();
  v1::JobAssignment a = Assignment("envjob", {"env"}, {1});
  (*a.mutable_command()->mutable_env())["FOO"] = "bar baz";
  a.set_resume(true);
  service_.Launch(a);
  std::optional<v1::JobReport> exited = WaitForReport("envjob", v1::JOB_REPORT_KIND_EXITED);
  unsetenv("GREENLIGHT_AGENT_TEST_MARKER");
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code(), 0) << ReadAll(JobFile("envjob", "stderr.log"));
  const std::string out = ReadAll(JobFile("envjob", "stdout.log"));
  EXPECT_THAT(out, Not(HasSubstr("GREENLIGHT_AGENT_TEST_MARKER")));
  EXPECT_THAT(out, Not(HasSubstr(kToken)));
  std::set<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  const std::string work = JobFile("envjob", "work");
  EXPECT_EQ(lines, (std::set<std::string>{
                       "FOO=bar baz", "GREENLIGHT_JOB_ID=envjob", "GREENLIGHT_TEAM=vision",
                       "GREENLIGHT_RESUME=1", "CUDA_VISIBLE_DEVICES=1",
                       absl::StrCat("PATH=", kDefaultJobPath), absl::StrCat("HOME=", work)}));
}

TEST_F(AgentTest, WorkingDirIsUnderTheJobDirAndEscapesAreRefused) {
  StartAgent();
  v1::JobAssignment in = Assignment("wd", {"/bin/sh", "-c", "pwd"}, {});
  in.mutable_command()->set_working_dir("src/./run");
  service_.Launch(in);
  v1::JobAssignment out = Assignment("escape", {"/bin/true"}, {});
  out.mutable_command()->set_working_dir("a/../../..");
  service_.Launch(out);
  v1::JobAssignment gpu = Assignment("badgpu", {"/bin/true"}, {7});
  service_.Launch(gpu);

  std::optional<v1::JobReport> ran = WaitForReport("wd", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(ran.has_value());
  EXPECT_EQ(ReadAll(JobFile("wd", "stdout.log")), JobFile("wd", "work/src/run") + "\n");
  std::optional<v1::JobReport> refused =
      WaitForReport("escape", v1::JOB_REPORT_KIND_FAILED_TO_START);
  ASSERT_TRUE(refused.has_value());
  EXPECT_THAT(refused->reason(), HasSubstr("escapes the job directory"));
  std::optional<v1::JobReport> no_gpu =
      WaitForReport("badgpu", v1::JOB_REPORT_KIND_FAILED_TO_START);
  ASSERT_TRUE(no_gpu.has_value());
  EXPECT_THAT(no_gpu->reason(), HasSubstr("GPU index 7"));
  EXPECT_EQ(service_.Count("escape", v1::JOB_REPORT_KIND_STARTED), 0);
}

TEST_F(AgentTest, LaunchErrorIsAFailedToStartWithTheReason) {
  StartAgent();
  service_.Launch(Assignment("nobin", {"/nonexistent/greenlight-no-such-binary"}, {}));
  std::optional<v1::JobReport> failed = WaitForReport("nobin", v1::JOB_REPORT_KIND_FAILED_TO_START);
  ASSERT_TRUE(failed.has_value());
  EXPECT_THAT(failed->reason(), HasSubstr("execvpe"));
  EXPECT_THAT(failed->reason(), HasSubstr("No such file or directory"));
}

TEST_F(AgentTest, ReportsGreenlightdRefusesAreDroppedNotResentForever) {
  service_.RefuseReportsOf("unknown-here");
  StartAgent();
  service_.Launch(Assignment("unknown-here", {"sleep", "100"}, {}));
  ASSERT_TRUE(WaitFor([&] { return service_.Refused() >= 1; }));
  // The heartbeats go through again (the job's later PROGRESS reports are
  // refused and dropped too, each once), and the job still runs.
  const size_t n = service_.HeartbeatCount();
  ASSERT_TRUE(WaitFor([&] { return service_.HeartbeatCount() > n + 3; }));
  EXPECT_THAT(service_.Heartbeats().back().running_job_ids(),
              ::testing::ElementsAre("unknown-here"));
  EXPECT_EQ(service_.Count("unknown-here", v1::JOB_REPORT_KIND_STARTED), 0);
}

TEST_F(AgentTest, HeartbeatAnsweredNotFoundRegistersAgain) {
  StartAgent();
  ASSERT_TRUE(WaitFor([&] { return service_.HeartbeatCount() > 0; }));
  service_.NotFoundOnce();
  ASSERT_TRUE(WaitFor([&] { return service_.Registrations().size() >= 2; }));
  const size_t n = service_.HeartbeatCount();
  ASSERT_TRUE(WaitFor([&] { return service_.HeartbeatCount() > n; }));
}

TEST_F(AgentTest, AsRootWithoutRunAsJobsAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  AgentOptions o = Options();
  o.allow_root = false;
  StartAgent(o);
  service_.Launch(Assignment("rooted", {"/bin/sh", "-c", "echo ran"}, {0}));
  std::optional<v1::JobReport> failed =
      WaitForReport("rooted", v1::JOB_REPORT_KIND_FAILED_TO_START);
  ASSERT_TRUE(failed.has_value());
  EXPECT_EQ(failed->reason(), kRootRefusal);
  EXPECT_EQ(service_.Count("rooted", v1::JOB_REPORT_KIND_STARTED), 0);
  EXPECT_FALSE(std::filesystem::exists(JobFile("rooted", "stdout.log")));
}

TEST_F(AgentTest, RunsJobsAsTheRunAsUserInAWorkDirItOwns) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root";
  struct passwd* nobody = getpwnam("nobody");
  if (nobody == nullptr) GTEST_SKIP() << "no user nobody";
  ASSERT_EQ(chmod(tmp_.path().c_str(), 0711), 0);  // the temp dir is 0700
  AgentOptions o = Options();
  o.allow_root = false;
  o.run_as = "nobody";
  StartAgent(o);
  service_.Launch(Assignment("asnobody", {"/bin/sh", "-c", "id -u; echo x > ok"}, {}));
  std::optional<v1::JobReport> exited = WaitForReport("asnobody", v1::JOB_REPORT_KIND_EXITED);
  ASSERT_TRUE(exited.has_value());
  EXPECT_EQ(exited->exit_code(), 0) << ReadAll(JobFile("asnobody", "stderr.log"));
  EXPECT_EQ(ReadAll(JobFile("asnobody", "stdout.log")), absl::StrCat(nobody->pw_uid, "\n"));
  EXPECT_EQ(ReadAll(JobFile("asnobody", "work/ok")), "x\n");
  struct stat st;
  ASSERT_EQ(stat(JobFile("asnobody", "agent").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u);  // the agent's records are private
}

}  // namespace
}  // namespace greenlight::agent
