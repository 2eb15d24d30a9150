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

#include <cstdint>
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
// Pool index (into Snapshot::Pools()) -> its bookings; pools without any are absent.
using BookingTable = absl::flat_hash_map<int, PoolBookings>;

// [start_ns, end_ns) in nanoseconds since the Unix epoch (the planner's unit).
struct NsInterval {
  int64_t start_ns = 0;
  int64_t end_ns = 0;
};

// The instants at which fewer than `nodes` whole nodes are left once the
// bookings are taken from `free_nodes`: sorted, disjoint and merged. Everything
// is blocked when `nodes` > `free_nodes`. O(b log b) for b bookings.
std::vector<NsInterval> BlockedIntervals(const PoolBookings& bookings, int free_nodes, int nodes);

// True when [a_ns, b_ns) meets a blocked interval. O(log n).
bool Overlaps(const std::vector<NsInterval>& blocked, int64_t a_ns, int64_t b_ns);

// The first t >= from_ns with [t, t + run_ns) clear of every blocked interval
// (INT64_MAX when none: the last interval is open-ended).
int64_t FirstClearStart(const std::vector<NsInterval>& blocked, int64_t from_ns, int64_t run_ns);

}  // namespace greenlight::placement
