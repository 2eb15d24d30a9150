// SubmitJob's request path without the network: bytes parsed as a
// SubmitJobRequest, ValidateJobSpec with a fixed context, then the real
// SchedulerCore (in-memory store, manual clock, one small pool) estimates,
// admits and cancels the spec; the budget invariants must hold after every
// input. This covers request validation and every proto <-> domain
// conversion SubmitJob makes (times, durations, caps, enums).
#include <cstddef>
#include <cstdint>

#include "common/log.h"
#include "google/protobuf/stubs/logging.h"
#include "google/protobuf/util/field_comparator.h"
#include "google/protobuf/util/message_differencer.h"
#include "greenlight/v1/scheduler.pb.h"
#include "services/scheduler/core.h"
#include "services/scheduler/invariants.h"
#include "services/scheduler/validation.h"
#include "services/store/memory_store.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/testing/core_harness.h"

namespace {
namespace v1 = ::greenlight::v1;
using greenlight::scheduler::SchedulerCore;

greenlight::scheduler::ValidationContext Context(const SchedulerCore& core) {
  greenlight::scheduler::ValidationContext c;
  c.now = greenlight::testing::TestStart();
  c.canonical_gpu = [&core](const std::string& g) { return core.CanonicalGpu(g); };
  c.region_known = [](const std::string& r) { return r == "eu-central-1"; };
  c.team_exists = [](const std::string& t) { return t == "ml-research" || t == "vision"; };
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Invalid UTF-8 in string fields is expected here; protobuf logs each one.
  google::protobuf::SetLogHandler(nullptr);
  greenlight::SetLogLevel(greenlight::LogLevel::kError);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  v1::SubmitJobRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  const v1::JobSpec& spec = req.spec();
  // What parsed serializes and parses back to an equal message (the bytes
  // may differ: map entries drop unknown fields, map order is unspecified).
  v1::SubmitJobRequest again;
  GL_FUZZ_CHECK(again.ParseFromString(req.SerializeAsString()));
  google::protobuf::util::DefaultFieldComparator nan_equal;
  nan_equal.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer diff;
  diff.set_field_comparator(&nan_equal);
  GL_FUZZ_CHECK(diff.Compare(again, req));

  // A fresh core per input keeps every run deterministic.
  greenlight::ManualClock clock(greenlight::testing::TestStart());
  greenlight::store::MemoryStore store;
  greenlight::scheduler::SimulatedExecutor executor;
  greenlight::scheduler::CoreOptions o;
  o.clock = &clock;
  o.store = &store;
  o.executor = &executor;
  o.inventory = greenlight::testing::SmallInventory(2);
  o.tick_interval = absl::ZeroDuration();
  auto core = SchedulerCore::Create(std::move(o));
  GL_FUZZ_CHECK(core.ok());
  GL_FUZZ_CHECK(
      (*core)->SetTeam(greenlight::testing::MakeTeam("ml-research", 10'000, 1'000, 8, "")).ok());
  GL_FUZZ_CHECK((*core)->SetTeam(greenlight::testing::MakeTeam("vision", 500, 50, 4, "")).ok());
  absl::Status valid = greenlight::scheduler::ValidateJobSpec(spec, Context(**core));

  (void)(*core)->Estimate(spec, 3);
  auto admitted = (*core)->Submit(spec);
  if (admitted.ok()) {
    // The core admits nothing that request validation refuses.
    GL_FUZZ_CHECK(valid.ok());
    auto again_submit = (*core)->Submit(spec);  // same request_id: deduplicated, or a second job
    GL_FUZZ_CHECK(again_submit.ok() || again_submit.status().code() != absl::StatusCode::kInternal);
    clock.Advance(absl::Hours(1));
    GL_FUZZ_CHECK((*core)->Tick().ok());
    (void)(*core)->Cancel(admitted->job.id(), "fuzz");
  }
  absl::Status inv = greenlight::scheduler::CheckInvariants(**core);
  if (!inv.ok()) {
    std::fprintf(stderr, "invariant broken: %s\n", std::string(inv.message()).c_str());
    std::abort();
  }
  return 0;
}
