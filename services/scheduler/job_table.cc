#include "services/scheduler/job_table.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "services/scheduler/job_state.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

namespace {
std::string TeamRequestKey(const std::string& team, const std::string& rid) {
  return absl::StrCat(team, std::string(1, '\0'), rid);
}
bool BySequenceOrder(const v1::Job* a, const v1::Job* b) { return a->sequence() < b->sequence(); }
}  // namespace

void JobTable::Clear() { *this = JobTable(); }

JobTable::Job& JobTable::Add(Job job) {
  std::string id = job.id();
  next_sequence_ = std::max(next_sequence_, job.sequence() + 1);
  order_.push_back(id);
  const std::string& rid = job.spec().request_id();
  if (!rid.empty()) {
    by_team_request_[TeamRequestKey(job.spec().team(), rid)] = id;
    by_request_.try_emplace(rid, id);
  }
  Job& stored = jobs_.try_emplace(id, std::move(job)).first->second;
  if (!IsTerminal(stored.state())) {
    active_[stored.sequence()] = &stored;
    Index(stored);
  }
  return stored;
}

JobTable::Job* JobTable::Find(const std::string& id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const JobTable::Job* JobTable::Find(const std::string& id) const {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : &it->second;
}

const std::string* JobTable::IdForRequest(const std::string& team,
                                          const std::string& request_id) const {
  auto it = by_team_request_.find(TeamRequestKey(team, request_id));
  return it == by_team_request_.end() ? nullptr : &it->second;
}

const std::string* JobTable::IdForRequest(const std::string& request_id) const {
  auto it = by_request_.find(request_id);
  return it == by_request_.end() ? nullptr : &it->second;
}

void JobTable::SetState(Job& job, v1::JobState to) {
  Unindex(job);
  job.set_state(to);
  if (IsTerminal(to)) {
    active_.erase(job.sequence());
  } else {
    active_[job.sequence()] = &job;
    Index(job);
  }
}

void JobTable::Index(Job& job) {
  const int64_t seq = job.sequence();
  switch (job.state()) {
    case v1::JOB_STATE_STARTING:  // holds its nodes like a running job
    case v1::JOB_STATE_RUNNING:
      running_[seq] = &job;
      break;
    case v1::JOB_STATE_PLANNED: {
      // The placement of a planned job does not change until it starts.
      absl::Time start = FromProto(job.placement().start());
      planned_by_start_.insert({start, seq});
      index_key_[seq] = start;
      break;
    }
    case v1::JOB_STATE_PENDING:
      pending_[seq] = &job;
      if (job.spec().has_deadline()) {
        absl::Time latest = FromProto(job.spec().deadline()) - FromProto(job.remaining());
        pending_by_latest_start_.insert({latest, seq});
        index_key_[seq] = latest;
      }
      break;
    default:
      break;
  }
}

void JobTable::Unindex(const Job& job) {
  const int64_t seq = job.sequence();
  auto key = index_key_.find(seq);
  switch (job.state()) {
    case v1::JOB_STATE_STARTING:
    case v1::JOB_STATE_RUNNING:
      running_.erase(seq);
      break;
    case v1::JOB_STATE_PLANNED:
      if (key != index_key_.end()) planned_by_start_.erase({key->second, seq});
      break;
    case v1::JOB_STATE_PENDING:
      pending_.erase(seq);
      if (key != index_key_.end()) pending_by_latest_start_.erase({key->second, seq});
      break;
    default:
      break;
  }
  if (key != index_key_.end()) index_key_.erase(key);
}

std::vector<JobTable::Job*> JobTable::PlannedDue(absl::Time now) const {
  std::vector<Job*> due;
  for (auto it = planned_by_start_.begin(); it != planned_by_start_.end() && it->first <= now; ++it)
    due.push_back(active_.at(it->second));
  std::sort(due.begin(), due.end(), BySequenceOrder);
  return due;
}

std::vector<JobTable::Job*> JobTable::PendingPastLatestStart(absl::Time now) const {
  std::vector<Job*> late;
  for (auto it = pending_by_latest_start_.begin();
       it != pending_by_latest_start_.end() && it->first < now; ++it)
    late.push_back(active_.at(it->second));
  std::sort(late.begin(), late.end(), BySequenceOrder);
  return late;
}

absl::StatusOr<ListJobsPage> JobTable::List(const ListJobsQuery& q) const {
  int size = q.page_size <= 0 ? 100 : q.page_size;
  if (size > 1000) return absl::InvalidArgumentError("page_size: must be at most 1000");
  int64_t after = 0;
  if (!q.page_token.empty()) {
    if (!absl::SimpleAtoi(q.page_token, &after) || after < 0)
      return absl::InvalidArgumentError("page_token: not a token returned by ListJobs");
  }
  ListJobsPage page;
  // order_[i] has sequence >= i + 1; find the first with sequence > after.
  auto it = std::partition_point(order_.begin(), order_.end(), [&](const std::string& id) {
    return jobs_.at(id).sequence() <= after;
  });
  for (; it != order_.end(); ++it) {
    const Job& j = jobs_.at(*it);
    if (!q.team.empty() && j.spec().team() != q.team) continue;
    if (!q.states.empty() &&
        std::find(q.states.begin(), q.states.end(), j.state()) == q.states.end())
      continue;
    if (static_cast<int>(page.jobs.size()) == size) {
      page.next_page_token = absl::StrCat(page.jobs.back().sequence());
      break;
    }
    page.jobs.push_back(j);
  }
  return page;
}

std::map<std::string, int> JobTable::CountByState() const {
  std::map<std::string, int> out;
  for (const auto& [_, j] : jobs_) out[StateName(j.state())]++;
  return out;
}

absl::Status JobTable::CheckIndexes() const {
  size_t planned = 0, with_deadline = 0;
  for (const auto& [seq, j] : active_) {
    if (IsTerminal(j->state()))
      return absl::InternalError(absl::StrCat("finished job in the unfinished set: ", j->id()));
    const BySequence* index = nullptr;
    if (j->state() == v1::JOB_STATE_RUNNING || j->state() == v1::JOB_STATE_STARTING)
      index = &running_;
    if (j->state() == v1::JOB_STATE_PENDING) index = &pending_;
    if (j->state() == v1::JOB_STATE_PLANNED) ++planned;
    if (j->state() == v1::JOB_STATE_PENDING && j->spec().has_deadline()) ++with_deadline;
    if (index && (!index->contains(seq) || index->at(seq) != j))
      return absl::InternalError(absl::StrCat("job missing from its state index: ", j->id()));
  }
  size_t unfinished = 0;
  for (const auto& [_, j] : jobs_) unfinished += !IsTerminal(j.state());
  if (unfinished != active_.size() ||
      running_.size() + pending_.size() + planned != active_.size() ||
      planned_by_start_.size() != planned || pending_by_latest_start_.size() != with_deadline ||
      index_key_.size() != planned + with_deadline)
    return absl::InternalError("state indexes out of step with the jobs");
  return absl::OkStatus();
}

}  // namespace greenlight::scheduler
