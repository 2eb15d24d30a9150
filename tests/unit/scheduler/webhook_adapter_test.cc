// WebhookAdapter (the Kubernetes webhook's view of the scheduler) over a
// real SchedulerCore and SQLite store: admissions that cannot wait are
// refused before anything is written.
#include "services/scheduler/webhook_adapter.h"

#include <memory>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/core_harness.h"
#include "tests/testing/status_testing.h"

namespace greenlight::scheduler {
namespace {

using ::greenlight::testing::CoreHarness;
using ::greenlight::testing::MakeJob;
using ::greenlight::testing::MakeTeam;
using ::testing::HasSubstr;

class WebhookAdapterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK(h_.Open());
    ASSERT_OK(h_.core().SetTeam(MakeTeam("ml", 0)));  // no budget or quota limit
    backend_ = std::make_unique<WebhookAdapter>(&h_.core());
  }
  // What the store and the ledger hold for team ml.
  struct Trace {
    size_t jobs = 0;
    size_t events = 0;
    int64_t reserved = 0;
  };
  Trace TraceOf() {
    Trace t;
    ListJobsQuery q;
    q.team = "ml";
    q.page_size = 1000;
    auto page = h_.core().ListJobs(q);
    EXPECT_TRUE(page.ok());
    if (page.ok()) t.jobs = page->jobs.size();
    int64_t scanned = 0;
    auto events = h_.core().EventsAfter(0, 10'000, "", "", &scanned);
    EXPECT_TRUE(events.ok());
    if (events.ok()) t.events = events->size();
    t.reserved = h_.core().GetUsage("ml", h_.clock().Now())->cost_reserved_micros();
    return t;
  }
  v1::JobSpec Job(int gpus, const std::string& request_id) {
    v1::JobSpec s = MakeJob("ml", gpus, absl::Hours(2));
    s.set_request_id(request_id);
    return s;
  }

  CoreHarness h_{::greenlight::testing::SmallInventory(/*nodes=*/2)};
  std::unique_ptr<WebhookAdapter> backend_;  // over the opened core
};

TEST_F(WebhookAdapterTest, AdmitsAJobThatCanStartAndNamesItsPool) {
  auto r = backend_->Admit(Job(8, "pod-a"), {});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->job_id, ::testing::StartsWith("j-"));
  EXPECT_EQ(r->pool_id, ::greenlight::testing::kP4dPool);
  EXPECT_EQ(r->pending_reason, "");
  EXPECT_EQ(h_.core().GetJob(r->job_id)->state(), v1::JOB_STATE_RUNNING);
}

TEST_F(WebhookAdapterTest, NoCapacityWithoutQueueingIsRefusedAndLeavesNoTrace) {
  ASSERT_TRUE(backend_->Admit(Job(8, "pod-a"), {}).ok());
  ASSERT_TRUE(backend_->Admit(Job(8, "pod-b"), {}).ok());  // both nodes busy
  Trace before = TraceOf();
  auto r = backend_->Admit(Job(8, "pod-c"), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("cannot start 8 A100 GPU(s) now"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("no free capacity"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("Kueue"));
  Trace after = TraceOf();
  EXPECT_EQ(after.jobs, before.jobs);
  EXPECT_EQ(after.events, before.events);
  EXPECT_EQ(after.reserved, before.reserved);
  ASSERT_OK(scheduler::CheckInvariants(h_.core()));
  // Kubernetes retries the same object (same request id) once a node is free:
  // it is admitted then, not answered with an old refusal.
  ASSERT_OK(h_.Advance(absl::Hours(2)));
  auto retry = backend_->Admit(Job(8, "pod-c"), {});
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_FALSE(retry->deduplicated);
  EXPECT_EQ(h_.core().GetJob(retry->job_id)->state(), v1::JOB_STATE_RUNNING);
}

TEST_F(WebhookAdapterTest, FullQuotaWithoutQueueingIsRefusedAndNamed) {
  ASSERT_OK(h_.core().SetTeam(MakeTeam("ml", 0, 0, /*quota=*/8)));
  ASSERT_TRUE(backend_->Admit(Job(8, "pod-a"), {}).ok());
  Trace before = TraceOf();
  auto r = backend_->Admit(Job(4, "pod-b"), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted) << r.status();
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("GPU quota is full"));
  Trace after = TraceOf();
  EXPECT_EQ(after.jobs, before.jobs);
  EXPECT_EQ(after.reserved, before.reserved);
}

TEST_F(WebhookAdapterTest, TheCoreMarksTheRefusalWithWhatIsMissing) {
  ASSERT_OK(h_.core().SetTeam(MakeTeam("ml", 0, 0, /*quota=*/8)));
  SubmitOptions now_only;
  now_only.only_if_it_can_start_now = true;
  ASSERT_TRUE(h_.core().Submit(Job(8, "a"), now_only).ok());
  auto quota = h_.core().Submit(Job(8, "b"), now_only);
  ASSERT_EQ(quota.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ReasonOf(quota.status()), reason::kCannotStartNow);
  EXPECT_EQ(ReasonMetadata(quota.status(), "cause"), "QUOTA");
  ASSERT_OK(h_.core().SetTeam(MakeTeam("ml", 0)));
  ASSERT_TRUE(h_.core().Submit(Job(8, "c"), now_only).ok());  // second node
  auto capacity = h_.core().Submit(Job(8, "d"), now_only);
  ASSERT_EQ(capacity.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ReasonOf(capacity.status()), reason::kCannotStartNow);
  EXPECT_EQ(ReasonMetadata(capacity.status(), "cause"), "CAPACITY");
  // A budget refusal is not marked: it is not about now.
  ASSERT_OK(h_.core().SetTeam(MakeTeam("ml", 1)));
  auto budget = h_.core().Submit(Job(1, "e"), now_only);
  ASSERT_EQ(budget.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ReasonOf(budget.status()), reason::kTeamBudgetExhausted);
}

TEST_F(WebhookAdapterTest, ASuspendedJobMayQueue) {
  ASSERT_TRUE(backend_->Admit(Job(8, "pod-a"), {}).ok());
  ASSERT_TRUE(backend_->Admit(Job(8, "pod-b"), {}).ok());
  webhook::AdmitOptions queue;
  queue.allow_queueing = true;
  auto r = backend_->Admit(Job(8, "job-c"), queue);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->pending_reason, "CAPACITY");
  EXPECT_EQ(h_.core().GetJob(r->job_id)->state(), v1::JOB_STATE_PENDING);
  // Deleting the object in Kubernetes releases the job by its request id.
  ASSERT_OK(backend_->Release("job-c", "deleted"));
  EXPECT_EQ(h_.core().GetJob(r->job_id)->state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(h_.core().GetJob(r->job_id)->reserved_cost_micros(), 0);
}

TEST_F(WebhookAdapterTest, DryRunStoresNothing) {
  Trace before = TraceOf();
  webhook::AdmitOptions dry;
  dry.dry_run = true;
  auto r = backend_->Admit(Job(8, "pod-a"), dry);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->job_id, "");
  EXPECT_EQ(r->pool_id, ::greenlight::testing::kP4dPool);
  Trace after = TraceOf();
  EXPECT_EQ(after.jobs, before.jobs);
  EXPECT_EQ(after.events, before.events);
}

TEST_F(WebhookAdapterTest, UnknownTeamIsNotFoundWithTheFix) {
  auto r = backend_->Admit(MakeJob("nobody", 1, absl::Hours(1)), {});
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("greenlight teams set nobody"));
}

}  // namespace
}  // namespace greenlight::scheduler
