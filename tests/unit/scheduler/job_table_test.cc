// JobTable: the state indexes, the request-id index, the tick's due and
// late lists, ListJobs paging and the per-state counts.
#include "services/scheduler/job_table.h"

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_testing.h"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

const absl::Time kT0 = absl::FromUnixSeconds(1773100800);  // 2026-03-10 00:00 UTC

v1::Job MakeJob(int64_t sequence, v1::JobState state, const std::string& team = "ml",
                const std::string& request_id = "") {
  v1::Job j;
  j.set_id("j-" + std::to_string(sequence));
  j.set_sequence(sequence);
  j.set_state(state);
  j.mutable_spec()->set_team(team);
  j.mutable_spec()->set_request_id(request_id);
  j.mutable_spec()->set_gpus(1);
  return j;
}

v1::Job Planned(int64_t sequence, absl::Time start) {
  v1::Job j = MakeJob(sequence, v1::JOB_STATE_PLANNED);
  *j.mutable_placement()->mutable_start() = ToProto(start);
  return j;
}

// A PENDING job whose latest start is deadline - remaining.
v1::Job PendingWithDeadline(int64_t sequence, absl::Time deadline, absl::Duration remaining) {
  v1::Job j = MakeJob(sequence, v1::JOB_STATE_PENDING);
  *j.mutable_spec()->mutable_deadline() = ToProto(deadline);
  *j.mutable_remaining() = ToProtoDuration(remaining);
  return j;
}

std::vector<int64_t> Sequences(const JobTable::BySequence& jobs) {
  std::vector<int64_t> out;
  for (const auto& [seq, j] : jobs) {
    EXPECT_EQ(seq, j->sequence());
    out.push_back(seq);
  }
  return out;
}
std::vector<int64_t> Sequences(const std::vector<v1::Job*>& jobs) {
  std::vector<int64_t> out;
  for (const v1::Job* j : jobs) out.push_back(j->sequence());
  return out;
}
std::vector<int64_t> Sequences(const std::vector<v1::Job>& jobs) {
  std::vector<int64_t> out;
  for (const v1::Job& j : jobs) out.push_back(j.sequence());
  return out;
}

