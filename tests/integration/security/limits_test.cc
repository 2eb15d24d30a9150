// Limits that keep one caller (or a stalled disk) from taking the server
// down: per-team submit rate and concurrency, a deadline on the wait for the
// scheduler core, bounded watch streams. In-process: the real core and gRPC
// adapters over a store that can be made to hang, so every case is
// deterministic.
#include <future>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/scheduler/limiters.h"
#include "services/scheduler/scheduler_service.h"
#include "services/scheduler/service_support.h"
#include "services/store/memory_store.h"
#include "tests/testing/core_harness.h"

namespace greenlight {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::greenlight::v1;
using scheduler::SchedulerCore;

// A store whose commits hang while stalled (an fsync that never returns: a
// dead NFS server, a full thin-provisioned volume).
class StallingStore final : public store::Store {
 public:
  void Stall() {
    absl::MutexLock l(&mu_);
    stalled_ = true;
  }
  void Resume() {
    absl::MutexLock l(&mu_);
    stalled_ = false;
  }
  // Blocks until a commit is hanging.
  void AwaitHangingCommit() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](int* n) { return *n > 0; }, &hanging_));
  }
  absl::Status Commit(const store::Batch& batch) override {
    {
      absl::MutexLock l(&mu_);
      ++hanging_;
      mu_.Await(absl::Condition(
          +[](bool* s) { return !*s; }, &stalled_));
      --hanging_;
    }
    return inner_.Commit(batch);
  }
  absl::StatusOr<store::Snapshot> Load() override { return inner_.Load(); }
  absl::StatusOr<std::vector<v1::JobEvent>> EventsAfter(int64_t after, int limit) override {
    return inner_.EventsAfter(after, limit);
  }

 private:
  store::MemoryStore inner_;
  absl::Mutex mu_;
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
  int hanging_ ABSL_GUARDED_BY(mu_) = 0;
};

class CoreWithStallingStore {
 public:
  explicit CoreWithStallingStore(absl::Duration command_timeout) : clock_(testing::TestStart()) {
    scheduler::CoreOptions o;
    o.clock = &clock_;
    o.store = &store_;
    o.executor = &executor_;
    o.inventory = testing::SmallInventory(8);
    o.tick_interval = absl::ZeroDuration();
    o.command_timeout = command_timeout;
    core_ = *SchedulerCore::Create(std::move(o));
    core_->Start();
    EXPECT_TRUE(core_->SetTeam(testing::MakeTeam("ml-research", 1'000'000)).ok());
    EXPECT_TRUE(core_->SetTeam(testing::MakeTeam("vision", 1'000'000)).ok());
  }
  ~CoreWithStallingStore() {
    store_.Resume();
    core_->Stop();
  }
  SchedulerCore& core() { return *core_; }
  StallingStore& store() { return store_; }

 private:
  ManualClock clock_;
  StallingStore store_;
  scheduler::SimulatedExecutor executor_;
  std::unique_ptr<SchedulerCore> core_;
};

v1::JobSpec Job(const std::string& team, const std::string& rid) {
  v1::JobSpec s = testing::MakeJob(team, 1, absl::Hours(2));
  s.set_request_id(rid);
  return s;
}

int CountRequest(SchedulerCore& core, const std::string& rid) {
  scheduler::ListJobsQuery q;
  q.page_size = 1000;
  auto page = core.ListJobs(q);
  int n = 0;
  for (const auto& j : page->jobs) n += j.spec().request_id() == rid ? 1 : 0;
  return n;
}

