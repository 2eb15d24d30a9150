#include "services/scheduler/capacity_book.h"

#include "absl/strings/str_cat.h"

namespace greenlight::scheduler {

void CapacityBook::Clear() { *this = CapacityBook(); }

void CapacityBook::Book(int64_t sequence, int pool, placement::PoolBookings windows) {
  Unbook(sequence);
  placement::BookingDeltas& deltas = deltas_[pool];
  for (const auto& w : windows) placement::AddBooking(w, +1, &deltas);
  if (deltas.empty()) deltas_.erase(pool);
  dirty_.insert(pool);
  bookings_[sequence] = JobBooking{pool, std::move(windows)};
}

void CapacityBook::Unbook(int64_t sequence) {
  auto it = bookings_.find(sequence);
  if (it == bookings_.end()) return;
  const int pool = it->second.pool;
  auto d = deltas_.find(pool);
  if (d != deltas_.end()) {
    for (const auto& w : it->second.windows) placement::AddBooking(w, -1, &d->second);
    if (d->second.empty()) deltas_.erase(d);
  }
  dirty_.insert(pool);
  bookings_.erase(it);
}

int CapacityBook::MaxBooked(int pool, absl::Time from, absl::Time to) const {
  auto d = deltas_.find(pool);
  if (d == deltas_.end()) return 0;
  return placement::MaxBooked(d->second, absl::ToUnixNanos(from), absl::ToUnixNanos(to));
}

void CapacityBook::RebuildView() {
  if (dirty_.empty()) return;
  for (int pool : dirty_) {
    auto d = deltas_.find(pool);
    if (d == deltas_.end()) {
      profiles_.erase(pool);
    } else {
      profiles_[pool] = std::make_shared<const placement::BookedProfile>(d->second);
    }
  }
  dirty_.clear();
  // Profiles are shared: the table copies pointers only.
  view_ = profiles_.empty()
              ? nullptr
              : std::make_shared<const placement::BookingTable>(profiles_.begin(), profiles_.end());
}

absl::Status CapacityBook::NotPlanned(int64_t sequence) {
  return absl::InternalError(
      absl::StrCat("capacity calendar: booking of job #", sequence, ", which is not planned"));
}

absl::Status CapacityBook::CheckDeltas() const {
  absl::flat_hash_map<int, placement::BookingDeltas> deltas;
  for (const auto& [seq, b] : bookings_)
    for (const auto& w : b.windows) placement::AddBooking(w, +1, &deltas[b.pool]);
  for (auto it = deltas.begin(); it != deltas.end();) {
    if (it->second.empty()) {
      deltas.erase(it++);
    } else {
      ++it;
    }
  }
  if (deltas != deltas_)
    return absl::InternalError("capacity calendar: booked nodes out of step with the bookings");
  return absl::OkStatus();
}

}  // namespace greenlight::scheduler
