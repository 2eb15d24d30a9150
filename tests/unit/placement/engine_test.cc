// The engine on hand-made snapshots: every expected figure is worked out in a
// comment from the builders' round numbers (8 GPUs x 700 W x PUE 1.0 = 5.6 kW).
#include "services/placement/engine.h"

#include <algorithm>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/placement/test_util.h"

namespace greenlight::placement {
namespace {

using ::testing::HasSubstr;
using testing::Kg;
using testing::MakeJob;
using testing::MakePool;
using testing::MakeSnapshot;
using testing::Series;
using testing::T0;
using testing::Usd;

int Rejected(const Decision& d, const std::string& reason) {
  for (const auto& [r, n] : d.rejections) {
    if (r == reason) return n;
  }
  return 0;
}

std::vector<double> Hourly(int n, double v) { return std::vector<double>(n, v); }

TEST(Objective, RuntimeCostEnergyAndCarbonByHand) {
  Pool p = MakePool("p");
  p.speed = 2.0;
  p.pue = 1.1;
  Snapshot s = MakeSnapshot({p});
  JobRequest job = MakeJob();
  job.duration = absl::ZeroDuration();
  job.reference_gpu_hours = 160;  // / (8 GPUs x speed 2) = 10 h
  Decision d = PlacementEngine().Place(job, s);
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.runtime, absl::Hours(10));
  EXPECT_EQ(d.chosen.cost_micros, Usd(100));                 // 1 node x $10 x 10 h
  EXPECT_DOUBLE_EQ(d.chosen.energy_wh, 8 * 700 * 1.1 * 10);  // 61,600 Wh
  EXPECT_EQ(d.chosen.carbon_mg, 61'600 * 400);               // Wh x g/kWh = mg
  EXPECT_TRUE(d.chosen.carbon_estimated);                    // no series for zone Z
  // balanced: $100 + 24.64 kg x $0.10/kg.
  EXPECT_EQ(d.chosen.objective_micros, Usd(100) + Usd(2.464));
  EXPECT_EQ(d.chosen.start, T0());
  EXPECT_EQ(d.chosen.nodes, 1);
}

TEST(Objective, SubNodeJobsPayTheirGpuShareGangsPayWholeNodes) {
  struct Case {
    int gpus;
    int64_t cost;
    int nodes;
  };
  for (const Case& c :
       std::vector<Case>{{2, Usd(25), 1}, {8, Usd(100), 1}, {12, Usd(200), 2}, {16, Usd(200), 2}}) {
    JobRequest job = MakeJob();
    job.gpus = c.gpus;
    Decision d = PlacementEngine().Place(job, MakeSnapshot({MakePool("p")}));
    ASSERT_TRUE(d.feasible) << d.summary;
    EXPECT_EQ(d.chosen.cost_micros, c.cost) << c.gpus;
    EXPECT_EQ(d.chosen.nodes, c.nodes) << c.gpus;
    EXPECT_DOUBLE_EQ(d.chosen.energy_wh, c.gpus * 700.0 * 10) << c.gpus;
  }
}

TEST(Objective, FasterGpuConvertsReferenceHoursIntoShorterRuns) {
  Pool slow = MakePool("slow", "Z", Usd(10));
  Pool fast = MakePool("fast", "Z", Usd(15));
  fast.speed = 2.0;
  JobRequest job = MakeJob();
  job.duration = absl::ZeroDuration();
  job.reference_gpu_hours = 80;  // slow: 10 h = $100; fast: 5 h = $75
  job.mode = Mode::kCheapest;
  Decision d = PlacementEngine().Place(job, MakeSnapshot({slow, fast}));
  ASSERT_TRUE(d.feasible);
  EXPECT_EQ(d.chosen.pool_id, "fast");
  EXPECT_EQ(d.chosen.cost_micros, Usd(75));
  EXPECT_EQ(d.chosen.runtime, absl::Hours(5));
}

// Two pools: "dirty" $10/h at 500 g/kWh, "clean" $11/h at 50 g/kWh. A 10 h
// job uses 56 kWh: dirty = $100 + 28 kg, clean = $110 + 2.8 kg. Balanced
// breaks even at $10 / 25.2 kg = $396.83/t.
Snapshot DirtyAndClean() {
  Snapshot s =
      MakeSnapshot({MakePool("dirty", "DIRTY", Usd(10)), MakePool("clean", "CLEAN", Usd(11))});
  s.zones["DIRTY"] = Series("DIRTY", T0(), Hourly(96, 500), 500);
  s.zones["CLEAN"] = Series("CLEAN", T0(), Hourly(96, 50), 50);
  return s;
}

TEST(Objective, ModesAndCarbonPricePickTheExpectedPool) {
  struct Case {
    std::string name;
    Mode mode;
    int64_t usd_per_tonne;
    std::string want;
    int64_t objective;
  };
  for (const Case& c : std::vector<Case>{
           {"cheapest ignores carbon price", Mode::kCheapest, 1000, "dirty", Usd(100)},
           {"greenest ignores price", Mode::kGreenest, 0, "clean", Usd(110) + Usd(0.28) * 0},
           {"balanced at $100/t", Mode::kBalanced, 100, "dirty", Usd(102.8)},
           {"balanced just below break-even", Mode::kBalanced, 396, "dirty", Usd(111.088)},
           {"balanced just above break-even", Mode::kBalanced, 398, "clean", Usd(111.1144)},
           {"balanced at $1000/t", Mode::kBalanced, 1000, "clean", Usd(112.8)},
       }) {
    Snapshot s = DirtyAndClean();
    JobRequest job = MakeJob();
    job.mode = c.mode;
    job.carbon_price_micros_per_tonne = c.usd_per_tonne * 1'000'000;
    Decision d = PlacementEngine().Place(job, s);
    ASSERT_TRUE(d.feasible) << c.name;
    EXPECT_EQ(d.chosen.pool_id, c.want) << c.name;
    if (c.mode != Mode::kGreenest) {
      EXPECT_EQ(d.chosen.objective_micros, c.objective) << c.name;
    }
    EXPECT_EQ(d.carbon_price_micros_per_tonne,
              c.usd_per_tonne * 1'000'000 == 0 ? 100'000'000 : c.usd_per_tonne * 1'000'000)
        << c.name;
  }
}

TEST(Objective, BaselineIsCarbonBlindCheapestAtOnceAndSavingIsExplicit) {
  Snapshot s = DirtyAndClean();
  JobRequest job = MakeJob();
  job.carbon_price_micros_per_tonne = 1000'000'000;
  Decision d = PlacementEngine().Place(job, s);
  ASSERT_TRUE(d.feasible);
  ASSERT_TRUE(d.has_baseline);
  EXPECT_EQ(d.chosen.pool_id, "clean");
  EXPECT_EQ(d.baseline.pool_id, "dirty");
  EXPECT_EQ(d.baseline.start, T0());
  EXPECT_EQ(d.carbon_avoided_mg, Kg(28) - Kg(2.8));
  EXPECT_EQ(d.cost_saved_micros, -Usd(10));
  ASSERT_FALSE(d.alternatives.empty());
  EXPECT_EQ(d.alternatives[0].pool_id, "dirty");
  // 128 - 112.8 = $15.20.
  EXPECT_EQ(d.alternatives[0].why_not, "objective +$15.20: costs $10.00 less, emits 25.20 kg more");
  EXPECT_THAT(d.summary, HasSubstr("avoids 25.20 kg"));
}

TEST(Objective, WhyNotSpeaksTheModesUnit) {
  struct Case {
    Mode mode;
    std::string why;
  };
  for (const Case& c :
       std::vector<Case>{{Mode::kCheapest, "costs $10.00 more, emits 25.20 kg less"},
                         {Mode::kGreenest, "emits 25.20 kg more, costs $10.00 less"}}) {
    JobRequest job = MakeJob();
    job.mode = c.mode;
    Decision d = PlacementEngine().Place(job, DirtyAndClean());
    ASSERT_EQ(d.alternatives.size(), 1u);
    EXPECT_EQ(d.alternatives[0].why_not, c.why);
  }
}

TEST(Objective, IdenticalPoolsBreakTiesByPoolIdWhateverTheOrder) {
  for (bool reversed : {false, true}) {
    std::vector<Pool> pools = {MakePool("b"), MakePool("a"), MakePool("c")};
    if (reversed) std::reverse(pools.begin(), pools.end());
    Decision d = PlacementEngine().Place(MakeJob(), MakeSnapshot(pools));
    ASSERT_TRUE(d.feasible);
    EXPECT_EQ(d.chosen.pool_id, "a");
    ASSERT_EQ(d.alternatives.size(), 2u);
    EXPECT_EQ(d.alternatives[0].pool_id, "b");
    EXPECT_THAT(d.alternatives[0].why_not, HasSubstr("tie"));
  }
}

TEST(Objective, BetterOptionOrdersByModeKeys) {
  Option cheap_dirty, dear_clean;
  cheap_dirty.pool_id = "x";
  cheap_dirty.cost_micros = 100;
  cheap_dirty.carbon_mg = 900;
  cheap_dirty.objective_micros = 200;
  dear_clean.pool_id = "y";
  dear_clean.cost_micros = 150;
  dear_clean.carbon_mg = 100;
  dear_clean.objective_micros = 160;
  EXPECT_TRUE(BetterOption(Mode::kCheapest, cheap_dirty, dear_clean));
  EXPECT_TRUE(BetterOption(Mode::kGreenest, dear_clean, cheap_dirty));
  EXPECT_TRUE(BetterOption(Mode::kBalanced, dear_clean, cheap_dirty));
  EXPECT_FALSE(BetterOption(Mode::kBalanced, dear_clean, dear_clean));
}

// Zone Z at 500 g/kWh except hours 5 and 6 (100 g/kWh); a 2 h job.
Snapshot DipAtFive() {
  Snapshot s = MakeSnapshot({MakePool("p")});
  std::vector<double> v = Hourly(96, 500);
  v[5] = v[6] = 100;
  s.zones["Z"] = Series("Z", T0(), v, 450);
  return s;
}

TEST(TimeShifting, StartsInTheCleanestWindowTheDeadlineAllows) {
  struct Case {
    std::string name;
    absl::Time not_before;
    absl::Time deadline;
    absl::Duration horizon;
    absl::Time want_start;
    int64_t want_carbon;
  };
  const int64_t kw = 5600;  // W: carbon mg = W x sum of hourly g/kWh
  for (const Case& c : std::vector<Case>{
           {"free to wait", absl::InfinitePast(), absl::InfiniteFuture(), absl::Hours(48),
            T0() + absl::Hours(5), kw * 200},
           {"deadline cuts the dip", absl::InfinitePast(), T0() + absl::Hours(6), absl::Hours(48),
            T0() + absl::Hours(4), kw * 600},
           {"not_before after the dip", T0() + absl::Hours(7), absl::InfiniteFuture(),
            absl::Hours(48), T0() + absl::Hours(7), kw * 1000},
           {"horizon ends before the dip", absl::InfinitePast(), absl::InfiniteFuture(),
            absl::Hours(3), T0(), kw * 1000},
           {"deadline leaves one start", absl::InfinitePast(), T0() + absl::Hours(2),
            absl::Hours(48), T0(), kw * 1000},
       }) {
    Snapshot s = DipAtFive();
    s.horizon = c.horizon;
    JobRequest job = MakeJob();
    job.duration = absl::Hours(2);
    job.not_before = c.not_before;
    job.deadline = c.deadline;
    Decision d = PlacementEngine().Place(job, s);
    ASSERT_TRUE(d.feasible) << c.name << ": " << d.summary;
    EXPECT_EQ(d.chosen.start, c.want_start) << c.name;
    EXPECT_EQ(d.chosen.carbon_mg, c.want_carbon) << c.name;
    EXPECT_FALSE(d.chosen.carbon_estimated) << c.name;
    EXPECT_FALSE(d.chosen.split) << c.name;
  }
}

TEST(TimeShifting, WaitingIsListedAgainstStartingAtOnce) {
  JobRequest job = MakeJob();
  job.duration = absl::Hours(2);
  Decision d = PlacementEngine().Place(job, DipAtFive());
  ASSERT_TRUE(d.feasible);
  ASSERT_EQ(d.alternatives.size(), 1u);
  EXPECT_EQ(d.alternatives[0].start, T0());
  // 5.6 kW x 2 h x 400 g/kWh more = 4.48 kg, x $0.10/kg = $0.448.
  EXPECT_EQ(d.alternatives[0].why_not, "at once: objective +$0.45: emits 4.48 kg more");
  EXPECT_THAT(d.summary, HasSubstr("start 2025-06-01 05:00 UTC"));
}

TEST(TimeShifting, NotBeforeBeyondTheDeadlineIsRejectedForDeadline) {
  JobRequest job = MakeJob();
  job.deadline = T0() + absl::Hours(9);  // a 10 h job
  Decision d = PlacementEngine().Place(job, DipAtFive());
  EXPECT_FALSE(d.feasible);
  EXPECT_FALSE(d.not_now);
  EXPECT_EQ(Rejected(d, kReasonDeadline), 1);
}

TEST(TimeShifting, ARunLongerThanAYearIsRejectedForRuntime) {
  // Regression (submit_request_fuzzer): 10^7 reference GPU-hours on one GPU is
  // ~1,100 years; its end overflowed int64 nanoseconds in the planner.
  JobRequest job = MakeJob();
  job.duration = absl::ZeroDuration();
  job.gpus = 1;
  job.reference_gpu_hours = 1e7;
  Decision d = PlacementEngine().Place(job, DipAtFive());
  EXPECT_FALSE(d.feasible);
  EXPECT_FALSE(d.not_now);
  EXPECT_EQ(Rejected(d, kReasonRuntime), 1);
  // Just under the bound still plans.
  job.reference_gpu_hours = kMaxRuntimeHours - 1;
  d = PlacementEngine().Place(job, DipAtFive());
  EXPECT_TRUE(d.feasible) << d.summary;
}

TEST(TimeShifting, StaleOrMissingSeriesUsesTheAverageAndSaysSo) {
  Snapshot s = MakeSnapshot({MakePool("p")});
  auto series =
      std::make_shared<providers::CarbonSeries>("Z", T0(), absl::Hours(1), Hourly(96, 10), 300);
  series->set_stale(true);
  s.zones["Z"] = series;
  Decision d = PlacementEngine().Place(MakeJob(), s);
  ASSERT_TRUE(d.feasible);
  EXPECT_EQ(d.chosen.carbon_mg, 56'000 * 300);
  EXPECT_TRUE(d.chosen.carbon_estimated);
  EXPECT_EQ(d.chosen.start, T0());
  EXPECT_THAT(d.summary, HasSubstr("estimated"));

  s.zones.clear();
  d = PlacementEngine().Place(MakeJob(), s);
  EXPECT_EQ(d.chosen.carbon_mg, 56'000 * 400);
  EXPECT_TRUE(d.chosen.carbon_estimated);
}

// Zone Z alternates 100 / 900 g/kWh each hour; a 3 h job due in 6 h.
Snapshot Alternating() {
  Snapshot s = MakeSnapshot({MakePool("p")});
  std::vector<double> v(96);
  for (size_t i = 0; i < v.size(); ++i) v[i] = i % 2 == 0 ? 100 : 900;
  s.zones["Z"] = Series("Z", T0(), v, 500);
  return s;
}

TEST(Interruptible, CheckpointableJobRunsInTheCleanestSlots) {
  JobRequest job = MakeJob();
  job.duration = absl::Hours(3);
  job.deadline = T0() + absl::Hours(6);
  job.checkpointable = true;
  Decision d = PlacementEngine().Place(job, Alternating());
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_TRUE(d.chosen.split);
  ASSERT_EQ(d.chosen.slots.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d.chosen.slots[i].start, T0() + absl::Hours(2 * i));
    EXPECT_EQ(d.chosen.slots[i].end, T0() + absl::Hours(2 * i + 1));
  }
  EXPECT_EQ(d.chosen.start, T0());
  EXPECT_EQ(d.chosen.end, T0() + absl::Hours(5));
  EXPECT_EQ(d.chosen.runtime, absl::Hours(3));
  EXPECT_EQ(d.chosen.carbon_mg, 5600 * 300);  // three 100 g/kWh hours
  EXPECT_EQ(d.chosen.cost_micros, Usd(30));   // compute hours only
  EXPECT_THAT(d.summary, HasSubstr("in 3 runs"));
}

TEST(Interruptible, NonCheckpointableOrSmallSavingStaysContiguous) {
  JobRequest job = MakeJob();
  job.duration = absl::Hours(3);
  job.deadline = T0() + absl::Hours(6);
  Decision d = PlacementEngine().Place(job, Alternating());
  ASSERT_TRUE(d.feasible);
  EXPECT_FALSE(d.chosen.split);
  EXPECT_EQ(d.chosen.carbon_mg, 5600 * 1100);  // 100 + 900 + 100 from hour 0
  ASSERT_EQ(d.chosen.slots.size(), 1u);

  // The split saves 1 - 300/1100 = 72.7 %: below an 80 % threshold it is not worth it.
  Snapshot s = Alternating();
  s.split_min_saving = 0.8;
  job.checkpointable = true;
  d = PlacementEngine().Place(job, s);
  EXPECT_FALSE(d.chosen.split);
}

TEST(Interruptible, SplitSlotsEndOnAPartialSlot) {
  JobRequest job = MakeJob();
  job.duration = absl::Minutes(150);  // 2.5 h
  job.deadline = T0() + absl::Hours(6);
  job.checkpointable = true;
  Decision d = PlacementEngine().Place(job, Alternating());
  ASSERT_TRUE(d.chosen.split);
  ASSERT_EQ(d.chosen.slots.size(), 3u);
  EXPECT_EQ(d.chosen.slots[2].end - d.chosen.slots[2].start, absl::Minutes(30));
  EXPECT_EQ(d.chosen.carbon_mg, 5600 * 250);
}

// The capacity calendar: planned jobs hold future whole nodes. The pool has 4
// nodes of 8 GPUs, all free now; the job takes one node.
Snapshot WithBookings(Snapshot s, PoolBookings bookings) {
  auto table = std::make_shared<BookingTable>();
  (*table)[0] = std::make_shared<const BookedProfile>(bookings);
  s.bookings = std::move(table);
  return s;
}

Booking Booked(int from_h, int to_h, int nodes) {
  return Booking{T0() + absl::Hours(from_h), T0() + absl::Hours(to_h), nodes};
}

TEST(CapacityCalendar, ACleanWindowBookedByOthersIsNotPromisedTwice) {
  JobRequest job = MakeJob();
  job.duration = absl::Hours(2);
  // Three of four nodes booked in the dip (05-07): one left, the job fits.
  Decision d = PlacementEngine().Place(job, WithBookings(DipAtFive(), {Booked(5, 7, 3)}));
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.start, T0() + absl::Hours(5));
  // All four booked: the dip is gone; every other window is 500 g/kWh, so it
  // starts at once (the earliest of equals), clear of the booking.
  d = PlacementEngine().Place(job, WithBookings(DipAtFive(), {Booked(5, 7, 4)}));
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.start, T0());
  EXPECT_EQ(d.chosen.end, T0() + absl::Hours(2));
  EXPECT_EQ(d.chosen.carbon_mg, 5600 * 1000);  // 2 h x 500 g/kWh
  // Half the dip booked (06-07): a window must avoid 06-07; 04-06 has one dip hour.
  d = PlacementEngine().Place(job, WithBookings(DipAtFive(), {Booked(6, 7, 4)}));
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.start, T0() + absl::Hours(4));
  EXPECT_EQ(d.chosen.carbon_mg, 5600 * 600);  // 500 + 100
}

