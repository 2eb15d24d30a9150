// CommandQueue: inline and threaded processing, group commit, refusals
// (QUEUE_FULL, shutting down), commit failures and the bounded waits of
// callers whose command is never taken or never committed.
#include "services/scheduler/command_queue.h"

#include <atomic>
#include <list>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/error_details.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_testing.h"

namespace greenlight::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Polls `done` until it holds or 10 s pass (a hang guard, not a timing check).
template <typename Pred>
bool Eventually(Pred done) {
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!done()) {
    if (absl::Now() > give_up) return false;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

CommandQueue::Options NoTicks() {
  CommandQueue::Options o;
  o.tick_interval = absl::ZeroDuration();
  return o;
}

// A processor that applies each batch, records its size and commits with
// `commit`; the first batch waits for `release` after it was applied (a
// stalled store), so later commands pile up behind it.
class GatedProcessor {
 public:
  explicit GatedProcessor(absl::Status commit = absl::OkStatus()) : commit_(std::move(commit)) {}
  ~GatedProcessor() { Release(); }

  CommandQueue::Processor AsProcessor() {
    return [this](CommandQueue::Batch& batch) {
      Txn txn;
      batch.Apply(txn);
      bool first;
      {
        absl::MutexLock l(&mu_);
        first = sizes_.empty();
        sizes_.push_back(batch.size());
      }
      if (first) {
        first_taken_.Notify();
        release_.WaitForNotification();
      }
      batch.Complete(commit_);
    };
  }
  void WaitFirstTaken() { first_taken_.WaitForNotification(); }
  void Release() {
    if (!release_.HasBeenNotified()) release_.Notify();
  }
  std::vector<size_t> sizes() const {
    absl::MutexLock l(&mu_);
    return sizes_;
  }

 private:
  const absl::Status commit_;
  absl::Notification first_taken_;
  absl::Notification release_;
  mutable absl::Mutex mu_;
  std::vector<size_t> sizes_;
};

// Releases the gate and joins every thread when the block ends, even
// through a failed ASSERT (a thread left blocked would hang the test).
struct Joiner {
  explicit Joiner(GatedProcessor& gate) : gate(gate) {}
  ~Joiner() {
    gate.Release();
    for (auto& t : threads)
      if (t.joinable()) t.join();
  }
  GatedProcessor& gate;
  std::list<std::thread> threads;  // a vector trips GCC 12's -Warray-bounds
};

CommandQueue::Processor ApplyAndCommit(absl::Status commit, int* batches = nullptr) {
  return [commit, batches](CommandQueue::Batch& batch) {
    if (batches) ++*batches;
    Txn txn;
    batch.Apply(txn);
    batch.Complete(commit);
  };
}

TEST(CommandQueue, WithoutStartRunProcessesOnTheCallersThread) {
  std::thread::id ran_on;
  int batches = 0;
  CommandQueue q(NoTicks(), ApplyAndCommit(absl::OkStatus(), &batches));
  EXPECT_FALSE(q.started());
  EXPECT_OK(q.Run([&](Txn&) {
    ran_on = std::this_thread::get_id();
    return absl::OkStatus();
  }));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(batches, 1);
  EXPECT_EQ(q.depth(), 0);
  // The command's own error comes back unchanged.
  absl::Status st = q.Run([](Txn&) { return absl::NotFoundError("no such job"); });
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(st.message(), "no such job");
}

TEST(CommandQueue, AfterStartRunProcessesOnTheWriterThread) {
  std::thread::id ran_on;
  CommandQueue q(NoTicks(), ApplyAndCommit(absl::OkStatus()));
  q.Start();
  EXPECT_TRUE(q.started());
  EXPECT_OK(q.Run([&](Txn&) {
    ran_on = std::this_thread::get_id();
    return absl::OkStatus();
  }));
  EXPECT_NE(ran_on, std::thread::id());
  EXPECT_NE(ran_on, std::this_thread::get_id());
  absl::Status st = q.Run([](Txn&) { return absl::InvalidArgumentError("gpus: must be > 0"); });
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  q.Stop();
}

TEST(CommandQueue, CallReturnsTheCommandsResult) {
  for (bool start : {false, true}) {
    CommandQueue q(NoTicks(), ApplyAndCommit(absl::OkStatus()));
    if (start) q.Start();
    absl::StatusOr<std::string> r =
        q.Call<std::string>([](Txn& txn) -> absl::StatusOr<std::string> {
          txn.dirty.insert("j-1");
          return std::string("j-1");
        });
    ASSERT_OK(r) << "start=" << start;
    EXPECT_EQ(*r, "j-1");
    absl::StatusOr<int> err = q.Call<int>(
        [](Txn&) -> absl::StatusOr<int> { return absl::FailedPreconditionError("job finished"); });
    EXPECT_EQ(err.status().code(), absl::StatusCode::kFailedPrecondition) << "start=" << start;
  }
}

TEST(CommandQueue, CallersQueuedWhileTheWriterIsBusyShareOneBatch) {
  GatedProcessor gate;
  std::atomic<int> applied{0};
  CommandQueue q(NoTicks(), gate.AsProcessor());
  q.Start();
  auto count = [&](Txn&) {
    ++applied;
    return absl::OkStatus();
  };
  constexpr int kQueued = 5;
  std::vector<absl::Status> results(kQueued + 1, absl::UnknownError("not run"));
  {
    Joiner joiner(gate);
    joiner.threads.emplace_back([&] { results[0] = q.Run(count); });
    gate.WaitFirstTaken();
    for (int i = 1; i <= kQueued; ++i)
      joiner.threads.emplace_back([&, i] { results[i] = q.Run(count); });
    ASSERT_TRUE(Eventually([&] { return q.depth() == kQueued; })) << q.depth();
    gate.Release();
  }
  for (const absl::Status& st : results) EXPECT_OK(st);
  EXPECT_EQ(applied.load(), kQueued + 1);
  // The first command alone, then every waiting caller in one group commit.
  EXPECT_THAT(gate.sizes(), ElementsAre(1u, static_cast<size_t>(kQueued)));
  q.Stop();
}

TEST(CommandQueue, MaxBatchSplitsTheQueue) {
  GatedProcessor gate;
  CommandQueue::Options o = NoTicks();
  o.max_batch = 2;
  CommandQueue q(o, gate.AsProcessor());
  q.Start();
  auto noop = [](Txn&) { return absl::OkStatus(); };
  {
    Joiner joiner(gate);
    joiner.threads.emplace_back([&] { EXPECT_OK(q.Run(noop)); });
    gate.WaitFirstTaken();
    for (int i = 0; i < 5; ++i) joiner.threads.emplace_back([&] { EXPECT_OK(q.Run(noop)); });
    ASSERT_TRUE(Eventually([&] { return q.depth() == 5; }));
    gate.Release();
  }
  EXPECT_THAT(gate.sizes(), ElementsAre(1u, 2u, 2u, 1u));
  q.Stop();
}

TEST(CommandQueue, RefusesBeyondMaxQueueWithQueueFull) {
  GatedProcessor gate;
  CommandQueue::Options o = NoTicks();
  o.max_queue = 2;
  CommandQueue q(o, gate.AsProcessor());
  q.Start();
  std::atomic<int> applied{0};
  auto count = [&](Txn&) {
    ++applied;
    return absl::OkStatus();
  };
  {
    Joiner joiner(gate);
    joiner.threads.emplace_back([&] { EXPECT_OK(q.Run(count)); });
    gate.WaitFirstTaken();  // taken: no longer counts against max_queue
    for (int i = 0; i < 2; ++i) joiner.threads.emplace_back([&] { EXPECT_OK(q.Run(count)); });
    ASSERT_TRUE(Eventually([&] { return q.depth() == 2; }));

    absl::Status st = q.Run(count);
    EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted) << st;
    EXPECT_EQ(ReasonOf(st), reason::kQueueFull);
    EXPECT_EQ(q.depth(), 2);
    gate.Release();
  }
  EXPECT_EQ(applied.load(), 3);  // the refused command never ran
  q.Stop();
}

