// The capacity calendar: the whole nodes that PLANNED jobs hold in the future.
//
// A job planned to start later books its nodes for its run window (each slot
// of a split run). Any other job may use a pool's free nodes only where, at
// every instant of its own window, its nodes plus the booked ones fit in the
// nodes free now. Running jobs count as holding their nodes for ever (the
// free count is today's): conservative, capacity they free later is found by
// the next placement, never promised in advance. So two jobs time-shifted
// into the same clean window cannot both count on the same nodes.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace greenlight::placement {

struct Booking {
  absl::Time start;
  absl::Time end;  // exclusive
  int nodes = 0;   // whole nodes (a planned sub-node job books one)
};

// The bookings of one pool, in any order.
using PoolBookings = std::vector<Booking>;

// Booked whole nodes of one pool as deltas: +nodes at each window's start,
// -nodes at its end (zero entries removed). Kept up to date booking by booking
// (O(log b)) by the scheduler.
using BookingDeltas = std::map<int64_t, int>;
void AddBooking(const Booking& b, int sign, BookingDeltas* deltas);
// The most nodes booked at any instant of [a_ns, b_ns). O(deltas).
int MaxBooked(const BookingDeltas& deltas, int64_t a_ns, int64_t b_ns);

// [start_ns, end_ns) in nanoseconds since the Unix epoch (the planner's unit).
struct NsInterval {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};

// The whole nodes booked in one pool over time, as a step function: built
// once per change of the pool's bookings and shared by every snapshot. The
// blocked intervals for each threshold are worked out once, on first use.
class BookedProfile {
 public:
  explicit BookedProfile(const PoolBookings& bookings);
  explicit BookedProfile(const BookingDeltas& deltas);
  ~BookedProfile();
  BookedProfile(const BookedProfile&) = delete;
  BookedProfile& operator=(const BookedProfile&) = delete;
  // Sorted (t_ns, whole nodes booked from t_ns on); 0 before the first step.
  const std::vector<std::pair<int64_t, int>>& steps() const { return steps_; }
  bool empty() const { return steps_.empty(); }
  // BlockedIntervals(*this, free_nodes, nodes), cached: thread-safe, the
  // reference lives as long as the profile.
  const std::vector<NsInterval>& Blocked(int free_nodes, int nodes) const;

 private:
  void FromDeltas(const BookingDeltas& deltas);
  std::vector<std::pair<int64_t, int>> steps_;
  int max_booked_ = 0;
  // [allowed booked nodes] -> blocked intervals, filled on first use without a
  // lock (every decision of every submit thread reads them; a mutex here
  // made them queue): a race computes twice and keeps one.
  mutable std::unique_ptr<std::atomic<const std::vector<NsInterval>*>[]> blocked_;
};

// Pool index (into Snapshot::Pools()) -> its booked profile; pools without
// bookings are absent. Profiles are shared, so copying the table is cheap.
using BookingTable = absl::flat_hash_map<int, std::shared_ptr<const BookedProfile>>;

// The instants at which fewer than `nodes` whole nodes are left once the
// booked ones are taken from `free_nodes`: sorted, disjoint and merged.
// Everything is blocked when `nodes` > `free_nodes`.
std::vector<NsInterval> BlockedIntervals(const BookedProfile& booked, int free_nodes, int nodes);

// True when [a_ns, b_ns) meets a blocked interval. O(log n).
bool Overlaps(const std::vector<NsInterval>& blocked, int64_t a_ns, int64_t b_ns);

// The first t >= from_ns with [t, t + run_ns) clear of every blocked interval
// (INT64_MAX when none: the last interval is open-ended).
int64_t FirstClearStart(const std::vector<NsInterval>& blocked, int64_t from_ns, int64_t run_ns);

}  // namespace greenlight::placement
