#include "services/placement/capacity_calendar.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace greenlight::placement {
namespace {

constexpr int64_t kMinNs = std::numeric_limits<int64_t>::min();
constexpr int64_t kMaxNs = std::numeric_limits<int64_t>::max();

int64_t ToNs(absl::Time t) {
  if (t == absl::InfinitePast()) return kMinNs;
  if (t == absl::InfiniteFuture()) return kMaxNs;
  return absl::ToUnixNanos(t);
}

}  // namespace

BookedProfile::BookedProfile(const PoolBookings& bookings) {
  // Sweep: +nodes at each start, -nodes at each end; all events of one
  // instant apply together, so back-to-back windows [a, b) and [b, c) do not
  // add up.
  std::vector<std::pair<int64_t, int>> events;
  events.reserve(bookings.size() * 2);
  for (const Booking& b : bookings) {
    int64_t s = ToNs(b.start), e = ToNs(b.end);
    if (b.nodes <= 0 || e <= s) continue;
    events.push_back({s, b.nodes});
    events.push_back({e, -b.nodes});
  }
  std::sort(events.begin(), events.end());
  int booked = 0;
  for (size_t i = 0; i < events.size();) {
    const int64_t t = events[i].first;
    for (; i < events.size() && events[i].first == t; ++i) booked += events[i].second;
    if (steps_.empty() ? booked != 0 : booked != steps_.back().second)
      steps_.push_back({t, booked});
  }
}

std::vector<NsInterval> BlockedIntervals(const BookedProfile& booked, int free_nodes, int nodes) {
  std::vector<NsInterval> out;
  const int allowed = free_nodes - nodes;  // booked nodes that still leave room
  if (allowed < 0) {
    out.push_back({kMinNs, kMaxNs});
    return out;
  }
  bool blocked = false;
  for (const auto& [t, n] : booked.steps()) {
    const bool now_blocked = n > allowed;
    if (!blocked && now_blocked) {
      out.push_back({t, kMaxNs});
    } else if (blocked && !now_blocked) {
      out.back().end_ns = t;
    }
    blocked = now_blocked;
  }
  return out;
}

bool Overlaps(const std::vector<NsInterval>& blocked, int64_t a_ns, int64_t b_ns) {
  if (blocked.empty() || b_ns <= a_ns) return false;
  // The first interval ending after a.
  auto it = std::upper_bound(blocked.begin(), blocked.end(), a_ns,
                             [](int64_t t, const NsInterval& iv) { return t < iv.end_ns; });
  return it != blocked.end() && it->start_ns < b_ns;
}

int64_t FirstClearStart(const std::vector<NsInterval>& blocked, int64_t from_ns, int64_t run_ns) {
  int64_t t = from_ns;
  auto it = std::upper_bound(blocked.begin(), blocked.end(), t,
                             [](int64_t x, const NsInterval& iv) { return x < iv.end_ns; });
  for (; it != blocked.end(); ++it) {
    // [t, t + run) ends at or before this interval: clear.
    if (t > kMaxNs - run_ns || it->start_ns >= t + run_ns) break;
    if (it->end_ns == kMaxNs) return kMaxNs;
    t = std::max(t, it->end_ns);
  }
  if (t > kMaxNs - run_ns) return kMaxNs;
  return t;
}

}  // namespace greenlight::placement
