// The job table: every job by id, the request-id index (keyed, both per team
// and across teams), and the unfinished jobs by state, so that a tick visits
// only what can change (running jobs, planned jobs whose start came, waiting
// jobs that can no longer meet their deadline), not every queued job.
//
// Single-threaded: the core's writer changes it under the core's state lock.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::scheduler {

struct ListJobsQuery {
  std::string team;
  std::vector<greenlight::v1::JobState> states;
  int page_size = 100;
  std::string page_token;
};

struct ListJobsPage {
  std::vector<greenlight::v1::Job> jobs;
  std::string next_page_token;
};

class JobTable {
 public:
  using Job = greenlight::v1::Job;
  using BySequence = std::map<int64_t, Job*>;

  void Clear();
  // Adds a job (admitted or loaded) and indexes it by its current state.
  // Its id and (team, request_id) must be new.
  Job& Add(Job job);
  Job* Find(const std::string& id);
  const Job* Find(const std::string& id) const;
  // The job admitted with this request id by this team, or nullptr.
  const std::string* IdForRequest(const std::string& team, const std::string& request_id) const;
  // The first job admitted with this request id by any team, or nullptr.
  const std::string* IdForRequest(const std::string& request_id) const;

  // Moves the job to `to` and keeps every index in step; a finished job
  // leaves the unfinished set. Legality is the caller's (CheckTransition).
  void SetState(Job& job, greenlight::v1::JobState to);

  // Unfinished jobs, those that hold nodes (RUNNING or STARTING) and those
  // waiting, by sequence (submit order).
  const BySequence& active() const { return active_; }
  const BySequence& running() const { return running_; }
  const BySequence& pending() const { return pending_; }
  // PLANNED jobs whose start is at or before `now`, in submit order.
  std::vector<Job*> PlannedDue(absl::Time now) const;
  // PENDING jobs whose latest start (deadline - remaining) is before `now`.
  std::vector<Job*> PendingPastLatestStart(absl::Time now) const;

  absl::StatusOr<ListJobsPage> List(const ListJobsQuery& q) const;
  std::map<std::string, int> CountByState() const;
  size_t size() const { return jobs_.size(); }
  // Every job in sequence order.
  const std::vector<std::string>& order() const { return order_; }

  int64_t next_sequence() const { return next_sequence_; }
  int64_t TakeSequence() { return next_sequence_++; }

  // The state indexes hold exactly the unfinished jobs of their state
  // (invariant checks).
  absl::Status CheckIndexes() const;

 private:
  void Index(Job& job);
  void Unindex(const Job& job);

  // node_hash_map: Job pointers stay valid while other jobs are added.
  absl::node_hash_map<std::string, Job> jobs_;
  std::vector<std::string> order_;                                 // ids by sequence
  absl::flat_hash_map<std::string, std::string> by_team_request_;  // team\0rid -> id
  absl::flat_hash_map<std::string, std::string> by_request_;       // rid -> first id
  BySequence active_;
  BySequence running_;
  BySequence pending_;
  std::set<std::pair<absl::Time, int64_t>> planned_by_start_;
  std::set<std::pair<absl::Time, int64_t>> pending_by_latest_start_;
  absl::flat_hash_map<int64_t, absl::Time> index_key_;  // key in those sets
  int64_t next_sequence_ = 1;
};

}  // namespace greenlight::scheduler