TEST(JobTable, AddIndexesEachJobByItsState) {
  JobTable t;
  t.Add(MakeJob(1, v1::JOB_STATE_PENDING));
  t.Add(Planned(2, kT0));
  t.Add(MakeJob(3, v1::JOB_STATE_RUNNING));
  t.Add(MakeJob(4, v1::JOB_STATE_SUCCEEDED));
  t.Add(MakeJob(5, v1::JOB_STATE_REJECTED));

  EXPECT_EQ(t.size(), 5u);
  EXPECT_THAT(Sequences(t.active()), ElementsAre(1, 2, 3));
  EXPECT_THAT(Sequences(t.pending()), ElementsAre(1));
  EXPECT_THAT(Sequences(t.running()), ElementsAre(3));
  EXPECT_THAT(Sequences(t.PlannedDue(kT0)), ElementsAre(2));
  EXPECT_THAT(t.order(), ElementsAre("j-1", "j-2", "j-3", "j-4", "j-5"));
  EXPECT_EQ(t.next_sequence(), 6);
  EXPECT_EQ(t.TakeSequence(), 6);
  EXPECT_EQ(t.next_sequence(), 7);
  ASSERT_NE(t.Find("j-3"), nullptr);
  EXPECT_EQ(t.Find("j-3")->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(t.Find("j-9"), nullptr);
  EXPECT_OK(t.CheckIndexes());
}

TEST(JobTable, AddReturnsTheStoredJobWhosePointerStaysValid) {
  JobTable t;
  v1::Job& first = t.Add(MakeJob(1, v1::JOB_STATE_PENDING));
  for (int64_t s = 2; s < 200; ++s) t.Add(MakeJob(s, v1::JOB_STATE_PENDING));
  EXPECT_EQ(&first, t.Find("j-1"));
  EXPECT_EQ(t.pending().at(1), &first);
}

TEST(JobTable, SetStateMovesTheJobBetweenIndexes) {
  JobTable t;
  v1::Job& j = t.Add(MakeJob(1, v1::JOB_STATE_PENDING));
  t.Add(MakeJob(2, v1::JOB_STATE_PENDING));

  t.SetState(j, v1::JOB_STATE_RUNNING);
  EXPECT_EQ(j.state(), v1::JOB_STATE_RUNNING);
  EXPECT_THAT(Sequences(t.pending()), ElementsAre(2));
  EXPECT_THAT(Sequences(t.running()), ElementsAre(1));
  EXPECT_THAT(Sequences(t.active()), ElementsAre(1, 2));
  EXPECT_OK(t.CheckIndexes());

  t.SetState(j, v1::JOB_STATE_SUCCEEDED);
  EXPECT_THAT(Sequences(t.running()), IsEmpty());
  EXPECT_THAT(Sequences(t.active()), ElementsAre(2));
  EXPECT_EQ(t.size(), 2u);  // finished jobs stay in the table
  EXPECT_EQ(t.Find("j-1")->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_OK(t.CheckIndexes());
}

TEST(JobTable, PlannedJobsLeaveTheStartIndexWhenTheyChangeState) {
  JobTable t;
  v1::Job& a = t.Add(Planned(1, kT0));
  v1::Job& b = t.Add(Planned(2, kT0));
  t.SetState(a, v1::JOB_STATE_PENDING);
  t.SetState(b, v1::JOB_STATE_CANCELLED);
  EXPECT_THAT(t.PlannedDue(kT0 + absl::Hours(1)), IsEmpty());
  EXPECT_THAT(Sequences(t.pending()), ElementsAre(1));
  EXPECT_THAT(Sequences(t.active()), ElementsAre(1));
  EXPECT_OK(t.CheckIndexes());

  // And back: a re-planned job is due at its new placement's start.
  *a.mutable_placement()->mutable_start() = ToProto(kT0 + absl::Hours(2));
  t.SetState(a, v1::JOB_STATE_PLANNED);
  EXPECT_THAT(t.PlannedDue(kT0 + absl::Hours(1)), IsEmpty());
  EXPECT_THAT(Sequences(t.PlannedDue(kT0 + absl::Hours(2))), ElementsAre(1));
  EXPECT_THAT(Sequences(t.pending()), IsEmpty());
  EXPECT_OK(t.CheckIndexes());
}

TEST(JobTable, IdForRequestIsPerTeamAndTheFirstAdmittedAcrossTeams) {
  JobTable t;
  t.Add(MakeJob(1, v1::JOB_STATE_PENDING, "ml", "req-1"));
  t.Add(MakeJob(2, v1::JOB_STATE_PENDING, "vision", "req-1"));
  t.Add(MakeJob(3, v1::JOB_STATE_SUCCEEDED, "vision", "req-2"));
  t.Add(MakeJob(4, v1::JOB_STATE_PENDING, "ml", ""));

  ASSERT_NE(t.IdForRequest("ml", "req-1"), nullptr);
  EXPECT_EQ(*t.IdForRequest("ml", "req-1"), "j-1");
  ASSERT_NE(t.IdForRequest("vision", "req-1"), nullptr);
  EXPECT_EQ(*t.IdForRequest("vision", "req-1"), "j-2");
  EXPECT_EQ(t.IdForRequest("audio", "req-1"), nullptr);
  EXPECT_EQ(t.IdForRequest("ml", "req-2"), nullptr);
  // Finished jobs keep their request id.
  ASSERT_NE(t.IdForRequest("vision", "req-2"), nullptr);
  EXPECT_EQ(*t.IdForRequest("vision", "req-2"), "j-3");

  ASSERT_NE(t.IdForRequest("req-1"), nullptr);
  EXPECT_EQ(*t.IdForRequest("req-1"), "j-1");  // first admitted wins
  ASSERT_NE(t.IdForRequest("req-2"), nullptr);
  EXPECT_EQ(*t.IdForRequest("req-2"), "j-3");
  EXPECT_EQ(t.IdForRequest("req-3"), nullptr);
  // Jobs without a request id are not indexed under "".
  EXPECT_EQ(t.IdForRequest("ml", ""), nullptr);
  EXPECT_EQ(t.IdForRequest(""), nullptr);
}

TEST(JobTable, PlannedDueIncludesStartsAtNowInSubmitOrder) {
  JobTable t;
  t.Add(Planned(1, kT0 + absl::Hours(2)));
  t.Add(Planned(3, kT0 + absl::Hours(1)));
  t.Add(Planned(5, kT0));
  t.Add(Planned(7, kT0 + absl::Hours(1)));

  EXPECT_THAT(t.PlannedDue(kT0 - absl::Nanoseconds(1)), IsEmpty());
  EXPECT_THAT(Sequences(t.PlannedDue(kT0)), ElementsAre(5));
  EXPECT_THAT(Sequences(t.PlannedDue(kT0 + absl::Hours(1) - absl::Seconds(1))), ElementsAre(5));
  // By start the order would be 5, 3, 7; the tick visits them in submit order.
  EXPECT_THAT(Sequences(t.PlannedDue(kT0 + absl::Hours(1))), ElementsAre(3, 5, 7));
  EXPECT_THAT(Sequences(t.PlannedDue(kT0 + absl::Hours(5))), ElementsAre(1, 3, 5, 7));
}

TEST(JobTable, PendingPastLatestStartIsStrictlyAfterDeadlineMinusRemaining) {
  JobTable t;
  const absl::Time deadline = kT0 + absl::Hours(10);
  // Latest starts: #2 at T0+6h, #4 at T0+4h, #6 at T0+6h; #8 has no deadline.
  t.Add(PendingWithDeadline(2, deadline, absl::Hours(4)));
  t.Add(PendingWithDeadline(4, deadline, absl::Hours(6)));
  t.Add(PendingWithDeadline(6, deadline, absl::Hours(4)));
  t.Add(MakeJob(8, v1::JOB_STATE_PENDING));

  EXPECT_THAT(t.PendingPastLatestStart(kT0 + absl::Hours(4)), IsEmpty());
  EXPECT_THAT(Sequences(t.PendingPastLatestStart(kT0 + absl::Hours(4) + absl::Seconds(1))),
              ElementsAre(4));
  EXPECT_THAT(Sequences(t.PendingPastLatestStart(kT0 + absl::Hours(6))), ElementsAre(4));
  EXPECT_THAT(Sequences(t.PendingPastLatestStart(kT0 + absl::Hours(6) + absl::Nanoseconds(1))),
              ElementsAre(2, 4, 6));
  EXPECT_THAT(Sequences(t.PendingPastLatestStart(kT0 + absl::Hours(1000))), ElementsAre(2, 4, 6));
  EXPECT_OK(t.CheckIndexes());
}

TEST(JobTable, PendingJobLeavesTheLateListWhenItStarts) {
  JobTable t;
  v1::Job& j = t.Add(PendingWithDeadline(1, kT0 + absl::Hours(2), absl::Hours(1)));
  ASSERT_THAT(Sequences(t.PendingPastLatestStart(kT0 + absl::Hours(3))), ElementsAre(1));
  t.SetState(j, v1::JOB_STATE_RUNNING);
  EXPECT_THAT(t.PendingPastLatestStart(kT0 + absl::Hours(3)), IsEmpty());
  EXPECT_OK(t.CheckIndexes());
}

TEST(JobTable, ListPagesInSubmitOrderWithTokens) {
  JobTable t;
  for (int64_t s = 1; s <= 5; ++s) t.Add(MakeJob(s, v1::JOB_STATE_PENDING));

  ListJobsQuery q;
  q.page_size = 2;
  ASSERT_OK_AND_ASSIGN(ListJobsPage p1, t.List(q));
  EXPECT_THAT(Sequences(p1.jobs), ElementsAre(1, 2));
  ASSERT_FALSE(p1.next_page_token.empty());

  q.page_token = p1.next_page_token;
  ASSERT_OK_AND_ASSIGN(ListJobsPage p2, t.List(q));
  EXPECT_THAT(Sequences(p2.jobs), ElementsAre(3, 4));
  ASSERT_FALSE(p2.next_page_token.empty());

  q.page_token = p2.next_page_token;
  ASSERT_OK_AND_ASSIGN(ListJobsPage p3, t.List(q));
  EXPECT_THAT(Sequences(p3.jobs), ElementsAre(5));
  EXPECT_EQ(p3.next_page_token, "");
}

TEST(JobTable, ListGivesNoTokenWhenTheLastPageIsExactlyFull) {
  JobTable t;
  for (int64_t s = 1; s <= 4; ++s) t.Add(MakeJob(s, v1::JOB_STATE_PENDING));
  ListJobsQuery q;
  q.page_size = 2;
  ASSERT_OK_AND_ASSIGN(ListJobsPage p1, t.List(q));
  q.page_token = p1.next_page_token;
  ASSERT_OK_AND_ASSIGN(ListJobsPage p2, t.List(q));
  EXPECT_THAT(Sequences(p2.jobs), ElementsAre(3, 4));
  EXPECT_EQ(p2.next_page_token, "");
}

TEST(JobTable, ListDefaultsAndCapsThePageSize) {
  JobTable t;
  for (int64_t s = 1; s <= 120; ++s) t.Add(MakeJob(s, v1::JOB_STATE_PENDING));
  ListJobsQuery q;
  q.page_size = 0;
  ASSERT_OK_AND_ASSIGN(ListJobsPage p, t.List(q));
  EXPECT_EQ(p.jobs.size(), 100u);
  EXPECT_FALSE(p.next_page_token.empty());

  q.page_size = 1000;
  ASSERT_OK_AND_ASSIGN(ListJobsPage all, t.List(q));
  EXPECT_EQ(all.jobs.size(), 120u);

  q.page_size = 1001;
  absl::StatusOr<ListJobsPage> too_big = t.List(q);
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(too_big.status().message()), HasSubstr("page_size"));
}

TEST(JobTable, ListFiltersByTeamAndStateAcrossPages) {
  JobTable t;
  t.Add(MakeJob(1, v1::JOB_STATE_PENDING, "ml"));
  t.Add(MakeJob(2, v1::JOB_STATE_RUNNING, "vision"));
  t.Add(MakeJob(3, v1::JOB_STATE_RUNNING, "ml"));
  t.Add(MakeJob(4, v1::JOB_STATE_SUCCEEDED, "ml"));
  t.Add(MakeJob(5, v1::JOB_STATE_PENDING, "vision"));
  t.Add(MakeJob(6, v1::JOB_STATE_PENDING, "ml"));

  ListJobsQuery team;
  team.team = "ml";
  ASSERT_OK_AND_ASSIGN(ListJobsPage ml, t.List(team));
  EXPECT_THAT(Sequences(ml.jobs), ElementsAre(1, 3, 4, 6));

  ListJobsQuery states;
  states.states = {v1::JOB_STATE_RUNNING, v1::JOB_STATE_SUCCEEDED};
  ASSERT_OK_AND_ASSIGN(ListJobsPage rs, t.List(states));
  EXPECT_THAT(Sequences(rs.jobs), ElementsAre(2, 3, 4));

  // Both filters, one per page: the tokens skip what does not match.
  ListJobsQuery both;
  both.team = "ml";
  both.states = {v1::JOB_STATE_PENDING};
  both.page_size = 1;
  std::vector<int64_t> seen;
  for (int pages = 0; pages < 10; ++pages) {
    ASSERT_OK_AND_ASSIGN(ListJobsPage p, t.List(both));
    ASSERT_LE(p.jobs.size(), 1u);
    for (const auto& j : p.jobs) seen.push_back(j.sequence());
    if (p.next_page_token.empty()) break;
    both.page_token = p.next_page_token;
  }
  EXPECT_THAT(seen, ElementsAre(1, 6));

  ListJobsQuery none;
  none.team = "audio";
  ASSERT_OK_AND_ASSIGN(ListJobsPage empty, t.List(none));
  EXPECT_THAT(empty.jobs, IsEmpty());
  EXPECT_EQ(empty.next_page_token, "");
}

TEST(JobTable, ListRejectsABadTokenNamingTheField) {
  JobTable t;
  t.Add(MakeJob(1, v1::JOB_STATE_PENDING));
  for (const std::string token : {"abc", "-1", "12x", "9999999999999999999999"}) {
    ListJobsQuery q;
    q.page_token = token;
    absl::StatusOr<ListJobsPage> p = t.List(q);
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << token;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("page_token")) << token;
  }
  // A token past the end is a valid, empty page.
  ListJobsQuery past;
  past.page_token = "100";
  ASSERT_OK_AND_ASSIGN(ListJobsPage p, t.List(past));
  EXPECT_THAT(p.jobs, IsEmpty());
}

