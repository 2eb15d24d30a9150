// Start-time search and interruptible plans (see time_search.h).
#include "services/placement/time_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace greenlight::placement {

ZoneCarbon ZoneCarbon::For(const Snapshot& snapshot, const std::string& zone) {
  const auto& zones = snapshot.Zones();
  auto it = zones.find(zone);
  if (it == zones.end() || it->second == nullptr) {
    return ZoneCarbon(nullptr, snapshot.default_intensity_g_per_kwh);
  }
  const providers::CarbonSeries& s = *it->second;
  if (s.unknown_grid()) {
    return ZoneCarbon(nullptr, UnknownGridIntensity(s, snapshot.team.unknown_grid,
                                                    snapshot.default_intensity_g_per_kwh));
  }
  double avg = s.annual_average() > 0 ? s.annual_average() : snapshot.default_intensity_g_per_kwh;
  // A stale live series is not trusted: its annual average stands in.
  if (s.stale() || s.values().empty()) return ZoneCarbon(nullptr, avg);
  return ZoneCarbon(&s, avg);
}

double ZoneCarbon::IntegralGkwhHours(absl::Time from, absl::Time to) const {
  if (to <= from) return 0;
  if (series_ == nullptr) return constant_ * absl::ToDoubleHours(to - from);
  return series_->IntegralGkwhHours(from, to);
}

bool ZoneCarbon::Estimated(absl::Time from, absl::Time to) const {
  if (series_ == nullptr) return true;
  return from < series_->start() || to > series_->end();
}

absl::Time NextSlotBoundary(absl::Time t, absl::Duration slot) {
  if (slot <= absl::ZeroDuration()) slot = absl::Hours(1);
  absl::Duration rem;
  int64_t q = absl::IDivDuration(t - absl::UnixEpoch(), slot, &rem);
  // IDivDuration truncates toward zero: times before the epoch round down.
  if (rem < absl::ZeroDuration()) q -= 1;
  return absl::UnixEpoch() + slot * (q + 1);
}

namespace {

// Relative tolerance for "lower integral": sums carry rounding noise, and a
// later start must earn its delay with a real difference.
constexpr double kRelTolerance = 1e-9;
constexpr double kNsPerHour = 3.6e12;
constexpr int64_t kMaxNs = std::numeric_limits<int64_t>::max();

int64_t Ns(absl::Time t) {
  if (t == absl::InfiniteFuture()) return kMaxNs;
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  return absl::ToUnixNanos(t);
}
absl::Time FromNs(int64_t ns) { return absl::FromUnixNanos(ns); }

int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

int64_t SatAddNs(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? kMaxNs : std::numeric_limits<int64_t>::min();
  return r;
}

}  // namespace

ZonePlanner::ZonePlanner(const ZoneCarbon& zone, const TimeFrame& frame)
    : series_(zone.series()), average_(zone.constant()) {
  series_start_ns_ = Ns(series_->start());
  step_ns_ = std::max<int64_t>(1, absl::ToInt64Nanoseconds(series_->step()));
  series_end_ns_ = series_start_ns_ + step_ns_ * static_cast<int64_t>(series_->values().size());
  earliest_ns_ = Ns(frame.earliest);
  latest_start_ns_ = std::max(earliest_ns_, Ns(frame.latest_start));
  deadline_ns_ = Ns(frame.deadline);
  slot_ns_ = absl::ToInt64Nanoseconds(frame.slot);
  if (slot_ns_ <= 0) slot_ns_ = int64_t{3'600'000'000'000};
  first_boundary_ns_ = Ns(NextSlotBoundary(frame.earliest, absl::Nanoseconds(slot_ns_)));
  k_lo_ = StepIndex(earliest_ns_);
  cum_.push_back(0);
}

double ZonePlanner::Value(int64_t k) const {
  const std::vector<double>& v = series_->values();
  return (k >= 0 && k < static_cast<int64_t>(v.size())) ? v[static_cast<size_t>(k)] : average_;
}

int64_t ZonePlanner::StepIndex(int64_t t_ns) const {
  return FloorDiv(t_ns - series_start_ns_, step_ns_);
}

void ZonePlanner::CoverSteps(int64_t k) {
  const double step_h = static_cast<double>(step_ns_) / kNsPerHour;
  while (k_lo_ + static_cast<int64_t>(cum_.size()) - 1 <= k) {
    int64_t kk = k_lo_ + static_cast<int64_t>(cum_.size()) - 1;
    cum_.push_back(cum_.back() + Value(kk) * step_h);
  }
}

double ZonePlanner::Cum(int64_t t_ns) {
  int64_t k = StepIndex(t_ns);
  if (k < k_lo_) {  // before the frame: the searches never ask, but stay exact
    return -series_->IntegralGkwhHours(FromNs(t_ns), FromNs(series_start_ns_ + k_lo_ * step_ns_));
  }
  CoverSteps(k);
  int64_t step_start = series_start_ns_ + k * step_ns_;
  return cum_[static_cast<size_t>(k - k_lo_)] +
         Value(k) * static_cast<double>(t_ns - step_start) / kNsPerHour;
}

