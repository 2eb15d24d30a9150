// Crash loop: greenlightd is killed with SIGKILL at random moments while
// clients submit and cancel concurrently, then restarted on the same store,
// GREENLIGHT_CRASH_ITERATIONS times (20 in `make test`, 50 in the stress
// variant). After every restart: each acknowledged submit exists exactly
// once (and a retry with its request_id returns the same job), each
// acknowledged cancel is CANCELLED, no request_id is stored twice, and the
// budget invariants hold, with GetUsage equal to the ledger sums recomputed
// from the SQLite file.
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/reliability/reliability_util.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/temp_dir.h"

namespace greenlight {
namespace {

using namespace ::greenlight::testing;  // NOLINT
namespace v1 = ::greenlight::v1;

struct Acknowledged {
  std::mutex mu;
  std::map<std::string, std::string> submits;  // request_id -> job id
  std::map<std::string, std::string> teams;    // request_id -> team
  std::set<std::string> cancels;               // job ids
};

// Every acknowledged write survived, exactly once; invariants hold.
void Verify(DaemonProcess& d, const std::string& db, Acknowledged& acked, int iteration) {
  SCOPED_TRACE(absl::StrCat("after restart ", iteration));
  auto stub = v1::Scheduler::NewStub(d.channel());
  std::vector<v1::Job> jobs;
  ASSERT_TRUE(ListAllJobs(stub.get(), &jobs));
  std::map<std::string, int> count_by_rid;
  std::map<std::string, const v1::Job*> by_id;
  for (const auto& j : jobs) {
    count_by_rid[j.spec().request_id()]++;
    by_id[j.id()] = &j;
  }
  int lost = 0, wrong_id = 0, not_cancelled = 0, twice = 0;
  for (const auto& [rid, n] : count_by_rid) twice += n > 1 ? 1 : 0;
  std::lock_guard<std::mutex> l(acked.mu);
  for (const auto& [rid, id] : acked.submits) {
    if (count_by_rid[rid] == 0) {
      ++lost;
    } else if (!by_id.count(id)) {
      ++wrong_id;
    }
  }
  for (const auto& id : acked.cancels) {
    auto it = by_id.find(id);
    if (it == by_id.end() || it->second->state() != v1::JOB_STATE_CANCELLED) ++not_cancelled;
  }
  EXPECT_EQ(lost, 0) << "acknowledged submits lost";
  EXPECT_EQ(wrong_id, 0) << "acknowledged submits stored under another id";
  EXPECT_EQ(twice, 0) << "request_ids stored more than once";
  EXPECT_EQ(not_cancelled, 0) << "acknowledged cancels not CANCELLED";
  // A retry of acknowledged submits (a client that never saw the answer)
  // returns the same job and reserves nothing more.
  int retried = 0;
  for (const auto& [rid, id] : acked.submits) {
    if (++retried > 5) break;
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(30)));
    v1::SubmitJobRequest req;
    *req.mutable_spec() = ReliabilityJob(acked.teams[rid], rid);
    v1::SubmitJobResponse resp;
    grpc::Status st = stub->SubmitJob(&ctx, req, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_TRUE(resp.deduplicated());
    EXPECT_EQ(resp.job().id(), id);
  }
  auto budgets = v1::Budgets::NewStub(d.channel());
  ExpectLedgerInvariants(budgets.get(), db);
  std::printf(
      "restart %d: %zu jobs stored, %zu acknowledged submits, %zu acknowledged cancels: all "
      "there\n",
      iteration, jobs.size(), acked.submits.size(), acked.cancels.size());
}

TEST(CrashLoop, KillMinus9UnderConcurrentSubmitAndCancelLosesNothingAcknowledged) {
  const int iterations = EnvInt("GREENLIGHT_CRASH_ITERATIONS", 20);
  TempDir dir;
  const std::string db = dir.File("gl.db");
  // Time nearly frozen: nothing starts, finishes or accrues on its own, so
  // the state is exactly what the acknowledged calls made it.
  DaemonProcess d({.store = db, .flags = {"--time_scale=0.000001"}, .log_file = dir.File("d.log")});
  Acknowledged acked;
  std::mt19937 rng(20261128);
  for (int it = 0; it < iterations; ++it) {
    ASSERT_TRUE(d.Start()) << "restart " << it << " failed:\n" << d.log();
    if (it > 0) Verify(d, db, acked, it);
    if (HasFatalFailure()) return;

    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int t = 0; t < 6; ++t) {
      clients.emplace_back([&, t, seed = rng()] {
        std::mt19937 r(seed);
        auto stub = v1::Scheduler::NewStub(d.channel());
        std::vector<std::string> mine;  // acknowledged, not yet cancelled
        for (int i = 0; !stop; ++i) {
          std::string rid = absl::StrCat("crash/", it, "/t", t, "/", i);
          grpc::ClientContext ctx;
          ctx.set_deadline(In(std::chrono::seconds(5)));
          v1::SubmitJobRequest req;
          const std::string team = t % 2 ? "ml-research" : "vision";
          *req.mutable_spec() = ReliabilityJob(team, rid);
          v1::SubmitJobResponse resp;
          if (stub->SubmitJob(&ctx, req, &resp).ok()) {
            std::lock_guard<std::mutex> l(acked.mu);
            acked.submits[rid] = resp.job().id();
            acked.teams[rid] = team;
            mine.push_back(resp.job().id());
          }
          if (!mine.empty() && r() % 2 == 0) {
            size_t k = r() % mine.size();
            grpc::ClientContext cctx;
            cctx.set_deadline(In(std::chrono::seconds(5)));
            v1::CancelJobRequest creq;
            creq.set_job_id(mine[k]);
            creq.set_reason("crash loop");
            v1::CancelJobResponse cresp;
            if (stub->CancelJob(&cctx, creq, &cresp).ok()) {
              std::lock_guard<std::mutex> l(acked.mu);
              acked.cancels.insert(mine[k]);
              mine.erase(mine.begin() + static_cast<long>(k));
            }
          }
        }
      });
    }
    // Kill at a random moment of the load: 50 ms .. 1.5 s in.
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 1450));
    d.Kill();
    stop = true;
    for (auto& c : clients) c.join();
  }
  ASSERT_TRUE(d.Start()) << d.log();
  Verify(d, db, acked, iterations);
  EXPECT_GT(acked.submits.size(), 0u);
  EXPECT_GT(acked.cancels.size(), 0u);
  d.Kill();
  EXPECT_EQ(IntegrityCheck(db), "ok");
}

}  // namespace
}  // namespace greenlight
