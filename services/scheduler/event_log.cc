#include "services/scheduler/event_log.h"

#include <algorithm>

#include "common/status_macros.h"
#include "services/scheduler/legacy_text.h"

namespace greenlight::scheduler {

using greenlight::v1::JobEvent;

void EventLog::Reset(int64_t revision) {
  absl::MutexLock l(&mu_);
  ring_.clear();
  revision_ = revision;
}

void EventLog::Publish(std::vector<JobEvent> events) {
  if (events.empty()) return;
  absl::MutexLock l(&mu_);
  for (auto& e : events) ring_.push_back(std::move(e));
  while (static_cast<int>(ring_.size()) > ring_size_) ring_.pop_front();
  revision_ = ring_.back().revision();
  cv_.SignalAll();
}

absl::StatusOr<std::vector<JobEvent>> EventLog::After(int64_t after, int limit,
                                                      const std::string& team,
                                                      const std::string& job_id,
                                                      int64_t* scanned_to) const {
  std::vector<JobEvent> out;
  auto match = [&](const JobEvent& e) {
    return (team.empty() || e.team() == team) && (job_id.empty() || e.job_id() == job_id);
  };
  int64_t cursor = after;
  {
    absl::MutexLock l(&mu_);
    if (!ring_.empty() && ring_.front().revision() <= cursor + 1) {
      auto it = std::lower_bound(ring_.begin(), ring_.end(), cursor + 1,
                                 [](const JobEvent& e, int64_t r) { return e.revision() < r; });
      for (; it != ring_.end() && static_cast<int>(out.size()) < limit; ++it) {
        cursor = it->revision();
        if (match(*it)) out.push_back(*it);
      }
      *scanned_to = cursor;
      return out;
    }
  }
  // Older than the ring: read the store (committed events only).
  int64_t head = revision_.load();
  bool done = false;
  while (!done && cursor < head && static_cast<int>(out.size()) < limit) {
    ASSIGN_OR_RETURN(auto events, store_->EventsAfter(cursor, 1000));
    if (events.empty()) break;
    for (auto& e : events) {
      if (e.revision() > head || static_cast<int>(out.size()) >= limit) {
        done = true;
        break;
      }
      cursor = e.revision();
      UpgradeLegacy(e);
      if (match(e)) out.push_back(std::move(e));
    }
  }
  *scanned_to = cursor;
  return out;
}

int64_t EventLog::WaitFor(int64_t after, absl::Time deadline) const {
  absl::MutexLock l(&mu_);
  while (revision_.load() <= after) {
    if (cv_.WaitWithDeadline(&mu_, deadline)) break;
  }
  return revision_.load();
}

}  // namespace greenlight::scheduler