double ZonePlanner::Integral(int64_t a_ns, int64_t b_ns) {
  if (b_ns <= a_ns) return 0;
  return Cum(b_ns) - Cum(a_ns);
}

int64_t ZonePlanner::Boundary(int64_t i) const {
  return i == 0 ? earliest_ns_ : first_boundary_ns_ + (i - 1) * slot_ns_;
}

bool ZonePlanner::Estimated(int64_t a_ns, int64_t b_ns) const {
  return a_ns < series_start_ns_ || b_ns > series_end_ns_;
}

const std::vector<double>& ZonePlanner::Windows(int64_t run_ns, int64_t last_start) {
  auto [it, inserted] = windows_.try_emplace(run_ns);
  if (inserted) {
    for (int64_t i = 0;; ++i) {
      int64_t t = Boundary(i);
      if (t > last_start) break;
      it->second.push_back(Integral(t, t + run_ns));
    }
  }
  return it->second;
}

bool ZonePlanner::BestContiguous(absl::Duration run, RunWindow* out,
                                 const std::vector<NsInterval>* blocked, bool earliest_exempt) {
  const int64_t run_ns = absl::ToInt64Nanoseconds(run);
  int64_t last_start = latest_start_ns_;
  if (deadline_ns_ != kMaxNs) last_start = std::min(last_start, SatAddNs(deadline_ns_, -run_ns));
  if (last_start < earliest_ns_) return false;
  int64_t best_start = -1;
  double best = 0;
  auto consider = [&](int64_t t, double v) {
    if (best_start < 0 || v < best - kRelTolerance * std::abs(best)) {
      best = v;
      best_start = t;
    }
  };
  if (blocked == nullptr) {
    for (int64_t i = 0;; ++i) {
      int64_t t = Boundary(i);
      if (t > last_start) break;
      consider(t, Integral(t, t + run_ns));
    }
  } else {
    // Around bookings: the zone's window integrals (computed once per run
    // length and shared by its pools) walked beside the sorted blocked
    // intervals, jumping over each one: O(windows + intervals) per pool.
    const std::vector<double>& windows = Windows(run_ns, last_start);
    size_t b = 0;
    for (int64_t i = 0; i < static_cast<int64_t>(windows.size()); ++i) {
      const int64_t t = Boundary(i);
      if (!(i == 0 && earliest_exempt)) {
        while (b < blocked->size() && (*blocked)[b].end_ns <= t) ++b;
        if (b < blocked->size() && (*blocked)[b].start_ns < t + run_ns) {
          const int64_t free_from = (*blocked)[b].end_ns;
          if (free_from == kMaxNs) break;
          // Jump to the first boundary j >= 1 at or after free_from (the
          // loop's ++i lands there).
          if (free_from > first_boundary_ns_) {
            const int64_t d = free_from - first_boundary_ns_;
            const int64_t j = 1 + d / slot_ns_ + (d % slot_ns_ != 0 ? 1 : 0);
            i = std::max(i, j - 1);
          }
          continue;
        }
      }
      consider(t, windows[static_cast<size_t>(i)]);
    }
  }
  if (best_start < 0) return false;  // every window meets booked capacity
  out->start = FromNs(best_start);
  out->end = FromNs(best_start + run_ns);
  out->gkwh_hours = best;
  out->estimated = Estimated(best_start, best_start + run_ns);
  out->runs = 1;
  out->slots.clear();
  return true;
}

RunWindow ZonePlanner::Asap(absl::Duration run) {
  const int64_t run_ns = absl::ToInt64Nanoseconds(run);
  RunWindow w;
  w.start = FromNs(earliest_ns_);
  w.end = FromNs(earliest_ns_ + run_ns);
  w.gkwh_hours = Integral(earliest_ns_, earliest_ns_ + run_ns);
  w.estimated = Estimated(earliest_ns_, earliest_ns_ + run_ns);
  return w;
}

void ZonePlanner::BuildSegments(int64_t end_ns) {
  seg_integral_.clear();
  seg_order_.clear();
  std::vector<double> mean;
  for (int64_t i = 0;; ++i) {
    int64_t a = Boundary(i), b = Boundary(i + 1);
    if (b > end_ns) break;
    double v = Integral(a, b);
    seg_integral_.push_back(v);
    mean.push_back(v / (static_cast<double>(b - a) / kNsPerHour));
  }
  seg_order_.resize(seg_integral_.size());
  for (size_t i = 0; i < seg_order_.size(); ++i) seg_order_[i] = static_cast<int>(i);
  std::sort(seg_order_.begin(), seg_order_.end(),
            [&](int x, int y) { return mean[x] != mean[y] ? mean[x] < mean[y] : x < y; });
  segments_end_ns_ = end_ns;
}

