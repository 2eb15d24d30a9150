// Slow watchers against the real greenlightd: a client that opens WatchJobs
// and never reads while ~10,000 events are produced costs the server no
// memory (events are pulled from the ring or the store, never queued per
// watcher) and is dropped after the stall timeout; it resumes from the last
// revision it received, without gaps. A fast watcher meanwhile sees every
// event once, in order.
#include <atomic>
#include <functional>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/temp_dir.h"

namespace greenlight {
namespace {

using ::greenlight::testing::DaemonProcess;
using ::greenlight::testing::MemoryBoundScale;
using ::greenlight::testing::TempDir;
using ::testing::HasSubstr;
namespace v1 = ::greenlight::v1;

v1::JobSpec TinyJob(const std::string& team) {
  v1::JobSpec s;
  s.set_team(team);
  s.set_name("tiny");
  s.set_gpus(1);
  s.set_reference_gpu_hours(0.05);
  return s;
}

int64_t Revision(v1::Scheduler::Stub* stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::PingResponse resp;
  return stub->Ping(&ctx, v1::PingRequest(), &resp).ok() ? resp.revision() : -1;
}

struct Production {
  int64_t start_rev = 0, end_rev = 0, rss_before = 0, rss_after = 0;
  int submitted = 0, failed = 0;
  double seconds = 0;
};

// Submits (and cancels every other job) from 8 clients until `events` more
// events are committed.
void Produce(DaemonProcess& d, int64_t until_revision, Production* p) {
  std::atomic<int> submitted{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto s = v1::Scheduler::NewStub(d.channel());
      for (int i = 0; Revision(s.get()) < until_revision; ++i) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        v1::SubmitJobRequest req;
        *req.mutable_spec() = TinyJob(t % 2 ? "ml-research" : "vision");
        v1::SubmitJobResponse resp;
        if (!s->SubmitJob(&ctx, req, &resp).ok()) {
          ++failed;
          continue;
        }
        ++submitted;
        if (i % 2 == 0) {
          grpc::ClientContext cctx;
          cctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
          v1::CancelJobRequest creq;
          creq.set_job_id(resp.job().id());
          v1::CancelJobResponse cresp;
          s->CancelJob(&cctx, creq, &cresp);  // may already be finished
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  p->submitted += submitted;
  p->failed += failed;
}

constexpr int kEvents = 10'000;

// Warms the daemon up, then produces kEvents events while `during` runs.
Production Measure(DaemonProcess& d, const std::function<void()>& open_watchers) {
  Production p;
  auto stub = v1::Scheduler::NewStub(d.channel());
  Produce(d, 500, &p);  // allocator, ring and caches warm
  p.rss_before = d.rss_kib();
  open_watchers();
  p.start_rev = Revision(stub.get());
  absl::Time t0 = absl::Now();
  Produce(d, p.start_rev + kEvents, &p);
  p.seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  p.end_rev = Revision(stub.get());
  p.rss_after = d.rss_kib();
  std::printf(
      "events %lld in %.1f s (%d submits, %d refused); daemon RSS %lld -> %lld KiB (+%lld)\n",
      static_cast<long long>(p.end_rev - p.start_rev), p.seconds, p.submitted, p.failed,
      static_cast<long long>(p.rss_before), static_cast<long long>(p.rss_after),
      static_cast<long long>(p.rss_after - p.rss_before));
  return p;
}

TEST(SlowWatcher, CostsNoMemoryIsDroppedAndResumesWithoutGaps) {
  // Baseline: the same production with nobody watching.
  int64_t baseline_growth = 0;
  {
    TempDir dir;
    DaemonProcess d({.store = dir.File("gl.db"),
                     .flags = {"--watch_stall_timeout_s=3"},
                     .log_file = dir.File("d.log")});
    ASSERT_TRUE(d.Start()) << d.log();
    Production p = Measure(d, [] {});
    ASSERT_GE(p.end_rev - p.start_rev, kEvents);
    baseline_growth = p.rss_after - p.rss_before;
  }

  TempDir dir;
  DaemonProcess d({.store = dir.File("gl.db"),
                   .flags = {"--watch_stall_timeout_s=3", "--log_level=info"},
                   .log_file = dir.File("d.log")});
  ASSERT_TRUE(d.Start()) << d.log();
  auto stub = v1::Scheduler::NewStub(d.channel());
  v1::WatchJobsRequest from_start;
  // The slow watcher: opens the stream and reads nothing.
  grpc::ClientContext slow_ctx;
  std::unique_ptr<grpc::ClientReader<v1::JobEvent>> slow;
  // A fast watcher reads everything as it comes.
  std::atomic<bool> stop_fast{false};
  std::atomic<int64_t> fast_first{0}, fast_last{0};
  std::atomic<bool> fast_gap{false};
  grpc::ClientContext fast_ctx;
  std::thread fast;
  Production p = Measure(d, [&] {
    slow = stub->WatchJobs(&slow_ctx, from_start);
    fast = std::thread([&] {
      auto r = stub->WatchJobs(&fast_ctx, from_start);
      v1::JobEvent e;
      while (!stop_fast && r->Read(&e)) {
        if (fast_first == 0) fast_first = e.revision();
        if (fast_last != 0 && e.revision() != fast_last + 1) fast_gap = true;
        fast_last = e.revision();
      }
    });
  });
  int64_t end_rev = p.end_rev;
  ASSERT_GE(p.end_rev - p.start_rev, kEvents);
  EXPECT_EQ(p.failed, 0);
  // A per-watcher queue of 10,000 events (each carries its job) would add
  // tens of MiB; the bound leaves room for allocator noise.
  int64_t growth = p.rss_after - p.rss_before;
  std::printf("RSS growth with a slow and a fast watcher: %lld KiB; without watchers: %lld KiB\n",
              static_cast<long long>(growth), static_cast<long long>(baseline_growth));
  EXPECT_LT(growth, baseline_growth + 64 * 1024 * MemoryBoundScale())
      << "watchers made the daemon grow by more than 64 MiB over the same load without them";
  EXPECT_LT(growth, 512 * 1024 * MemoryBoundScale()) << "daemon memory grew by more than 512 MiB";

  // The stalled stream is dropped (the server logs it) ...
  bool dropped = false;
  for (int i = 0; i < 300 && !dropped; ++i) {
    dropped = d.log().find("watcher dropped") != std::string::npos;
    if (!dropped) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(dropped) << "a watcher that reads nothing must be dropped";
  // ... and what it did receive is gapless from revision 1.
  v1::JobEvent e;
  int64_t last = 0;
  while (slow->Read(&e)) {
    ASSERT_EQ(e.revision(), last + 1) << "gap or duplicate in the slow watcher's stream";
    last = e.revision();
  }
  grpc::Status slow_status = slow->Finish();
  EXPECT_FALSE(slow_status.ok());
  EXPECT_LT(last, end_rev) << "the slow watcher should not have received everything";
  std::printf("slow watcher received %lld events before it was dropped (%s)\n",
              static_cast<long long>(last), slow_status.error_message().c_str());

  // It resumes from the last revision it has, with nothing missing.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    v1::WatchJobsRequest req;
    req.set_from_revision(last);
    auto r = stub->WatchJobs(&ctx, req);
    int64_t prev = last;
    while (prev < end_rev && r->Read(&e)) {
      ASSERT_EQ(e.revision(), prev + 1);
      prev = e.revision();
    }
    EXPECT_GE(prev, end_rev) << "the resumed stream did not catch up";
    ctx.TryCancel();
  }

  // The fast watcher saw every event once, in order.
  for (int i = 0; i < 300 && fast_last < end_rev; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  stop_fast = true;
  fast_ctx.TryCancel();
  fast.join();
  EXPECT_EQ(fast_first.load(), 1);
  EXPECT_FALSE(fast_gap.load()) << "gap or duplicate in the fast watcher's stream";
  EXPECT_GE(fast_last.load(), end_rev);
}

TEST(SlowWatcher, StreamsBeyondTheMaximumAreRefused) {
  TempDir dir;
  DaemonProcess d(
      {.store = dir.File("gl.db"), .flags = {"--max_watchers=2"}, .log_file = dir.File("d.log")});
  ASSERT_TRUE(d.Start()) << d.log();
  auto stub = v1::Scheduler::NewStub(d.channel());
  grpc::ClientContext c1, c2, c3;
  v1::WatchJobsRequest req;
  auto w1 = stub->WatchJobs(&c1, req);
  auto w2 = stub->WatchJobs(&c2, req);
  // One event read on each proves both streams are open on the server.
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    v1::SubmitJobRequest sreq;
    *sreq.mutable_spec() = TinyJob("vision");
    v1::SubmitJobResponse sresp;
    ASSERT_TRUE(stub->SubmitJob(&ctx, sreq, &sresp).ok());
  }
  v1::JobEvent e;
  ASSERT_TRUE(w1->Read(&e));
  ASSERT_TRUE(w2->Read(&e));
  c3.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto w3 = stub->WatchJobs(&c3, req);
  EXPECT_FALSE(w3->Read(&e));
  grpc::Status st = w3->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("from_revision"));
  c1.TryCancel();
  c2.TryCancel();
  w1->Finish();
  w2->Finish();
}

}  // namespace
}  // namespace greenlight
