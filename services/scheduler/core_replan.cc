// Re-planning of waiting jobs when capacity frees up, a quota is raised or
// pools change: teams take turns (fair_turns.h); a job starts in its own
// pool, or moves to another pool within its reservation.
#include <algorithm>

#include "common/proto_time.h"
#include "services/scheduler/core.h"
#include "services/scheduler/fair_turns.h"
#include "services/scheduler/legacy_text.h"
#include "services/scheduler/proto_conversion.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;
using greenlight::v1::Job;

void SchedulerCore::ReplanWaiting(Txn& txn, absl::Time now) {
  // Only freed capacity, a raised quota or new pools can let a waiting job run.
  if (!writer_.capacity_changed) return;
  writer_.capacity_changed = false;
  FairTurns turns(jobs_.pending());
  // Moving a job to another pool needs a placement run; bound them per tick so
  // a long queue cannot stall the writer (the rest wait for the next tick).
  int replans_left = 16;
  bool retry_later = false;
  auto running_gpus = [this](const std::string& team) { return nodes_.RunningGpus(team); };
  for (std::vector<Job*> round = turns.NextRound(running_gpus); !round.empty();
       round = turns.NextRound(running_gpus)) {
    for (Job* jp : round) {
      Job& j = *jp;
      if (!QuotaAllowsJob(j)) {
        if (j.pending() != v1::PENDING_REASON_QUOTA) {
          SetPending(j, v1::PENDING_REASON_QUOTA);
          txn.dirty.insert(j.id());
        }
        continue;
      }
      // Same pool first: the reservation was made for it.
      if (TryAllocate(j, now)) {
        StartJob(txn, j, now);
        continue;
      }
      if (j.pending() != v1::PENDING_REASON_CAPACITY) {  // quota allows it now; nodes do not
        SetPending(j, v1::PENDING_REASON_CAPACITY);
        txn.dirty.insert(j.id());
      }
      if (replans_left <= 0) {
        retry_later = true;
        continue;
      }
      --replans_left;
      if (MoveToAnotherPool(j, now)) StartJob(txn, j, now);
    }
  }
  if (retry_later) writer_.capacity_changed = true;
}

bool SchedulerCore::MoveToAnotherPool(Job& j, absl::Time now) {
  placement::JobRequest req = ToRequestLocked(j.spec());
  calendar_.RebuildView();  // this tick's changes too
  placement::Snapshot snap = BuildSnapshot(j.spec().team(), false, /*fresh=*/true);
  req.not_before = now;
  req.top_k = 0;
  // Within the job's reservation: the team budget was checked at admission.
  req.max_cost_micros = req.max_cost_micros > 0
                            ? std::min<int64_t>(req.max_cost_micros, j.reserved_cost_micros())
                            : j.reserved_cost_micros();
  snap.team.cost_headroom_micros = -1;
  snap.team.carbon_headroom_mg = -1;
  placement::Decision d = engine_.Place(req, snap);
  if (!d.feasible || d.chosen.start > now || d.chosen.carbon_mg > j.reserved_carbon_mg())
    return false;
  v1::Placement old = j.placement();
  google::protobuf::Duration old_remaining = j.remaining();
  *j.mutable_placement() = ToPlacement(d.chosen, snap);
  absl::Duration runtime =
      d.chosen.runtime > absl::ZeroDuration() ? d.chosen.runtime : d.chosen.end - d.chosen.start;
  *j.mutable_remaining() = ToProtoDuration(runtime);
  if (TryAllocate(j, now)) return true;
  *j.mutable_placement() = old;
  *j.mutable_remaining() = old_remaining;
  return false;
}

}  // namespace greenlight::scheduler
