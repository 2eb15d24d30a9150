// End-to-end tests of greenlightd over gRPC: the real binary, a temp store.
#include "tests/testing/daemon.h"

#include <atomic>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"

namespace greenlight {
namespace {

using ::greenlight::testing::Daemon;
using ::greenlight::testing::TempDir;
using ::testing::HasSubstr;
namespace v1 = ::greenlight::v1;

v1::JobSpec SmallJob(const std::string& rid = "") {
  v1::JobSpec s;
  s.set_team("ml-research");
  s.set_name("resnet");
  s.set_gpus(1);
  s.add_gpu_types("A100");
  s.set_reference_gpu_hours(4);
  s.set_max_cost_micros(500'000'000);  // $500
  s.set_request_id(rid);
  return s;
}

grpc::Status Submit(v1::Scheduler::Stub* stub, const v1::JobSpec& spec,
                    v1::SubmitJobResponse* resp) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::SubmitJobRequest req;
  *req.mutable_spec() = spec;
  return stub->SubmitJob(&ctx, req, resp);
}

TEST(Daemon, SubmitEstimateGetListWithPagingAndCancel) {
  TempDir dir;
  Daemon d(dir.path() + "/gl.db");
  ASSERT_TRUE(d.Start());
  auto stub = v1::Scheduler::NewStub(d.channel());

  {
    grpc::ClientContext ctx;
    v1::EstimateJobRequest req;
    *req.mutable_spec() = SmallJob();
    req.set_top_k(3);
    v1::EstimateJobResponse resp;
    ASSERT_TRUE(stub->EstimateJob(&ctx, req, &resp).ok());
    EXPECT_TRUE(resp.quote().feasible());
    EXPECT_EQ(resp.quote().chosen().gpu_type(), "A100");
    EXPECT_GT(resp.quote().chosen().cost_micros(), 0);
    EXPECT_LE(resp.quote().alternatives_size(), 3);
    EXPECT_FALSE(resp.quote().summary().empty());
  }
  // Estimate stores nothing.
  {
    grpc::ClientContext ctx;
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, v1::ListJobsRequest(), &resp).ok());
    EXPECT_EQ(resp.jobs_size(), 0);
  }
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    v1::SubmitJobResponse resp;
    auto st = Submit(stub.get(), SmallJob(), &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_THAT(resp.job().id(), ::testing::StartsWith("j-"));
    ids.push_back(resp.job().id());
  }
  {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id(ids[0]);
    v1::GetJobResponse resp;
    ASSERT_TRUE(stub->GetJob(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.job().spec().name(), "resnet");
    EXPECT_GT(resp.job().reserved_cost_micros() + resp.job().accrued_cost_micros(), 0);
  }
  // Paging: 3 + 3 + 1, in submit order, no duplicates.
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_page_size(3);
    req.set_page_token(token);
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, req, &resp).ok());
    for (const auto& j : resp.jobs()) seen.push_back(j.id());
    token = resp.next_page_token();
    ++pages;
  } while (!token.empty() && pages < 10);
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen, ids);
  // Cancel, then cancel again is FAILED_PRECONDITION; unknown id is NOT_FOUND.
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_job_id(ids[1]);
    v1::CancelJobResponse resp;
    ASSERT_TRUE(stub->CancelJob(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.job().state(), v1::JOB_STATE_CANCELLED);
    EXPECT_EQ(resp.job().reserved_cost_micros(), 0);
  }
  {
    grpc::ClientContext ctx;
    v1::CancelJobRequest req;
    req.set_job_id(ids[1]);
    v1::CancelJobResponse resp;
    EXPECT_EQ(stub->CancelJob(&ctx, req, &resp).error_code(),
              grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    grpc::ClientContext ctx;
    v1::GetJobRequest req;
    req.set_job_id("j-0000000000000000");
    v1::GetJobResponse resp;
    EXPECT_EQ(stub->GetJob(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // Filter by state.
  {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.add_states(v1::JOB_STATE_CANCELLED);
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, req, &resp).ok());
    ASSERT_EQ(resp.jobs_size(), 1);
    EXPECT_EQ(resp.jobs(0).id(), ids[1]);
  }
}

TEST(Daemon, ErrorsCarryCodesFieldsAndTheBestQuote) {
  TempDir dir;
  Daemon d(dir.path() + "/gl.db");
  ASSERT_TRUE(d.Start());
  auto stub = v1::Scheduler::NewStub(d.channel());
  v1::SubmitJobResponse resp;
  v1::JobSpec bad = SmallJob();
  bad.set_gpus(0);
  auto st = Submit(stub.get(), bad, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("spec.gpus"));

  v1::JobSpec capped = SmallJob();
  capped.set_max_cost_micros(1);  // $0.000001: never
  st = Submit(stub.get(), capped, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(st.error_message(), HasSubstr("cap"));
  EXPECT_FALSE(st.error_details().empty()) << "the best quote travels in grpc-status-details-bin";

  v1::JobSpec unknown = SmallJob();
  unknown.set_team("nobody");
  st = Submit(stub.get(), unknown, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("unknown team"));

  // Team budget: vision has $20,000; a huge job exceeds it.
  v1::JobSpec huge = SmallJob();
  huge.set_team("vision");
  huge.set_gpus(16);
  huge.clear_gpu_types();
  huge.set_reference_gpu_hours(200000);
  huge.set_max_cost_micros(0);
  st = Submit(stub.get(), huge, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("vision"));

  // Nothing was stored for any of them.
  grpc::ClientContext ctx;
  v1::ListJobsResponse list;
  ASSERT_TRUE(stub->ListJobs(&ctx, v1::ListJobsRequest(), &list).ok());
  EXPECT_EQ(list.jobs_size(), 0);
}

TEST(Daemon, RequestIdIsIdempotentAcrossRestarts) {
  TempDir dir;
  std::string id;
  {
    Daemon d(dir.path() + "/gl.db");
    ASSERT_TRUE(d.Start());
    auto stub = v1::Scheduler::NewStub(d.channel());
    v1::SubmitJobResponse a, b;
    ASSERT_TRUE(Submit(stub.get(), SmallJob("req-1"), &a).ok());
    ASSERT_TRUE(Submit(stub.get(), SmallJob("req-1"), &b).ok());
    EXPECT_EQ(a.job().id(), b.job().id());
    EXPECT_FALSE(a.deduplicated());
    EXPECT_TRUE(b.deduplicated());
    id = a.job().id();
    d.Kill();
  }
  Daemon d(dir.path() + "/gl.db");
  ASSERT_TRUE(d.Start());
  auto stub = v1::Scheduler::NewStub(d.channel());
  v1::SubmitJobResponse c;
  ASSERT_TRUE(Submit(stub.get(), SmallJob("req-1"), &c).ok());
  EXPECT_EQ(c.job().id(), id);
  EXPECT_TRUE(c.deduplicated());
  v1::JobSpec other = SmallJob("req-1");
  other.set_gpus(2);
  EXPECT_EQ(Submit(stub.get(), other, &c).error_code(), grpc::StatusCode::ALREADY_EXISTS);
}

std::vector<v1::JobEvent> ReadEvents(v1::Scheduler::Stub* stub, int64_t from, size_t n) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::WatchJobsRequest req;
  req.set_from_revision(from);
  auto reader = stub->WatchJobs(&ctx, req);
  std::vector<v1::JobEvent> out;
  v1::JobEvent e;
  while (out.size() < n && reader->Read(&e)) out.push_back(e);
  ctx.TryCancel();
  return out;
}

TEST(Daemon, WatchResumesFromARevisionWithoutGapsOrDuplicates) {
  TempDir dir;
  Daemon d(dir.path() + "/gl.db");
  ASSERT_TRUE(d.Start());
  auto stub = v1::Scheduler::NewStub(d.channel());
  // A deadline 8 h ahead on the server's clock: without one a job may wait up
  // to the 168 h horizon for a cleaner hour of its zone (Lambda us-west-1 is
  // in California, which has an hourly series).
  v1::PingResponse ping;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ASSERT_TRUE(stub->Ping(&ctx, v1::PingRequest(), &ping).ok());
  }
  for (int i = 0; i < 5; ++i) {
    v1::JobSpec spec = SmallJob();
    spec.mutable_deadline()->set_seconds(ping.server_time().seconds() + 8 * 3600);
    v1::SubmitJobResponse r;
    ASSERT_TRUE(Submit(stub.get(), spec, &r).ok());
  }
  // One SUBMITTED event per job (with its initial state), then the jobs finish
  // (time runs 3600x: 4 GPU-hours on an A100 take seconds, a wait at most 4).
  auto all = ReadEvents(stub.get(), 0, 10);
  ASSERT_EQ(all.size(), 10u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(all[i].event_type(), greenlight::v1::JOB_EVENT_TYPE_SUBMITTED);
    EXPECT_NE(all[i].state(), v1::JOB_STATE_UNSPECIFIED);
  }
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].revision(), static_cast<int64_t>(i + 1));
  auto resumed = ReadEvents(stub.get(), all[4].revision(), 5);
  ASSERT_EQ(resumed.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(resumed[i].revision(), all[5 + i].revision());
  // After a restart the stream resumes the same way, from the store.
  d.Kill();
  Daemon d2(dir.path() + "/gl.db");
  ASSERT_TRUE(d2.Start());
  auto stub2 = v1::Scheduler::NewStub(d2.channel());
  auto again = ReadEvents(stub2.get(), 3, 4);
  ASSERT_EQ(again.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(again[i].revision(), all[3 + i].revision());
}

TEST(Daemon, SigkillLosesNoAcknowledgedSubmit) {
  TempDir dir;
  Daemon d(dir.path() + "/gl.db");
  ASSERT_TRUE(d.Start());
  std::mutex mu;
  std::set<std::string> acked;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c) {
    clients.emplace_back([&, c] {
      auto stub = v1::Scheduler::NewStub(d.channel());
      for (int i = 0; !stop; ++i) {
        v1::SubmitJobResponse r;
        if (Submit(stub.get(), SmallJob(absl::StrCat("c", c, "-", i)), &r).ok()) {
          std::lock_guard<std::mutex> l(mu);
          acked.insert(r.job().id());
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  d.Kill();  // mid-load
  stop = true;
  for (auto& t : clients) t.join();
  ASSERT_GT(acked.size(), 10u);
  Daemon d2(dir.path() + "/gl.db");
  ASSERT_TRUE(d2.Start());
  auto stub = v1::Scheduler::NewStub(d2.channel());
  std::set<std::string> stored;
  std::string token;
  do {
    grpc::ClientContext ctx;
    v1::ListJobsRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    v1::ListJobsResponse resp;
    ASSERT_TRUE(stub->ListJobs(&ctx, req, &resp).ok());
    for (const auto& j : resp.jobs()) {
      EXPECT_TRUE(stored.insert(j.id()).second) << "duplicate " << j.id();
      EXPECT_NE(j.state(), v1::JOB_STATE_UNSPECIFIED);
      EXPECT_GT(j.revision(), 0);
    }
    token = resp.next_page_token();
  } while (!token.empty());
  for (const auto& id : acked) EXPECT_TRUE(stored.contains(id)) << "acknowledged job lost: " << id;
  // Usage views agree with the jobs' reservations.
  auto budgets = v1::Budgets::NewStub(d2.channel());
  grpc::ClientContext ctx;
  v1::GetUsageRequest ureq;
  ureq.set_team("ml-research");
  v1::GetUsageResponse usage;
  ASSERT_TRUE(budgets->GetUsage(&ctx, ureq, &usage).ok());
  EXPECT_GT(usage.usage().cost_reserved_micros() + usage.usage().cost_spent_micros(), 0);
}

TEST(Daemon, SigtermDrainsAndExitsCleanly) {
  TempDir dir;
  Daemon d(dir.path() + "/gl.db");
  ASSERT_TRUE(d.Start());
  auto stub = v1::Scheduler::NewStub(d.channel());
  v1::SubmitJobResponse r;
  ASSERT_TRUE(Submit(stub.get(), SmallJob(), &r).ok());
  int status = d.Terminate();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

int RunDaemon(const std::vector<std::string>& args) {
  std::string cmd = absl::StrCat(greenlight::testing::BinDir(), "/services/scheduler/greenlightd");
  for (const auto& a : args) absl::StrAppend(&cmd, " '", a, "'");
  absl::StrAppend(&cmd, " >/dev/null 2>&1");
  int st = std::system(cmd.c_str());
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TEST(Daemon, BadConfigOrTakenPortExitsWithCode2) {
  TempDir dir;
  std::string bad = dir.path() + "/bad.yaml";
  std::ofstream(bad) << "server:\n  grpc_adress: 127.0.0.1:1\n";
  EXPECT_EQ(RunDaemon({"--config=" + bad}), 2);
  EXPECT_EQ(RunDaemon({}), 2);  // no --config
  Daemon d(dir.path() + "/gl.db");
  ASSERT_TRUE(d.Start());
  // Same gRPC port as the running daemon: refused, not shared (SO_REUSEPORT).
  EXPECT_EQ(RunDaemon({"--config=" + greenlight::testing::RepoRoot() + "/deploy/config/demo.yaml",
                       "--grpc_address=" + d.address(), "--metrics_address=off",
                       "--store=" + dir.path() + "/other.db"}),
            2);
}

}  // namespace
}  // namespace greenlight