TEST(JobTable, CountByStateCountsEveryJobByStateName) {
  JobTable t;
  t.Add(MakeJob(1, v1::JOB_STATE_PENDING));
  t.Add(MakeJob(2, v1::JOB_STATE_PENDING));
  v1::Job& r = t.Add(MakeJob(3, v1::JOB_STATE_RUNNING));
  t.Add(MakeJob(4, v1::JOB_STATE_SUCCEEDED));
  EXPECT_THAT(t.CountByState(),
              UnorderedElementsAre(Pair("PENDING", 2), Pair("RUNNING", 1), Pair("SUCCEEDED", 1)));
  t.SetState(r, v1::JOB_STATE_FAILED);
  EXPECT_THAT(t.CountByState(),
              UnorderedElementsAre(Pair("PENDING", 2), Pair("FAILED", 1), Pair("SUCCEEDED", 1)));
}

TEST(JobTable, CheckIndexesHoldsThroughALifecycleAndClearEmptiesEverything) {
  JobTable t;
  std::vector<v1::Job*> jobs;
  for (int64_t s = 1; s <= 6; ++s)
    jobs.push_back(&t.Add(PendingWithDeadline(s, kT0 + absl::Hours(s), absl::Hours(1))));
  t.Add(MakeJob(7, v1::JOB_STATE_RUNNING, "ml", "req-7"));
  ASSERT_OK(t.CheckIndexes());
  *jobs[0]->mutable_placement()->mutable_start() = ToProto(kT0);
  t.SetState(*jobs[0], v1::JOB_STATE_PLANNED);
  ASSERT_OK(t.CheckIndexes());
  t.SetState(*jobs[0], v1::JOB_STATE_RUNNING);
  ASSERT_OK(t.CheckIndexes());
  t.SetState(*jobs[0], v1::JOB_STATE_SUCCEEDED);
  t.SetState(*jobs[1], v1::JOB_STATE_CANCELLED);
  t.SetState(*jobs[2], v1::JOB_STATE_RUNNING);
  t.SetState(*jobs[3], v1::JOB_STATE_BUDGET_EXHAUSTED);
  EXPECT_OK(t.CheckIndexes());
  EXPECT_THAT(Sequences(t.active()), ElementsAre(3, 5, 6, 7));
  EXPECT_THAT(Sequences(t.running()), ElementsAre(3, 7));
  EXPECT_THAT(Sequences(t.pending()), ElementsAre(5, 6));

  t.Clear();
  EXPECT_EQ(t.size(), 0u);
  EXPECT_THAT(t.active(), IsEmpty());
  EXPECT_THAT(t.PendingPastLatestStart(kT0 + absl::Hours(100)), IsEmpty());
  EXPECT_EQ(t.IdForRequest("req-7"), nullptr);
  EXPECT_EQ(t.next_sequence(), 1);
  EXPECT_OK(t.CheckIndexes());
}

TEST(JobTable, CheckIndexesNoticesAStateChangedBehindItsBack) {
  JobTable t;
  v1::Job& j = t.Add(MakeJob(1, v1::JOB_STATE_RUNNING));
  j.set_state(v1::JOB_STATE_SUCCEEDED);  // not through SetState
  EXPECT_EQ(t.CheckIndexes().code(), absl::StatusCode::kInternal);
}

}  // namespace
}  // namespace greenlight::scheduler
