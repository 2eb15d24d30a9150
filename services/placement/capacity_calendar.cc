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

void AddBooking(const Booking& b, int sign, BookingDeltas* deltas) {
  const int64_t s = ToNs(b.start), e = ToNs(b.end);
  if (b.nodes <= 0 || e <= s) return;
  for (auto [t, d] : {std::pair<int64_t, int>{s, sign * b.nodes}, {e, -sign * b.nodes}}) {
    auto it = deltas->try_emplace(t, 0).first;
    it->second += d;
    if (it->second == 0) deltas->erase(it);
  }
}

int MaxBooked(const BookingDeltas& deltas, int64_t a_ns, int64_t b_ns) {
  int booked = 0;
  auto it = deltas.begin();
  for (; it != deltas.end() && it->first <= a_ns; ++it) booked += it->second;  // the level at a
  int most = booked;
  for (; it != deltas.end() && it->first < b_ns; ++it) {
    booked += it->second;
    most = std::max(most, booked);
  }
  return most;
}

BookedProfile::BookedProfile(const PoolBookings& bookings) {
  BookingDeltas deltas;
  for (const Booking& b : bookings) AddBooking(b, +1, &deltas);
  FromDeltas(deltas);
}

BookedProfile::BookedProfile(const BookingDeltas& deltas) { FromDeltas(deltas); }

BookedProfile::~BookedProfile() {
  for (int i = 0; i < max_booked_; ++i) delete blocked_[i].load(std::memory_order_acquire);
}

void BookedProfile::FromDeltas(const BookingDeltas& deltas) {
  // All deltas of one instant are one map entry, so back-to-back windows
  // [a, b) and [b, c) do not add up.
  int booked = 0;
  steps_.reserve(deltas.size());
  for (const auto& [t, d] : deltas) {
    booked += d;
    steps_.push_back({t, booked});
    max_booked_ = std::max(max_booked_, booked);
  }
  blocked_ = std::make_unique<std::atomic<const std::vector<NsInterval>*>[]>(max_booked_);
  for (int i = 0; i < max_booked_; ++i) blocked_[i].store(nullptr, std::memory_order_relaxed);
}

const std::vector<NsInterval>& BookedProfile::Blocked(int free_nodes, int nodes) const {
  static const std::vector<NsInterval>* const kNone = new std::vector<NsInterval>();
  static const std::vector<NsInterval>* const kAll = new std::vector<NsInterval>{{kMinNs, kMaxNs}};
  const int allowed = free_nodes - nodes;
  if (allowed < 0) return *kAll;
  if (allowed >= max_booked_) return *kNone;
  std::atomic<const std::vector<NsInterval>*>& slot = blocked_[allowed];
  const std::vector<NsInterval>* known = slot.load(std::memory_order_acquire);
  if (known != nullptr) return *known;
  auto fresh =
      std::make_unique<const std::vector<NsInterval>>(BlockedIntervals(*this, free_nodes, nodes));
  if (slot.compare_exchange_strong(known, fresh.get(), std::memory_order_acq_rel)) {
    return *fresh.release();
  }
  return *known;  // another thread was first
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
