// Executors run placed jobs. The simulated executor (default, demo and
// replay) finishes a job when its compute time has elapsed on the scheduler's
// clock; external executors (agents, Kubernetes) report over gRPC.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace greenlight::scheduler {

struct Completion {
  std::string job_id;
  bool succeeded = true;
  std::string message;
};

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string name() const = 0;
  // Starts (or resumes after a restart) a job with `remaining` compute time.
  virtual void Launch(const std::string& job_id, absl::Duration remaining) = 0;
  virtual void Kill(const std::string& job_id) = 0;
  // Reports that the job computed for `d` more (the core accrues in ticks).
  virtual void Progress(const std::string& job_id, absl::Duration d) = 0;
  // Jobs that finished since the last call.
  virtual std::vector<Completion> Poll() = 0;
};

// Completes each job when it has progressed by its compute time.
class SimulatedExecutor final : public Executor {
 public:
  std::string name() const override { return "simulated"; }
  void Launch(const std::string& job_id, absl::Duration remaining) override {
    left_[job_id] = remaining;
  }
  void Kill(const std::string& job_id) override { left_.erase(job_id); }
  void Progress(const std::string& job_id, absl::Duration d) override {
    auto it = left_.find(job_id);
    if (it == left_.end()) return;
    it->second -= d;
    if (it->second <= absl::ZeroDuration()) {
      done_.push_back({job_id, true, "completed on the simulated executor"});
      left_.erase(it);
    }
  }
  std::vector<Completion> Poll() override {
    std::vector<Completion> out;
    out.swap(done_);
    return out;
  }

 private:
  absl::flat_hash_map<std::string, absl::Duration> left_;
  std::vector<Completion> done_;
};

}  // namespace greenlight::scheduler