bool ZonePlanner::TakeLowestSegments(int64_t run_ns, int64_t window_end,
                                     const std::vector<NsInterval>* blocked, int64_t* full_out,
                                     double* total_out) {
  // Whole segments inside [earliest, window_end), plus the partial last one.
  int64_t full = 0;
  while (full < static_cast<int64_t>(seg_integral_.size()) && Boundary(full + 1) <= window_end) {
    ++full;
  }
  const int64_t partial_start = Boundary(full);
  const bool has_partial = partial_start < window_end;
  const double partial_integral = has_partial ? Integral(partial_start, window_end) : 0;
  const double partial_mean =
      has_partial
          ? partial_integral / (static_cast<double>(window_end - partial_start) / kNsPerHour)
          : 0;
  taken_.assign(static_cast<size_t>(full + 1), 0);
  int64_t need = run_ns;
  double total = 0;
  bool partial_done =
      !has_partial || (blocked != nullptr && Overlaps(*blocked, partial_start, window_end));
  auto take = [&](int64_t i, int64_t len, double integral) {
    int64_t use = std::min(len, need);
    total += use == len ? integral : Integral(Boundary(i), Boundary(i) + use);
    taken_[static_cast<size_t>(i)] = use;
    need -= use;
  };
  for (size_t r = 0; r < seg_order_.size() && need > 0; ++r) {
    int i = seg_order_[r];
    if (i >= full) continue;
    int64_t a = Boundary(i), b = Boundary(i + 1);
    if (blocked != nullptr && Overlaps(*blocked, a, b)) continue;
    double mean = seg_integral_[i] / (static_cast<double>(b - a) / kNsPerHour);
    if (!partial_done && (partial_mean < mean || (partial_mean == mean && full < i))) {
      take(full, window_end - partial_start, partial_integral);
      partial_done = true;
      if (need <= 0) break;
    }
    take(i, b - a, seg_integral_[i]);
  }
  if (need > 0 && !partial_done) take(full, window_end - partial_start, partial_integral);
  *full_out = full;
  *total_out = total;
  return need <= 0;
}

void ZonePlanner::MergeTakenRuns(int64_t full, bool with_slots, RunWindow* out) const {
  out->slots.clear();
  int runs = 0;
  int64_t first = -1, last_end = -1, prev_end = -1;
  for (int64_t i = 0; i <= full; ++i) {
    int64_t use = taken_[static_cast<size_t>(i)];
    if (use == 0) continue;
    int64_t a = Boundary(i);
    if (a != prev_end) {
      ++runs;
      if (with_slots) out->slots.push_back(Slot{FromNs(a), FromNs(a + use)});
    } else if (with_slots) {
      out->slots.back().end = FromNs(a + use);
    }
    if (first < 0) first = a;
    prev_end = a + use;
    last_end = prev_end;
  }
  out->start = FromNs(first);
  out->end = FromNs(last_end);
  out->estimated = Estimated(first, last_end);
  out->runs = runs;
}

bool ZonePlanner::LowestCarbonSlots(absl::Duration run, bool with_slots, RunWindow* out,
                                    const std::vector<NsInterval>* blocked) {
  const int64_t run_ns = absl::ToInt64Nanoseconds(run);
  int64_t window_end = SatAddNs(latest_start_ns_, run_ns);
  if (deadline_ns_ < window_end) window_end = deadline_ns_;
  if (run_ns <= 0 || window_end - earliest_ns_ < run_ns) return false;
  if (window_end > segments_end_ns_) {
    // Grow geometrically so runs of other lengths reuse the ranking.
    int64_t grow = SatAddNs(latest_start_ns_, 2 * (window_end - latest_start_ns_));
    BuildSegments(std::max(window_end, std::min(grow, deadline_ns_)));
  }
  int64_t full = 0;
  double total = 0;
  if (!TakeLowestSegments(run_ns, window_end, blocked, &full, &total)) return false;
  MergeTakenRuns(full, with_slots, out);
  out->gkwh_hours = total;
  return true;
}

bool BestContiguousWindow(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run,
                          RunWindow* out) {
  if (zone.series() != nullptr) return ZonePlanner(zone, frame).BestContiguous(run, out);
  // A constant zone has the same integral at every start: start at once.
  absl::Time last_start = std::min(frame.latest_start, frame.deadline - run);
  if (frame.deadline == absl::InfiniteFuture()) last_start = frame.latest_start;
  if (last_start < frame.earliest) return false;
  *out = AsapWindow(zone, frame, run);
  return true;
}

RunWindow AsapWindow(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run) {
  if (zone.series() != nullptr) return ZonePlanner(zone, frame).Asap(run);
  RunWindow w;
  w.start = frame.earliest;
  w.end = frame.earliest + run;
  w.gkwh_hours = zone.IntegralGkwhHours(w.start, w.end);
  w.estimated = true;
  return w;
}

bool LowestCarbonSlots(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run,
                       RunWindow* out) {
  // A constant zone gains nothing from interruptions.
  if (zone.series() == nullptr) return false;
  return ZonePlanner(zone, frame).LowestCarbonSlots(run, /*with_slots=*/true, out);
}

}  // namespace greenlight::placement
