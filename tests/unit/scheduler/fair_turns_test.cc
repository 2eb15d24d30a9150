// FairTurns: within a team by priority then submit order; across teams one
// job each per round, the team with the fewest running GPUs first.
#include "services/scheduler/fair_turns.h"

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Pending jobs that outlive the BySequence index pointing at them.
class Pending {
 public:
  void Add(int64_t sequence, const std::string& team, int priority = 0) {
    v1::Job& j = jobs_.emplace_back();
    j.set_id("j-" + std::to_string(sequence));
    j.set_sequence(sequence);
    j.set_state(v1::JOB_STATE_PENDING);
    j.mutable_spec()->set_team(team);
    j.mutable_spec()->set_priority(priority);
    index_[sequence] = &j;
  }
  const JobTable::BySequence& index() const { return index_; }

 private:
  std::deque<v1::Job> jobs_;
  JobTable::BySequence index_;
};

std::vector<int64_t> Sequences(const std::vector<v1::Job*>& jobs) {
  std::vector<int64_t> out;
  for (const v1::Job* j : jobs) out.push_back(j->sequence());
  return out;
}

auto NoneRunning() {
  return [](const std::string&) { return 0; };
}

TEST(FairTurns, WithinATeamHigherPriorityFirstThenSubmitOrder) {
  Pending p;
  p.Add(1, "ml", 0);
  p.Add(2, "ml", 5);
  p.Add(3, "ml", -3);
  p.Add(4, "ml", 5);
  p.Add(5, "ml", 0);
  FairTurns turns(p.index());
  std::vector<int64_t> order;
  for (int round = 0; round < 10; ++round) {
    std::vector<v1::Job*> r = turns.NextRound(NoneRunning());
    if (r.empty()) break;
    ASSERT_EQ(r.size(), 1u);  // one team: one job per round
    order.push_back(r[0]->sequence());
  }
  EXPECT_THAT(order, ElementsAre(2, 4, 1, 5, 3));
}

TEST(FairTurns, TeamsTakeOneTurnEachPerRound) {
  Pending p;
  for (int64_t s = 1; s <= 4; ++s) p.Add(s, "ml");  // ml's backlog came first
  p.Add(5, "vision");
  p.Add(6, "vision");
  p.Add(7, "audio");
  FairTurns turns(p.index());
  // Equal running GPUs: the team whose job is oldest goes first.
  EXPECT_THAT(Sequences(turns.NextRound(NoneRunning())), ElementsAre(1, 5, 7));
  EXPECT_THAT(Sequences(turns.NextRound(NoneRunning())), ElementsAre(2, 6));
  EXPECT_THAT(Sequences(turns.NextRound(NoneRunning())), ElementsAre(3));
  EXPECT_THAT(Sequences(turns.NextRound(NoneRunning())), ElementsAre(4));
  EXPECT_THAT(turns.NextRound(NoneRunning()), IsEmpty());
  EXPECT_THAT(turns.NextRound(NoneRunning()), IsEmpty());
}

TEST(FairTurns, TheTeamWithFewerRunningGpusGoesFirstInEachRound) {
  Pending p;
  p.Add(1, "ml");
  p.Add(2, "ml");
  p.Add(3, "vision");
  p.Add(4, "vision");
  p.Add(5, "audio");
  p.Add(6, "audio");
  std::map<std::string, int> running = {{"ml", 16}, {"vision", 0}, {"audio", 8}};
  int asked = 0;
  auto gpus = [&](const std::string& team) {
    ++asked;
    return running.at(team);
  };
  FairTurns turns(p.index());
  EXPECT_THAT(Sequences(turns.NextRound(gpus)), ElementsAre(3, 5, 1));
  EXPECT_EQ(asked, 3);  // once per team at the start of the round
  // vision's job started (running GPUs read afresh each round).
  running["vision"] = 32;
  EXPECT_THAT(Sequences(turns.NextRound(gpus)), ElementsAre(6, 2, 4));
  EXPECT_THAT(turns.NextRound(gpus), IsEmpty());
}

TEST(FairTurns, EmptyPendingGivesNoRounds) {
  JobTable::BySequence none;
  FairTurns turns(none);
  EXPECT_THAT(turns.NextRound(NoneRunning()), IsEmpty());
}

}  // namespace
}  // namespace greenlight::scheduler
