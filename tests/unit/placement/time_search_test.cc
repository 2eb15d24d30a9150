// Start-time search and interruptible plans on small hand-made series.
#include "services/placement/time_search.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/placement/test_util.h"

namespace greenlight::placement {
namespace {

using testing::Series;
using testing::T0;

TEST(NextSlotBoundary, RoundsUpStrictlyOnTheEpochGrid) {
  struct Case {
    absl::Time t;
    absl::Duration slot;
    absl::Time want;
  };
  for (const Case& c : std::vector<Case>{
           {T0(), absl::Hours(1), T0() + absl::Hours(1)},
           {T0() + absl::Minutes(20), absl::Hours(1), T0() + absl::Hours(1)},
           {T0() + absl::Minutes(20), absl::Minutes(15), T0() + absl::Minutes(30)},
           {absl::UnixEpoch() - absl::Minutes(30), absl::Hours(1), absl::UnixEpoch()},
       }) {
    EXPECT_EQ(NextSlotBoundary(c.t, c.slot), c.want) << c.t;
  }
}

TimeFrame Frame(absl::Time earliest, absl::Duration horizon, absl::Time deadline) {
  return TimeFrame{earliest, earliest + horizon, deadline, absl::Hours(1)};
}

TEST(BestContiguousWindow, MinimumIntegralEarliestOnTies) {
  //                       0    1    2    3    4    5    6    7
  auto s = Series("Z", T0(), {300, 200, 100, 300, 100, 200, 300, 300}, 250);
  ZoneCarbon zone = ZoneCarbon::For(
      [&] {
        Snapshot snap;
        snap.zones["Z"] = s;
        return snap;
      }(),
      "Z");
  RunWindow w;
  // 2 h windows: [1,3) = 300, [2,4) = 400, [3,5) = 400, [4,6) = 300: the earlier wins.
  ASSERT_TRUE(BestContiguousWindow(zone, Frame(T0(), absl::Hours(6), absl::InfiniteFuture()),
                                   absl::Hours(2), &w));
  EXPECT_EQ(w.start, T0() + absl::Hours(1));
  EXPECT_DOUBLE_EQ(w.gkwh_hours, 300);
  EXPECT_FALSE(w.estimated);
  // Starting mid-slot: candidates are 00:30, then 01:00, 02:00 ...
  ASSERT_TRUE(BestContiguousWindow(
      zone, Frame(T0() + absl::Minutes(30), absl::Hours(6), absl::InfiniteFuture()), absl::Hours(1),
      &w));
  EXPECT_EQ(w.start, T0() + absl::Hours(2));
  // Deadline before any run can end.
  EXPECT_FALSE(BestContiguousWindow(zone, Frame(T0(), absl::Hours(6), T0() + absl::Hours(1)),
                                    absl::Hours(2), &w));
  // Beyond the series end the annual average applies and is flagged.
  ASSERT_TRUE(BestContiguousWindow(
      zone, Frame(T0() + absl::Hours(7), absl::Hours(0), absl::InfiniteFuture()), absl::Hours(2),
      &w));
  EXPECT_DOUBLE_EQ(w.gkwh_hours, 300 + 250);
  EXPECT_TRUE(w.estimated);
}

// Around bookings the planner walks the zone's window integrals beside the
// blocked intervals and jumps over them; checked against a plain scan that
// tests every candidate with Overlaps, on random series, frames and blocks.
TEST(BestContiguousWindow, AroundBlockedIntervalsMatchesAPlainScan) {
  std::mt19937 rng(5);
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int found = 0;
  for (int round = 0; round < 500; ++round) {
    std::vector<double> v(96);
    for (double& x : v) x = uni(1, 9) * 100;
    Snapshot snap;
    snap.zones["Z"] = Series("Z", T0(), v, 500);
    ZoneCarbon zone = ZoneCarbon::For(snap, "Z");
    const absl::Time earliest = T0() + absl::Minutes(uni(0, 180));
    TimeFrame frame{earliest, earliest + absl::Hours(uni(0, 48)),
                    uni(0, 1) ? absl::InfiniteFuture() : earliest + absl::Hours(uni(1, 60)),
                    uni(0, 1) ? absl::Hours(1) : absl::Minutes(30)};
    const absl::Duration run = absl::Minutes(uni(30, 8 * 60));
    std::vector<NsInterval> blocked;
    int64_t t = absl::ToUnixNanos(earliest - absl::Hours(2));
    for (int k = uni(0, 6); k > 0; --k) {
      t += absl::ToInt64Nanoseconds(absl::Minutes(uni(0, 600)));
      int64_t end = t + absl::ToInt64Nanoseconds(absl::Minutes(uni(10, 300)));
      blocked.push_back({t, end});
      t = end + 1;
    }
    const bool exempt = uni(0, 3) == 0;
    RunWindow got;
    bool ok = ZonePlanner(zone, frame).BestContiguous(run, &got, &blocked, exempt);
    // The plain scan.
    ZonePlanner plain(zone, frame);
    const int64_t run_ns = absl::ToInt64Nanoseconds(run);
    absl::Time last = frame.latest_start;
    if (frame.deadline != absl::InfiniteFuture()) last = std::min(last, frame.deadline - run);
    bool want_ok = false;
    double best = 0;
    absl::Time best_start;
    for (int i = 0;; ++i) {
      absl::Time s0 =
          i == 0 ? earliest : NextSlotBoundary(earliest, frame.slot) + (i - 1) * frame.slot;
      if (s0 > last) break;
      int64_t a = absl::ToUnixNanos(s0);
      if (!(i == 0 && exempt) && Overlaps(blocked, a, a + run_ns)) continue;
      double integral = plain.Integral(a, a + run_ns);
      if (!want_ok || integral < best - 1e-9 * std::abs(best)) {
        want_ok = true;
        best = integral;
        best_start = s0;
      }
    }
    ASSERT_EQ(ok, want_ok) << "round " << round;
    if (!ok) continue;
    ++found;
    EXPECT_EQ(got.start, best_start) << "round " << round;
    EXPECT_DOUBLE_EQ(got.gkwh_hours, best) << "round " << round;
  }
  EXPECT_GT(found, 300);
}

TEST(BestContiguousWindow, ConstantZoneStartsAtOnce) {
  ZoneCarbon zone = ZoneCarbon::Constant(400);
  RunWindow w;
  absl::Time start = T0() + absl::Minutes(7);
  ASSERT_TRUE(BestContiguousWindow(zone, Frame(start, absl::Hours(48), absl::InfiniteFuture()),
                                   absl::Hours(3), &w));
  EXPECT_EQ(w.start, start);
  EXPECT_DOUBLE_EQ(w.gkwh_hours, 1200);
  EXPECT_TRUE(w.estimated);
}

TEST(LowestCarbonSlots, TakesTheCleanestSlotsAndMergesNeighbours) {
  auto s = Series("Z", T0(), {300, 100, 100, 300, 50, 300, 300, 300}, 250);
  Snapshot snap;
  snap.zones["Z"] = s;
  ZoneCarbon zone = ZoneCarbon::For(snap, "Z");
  RunWindow w;
  ASSERT_TRUE(LowestCarbonSlots(zone, Frame(T0(), absl::Hours(5), T0() + absl::Hours(8)),
                                absl::Hours(3), &w));
  ASSERT_EQ(w.slots.size(), 2u);
  EXPECT_EQ(w.slots[0].start, T0() + absl::Hours(1));
  EXPECT_EQ(w.slots[0].end, T0() + absl::Hours(3));
  EXPECT_EQ(w.slots[1].start, T0() + absl::Hours(4));
  EXPECT_EQ(w.slots[1].end, T0() + absl::Hours(5));
  EXPECT_DOUBLE_EQ(w.gkwh_hours, 250);
  // A window shorter than the run cannot hold it.
  EXPECT_FALSE(LowestCarbonSlots(zone, Frame(T0(), absl::Hours(0), T0() + absl::Hours(2)),
                                 absl::Hours(3), &w));
}

TEST(ZoneCarbon, StaleEmptyAndMissingSeriesAreConstants) {
  Snapshot snap;
  snap.default_intensity_g_per_kwh = 444;
  auto stale = std::make_shared<providers::CarbonSeries>("S", T0(), absl::Hours(1),
                                                         std::vector<double>{1, 1}, 321);
  stale->set_stale(true);
  snap.zones["S"] = stale;
  snap.zones["E"] = Series("E", T0(), {}, 123);
  struct Case {
    std::string zone;
    double want;
  };
  for (const Case& c : std::vector<Case>{{"S", 321}, {"E", 123}, {"missing", 444}}) {
    ZoneCarbon z = ZoneCarbon::For(snap, c.zone);
    EXPECT_EQ(z.series(), nullptr) << c.zone;
    EXPECT_DOUBLE_EQ(z.IntegralGkwhHours(T0(), T0() + absl::Hours(2)), 2 * c.want) << c.zone;
    EXPECT_TRUE(z.Estimated(T0(), T0() + absl::Hours(2))) << c.zone;
  }
}

}  // namespace
}  // namespace greenlight::placement