TEST(CommandDeadline, AStalledStoreAnswersInBoundedTimeAndLeavesNothingHalfWritten) {
  CoreWithStallingStore c(absl::Seconds(1));
  c.store().Stall();
  // The first submit is taken by the writer, whose commit hangs: its outcome
  // is unknown when the caller gives up (DEADLINE_EXCEEDED, after 2 x 1 s).
  auto first =
      std::async(std::launch::async, [&] { return c.core().Submit(Job("ml-research", "rid-1")); });
  c.store().AwaitHangingCommit();
  // The second waits in the queue behind it: withdrawn after 1 s, nothing
  // written (UNAVAILABLE: safe to retry).
  absl::Time t0 = absl::Now();
  auto second = c.core().Submit(Job("ml-research", "rid-2"));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("nothing was written"));
  EXPECT_LT(absl::Now() - t0, absl::Seconds(30)) << "the wait must be bounded";
  auto first_result = first.get();
  EXPECT_EQ(first_result.status().code(), absl::StatusCode::kDeadlineExceeded)
      << first_result.status();
  EXPECT_THAT(std::string(first_result.status().message()), HasSubstr("request_id"));

  // The disk comes back: the first write lands (once), the withdrawn one never.
  c.store().Resume();
  auto again1 = c.core().Submit(Job("ml-research", "rid-1"));
  ASSERT_TRUE(again1.ok()) << again1.status();
  EXPECT_TRUE(again1->deduplicated) << "the write in flight at the stall was committed";
  EXPECT_EQ(CountRequest(c.core(), "rid-1"), 1);
  EXPECT_EQ(CountRequest(c.core(), "rid-2"), 0);
  auto again2 = c.core().Submit(Job("ml-research", "rid-2"));
  ASSERT_TRUE(again2.ok()) << again2.status();
  EXPECT_FALSE(again2->deduplicated);
  EXPECT_EQ(CountRequest(c.core(), "rid-2"), 1);
  EXPECT_TRUE(scheduler::CheckInvariants(c.core()).ok()) << scheduler::CheckInvariants(c.core());
}

TEST(CommandDeadline, CancelAndTeamChangesAreBoundedToo) {
  CoreWithStallingStore c(absl::Milliseconds(300));
  auto job = c.core().Submit(Job("ml-research", "rid-c"));
  ASSERT_TRUE(job.ok()) << job.status();
  c.store().Stall();
  auto hung = std::async(std::launch::async,
                         [&] { return c.core().SetTeam(testing::MakeTeam("vision", 5)); });
  c.store().AwaitHangingCommit();
  auto cancel = c.core().Cancel(job->job.id(), "test");
  EXPECT_EQ(cancel.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(hung.get().status().code(), absl::StatusCode::kDeadlineExceeded);
  c.store().Resume();
  auto j = c.core().GetJob(job->job.id());
  ASSERT_TRUE(j.ok());
  EXPECT_NE(j->state(), v1::JOB_STATE_CANCELLED) << "a withdrawn cancel must not apply";
  EXPECT_TRUE(c.core().Cancel(job->job.id(), "test").ok());
  EXPECT_TRUE(scheduler::CheckInvariants(c.core()).ok());
}

// The gRPC adapters over that core, on a loopback port.
class InProcessServer {
 public:
  InProcessServer(SchedulerCore* core, scheduler::TeamLimiter* limiter) : auth_(/*open=*/true) {
    scheduler::ServiceContext ctx;
    ctx.core = core;
    ctx.auth = &auth_;
    ctx.limiter = limiter;
    ctx.shutting_down = &shutting_down_;
    service_ = std::make_unique<scheduler::SchedulerService>(ctx);
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    stub_ = v1::Scheduler::NewStub(
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials()));
  }
  ~InProcessServer() {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  grpc::Status Submit(const v1::JobSpec& spec) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::SubmitJobRequest req;
    *req.mutable_spec() = spec;
    v1::SubmitJobResponse resp;
    return stub_->SubmitJob(&ctx, req, &resp);
  }

 private:
  scheduler::Authenticator auth_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<scheduler::SchedulerService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::unique_ptr<v1::Scheduler::Stub> stub_;
};

