// Executors run placed jobs. The core tells an executor, after each commit,
// which jobs to launch (with their remaining compute time) and which to kill.
//
// The simulated executor (the demo's cloud pools, the replay) runs nothing:
// the core's accrual ends each job when its compute time has elapsed on the
// scheduler's clock. Real executors (node agents, Slurm) report back what
// happened; their reports enter the tick as its first phase (core.h).
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace greenlight::scheduler {

class Executor {
 public:
  virtual ~Executor() = default;
  virtual std::string name() const = 0;
  // Starts (or resumes after a restart) a job with `remaining` compute time.
  virtual void Launch(const std::string& job_id, absl::Duration remaining) = 0;
  virtual void Kill(const std::string& job_id) = 0;
};

// Keeps the jobs it was told to run (tests read them back).
class SimulatedExecutor final : public Executor {
 public:
  std::string name() const override { return "simulated"; }
  void Launch(const std::string& job_id, absl::Duration remaining) override {
    running_[job_id] = remaining;
  }
  void Kill(const std::string& job_id) override { running_.erase(job_id); }
  bool Runs(const std::string& job_id) const { return running_.contains(job_id); }
  size_t running() const { return running_.size(); }

 private:
  absl::flat_hash_map<std::string, absl::Duration> running_;
};

}  // namespace greenlight::scheduler
