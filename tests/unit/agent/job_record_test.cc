// The agent's per-job record: what it writes reads back the same, and a
// damaged record degrades to safe defaults instead of failing recovery.
#include "services/agent/job_record.h"

#include <gtest/gtest.h>

namespace greenlight::agent {
namespace {

TEST(JobRecord, RoundTripsEveryField) {
  for (JobRecord::Phase phase : {JobRecord::Phase::kLaunching, JobRecord::Phase::kRunning,
                                 JobRecord::Phase::kFailed, JobRecord::Phase::kDone}) {
    JobRecord r;
    r.phase = phase;
    r.next_sequence = 42;
    r.started_acked = true;
    r.reported_wh = {{0, 1.0 / 3.0}, {3, 1e6 + 0.125}};
    r.reason = phase == JobRecord::Phase::kFailed ? "execvpe failed: No such file" : "";
    const JobRecord back = DecodeJobRecord(EncodeJobRecord(r));
    EXPECT_EQ(back.phase, r.phase);
    EXPECT_EQ(back.next_sequence, 42);
    EXPECT_TRUE(back.started_acked);
    EXPECT_EQ(back.reported_wh, r.reported_wh) << "bit-exact doubles (%.17g)";
    EXPECT_EQ(back.reason, r.reason);
  }
}

TEST(JobRecord, AReasonWithNewlinesStaysOneLine) {
  JobRecord r;
  r.phase = JobRecord::Phase::kFailed;
  r.reason = "line one\nline two";
  const std::string text = EncodeJobRecord(r);
  EXPECT_EQ(text.find("line one\n"), std::string::npos) << text;
  EXPECT_EQ(DecodeJobRecord(text).reason, "line one line two");
}

TEST(JobRecord, DamagedValuesFallBackToSafeDefaults) {
  const JobRecord r = DecodeJobRecord(
      "phase sideways\nnext_sequence -5\nstarted_acked yes\nenergy_wh 0 -1\nenergy_wh 1 nan\n"
      "energy_wh x 2\nenergy_wh 2 inf\nenergy_wh 3 7.5\nunknown_key 1\n\n");
  EXPECT_EQ(r.phase, JobRecord::Phase::kRunning) << "the process record decides";
  EXPECT_EQ(r.next_sequence, 1);
  EXPECT_FALSE(r.started_acked) << "STARTED is resent: greenlightd deduplicates";
  EXPECT_EQ(r.reported_wh, (std::map<int, double>{{3, 7.5}}));
  EXPECT_EQ(DecodeJobRecord("").next_sequence, 1);
}

}  // namespace
}  // namespace greenlight::agent
