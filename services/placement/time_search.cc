// Start-time search and interruptible plans (see time_search.h).
#include "services/placement/time_search.h"

#include <algorithm>
#include <cmath>

namespace greenlight::placement {

ZoneCarbon ZoneCarbon::For(const Snapshot& snapshot, const std::string& zone) {
  auto it = snapshot.zones.find(zone);
  if (it == snapshot.zones.end() || it->second == nullptr) {
    return ZoneCarbon(nullptr, snapshot.default_intensity_g_per_kwh);
  }
  const providers::CarbonSeries& s = *it->second;
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

// Relative tolerance for "lower integral": prefix sums carry rounding noise,
// and a later start must earn its delay with a real difference.
constexpr double kRelTolerance = 1e-9;

}  // namespace

bool BestContiguousWindow(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run,
                          RunWindow* out) {
  absl::Time last_start = std::min(frame.latest_start, frame.deadline - run);
  if (frame.deadline == absl::InfiniteFuture()) last_start = frame.latest_start;
  if (last_start < frame.earliest) return false;
  absl::Time best_start = frame.earliest;
  double best = zone.IntegralGkwhHours(best_start, best_start + run);
  // A constant zone has the same integral at every start: start at once.
  if (zone.series() != nullptr) {
    for (absl::Time t = NextSlotBoundary(frame.earliest, frame.slot); t <= last_start;
         t += frame.slot) {
      double v = zone.IntegralGkwhHours(t, t + run);
      if (v < best - kRelTolerance * std::abs(best)) {
        best = v;
        best_start = t;
      }
    }
  }
  out->start = best_start;
  out->end = best_start + run;
  out->gkwh_hours = best;
  out->estimated = zone.Estimated(out->start, out->end);
  out->slots.clear();
  return true;
}

RunWindow AsapWindow(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run) {
  RunWindow w;
  w.start = frame.earliest;
  w.end = frame.earliest + run;
  w.gkwh_hours = zone.IntegralGkwhHours(w.start, w.end);
  w.estimated = zone.Estimated(w.start, w.end);
  return w;
}

bool LowestCarbonSlots(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run,
                       RunWindow* out) {
  absl::Time window_end = frame.latest_start + run;
  if (frame.deadline < window_end) window_end = frame.deadline;
  if (window_end - frame.earliest < run || run <= absl::ZeroDuration()) return false;

  struct Segment {
    absl::Time start;
    absl::Time end;
    double integral;
    double mean;
  };
  std::vector<Segment> segs;
  for (absl::Time t = frame.earliest; t < window_end;) {
    absl::Time next = std::min(NextSlotBoundary(t, frame.slot), window_end);
    double v = zone.IntegralGkwhHours(t, next);
    segs.push_back({t, next, v, v / absl::ToDoubleHours(next - t)});
    t = next;
  }
  // Greedy by mean intensity is optimal for a divisible run (fractional
  // knapsack): take the cleanest slots first, earlier ones on ties.
  std::vector<int> order(segs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    if (segs[a].mean != segs[b].mean) return segs[a].mean < segs[b].mean;
    return a < b;
  });
  absl::Duration left = run;
  std::vector<Segment> chosen;
  double total = 0;
  for (int i : order) {
    if (left <= absl::ZeroDuration()) break;
    Segment s = segs[i];
    if (s.end - s.start > left) {
      s.end = s.start + left;
      s.integral = zone.IntegralGkwhHours(s.start, s.end);
    }
    left -= s.end - s.start;
    total += s.integral;
    chosen.push_back(s);
  }
  if (left > absl::ZeroDuration()) return false;
  std::sort(chosen.begin(), chosen.end(),
            [](const Segment& a, const Segment& b) { return a.start < b.start; });
  out->slots.clear();
  bool estimated = false;
  for (const Segment& s : chosen) {
    estimated = estimated || zone.Estimated(s.start, s.end);
    if (!out->slots.empty() && out->slots.back().end == s.start) {
      out->slots.back().end = s.end;
    } else {
      out->slots.push_back(Slot{s.start, s.end});
    }
  }
  out->start = out->slots.front().start;
  out->end = out->slots.back().end;
  out->gkwh_hours = total;
  out->estimated = estimated;
  return true;
}

}  // namespace greenlight::placement