TEST(CapacityCalendar, ARunMayNotOverlapABookingItDoesNotFitBeside) {
  JobRequest job = MakeJob();
  job.duration = absl::Hours(10);
  // Booked 03-04 by all nodes: no 10 h window starting before 04 is clear.
  Decision d = PlacementEngine().Place(job, WithBookings(DipAtFive(), {Booked(3, 4, 4)}));
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_GE(d.chosen.start, T0() + absl::Hours(4));
  // No "at once" alternative: starting at once collides with the booking.
  for (const Option& alt : d.alternatives) EXPECT_GE(alt.start, T0() + absl::Hours(4));
  EXPECT_FALSE(d.has_baseline) << "the carbon-blind baseline starts at once, which is booked";
}

TEST(CapacityCalendar, ConstantZoneStartsRightAfterTheBooking) {
  Snapshot s = WithBookings(MakeSnapshot({MakePool("p", "none")}), {Booked(0, 3, 4)});
  JobRequest job = MakeJob();
  job.duration = absl::Hours(2);
  Decision d = PlacementEngine().Place(job, s);
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.start, T0() + absl::Hours(3));
  EXPECT_TRUE(d.chosen.carbon_estimated);
}

TEST(CapacityCalendar, FullyBookedIsNotNowForCapacityNotNever) {
  JobRequest job = MakeJob();
  job.duration = absl::Hours(2);
  // Booked by all nodes over the whole horizon.
  Decision d = PlacementEngine().Place(job, WithBookings(DipAtFive(), {Booked(0, 200, 4)}));
  EXPECT_FALSE(d.feasible);
  EXPECT_TRUE(d.not_now) << d.summary;
  EXPECT_EQ(Rejected(d, kReasonCapacity), 1);
  // A deadline the booking leaves no room for is still "not now": the
  // booked jobs may be cancelled.
  job.deadline = T0() + absl::Hours(10);
  d = PlacementEngine().Place(job, WithBookings(DipAtFive(), {Booked(0, 200, 4)}));
  EXPECT_TRUE(d.not_now) << d.summary;
}

