// Overload: ten times the benchmarked submit rate against the real
// greenlightd for a bounded time (GREENLIGHT_OVERLOAD_SECONDS, 5 s in `make
// test`, 30 s in the stress variant). Open loop: submits are offered at a
// fixed rate whatever the server answers, like real clients that do not
// coordinate. The server must shed (RESOURCE_EXHAUSTED or UNAVAILABLE), keep
// answering health checks, keep its memory bounded, and lose nothing it
// acknowledged: after the load the daemon is killed -9 and every
// acknowledged job must be there, once.
#include <atomic>
#include <mutex>
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

// SubmitJob throughput of greenlightd measured by bench/submit_load (32
// clients, synchronous=full, Release, the project's 2-core box): see
// docs/RELIABILITY.md.
constexpr int kBenchmarkedSubmitsPerSecond = 1800;

struct Outcome {
  std::atomic<int64_t> offered{0}, not_offered{0}, ok{0}, exhausted{0}, unavailable{0}, deadline{0},
      other{0};
  std::mutex mu;
  std::map<std::string, std::string> acked;  // request_id -> job id
  std::map<std::string, int> other_errors;
  std::map<std::string, int> shed_reasons;
};

struct Call {
  grpc::ClientContext ctx;
  v1::SubmitJobResponse resp;
  grpc::Status status;
  std::string rid;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v1::SubmitJobResponse>> reader;
};

// One sender thread offers `rate` submits per second on its channel; one
// receiver thread classifies the answers. At most `max_outstanding` calls
// are open at once (the client's own memory bound); beyond, the offer is
// counted as not offered.
class OpenLoopClient {
 public:
  OpenLoopClient(std::shared_ptr<grpc::Channel> ch, std::string prefix, double rate,
                 int max_outstanding, Outcome* out)
      : stub_(v1::Scheduler::NewStub(ch)),
        prefix_(std::move(prefix)),
        rate_(rate),
        max_outstanding_(max_outstanding),
        out_(out) {}

  void Run(absl::Duration how_long) {
    std::thread receiver([this] { Receive(); });
    absl::Time start = absl::Now(), end = start + how_long;
    int64_t sent = 0;
    for (absl::Time now = start; now < end; now = absl::Now()) {
      int64_t due = static_cast<int64_t>(absl::ToDoubleSeconds(now - start) * rate_);
      for (; sent < due; ++sent) {
        if (outstanding_.load() >= max_outstanding_) {
          ++out_->not_offered;
          continue;
        }
        auto* c = new Call;
        c->rid = absl::StrCat(prefix_, "-", sent);
        c->ctx.set_deadline(In(std::chrono::seconds(20)));
        v1::SubmitJobRequest req;
        *req.mutable_spec() = ReliabilityJob(sent % 2 ? "ml-research" : "vision", c->rid);
        req.mutable_spec()->set_reference_gpu_hours(0.02);  // the floor is one GPU-minute
        c->reader = stub_->AsyncSubmitJob(&c->ctx, req, &cq_);
        c->reader->Finish(&c->resp, &c->status, c);
        ++outstanding_;
        ++out_->offered;
      }
      absl::SleepFor(absl::Milliseconds(1));
    }
    // Wait for every answer (each call has a deadline).
    while (outstanding_.load() > 0) absl::SleepFor(absl::Milliseconds(10));
    cq_.Shutdown();
    receiver.join();
  }

 private:
  void Receive() {
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
      std::unique_ptr<Call> c(static_cast<Call*>(tag));
      switch (c->status.error_code()) {
        case grpc::StatusCode::OK: {
          ++out_->ok;
          std::lock_guard<std::mutex> l(out_->mu);
          out_->acked[c->rid] = c->resp.job().id();
          break;
        }
        case grpc::StatusCode::RESOURCE_EXHAUSTED: {
          ++out_->exhausted;
          std::lock_guard<std::mutex> l(out_->mu);
          out_->shed_reasons[c->status.error_message().substr(0, 40)]++;
          break;
        }
        case grpc::StatusCode::UNAVAILABLE:
          ++out_->unavailable;
          break;
        case grpc::StatusCode::DEADLINE_EXCEEDED:
          ++out_->deadline;
          break;
        default: {
          ++out_->other;
          std::lock_guard<std::mutex> l(out_->mu);
          out_->other_errors[absl::StrCat(c->status.error_code(), ": ",
                                          c->status.error_message().substr(0, 100))]++;
        }
      }
      --outstanding_;
    }
  }

  std::unique_ptr<v1::Scheduler::Stub> stub_;
  std::string prefix_;
  double rate_;
  int max_outstanding_;
  Outcome* out_;
  grpc::CompletionQueue cq_;
  std::atomic<int> outstanding_{0};
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