TEST(CommandQueue, StopRefusesNewCommandsAndDrainsQueuedOnes) {
  GatedProcessor gate;
  CommandQueue::Options o = NoTicks();
  // A full queue makes every further Run return at once: QUEUE_FULL before
  // Stop, UNAVAILABLE after, so the test can see when Stop took effect.
  o.max_queue = 3;
  CommandQueue q(o, gate.AsProcessor());
  q.Start();
  std::atomic<int> applied{0};
  auto count = [&](Txn&) {
    ++applied;
    return absl::OkStatus();
  };
  std::vector<absl::Status> queued(3, absl::UnknownError("not run"));
  {
    Joiner joiner(gate);
    joiner.threads.emplace_back([&] { EXPECT_OK(q.Run(count)); });
    gate.WaitFirstTaken();
    for (int i = 0; i < 3; ++i) joiner.threads.emplace_back([&, i] { queued[i] = q.Run(count); });
    ASSERT_TRUE(Eventually([&] { return q.depth() == 3; }));

    joiner.threads.emplace_back([&] { q.Stop(); });  // blocks until the writer drained
    absl::Status refused;
    ASSERT_TRUE(Eventually([&] {
      refused = q.Run(count);
      return refused.code() != absl::StatusCode::kResourceExhausted;
    }));
    EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
    EXPECT_EQ(ReasonOf(refused), reason::kUnavailable);
    gate.Release();
  }
  // Stop returned: the commands queued before it were applied and answered.
  for (const absl::Status& st : queued) EXPECT_OK(st);
  EXPECT_EQ(applied.load(), 4);
  EXPECT_EQ(q.depth(), 0);

  absl::Status after = q.Run(count);
  EXPECT_EQ(after.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ReasonOf(after), reason::kUnavailable);
  q.Stop();  // idempotent
  EXPECT_EQ(applied.load(), 4);
}