TEST(CapacityCalendar, SplitRunsSkipBookedSlots) {
  JobRequest job = MakeJob();
  job.duration = absl::Hours(3);
  job.deadline = T0() + absl::Hours(8);
  job.checkpointable = true;
  // Alternating 100/900 hours; the clean hour 02-03 is booked by every node.
  Decision d = PlacementEngine().Place(job, WithBookings(Alternating(), {Booked(2, 3, 4)}));
  ASSERT_TRUE(d.feasible) << d.summary;
  ASSERT_TRUE(d.chosen.split);
  ASSERT_EQ(d.chosen.slots.size(), 3u);
  EXPECT_EQ(d.chosen.slots[0].start, T0());
  EXPECT_EQ(d.chosen.slots[1].start, T0() + absl::Hours(4));
  EXPECT_EQ(d.chosen.slots[2].start, T0() + absl::Hours(6));
  EXPECT_EQ(d.chosen.carbon_mg, 5600 * 300);
}

TEST(CapacityCalendar, AQuoteOverTheCapAroundBookingsNamesARealPool) {
  // Regression (CI's stress test, a crash): around the booking the best plan
  // is split and over the cost cap; the plan without bookings (to tell "not
  // now" from "never") is contiguous and over the cap too. Pricing it reused
  // the scratch the first plan pointed into, so the quote for the error named
  // pool -1.
  Snapshot s = MakeSnapshot({MakePool("p")});
  std::vector<double> v(96, 900);
  v[2] = v[3] = v[4] = 100;  // a clean 02-05 block: unsplit, the best without bookings
  s.zones["Z"] = Series("Z", T0(), v, 500);
  JobRequest job = MakeJob();
  job.duration = absl::Hours(3);
  job.deadline = T0() + absl::Hours(8);
  job.checkpointable = true;
  job.max_cost_micros = Usd(1);  // far below any run's cost
  Decision d = PlacementEngine().Place(job, WithBookings(s, {Booked(3, 4, 4)}));
  EXPECT_FALSE(d.feasible);
  ASSERT_TRUE(d.has_best_over_cap) << d.summary;
  EXPECT_EQ(d.best_over_cap.pool, 0);
  EXPECT_EQ(d.best_over_cap.pool_id, "p");
  EXPECT_EQ(Rejected(d, kReasonMaxCost), 1);
}