TEST(Overload, TenTimesTheBenchmarkedRateIsShedWhileHealthAndAcknowledgedWritesSurvive) {
  const int seconds = EnvInt("GREENLIGHT_OVERLOAD_SECONDS", 5);
  const double rate = EnvInt("GREENLIGHT_OVERLOAD_RATE", 10 * kBenchmarkedSubmitsPerSecond);
  TempDir dir;
  // Time nearly frozen: jobs neither start nor finish on their own, so the
  // acknowledged set can be checked exactly after the load.
  DaemonProcess d({.store = dir.File("gl.db"),
                   .flags = {"--time_scale=0.000001"},
                   .log_file = dir.File("d.log")});
  ASSERT_TRUE(d.Start()) << d.log();
  int64_t rss_start = d.rss_kib();

  // Health checks on their own connection, every 100 ms, with a generous
  // 10 s deadline: they must all succeed; their latency is reported only.
  std::atomic<bool> stop{false};
  std::vector<double> health_ms;
  int health_failed = 0;
  std::string health_error;
  int64_t rss_max = rss_start;
  int64_t threads_max = 0;
  std::thread health([&] {
    auto ch = FreshChannel(d.address(), grpc::InsecureChannelCredentials());
    while (!stop) {
      absl::Time t0 = absl::Now();
      grpc::Status st;
      bool serving = HealthServing(ch, std::chrono::seconds(10), &st);
      health_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
      if (!serving) {
        ++health_failed;
        health_error = st.error_message();
      }
      rss_max = std::max(rss_max, d.rss_kib());
      threads_max = std::max<int64_t>(threads_max, ProcStatus(d.pid(), "Threads"));
      absl::SleepFor(absl::Milliseconds(100));
    }
  });

  Outcome out;
  {
    // Two senders on two connections, half the rate each.
    std::vector<std::thread> senders;
    for (int i = 0; i < 2; ++i) {
      senders.emplace_back([&, i] {
        OpenLoopClient c(FreshChannel(d.address(), grpc::InsecureChannelCredentials()),
                         absl::StrCat("c", i), rate / 2, 20000, &out);
        c.Run(absl::Seconds(seconds));
      });
    }
    for (auto& t : senders) t.join();
  }
  stop = true;
  health.join();
  int64_t rss_end = d.rss_kib();

  int64_t shed = out.exhausted + out.unavailable;
  std::printf(
      "overload: %d s at %.0f submits/s offered: offered %lld (not offered: %lld), acknowledged "
      "%lld "
      "(%.0f/s), shed %lld (RESOURCE_EXHAUSTED %lld, UNAVAILABLE %lld), deadline exceeded %lld, "
      "other %lld\n"
      "health: %zu checks, %d failed, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n"
      "daemon RSS: start %lld KiB, max %lld KiB, end %lld KiB; threads max %lld\n",
      seconds, rate, static_cast<long long>(out.offered.load()),
      static_cast<long long>(out.not_offered.load()), static_cast<long long>(out.ok.load()),
      out.ok.load() / static_cast<double>(seconds), static_cast<long long>(shed),
      static_cast<long long>(out.exhausted.load()), static_cast<long long>(out.unavailable.load()),
      static_cast<long long>(out.deadline.load()), static_cast<long long>(out.other.load()),
      health_ms.size(), health_failed, Percentile(health_ms, 0.5), Percentile(health_ms, 0.99),
      Percentile(health_ms, 1.0), static_cast<long long>(rss_start),
      static_cast<long long>(rss_max), static_cast<long long>(rss_end),
      static_cast<long long>(threads_max));
  for (const auto& [e, n] : out.other_errors) std::printf("  other error x%d: %s\n", n, e.c_str());
  for (const auto& [e, n] : out.shed_reasons) std::printf("  shed x%d: %s\n", n, e.c_str());

  EXPECT_GT(out.ok.load(), 0) << "nothing was admitted under overload";
  EXPECT_GT(shed, 0) << "ten times the benchmarked rate must be shed";
  EXPECT_EQ(out.other.load(), 0)
      << "overload must only be answered with RESOURCE_EXHAUSTED or UNAVAILABLE";
  // Under sanitizers (5-15x slower) calls queued on the client's side of the
  // connection (max_concurrent_streams) may outlive their deadline.
  if (!Sanitized()) {
    EXPECT_EQ(out.deadline.load(), 0)
        << "calls waited past their 20 s deadline instead of being shed";
  }
  EXPECT_EQ(health_failed, 0) << "a health check failed under overload: " << health_error;
  // Memory: what the admitted jobs need (each keeps its quote, ~20 KiB,
  // and the event ring holds copies) plus a constant for the calls in
  // flight, which the server bounds (streams per connection, placements).
  const int64_t bound_kib = rss_start + (256 * 1024 + 64 * out.ok.load()) * MemoryBoundScale();
  EXPECT_LT(rss_max, bound_kib)
      << "daemon memory is not bounded by the admitted jobs plus a constant";

  // Nothing acknowledged is lost, not even across kill -9.
  d.Kill();
  ASSERT_TRUE(d.Start()) << d.log();
  auto stub = v1::Scheduler::NewStub(d.channel());
  std::vector<v1::Job> jobs;
  ASSERT_TRUE(ListAllJobs(stub.get(), &jobs));
  std::map<std::string, int> by_rid;
  std::map<std::string, std::string> id_by_rid;
  for (const auto& j : jobs) {
    by_rid[j.spec().request_id()]++;
    id_by_rid[j.spec().request_id()] = j.id();
  }
  int missing = 0, duplicated = 0;
  for (const auto& [rid, id] : out.acked) {
    if (by_rid[rid] == 0) ++missing;
    if (by_rid[rid] > 1) ++duplicated;
    if (by_rid[rid] == 1) {
      EXPECT_EQ(id_by_rid[rid], id);
    }
  }
  EXPECT_EQ(missing, 0) << "acknowledged submits lost";
  EXPECT_EQ(duplicated, 0) << "submits stored twice";
  auto budgets = v1::Budgets::NewStub(d.channel());
  ExpectLedgerInvariants(budgets.get(), dir.File("gl.db"));
}

}  // namespace
}  // namespace greenlight