TEST(TeamLimits, ConcurrencyLimitRefusesTheTeamsExtraSubmitsInFlightButNotOtherTeams) {
  CoreWithStallingStore c(absl::Seconds(10));
  scheduler::TeamLimiter limiter(/*rate=*/0, /*burst=*/1, /*max_inflight=*/2);
  InProcessServer s(&c.core(), &limiter);
  c.store().Stall();
  // Two submits of ml-research in flight: one hangs in the commit, one queued.
  auto a = std::async(std::launch::async, [&] { return s.Submit(Job("ml-research", "a")); });
  c.store().AwaitHangingCommit();
  auto b = std::async(std::launch::async, [&] { return s.Submit(Job("ml-research", "b")); });
  while (c.core().queue_depth() < 1) absl::SleepFor(absl::Milliseconds(5));
  // A third is refused at once, naming the limit.
  grpc::Status third = s.Submit(Job("ml-research", "c"));
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("in flight"));
  // Another team is not limited by ml-research's slots: it reaches the core
  // (and waits for the stalled store like everyone else).
  auto other = std::async(std::launch::async, [&] { return s.Submit(Job("vision", "v")); });
  while (c.core().queue_depth() < 2) absl::SleepFor(absl::Milliseconds(5));
  c.store().Resume();
  EXPECT_TRUE(a.get().ok());
  EXPECT_TRUE(b.get().ok());
  EXPECT_TRUE(other.get().ok());
  // The slots were released: the team can submit again.
  EXPECT_TRUE(s.Submit(Job("ml-research", "c")).ok());
  EXPECT_TRUE(s.Submit(Job("ml-research", "d")).ok());
  EXPECT_EQ(CountRequest(c.core(), "c"), 1);
}

TEST(TeamLimits, RateLimitRefusesBeyondTheBurstPerTeam) {
  CoreWithStallingStore c(absl::Seconds(10));
  scheduler::TeamLimiter limiter(/*rate=*/0.001, /*burst=*/3);
  InProcessServer s(&c.core(), &limiter);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(s.Submit(Job("ml-research", absl::StrCat("r", i))).ok());
  grpc::Status st = s.Submit(Job("ml-research", "r3"));
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(st.error_message(), HasSubstr("rate"));
  EXPECT_TRUE(s.Submit(Job("vision", "v0")).ok()) << "teams have separate buckets";
  EXPECT_EQ(CountRequest(c.core(), "r3"), 0);
}

TEST(TeamLimiter, TableOfAcquireReleaseAndAllow) {
  scheduler::TeamLimiter l(/*rate=*/0, /*burst=*/1, /*max_inflight=*/2);
  EXPECT_TRUE(l.Allow("a")) << "rate 0 = unlimited";
  EXPECT_TRUE(l.Acquire("a"));
  EXPECT_TRUE(l.Acquire("a"));
  EXPECT_FALSE(l.Acquire("a"));
  EXPECT_TRUE(l.Acquire("b"));
  l.Release("a");
  EXPECT_TRUE(l.Acquire("a"));
  l.Release("a");
  l.Release("a");
  l.Release("a");  // unpaired release does not create slots
  EXPECT_TRUE(l.Acquire("a"));
  EXPECT_TRUE(l.Acquire("a"));
  EXPECT_FALSE(l.Acquire("a"));
  scheduler::TeamLimiter unlimited(0, 1, 0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(unlimited.Acquire("a"));
}

TEST(WatchLimiter, RefusesStreamsBeyondTheMaximum) {
  scheduler::WatchLimiter w(/*max_watchers=*/2, absl::InfiniteDuration());
  grpc::ServerContext s1, s2, s3;
  EXPECT_TRUE(w.Enter(&s1));
  EXPECT_TRUE(w.Enter(&s2));
  EXPECT_FALSE(w.Enter(&s3));
  EXPECT_EQ(w.open(), 2);
  w.Leave(&s1);
  EXPECT_TRUE(w.Enter(&s3));
  w.Leave(&s2);
  w.Leave(&s3);
  EXPECT_EQ(w.open(), 0);
  EXPECT_EQ(w.dropped(), 0);
}

}  // namespace
}  // namespace greenlight
