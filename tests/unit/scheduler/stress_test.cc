// In-process stress of SchedulerCore, sized for `make test` (2 cores, well
// under a minute). The heavy variant is stress_heavy_test.cc.
#include "gtest/gtest.h"
#include "tests/unit/scheduler/stress_driver.h"

namespace greenlight::scheduler::stress {
namespace {

TEST(CoreStress, ConcurrentClientsNeverBreakBudgetsQuotasOrTheLedger) {
  StressConfig c;
  c.threads = 16;
  c.ops_per_thread = 1000;
  c.seed = 20260331;
  RunStress(c);
}

}  // namespace
}  // namespace greenlight::scheduler::stress