TEST(CapacityCalendar, ASubNodeJobOnAPartlyUsedNodeNeedsNoWholeNode) {
  Pool p = MakePool("p");
  p.free_nodes = 0;
  p.free_gpus_on_partial_nodes = {4};
  JobRequest job = MakeJob();
  job.gpus = 2;
  job.duration = absl::Hours(2);
  Snapshot s = WithBookings(MakeSnapshot({p}), {Booked(0, 200, 4)});
  Decision d = PlacementEngine().Place(job, s);
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.start, T0());
  EXPECT_TRUE(d.chosen.on_partial_node);
}

TEST(Spot, CheckpointableJobsMayUseSpotWithTheExpectedOverhead) {
  Pool p = MakePool("p");
  p.spot_price_micros_per_node_hour = Usd(3);
  JobRequest job = MakeJob();
  job.mode = Mode::kCheapest;
  job.checkpointable = true;
  Decision d = PlacementEngine().Place(job, MakeSnapshot({p}));
  ASSERT_TRUE(d.feasible);
  EXPECT_TRUE(d.chosen.spot);
  // 10 h x 1.0375 = 10.375 h at $3.
  EXPECT_EQ(d.chosen.runtime, absl::Minutes(622) + absl::Seconds(30));
  EXPECT_EQ(d.chosen.cost_micros, Usd(31.125));
  EXPECT_DOUBLE_EQ(d.chosen.energy_wh, 5600 * 10.375);
  ASSERT_EQ(d.alternatives.size(), 1u);
  EXPECT_FALSE(d.alternatives[0].spot);

  job.checkpointable = false;
  d = PlacementEngine().Place(job, MakeSnapshot({p}));
  EXPECT_FALSE(d.chosen.spot);
  EXPECT_TRUE(d.alternatives.empty());
}

