#include "services/scheduler/fair_turns.h"

#include <algorithm>
#include <utility>

namespace greenlight::scheduler {

using greenlight::v1::Job;

FairTurns::FairTurns(const JobTable::BySequence& pending) {
  for (const auto& [_, j] : pending) by_team_[j->spec().team()].push_back(j);
  for (auto& [_, v] : by_team_) {
    std::sort(v.begin(), v.end(), [](const Job* a, const Job* b) {
      if (a->spec().priority() != b->spec().priority())
        return a->spec().priority() > b->spec().priority();
      return a->sequence() < b->sequence();
    });
  }
}

std::vector<Job*> FairTurns::NextRound(const std::function<int(const std::string&)>& running_gpus) {
  std::vector<std::pair<int, Job*>> turns;  // (running GPUs of the team, its job this round)
  for (const auto& [team, queue] : by_team_)
    if (round_ < queue.size()) turns.push_back({running_gpus(team), queue[round_]});
  std::sort(turns.begin(), turns.end(), [](const auto& a, const auto& b) {
    if (a.first != b.first) return a.first < b.first;
    return a.second->sequence() < b.second->sequence();
  });
  ++round_;
  std::vector<Job*> out;
  out.reserve(turns.size());
  for (const auto& [_, j] : turns) out.push_back(j);
  return out;
}

}  // namespace greenlight::scheduler
