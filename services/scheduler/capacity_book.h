// The capacity-calendar book (placement/capacity_calendar.h): each PLANNED
// job books whole nodes of its pool for its run window(s). Quotes plan
// around the bookings (the shared BookingTable) and allocations leave booked
// nodes free (the per-pool deltas, kept booking by booking in O(log b)).
//
// Single-threaded: the core's writer changes it under the core's state lock.
#pragma once

#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "services/placement/capacity_calendar.h"

namespace greenlight::scheduler {

class CapacityBook {
 public:
  void Clear();
  // Books `windows` of pool `pool` for the job with this sequence number.
  void Book(int64_t sequence, int pool, placement::PoolBookings windows);
  // Drops the job's booking, if any.
  void Unbook(int64_t sequence);
  bool Holds(int64_t sequence) const { return bookings_.contains(sequence); }
  size_t size() const { return bookings_.size(); }

  // The most nodes of `pool` booked at any instant of [from, to).
  int MaxBooked(int pool, absl::Time from, absl::Time to) const;
  bool HasBookings(int pool) const { return deltas_.contains(pool); }

  // The table snapshots share: the profiles of pools whose bookings changed
  // are rebuilt (once per batch; the writer's own checks read the deltas).
  void RebuildView();
  bool view_stale() const { return !dirty_.empty(); }
  std::shared_ptr<const placement::BookingTable> view() const { return view_; }

  // The per-pool deltas are exactly the sum of the bookings' windows, and
  // `is_planned(sequence)` holds for every booked job.
  template <typename IsPlanned>
  absl::Status Check(IsPlanned is_planned) const {
    for (const auto& [seq, b] : bookings_)
      if (!is_planned(seq)) return NotPlanned(seq);
    return CheckDeltas();
  }

 private:
  struct JobBooking {
    int pool = -1;
    placement::PoolBookings windows;
  };
  static absl::Status NotPlanned(int64_t sequence);
  absl::Status CheckDeltas() const;

  absl::flat_hash_map<int64_t, JobBooking> bookings_;  // by job sequence
  absl::flat_hash_map<int, placement::BookingDeltas> deltas_;
  absl::flat_hash_map<int, std::shared_ptr<const placement::BookedProfile>> profiles_;
  absl::flat_hash_set<int> dirty_;  // pools to re-profile
  std::shared_ptr<const placement::BookingTable> view_;
};

}  // namespace greenlight::scheduler