TEST(Spot, SpotThatCostsMoreThanOnDemandAfterOverheadIsNotOffered) {
  Pool p = MakePool("p");
  p.spot_price_micros_per_node_hour = Usd(9.7);  // x 1.0375 = $10.06 > $10
  JobRequest job = MakeJob();
  job.checkpointable = true;
  Decision d = PlacementEngine().Place(job, MakeSnapshot({p}));
  EXPECT_FALSE(d.chosen.spot);
  EXPECT_TRUE(d.alternatives.empty());
}

TEST(Caps, CheapestOverTheCostCapIsQuoted) {
  JobRequest job = MakeJob();
  job.max_cost_micros = Usd(90);
  Decision d = PlacementEngine().Place(job, MakeSnapshot({MakePool("p")}));
  EXPECT_FALSE(d.feasible);
  EXPECT_FALSE(d.not_now);
  ASSERT_TRUE(d.has_best_over_cap);
  EXPECT_EQ(d.best_over_cap.cost_micros, Usd(100));
  EXPECT_EQ(Rejected(d, kReasonMaxCost), 1);
  EXPECT_THAT(d.summary, HasSubstr("cheapest feasible: $100.00 > cap $90.00"));
}

TEST(Caps, LowestCarbonOverTheCarbonCapIsQuoted) {
  JobRequest job = MakeJob();
  job.max_carbon_mg = Kg(20);
  Decision d = PlacementEngine().Place(job, MakeSnapshot({MakePool("p")}));
  EXPECT_FALSE(d.feasible);
  EXPECT_EQ(Rejected(d, kReasonMaxCarbon), 1);
  ASSERT_TRUE(d.has_best_over_cap);
  EXPECT_EQ(d.best_over_cap.carbon_mg, Kg(22.4));
  EXPECT_THAT(d.summary, HasSubstr("lowest-carbon feasible: 22.40 kg > cap 20.00 kg"));
}

