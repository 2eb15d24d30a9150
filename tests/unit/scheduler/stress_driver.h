// In-process stress of SchedulerCore (issue 4): many threads submit, cancel,
// change teams and carbon series while the writer thread runs and another
// thread moves a ManualClock; invariants are checked at every observed point
// and, at the end, against the raw SQLite ledger.
#pragma once

#include <cstdint>

namespace greenlight::scheduler::stress {

struct StressConfig {
  int threads = 16;
  int ops_per_thread = 250;
  uint32_t seed = 1;
  // Simulated minutes the clock thread moves per step (random in [1, max]).
  int max_clock_step_minutes = 10;
};

// Runs the load and every check; failures are reported through gtest.
void RunStress(const StressConfig& config);

}  // namespace greenlight::scheduler::stress
