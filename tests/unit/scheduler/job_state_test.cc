// The job state machine: every (from, to) pair of the ten states against
// the expected table; terminal states never change.
#include "services/scheduler/job_state.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace greenlight::scheduler {
namespace {

using ::testing::HasSubstr;
using v1::JobState;

const std::vector<JobState>& AllStates() {
  static const std::vector<JobState> s = {v1::JOB_STATE_UNSPECIFIED, v1::JOB_STATE_PENDING,
                                          v1::JOB_STATE_PLANNED,     v1::JOB_STATE_RUNNING,
                                          v1::JOB_STATE_SUCCEEDED,   v1::JOB_STATE_FAILED,
                                          v1::JOB_STATE_CANCELLED,   v1::JOB_STATE_BUDGET_EXHAUSTED,
                                          v1::JOB_STATE_REJECTED,    v1::JOB_STATE_STARTING};
  return s;
}

// The expected table, written out independently of the implementation.
// UNSPECIFIED is "not yet created": admission puts a new job in one of the
// first states or rejects it.
const std::map<JobState, std::set<JobState>>& Expected() {
  static const std::map<JobState, std::set<JobState>> t = {
      {v1::JOB_STATE_UNSPECIFIED,
       {v1::JOB_STATE_PENDING, v1::JOB_STATE_PLANNED, v1::JOB_STATE_STARTING, v1::JOB_STATE_RUNNING,
        v1::JOB_STATE_REJECTED}},
      {v1::JOB_STATE_PENDING,
       {v1::JOB_STATE_PLANNED, v1::JOB_STATE_STARTING, v1::JOB_STATE_RUNNING,
        v1::JOB_STATE_CANCELLED, v1::JOB_STATE_FAILED, v1::JOB_STATE_BUDGET_EXHAUSTED}},
      {v1::JOB_STATE_PLANNED,
       {v1::JOB_STATE_PENDING, v1::JOB_STATE_STARTING, v1::JOB_STATE_RUNNING,
        v1::JOB_STATE_CANCELLED, v1::JOB_STATE_FAILED, v1::JOB_STATE_BUDGET_EXHAUSTED}},
      // Agent jobs: STARTING until the node reports the start; back to
      // PENDING when the node is lost (requeued), RUNNING -> STARTING when
      // stopped at the end of a carbon slot.
      {v1::JOB_STATE_STARTING,
       {v1::JOB_STATE_RUNNING, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED,
        v1::JOB_STATE_BUDGET_EXHAUSTED, v1::JOB_STATE_PENDING}},
      {v1::JOB_STATE_RUNNING,
       {v1::JOB_STATE_SUCCEEDED, v1::JOB_STATE_FAILED, v1::JOB_STATE_CANCELLED,
        v1::JOB_STATE_BUDGET_EXHAUSTED, v1::JOB_STATE_PENDING, v1::JOB_STATE_STARTING}},
      {v1::JOB_STATE_SUCCEEDED, {}},
      {v1::JOB_STATE_FAILED, {}},
      {v1::JOB_STATE_CANCELLED, {}},
      {v1::JOB_STATE_BUDGET_EXHAUSTED, {}},
      {v1::JOB_STATE_REJECTED, {}},
  };
  return t;
}

TEST(JobState, EveryPairMatchesTheTransitionTable) {
  ASSERT_EQ(AllStates().size(), 10u);
  int legal = 0;
  for (JobState from : AllStates()) {
    for (JobState to : AllStates()) {
      bool want = Expected().at(from).count(to) > 0;
      EXPECT_EQ(IsLegalTransition(from, to), want) << StateName(from) << " -> " << StateName(to);
      absl::Status st = CheckTransition(from, to);
      EXPECT_EQ(st.ok(), want) << StateName(from) << " -> " << StateName(to);
      if (!want) {
        EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
        EXPECT_THAT(std::string(st.message()), HasSubstr(StateName(from)));
        EXPECT_THAT(std::string(st.message()), HasSubstr(StateName(to)));
      }
      legal += want;
    }
  }
  EXPECT_EQ(legal, 5 + 6 + 6 + 5 + 6);
}

TEST(JobState, TerminalStatesNeverChangeAndNoStateLoopsOnItself) {
  for (JobState s : AllStates()) {
    bool terminal = Expected().at(s).empty();
    EXPECT_EQ(IsTerminal(s), terminal) << StateName(s);
    EXPECT_FALSE(IsLegalTransition(s, s)) << StateName(s) << " -> itself";
    if (terminal) {
      for (JobState to : AllStates()) EXPECT_FALSE(IsLegalTransition(s, to)) << StateName(s);
    }
  }
}

TEST(JobState, NoStateCanReturnToUnspecifiedOrBeRejectedAfterAdmission) {
  for (JobState s : AllStates()) {
    EXPECT_FALSE(IsLegalTransition(s, v1::JOB_STATE_UNSPECIFIED)) << StateName(s);
    if (s != v1::JOB_STATE_UNSPECIFIED) {
      EXPECT_FALSE(IsLegalTransition(s, v1::JOB_STATE_REJECTED)) << StateName(s);
    }
  }
}

TEST(JobState, UnknownEnumValuesAreNeverLegal) {
  JobState bogus = static_cast<JobState>(42);
  for (JobState s : AllStates()) {
    EXPECT_FALSE(IsLegalTransition(bogus, s));
    EXPECT_FALSE(IsLegalTransition(s, bogus)) << StateName(s);
  }
  EXPECT_STREQ(StateName(bogus), "UNSPECIFIED");
}

TEST(JobState, NamesMatchTheProtoEnum) {
  for (JobState s : AllStates()) {
    if (s == v1::JOB_STATE_UNSPECIFIED) continue;
    EXPECT_EQ(std::string("JOB_STATE_") + StateName(s), v1::JobState_Name(s));
  }
}

}  // namespace
}  // namespace greenlight::scheduler