TEST(Caps, WaitingForCleanHoursCanMeetACarbonCap) {
  Snapshot s = MakeSnapshot({MakePool("p")});
  std::vector<double> v = Hourly(96, 100);
  for (int i = 0; i < 10; ++i) v[i] = 500;
  s.zones["Z"] = Series("Z", T0(), v, 300);
  JobRequest job = MakeJob();
  job.mode = Mode::kCheapest;
  job.max_carbon_mg = Kg(10);  // at once: 28 kg; from hour 10: 5.6 kg
  Decision d = PlacementEngine().Place(job, s);
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.start, T0() + absl::Hours(10));
  EXPECT_EQ(d.chosen.carbon_mg, Kg(5.6));
  // Starting at once breaks the cap, so it is not offered as an alternative.
  EXPECT_TRUE(d.alternatives.empty());
}

TEST(Team, BudgetHeadroomRejectsWithTheAmounts) {
  Snapshot s = MakeSnapshot({MakePool("p")});
  s.team.cost_headroom_micros = Usd(50);
  Decision d = PlacementEngine().Place(MakeJob(), s);
  EXPECT_FALSE(d.feasible);
  EXPECT_FALSE(d.not_now);
  EXPECT_EQ(Rejected(d, kReasonTeamBudget), 1);
  EXPECT_THAT(d.summary, HasSubstr("team budget: cheapest needs $100.00, $50.00 left"));
}

