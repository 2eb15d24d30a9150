// The event log for watchers: the most recent committed events in a ring,
// older ones read back from the store. Only committed events are published,
// so a watcher never sees an event that a failed commit takes back.
//
// Thread-safe: the writer publishes, any number of watchers read.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"
#include "services/store/store.h"

namespace greenlight::scheduler {

class EventLog {
 public:
  EventLog(store::Store* store, int ring_size) : store_(store), ring_size_(ring_size) {}

  // Forgets the ring; the store holds everything up to `revision`.
  void Reset(int64_t revision);
  // Publishes committed events (ascending revisions) and wakes the watchers.
  void Publish(std::vector<greenlight::v1::JobEvent> events);

  // Committed events with revision > after that match the filters (empty =
  // any), at most `limit`. *scanned_to is the last revision examined: resume
  // from it.
  absl::StatusOr<std::vector<greenlight::v1::JobEvent>> After(int64_t after, int limit,
                                                              const std::string& team,
                                                              const std::string& job_id,
                                                              int64_t* scanned_to) const;
  // Blocks until revision > after or `deadline`; returns the current revision.
  int64_t WaitFor(int64_t after, absl::Time deadline) const;
  int64_t revision() const { return revision_.load(); }

 private:
  store::Store* const store_;
  const int ring_size_;
  mutable absl::Mutex mu_;
  mutable absl::CondVar cv_;
  std::deque<greenlight::v1::JobEvent> ring_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> revision_{0};
};

}  // namespace greenlight::scheduler
