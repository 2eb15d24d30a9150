// The command queue in front of the single writer. Callers enqueue commands
// and wait (bounded) for their outcome; the writer takes them in batches,
// applies them to the state, commits the batch to the store in one
// transaction (group commit) and only then answers every caller.
//
// A command owns its inputs and its result (captured by value), so a caller
// whose wait timed out returns at once: the command may still run, and the
// caller learns nothing of it but "the outcome is unknown".
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/scheduler/txn.h"

namespace greenlight::scheduler {

class CommandQueue {
 public:
  struct Options {
    // Commands waiting beyond this are refused with RESOURCE_EXHAUSTED (QUEUE_FULL).
    int max_queue = 4096;
    // At most this many commands per group commit.
    int max_batch = 512;
    // Longest a caller waits for its command to be taken; see core.h.
    absl::Duration command_timeout = absl::Seconds(30);
    // Wall-time period of ticks on the writer thread; 0 = no automatic ticks.
    absl::Duration tick_interval = absl::Milliseconds(200);
  };
  using Apply = std::function<absl::Status(Txn&)>;

  // The commands the writer took in one go.
  class Batch {
   public:
    size_t size() const { return commands_.size(); }
    bool tick() const { return tick_; }
    // Applies, in order, every command its caller has not withdrawn.
    void Apply(Txn& txn);
    // Answers every caller: its command's result, or, where the command
    // applied but the commit failed, UNAVAILABLE "not stored".
    void Complete(const absl::Status& commit);

   private:
    friend class CommandQueue;
    struct Command;
    std::vector<std::unique_ptr<Command>> commands_;
    std::vector<absl::Status> results_;
    bool tick_ = false;
  };
  // Applies and commits one batch; called on the writer thread (or inline).
  using Processor = std::function<void(Batch&)>;

  CommandQueue(Options options, Processor process);
  ~CommandQueue();
  CommandQueue(const CommandQueue&) = delete;
  CommandQueue& operator=(const CommandQueue&) = delete;

  // Starts the writer thread. Without it, Run processes the queue on the
  // caller's thread: only for single-threaded drivers (the replay), which
  // would otherwise pay a thread handoff per command.
  void Start();
  // Refuses new commands, lets the writer drain the queue, joins it. Idempotent.
  void Stop();
  bool started() const { return started_; }

  // Enqueues `apply` and waits for its batch to be committed (see Options).
  absl::Status Run(Apply apply);
  // Run for a command with a result: the result lives in the command.
  template <typename T>
  absl::StatusOr<T> Call(std::function<absl::StatusOr<T>(Txn&)> fn) {
    auto out = std::make_shared<std::optional<T>>();
    absl::Status st = Run([fn = std::move(fn), out](Txn& txn) -> absl::Status {
      absl::StatusOr<T> r = fn(txn);
      if (!r.ok()) return r.status();
      *out = *std::move(r);
      return absl::OkStatus();
    });
    if (!st.ok()) return st;
    return *std::move(*out);
  }
  // Commands waiting to be taken.
  int depth() const;

 private:
  void WriterLoop();
  // Takes up to max_batch queued commands (all of them when `all`).
  Batch TakeLocked(bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  const Processor process_;
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<Batch::Command>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
  bool started_ = false;
};

}  // namespace greenlight::scheduler