TEST(NotNow, CapacityAndFreeQuotaWaitWholeQuotaAndCapsDoNot) {
  struct Case {
    std::string name;
    std::function<void(JobRequest&, Snapshot&)> mutate;
    bool not_now;
    std::string reason;
  };
  for (const Case& c : std::vector<Case>{
           {"pool full", [](JobRequest&, Snapshot&s) { s.pools[0].free_nodes = 0; }, true,
            kReasonCapacity},
           {"quota in use", [](JobRequest&, Snapshot&s) { s.team.gpu_quota_free = 4; }, true,
            kReasonQuota},
           {"quota too small ever", [](JobRequest&, Snapshot&s) { s.team.gpu_quota_total = 4; },
            false, kReasonQuota},
           {"pool full but over the cap anyway",
            [](JobRequest&j, Snapshot&s) {
              s.pools[0].free_nodes = 0;
              j.max_cost_micros = Usd(50);
            },
            false, kReasonMaxCost},
           {"pool too small ever", [](JobRequest&j, Snapshot&) { j.gpus = 64; }, false,
            kReasonGangShape},
       }) {
    Snapshot s = MakeSnapshot({MakePool("p")});
    JobRequest job = MakeJob();
    c.mutate(job, s);
    Decision d = PlacementEngine().Place(job, s);
    EXPECT_FALSE(d.feasible) << c.name;
    EXPECT_EQ(d.not_now, c.not_now) << c.name;
    EXPECT_EQ(Rejected(d, c.reason), 1) << c.name << ": " << d.summary;
    if (c.not_now) {
      EXPECT_THAT(d.summary, HasSubstr("no placement now")) << c.name;
    }
  }
}

TEST(Rejections, EachPoolIsCountedOnceUnderItsFirstNeverReason) {
  std::vector<Pool> pools;
  for (int i = 0; i < 3; ++i) {
    Pool p = MakePool("a100-" + std::to_string(i));
    p.gpu_type = "A100";
    p.region = "eu-west-1";  // also wrong region: counted as gpu_type only
    pools.push_back(p);
  }
  for (int i = 0; i < 2; ++i) {
    Pool p = MakePool("eu-" + std::to_string(i));
    p.region = "eu-west-1";
    pools.push_back(p);
  }
  Pool full = MakePool("full");
  full.free_nodes = 0;
  pools.push_back(full);
  pools.push_back(MakePool("ok"));
  JobRequest job = MakeJob();
  job.gpu_types = {"H100"};
  job.regions = {"us-east-1"};
  Decision d = PlacementEngine().Place(job, MakeSnapshot(pools));
  ASSERT_TRUE(d.feasible);
  EXPECT_EQ(d.chosen.pool_id, "ok");
  EXPECT_EQ(d.pools_considered, 7);
  EXPECT_EQ(Rejected(d, kReasonGpuType), 3);
  EXPECT_EQ(Rejected(d, kReasonRegion), 2);
  EXPECT_EQ(Rejected(d, kReasonCapacity), 1);
  EXPECT_THAT(d.summary, HasSubstr("6 pools rejected: 3 gpu_type, 2 region, 1 capacity"));
}

