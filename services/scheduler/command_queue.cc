#include "services/scheduler/command_queue.h"

#include "absl/strings/str_cat.h"
#include "common/error_details.h"

namespace greenlight::scheduler {

struct CommandQueue::Batch::Command {
  enum State : int { kQueued, kApplying, kApplied, kWithdrawn };
  CommandQueue::Apply apply;
  std::promise<absl::Status> done;
  // kQueued -> kApplying -> kApplied by the writer, or kQueued -> kWithdrawn
  // by a caller whose wait timed out (the writer then skips it).
  std::shared_ptr<std::atomic<int>> state = std::make_shared<std::atomic<int>>(kQueued);
};

void CommandQueue::Batch::Apply(Txn& txn) {
  results_.assign(commands_.size(), absl::OkStatus());
  for (size_t i = 0; i < commands_.size(); ++i) {
    Command& c = *commands_[i];
    int expected = Command::kQueued;
    if (!c.state->compare_exchange_strong(expected, Command::kApplying)) {
      results_[i] = absl::UnavailableError("withdrawn by its caller after a timeout");
      continue;
    }
    results_[i] = c.apply(txn);
    c.state->store(Command::kApplied);
  }
}

void CommandQueue::Batch::Complete(const absl::Status& commit) {
  results_.resize(commands_.size(), absl::OkStatus());
  for (size_t i = 0; i < commands_.size(); ++i) {
    if (!commit.ok() && results_[i].ok()) {
      results_[i] = absl::UnavailableError(
          absl::StrCat("not stored: ", commit.message(), "; nothing was written, retry later"));
    }
    commands_[i]->done.set_value(results_[i]);
  }
  commands_.clear();
}

CommandQueue::CommandQueue(Options options, Processor process)
    : options_(options), process_(std::move(process)) {}

CommandQueue::~CommandQueue() { Stop(); }

void CommandQueue::Start() {
  if (started_) return;
  started_ = true;
  writer_ = std::thread([this] { WriterLoop(); });
}

void CommandQueue::Stop() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
}

int CommandQueue::depth() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(queue_.size());
}

CommandQueue::Batch CommandQueue::TakeLocked(bool all) {
  Batch b;
  while (!queue_.empty() && (all || static_cast<int>(b.commands_.size()) < options_.max_batch)) {
    b.commands_.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return b;
}

absl::Status CommandQueue::Run(Apply apply) {
  auto cmd = std::make_unique<Batch::Command>();
  cmd->apply = std::move(apply);
  std::future<absl::Status> f = cmd->done.get_future();
  std::shared_ptr<std::atomic<int>> state = cmd->state;
  {
    absl::MutexLock l(&mu_);
    if (stopping_)
      return WithReason(
          absl::UnavailableError(
              "scheduler is shutting down; retry on another replica or after restart"),
          reason::kUnavailable);
    if (static_cast<int>(queue_.size()) >= options_.max_queue)
      return WithReason(
          absl::ResourceExhaustedError(absl::StrCat("scheduler overloaded: ", queue_.size(),
                                                    " commands queued; retry with backoff")),
          reason::kQueueFull);
    queue_.push_back(std::move(cmd));
  }
  if (!started_) {
    Batch batch;
    {
      absl::MutexLock l(&mu_);
      batch = TakeLocked(/*all=*/true);
    }
    process_(batch);
  }
  // Every wait is bounded: a stalled store (or a writer stuck behind one)
  // must not pin the caller's thread forever.
  if (options_.command_timeout == absl::InfiniteDuration()) return f.get();
  const auto timeout = absl::ToChronoMilliseconds(options_.command_timeout);
  if (f.wait_for(timeout) == std::future_status::ready) return f.get();
  int expected = Batch::Command::kQueued;
  if (state->compare_exchange_strong(expected, Batch::Command::kWithdrawn)) {
    return absl::UnavailableError(absl::StrCat(
        "scheduler did not take the request within ",
        absl::FormatDuration(options_.command_timeout),
        " (overloaded or the store is stalled); nothing was written; retry with backoff"));
  }
  if (f.wait_for(timeout) == std::future_status::ready) return f.get();
  // Taken but not committed: the command owns its result, so nothing waits
  // on this frame any longer.
  return absl::DeadlineExceededError(absl::StrCat(
      "the store has not confirmed the write within ",
      absl::FormatDuration(2 * options_.command_timeout),
      "; the outcome is unknown: retry with the same request_id (submits are idempotent) or check "
      "with GetJob"));
}

void CommandQueue::WriterLoop() {
  const bool ticks = options_.tick_interval > absl::ZeroDuration();
  absl::Time next_tick = absl::Now() + options_.tick_interval;
  for (;;) {
    Batch batch;
    {
      absl::MutexLock l(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || stopping_; };
      if (ticks) {
        mu_.AwaitWithDeadline(absl::Condition(&ready), next_tick);
      } else {
        mu_.Await(absl::Condition(&ready));
      }
      batch = TakeLocked(/*all=*/false);
      if (stopping_ && batch.size() == 0) return;
    }
    if (ticks && absl::Now() >= next_tick) {
      batch.tick_ = true;
      next_tick = absl::Now() + options_.tick_interval;
    }
    if (batch.size() > 0 || batch.tick()) process_(batch);
  }
}

}  // namespace greenlight::scheduler
