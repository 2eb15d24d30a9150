// The long in-process stress: more clients, more operations, several seeds.
// Runs only with GREENLIGHT_STRESS=1 (`make stress`, ctest label "stress").
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "tests/unit/scheduler/stress_driver.h"

namespace greenlight::scheduler::stress {
namespace {

TEST(CoreStressHeavy, ManyClientsManySeeds) {
  const char* on = std::getenv("GREENLIGHT_STRESS");
  if (on == nullptr || std::string(on) != "1") GTEST_SKIP() << "set GREENLIGHT_STRESS=1";
  for (uint32_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE(seed);
    StressConfig c;
    c.threads = 32;
    c.ops_per_thread = 2000;
    c.seed = seed;
    c.max_clock_step_minutes = 20;
    RunStress(c);
  }
}

}  // namespace
}  // namespace greenlight::scheduler::stress