TEST(Rejections, MalformedJobIsRejectedWithTheField) {
  struct Case {
    std::function<void(JobRequest&)> mutate;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {[](JobRequest& j) { j.gpus = 0; }, "gpus"},
           {[](JobRequest& j) { j.duration = absl::ZeroDuration(); }, "reference_gpu_hours"},
       }) {
    JobRequest job = MakeJob();
    c.mutate(job);
    Decision d = PlacementEngine().Place(job, MakeSnapshot({MakePool("p")}));
    EXPECT_FALSE(d.feasible);
    EXPECT_EQ(Rejected(d, kReasonInvalidJob), 1);
    EXPECT_THAT(d.summary, HasSubstr(c.field));
  }
}

TEST(Packing, SubNodeJobPrefersAPartlyUsedNode) {
  Pool p = MakePool("p");
  p.free_nodes = 1;
  p.free_gpus_on_partial_nodes = {3};
  JobRequest job = MakeJob();
  job.gpus = 2;
  Decision d = PlacementEngine().Place(job, MakeSnapshot({p}));
  ASSERT_TRUE(d.feasible);
  EXPECT_TRUE(d.chosen.on_partial_node);
  job.gpus = 4;
  d = PlacementEngine().Place(job, MakeSnapshot({p}));
  EXPECT_FALSE(d.chosen.on_partial_node);
}

TEST(Alternatives, TopKBoundsTheList) {
  std::vector<Pool> pools;
  for (int i = 0; i < 10; ++i) pools.push_back(MakePool("p" + std::to_string(i), "Z", Usd(10 + i)));
  JobRequest job = MakeJob();
  job.top_k = 3;
  Decision d = PlacementEngine().Place(job, MakeSnapshot(pools));
  ASSERT_EQ(d.alternatives.size(), 3u);
  EXPECT_EQ(d.chosen.pool_id, "p0");
  EXPECT_EQ(d.alternatives[0].pool_id, "p1");
  EXPECT_EQ(d.alternatives[2].pool_id, "p3");
  job.top_k = 0;
  EXPECT_TRUE(PlacementEngine().Place(job, MakeSnapshot(pools)).alternatives.empty());
}

TEST(Robustness, ExtremeTimesAndSlotsStayBoundedAndExact) {
  struct Case {
    std::string name;
    std::function<void(JobRequest&, Snapshot&)> mutate;
    bool feasible;
  };
  for (const Case& c : std::vector<Case>{
           {"infinite horizon",
            [](JobRequest&, Snapshot&s) { s.horizon = absl::InfiniteDuration(); }, true},
           {"negative horizon", [](JobRequest&, Snapshot&s) { s.horizon = -absl::Hours(5); }, true},
           {"deadline in the infinite past",
            [](JobRequest&j, Snapshot&) { j.deadline = absl::InfinitePast(); }, false},
           {"nanosecond slots", [](JobRequest&, Snapshot&s) { s.slot = absl::Nanoseconds(1); },
            true},
           {"zero slot", [](JobRequest&, Snapshot&s) { s.slot = absl::ZeroDuration(); }, true},
           {"not_before far ahead",
            [](JobRequest&j, Snapshot&) { j.not_before = T0() + absl::Hours(24 * 365 * 50); },
            true},
       }) {
    Snapshot s = DipAtFive();
    JobRequest job = MakeJob();
    job.duration = absl::Hours(2);
    job.checkpointable = true;
    c.mutate(job, s);
    Decision d = PlacementEngine().Place(job, s);
    EXPECT_EQ(d.feasible, c.feasible) << c.name << ": " << d.summary;
    if (d.feasible) {
      EXPECT_GE(d.chosen.start, std::max(job.not_before, s.now)) << c.name;
      EXPECT_EQ(d.chosen.runtime, absl::Hours(2)) << c.name;
    }
  }
}

}  // namespace
}  // namespace greenlight::placement