TEST(CommandQueue, StopWithoutStartRefusesInlineCommands) {
  int batches = 0;
  CommandQueue q(NoTicks(), ApplyAndCommit(absl::OkStatus(), &batches));
  q.Stop();
  absl::Status st = q.Run([](Txn&) { return absl::OkStatus(); });
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(batches, 0);
}

TEST(CommandQueue, FailedCommitTurnsOkResultsIntoNotStoredButKeepsCommandErrors) {
  CommandQueue q(NoTicks(), ApplyAndCommit(absl::InternalError("disk I/O error")));
  bool ran = false;
  absl::Status ok_cmd = q.Run([&](Txn&) {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_TRUE(ran);
  EXPECT_EQ(ok_cmd.code(), absl::StatusCode::kUnavailable) << ok_cmd;
  EXPECT_THAT(std::string(ok_cmd.message()), HasSubstr("not stored"));
  EXPECT_THAT(std::string(ok_cmd.message()), HasSubstr("disk I/O error"));

  absl::Status bad_cmd =
      q.Run([](Txn&) { return absl::InvalidArgumentError("gpus: must be > 0"); });
  EXPECT_EQ(bad_cmd.code(), absl::StatusCode::kInvalidArgument) << bad_cmd;
  EXPECT_EQ(bad_cmd.message(), "gpus: must be > 0");

  // A Call's result is not handed out when its write was lost.
  absl::StatusOr<int> call = q.Call<int>([](Txn&) -> absl::StatusOr<int> { return 7; });
  EXPECT_EQ(call.status().code(), absl::StatusCode::kUnavailable);
}

TEST(CommandQueue, FailedCommitAnswersEveryCallerOfTheBatch) {
  GatedProcessor gate(absl::UnavailableError("store is read-only"));
  CommandQueue q(NoTicks(), gate.AsProcessor());
  q.Start();
  std::vector<absl::Status> results(3);
  {
    Joiner joiner(gate);
    joiner.threads.emplace_back([&] { results[0] = q.Run([](Txn&) { return absl::OkStatus(); }); });
    gate.WaitFirstTaken();
    joiner.threads.emplace_back([&] { results[1] = q.Run([](Txn&) { return absl::OkStatus(); }); });
    joiner.threads.emplace_back(
        [&] { results[2] = q.Run([](Txn&) { return absl::NotFoundError("no such job"); }); });
    ASSERT_TRUE(Eventually([&] { return q.depth() == 2; }));
    gate.Release();
  }
  EXPECT_THAT(gate.sizes(), ElementsAre(1u, 2u));
  EXPECT_EQ(results[0].code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(results[1].code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(results[1].message()), HasSubstr("not stored"));
  EXPECT_EQ(results[2].code(), absl::StatusCode::kNotFound);
  q.Stop();
}

TEST(CommandQueue, CommandNotTakenInTimeIsRefusedAndThenSkipped) {
  GatedProcessor gate;
  CommandQueue::Options o = NoTicks();
  o.command_timeout = absl::Milliseconds(50);
  CommandQueue q(o, gate.AsProcessor());
  q.Start();
  std::atomic<bool> late_ran{false};
  absl::Status first;
  {
    Joiner joiner(gate);
    joiner.threads.emplace_back([&] { first = q.Run([](Txn&) { return absl::OkStatus(); }); });
    gate.WaitFirstTaken();
    // The writer is stuck on the first batch: this command is never taken.
    absl::Status late = q.Run([&](Txn&) {
      late_ran = true;
      return absl::OkStatus();
    });
    EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable) << late;
    EXPECT_THAT(std::string(late.message()), HasSubstr("nothing was written"));
    gate.Release();
  }
  // Once the writer moves on it skips the withdrawn command; a later one
  // (FIFO) proves the withdrawn one's batch was processed.
  std::atomic<bool> next_ran{false};
  EXPECT_OK(q.Run([&](Txn&) {
    next_ran = true;
    return absl::OkStatus();
  }));
  EXPECT_TRUE(next_ran);
  EXPECT_FALSE(late_ran) << "a withdrawn command was applied";
  q.Stop();
  EXPECT_FALSE(late_ran);
}

TEST(CommandQueue, CommandTakenButNotCommittedGivesDeadlineExceededWithoutWaiting) {
  GatedProcessor gate;
  CommandQueue::Options o = NoTicks();
  o.command_timeout = absl::Milliseconds(50);
  CommandQueue q(o, gate.AsProcessor());
  q.Start();
  std::atomic<bool> ran{false};
  // The processor applies the command and then stalls in the commit until
  // released, which happens only after Run returned: Run cannot have waited.
  absl::Status st = q.Run([&](Txn&) {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("outcome is unknown"));
  EXPECT_TRUE(ran);  // it was applied: not withdrawn
  gate.Release();
  EXPECT_OK(q.Run([](Txn&) { return absl::OkStatus(); }));
  q.Stop();
}

TEST(CommandQueue, TicksReachTheProcessorAsEmptyBatches) {
  std::atomic<int> ticks{0};
  CommandQueue::Options o;
  o.tick_interval = absl::Milliseconds(1);
  CommandQueue q(o, [&](CommandQueue::Batch& batch) {
    if (batch.tick()) ++ticks;
    Txn txn;
    batch.Apply(txn);
    batch.Complete(absl::OkStatus());
  });
  q.Start();
  EXPECT_TRUE(Eventually([&] { return ticks.load() >= 2; }));
  q.Stop();
}

}  // namespace
}  // namespace greenlight::scheduler
