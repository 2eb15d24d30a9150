// Cross-team fairness for re-planning waiting jobs: each team's queue by
// priority, then submit order; the teams take turns, one job each per round,
// and in each round the team with the fewest running GPUs goes first, then
// the one whose job is oldest. So when capacity frees up one job at a time,
// one team's backlog cannot starve another (in name order the first team
// took every turn).
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "greenlight/v1/types.pb.h"
#include "services/scheduler/job_table.h"

namespace greenlight::scheduler {

class FairTurns {
 public:
  explicit FairTurns(const JobTable::BySequence& pending);
  // The next round's jobs in turn order; empty when every queue is done.
  // `running_gpus(team)` is read at the start of the round.
  std::vector<greenlight::v1::Job*> NextRound(
      const std::function<int(const std::string&)>& running_gpus);

 private:
  std::map<std::string, std::vector<greenlight::v1::Job*>> by_team_;
  size_t round_ = 0;
};

}  // namespace greenlight::scheduler
