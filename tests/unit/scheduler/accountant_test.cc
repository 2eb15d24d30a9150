// The accountant: run rates, charges split by hour and month at each hour's
// intensity, split-run windows, the `remaining` stop and the job caps.
#include "services/scheduler/accountant.h"

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

absl::Time Utc(int y, int mo, int d, int h, int mi = 0) {
  return absl::FromCivil(absl::CivilMinute(y, mo, d, h, mi), absl::UTCTimeZone());
}

constexpr int64_t kPrice = 1'000'000;  // $1 per node-hour
constexpr double kWatts = 8 * 400 * 1.1;

providers::Pool TestPool() {
  providers::Pool p;
  p.id = "aws/us-east-1/p4d.24xlarge";
  p.gpu_type = "A100";
  p.gpus_per_node = 8;
  p.nodes = 4;
  p.price_micros_per_node_hour = kPrice;
  p.spot_price_micros_per_node_hour = 300'000;
  p.gpu_power_w = 400;
  p.pue = 1.1;
  return p;
}

v1::Job JobOf(int gpus, int nodes = 1, bool spot = false) {
  v1::Job j;
  j.mutable_spec()->set_gpus(gpus);
  j.mutable_placement()->set_nodes(nodes);
  j.mutable_placement()->set_spot(spot);
  return j;
}

// One node of the test pool at its on-demand price.
RunRate OneNode() { return RateOf(JobOf(8), TestPool()); }

std::vector<RunWindow> AllTime() { return RunWindowsOf(v1::Job()); }

TEST(RateOf, WholeNodeSubNodeMultiNodeAndSpot) {
  RunRate whole = RateOf(JobOf(8), TestPool());
  EXPECT_EQ(whole.price_micros_per_node_hour, kPrice);
  EXPECT_DOUBLE_EQ(whole.nodes_paid, 1.0);
  EXPECT_DOUBLE_EQ(whole.watts, kWatts);

  // A sub-node job pays its share of the node and draws its GPUs' power.
  RunRate quarter = RateOf(JobOf(2), TestPool());
  EXPECT_DOUBLE_EQ(quarter.nodes_paid, 0.25);
  EXPECT_DOUBLE_EQ(quarter.watts, 2 * 400 * 1.1);

  RunRate gang = RateOf(JobOf(16, 2), TestPool());
  EXPECT_DOUBLE_EQ(gang.nodes_paid, 2.0);
  EXPECT_DOUBLE_EQ(gang.watts, 16 * 400 * 1.1);

  EXPECT_EQ(RateOf(JobOf(8, 1, /*spot=*/true), TestPool()).price_micros_per_node_hour, 300'000);
  // Spot without a spot price in the pool pays on-demand.
  providers::Pool no_spot = TestPool();
  no_spot.spot_price_micros_per_node_hour = 0;
  EXPECT_EQ(RateOf(JobOf(8, 1, true), no_spot).price_micros_per_node_hour, kPrice);
}

TEST(RunWindowsOf, ContiguousRunsAnyTimeSplitRunsInTheirSlotsThenOpen) {
  std::vector<RunWindow> all = AllTime();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].start, absl::InfinitePast());
  EXPECT_EQ(all[0].end, absl::InfiniteFuture());

  v1::Job one_slot;
  auto* s = one_slot.mutable_placement()->add_slots();
  *s->mutable_start() = ToProto(Utc(2026, 3, 10, 10));
  *s->mutable_end() = ToProto(Utc(2026, 3, 10, 12));
  ASSERT_EQ(RunWindowsOf(one_slot).size(), 1u);
  EXPECT_EQ(RunWindowsOf(one_slot)[0].start, absl::InfinitePast());

  v1::Job split = one_slot;
  auto* s2 = split.mutable_placement()->add_slots();
  *s2->mutable_start() = ToProto(Utc(2026, 3, 10, 14));
  *s2->mutable_end() = ToProto(Utc(2026, 3, 10, 15));
  std::vector<RunWindow> w = RunWindowsOf(split);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0].start, Utc(2026, 3, 10, 10));
  EXPECT_EQ(w[0].end, Utc(2026, 3, 10, 12));
  EXPECT_EQ(w[1].start, Utc(2026, 3, 10, 14));
  EXPECT_EQ(w[1].end, Utc(2026, 3, 10, 15));
  EXPECT_EQ(w[2].start, Utc(2026, 3, 10, 15));
  EXPECT_EQ(w[2].end, absl::InfiniteFuture());
}

TEST(ChargesOver, ARunAcrossMonthEndIsChargedToEachMonthAtItsIntensity) {
  const absl::Time from = Utc(2026, 3, 31, 23, 30), to = Utc(2026, 4, 1, 0, 30);
  const absl::Time april = Utc(2026, 4, 1, 0);
  auto intensity = [&](absl::Time t) { return t < april ? 100.0 : 300.0; };
  Charges c = ChargesOver(OneNode(), AllTime(), from, to, absl::Hours(10), intensity);

  ASSERT_EQ(c.periods.size(), 2u);
  EXPECT_EQ(c.periods[0].period, "2026-03");
  EXPECT_EQ(c.periods[1].period, "2026-04");
  EXPECT_EQ(c.periods[0].at, from);
  EXPECT_EQ(c.periods[1].at, april);
  for (const PeriodCharge& p : c.periods) {
    EXPECT_DOUBLE_EQ(p.cost_micros, kPrice / 2.0) << p.period;
    EXPECT_DOUBLE_EQ(p.energy_wh, kWatts / 2) << p.period;
  }
  EXPECT_DOUBLE_EQ(c.periods[0].carbon_mg, kWatts / 2 * 100);
  EXPECT_DOUBLE_EQ(c.periods[1].carbon_mg, kWatts / 2 * 300);
  EXPECT_EQ(c.computed, absl::Hours(1));
  EXPECT_EQ(c.until, to);
}

TEST(ChargesOver, EachHourPaysItsOwnIntensity) {
  std::vector<absl::Time> asked;
  auto intensity = [&](absl::Time t) {
    asked.push_back(t);
    return absl::ToCivilHour(t, absl::UTCTimeZone()).hour() == 10 ? 100.0 : 400.0;
  };
  const absl::Time from = Utc(2026, 3, 10, 10, 30), to = Utc(2026, 3, 10, 12, 15);
  Charges c = ChargesOver(OneNode(), AllTime(), from, to, absl::Hours(10), intensity);

  // Segments [10:30, 11:00), [11:00, 12:00), [12:00, 12:15).
  EXPECT_THAT(asked, ElementsAre(from, Utc(2026, 3, 10, 11), Utc(2026, 3, 10, 12)));
  ASSERT_EQ(c.periods.size(), 1u);
  EXPECT_EQ(c.periods[0].period, "2026-03");
  EXPECT_EQ(c.periods[0].at, Utc(2026, 3, 10, 12));
  EXPECT_DOUBLE_EQ(c.periods[0].energy_wh, kWatts * 1.75);
  EXPECT_DOUBLE_EQ(c.periods[0].carbon_mg, kWatts * (0.5 * 100 + 1.0 * 400 + 0.25 * 400));
  EXPECT_NEAR(c.periods[0].cost_micros, kPrice * 1.75, 1e-6);
  EXPECT_EQ(c.computed, absl::Minutes(105));
  EXPECT_EQ(c.until, to);
}

TEST(ChargesOver, StopsWhenTheRemainingWorkIsDone) {
  const absl::Time from = Utc(2026, 3, 10, 10);
  Charges c = ChargesOver(OneNode(), AllTime(), from, from + absl::Hours(4), absl::Minutes(90),
                          [](absl::Time) { return 200.0; });
  EXPECT_EQ(c.computed, absl::Minutes(90));
  EXPECT_EQ(c.until, from + absl::Minutes(90));
  ASSERT_EQ(c.periods.size(), 1u);
  EXPECT_NEAR(c.periods[0].cost_micros, kPrice * 1.5, 1e-6);
  EXPECT_DOUBLE_EQ(c.periods[0].carbon_mg, kWatts * 1.5 * 200);

  Charges none = ChargesOver(OneNode(), AllTime(), from, from + absl::Hours(4),
                             absl::ZeroDuration(), [](absl::Time) { return 200.0; });
  EXPECT_THAT(none.periods, IsEmpty());
  EXPECT_EQ(none.computed, absl::ZeroDuration());
  EXPECT_EQ(none.until, from);
}

TEST(ChargesOver, SplitRunsAreChargedOnlyInsideTheirWindows) {
  const std::vector<RunWindow> windows = {
      {Utc(2026, 3, 10, 10), Utc(2026, 3, 10, 11)},
      {Utc(2026, 3, 10, 13), Utc(2026, 3, 10, 14)},
      {Utc(2026, 3, 10, 14), absl::InfiniteFuture()},
  };
  std::vector<absl::Time> asked;
  auto intensity = [&](absl::Time t) {
    asked.push_back(t);
    return 100.0;
  };
  Charges c = ChargesOver(OneNode(), windows, Utc(2026, 3, 10, 10), Utc(2026, 3, 10, 16),
                          absl::Hours(2), intensity);
  EXPECT_EQ(c.computed, absl::Hours(2));
  EXPECT_EQ(c.until, Utc(2026, 3, 10, 14));
  ASSERT_EQ(c.periods.size(), 1u);
  EXPECT_NEAR(c.periods[0].cost_micros, 2.0 * kPrice, 1e-6);
  EXPECT_DOUBLE_EQ(c.periods[0].energy_wh, 2 * kWatts);
  // Nothing was charged between the slots.
  EXPECT_THAT(asked, ElementsAre(Utc(2026, 3, 10, 10), Utc(2026, 3, 10, 13)));

  // An interval wholly between two slots charges nothing but moves on.
  Charges gap = ChargesOver(OneNode(), windows, Utc(2026, 3, 10, 11), Utc(2026, 3, 10, 13),
                            absl::Hours(2), intensity);
  EXPECT_THAT(gap.periods, IsEmpty());
  EXPECT_EQ(gap.computed, absl::ZeroDuration());
  EXPECT_EQ(gap.until, Utc(2026, 3, 10, 13));

  // Work beyond the slots runs in the open window after the last one.
  Charges late = ChargesOver(OneNode(), windows, Utc(2026, 3, 10, 10, 30), Utc(2026, 3, 10, 20),
                             absl::Hours(2), [](absl::Time) { return 100.0; });
  EXPECT_EQ(late.computed, absl::Hours(2));
  EXPECT_EQ(late.until, Utc(2026, 3, 10, 14, 30));
}

TEST(ChargesOver, SubNodeShareAndSpotPriceSetTheCost) {
  const absl::Time from = Utc(2026, 3, 10, 10);
  auto flat = [](absl::Time) { return 100.0; };
  Charges quarter = ChargesOver(RateOf(JobOf(2), TestPool()), AllTime(), from,
                                from + absl::Hours(2), absl::Hours(10), flat);
  ASSERT_EQ(quarter.periods.size(), 1u);
  EXPECT_NEAR(quarter.periods[0].cost_micros, 0.25 * kPrice * 2, 1e-6);
  EXPECT_DOUBLE_EQ(quarter.periods[0].energy_wh, 2 * 400 * 1.1 * 2);

  Charges spot = ChargesOver(RateOf(JobOf(8, 1, true), TestPool()), AllTime(), from,
                             from + absl::Hours(2), absl::Hours(10), flat);
  ASSERT_EQ(spot.periods.size(), 1u);
  EXPECT_NEAR(spot.periods[0].cost_micros, 300'000.0 * 2, 1e-6);
}

v1::JobSpec Caps(int64_t max_cost, int64_t max_carbon) {
  v1::JobSpec s;
  s.set_max_cost_micros(max_cost);
  s.set_max_carbon_mg(max_carbon);
  return s;
}

TEST(CutAtJobCaps, NoCapsOrRoomLeftLetsTheWholeChargeThrough) {
  for (const v1::JobSpec& spec : {Caps(0, 0), Caps(10'000'000, 1'000)}) {
    CapCut cut = CutAtJobCaps(spec, 2'000'000, 100, 4'000'000, 400);
    EXPECT_DOUBLE_EQ(cut.fraction, 1.0);
    EXPECT_FALSE(cut.stop);
    EXPECT_EQ(cut.reason, "");
  }
}

TEST(CutAtJobCaps, TheCostCapCutsTheChargeAndNamesTheCap) {
  CapCut cut = CutAtJobCaps(Caps(10'000'000, 0), 8'000'000, 0, 4'000'000, 500);
  EXPECT_DOUBLE_EQ(cut.fraction, 0.5);
  EXPECT_TRUE(cut.stop);
  EXPECT_THAT(cut.reason, HasSubstr("cost"));
  EXPECT_THAT(cut.reason, HasSubstr("$10.00"));

  // Reaching the cap exactly stops the job with the whole charge.
  CapCut exact = CutAtJobCaps(Caps(10'000'000, 0), 6'000'000, 0, 4'000'000, 500);
  EXPECT_DOUBLE_EQ(exact.fraction, 1.0);
  EXPECT_TRUE(exact.stop);

  // Already over the cap: nothing more.
  CapCut over = CutAtJobCaps(Caps(10'000'000, 0), 11'000'000, 0, 1'000'000, 0);
  EXPECT_DOUBLE_EQ(over.fraction, 0.0);
  EXPECT_TRUE(over.stop);
}

TEST(CutAtJobCaps, TheCarbonCapCutsTheChargeAndNamesTheCap) {
  CapCut cut = CutAtJobCaps(Caps(0, 2'000'000), 0, 1'500'000, 1'000'000, 2'000'000);
  EXPECT_DOUBLE_EQ(cut.fraction, 0.25);
  EXPECT_TRUE(cut.stop);
  EXPECT_THAT(cut.reason, HasSubstr("carbon"));
  EXPECT_THAT(cut.reason, HasSubstr("2.000 kgCO2e"));
}

TEST(CutAtJobCaps, WithBothCapsTheBindingOneNamesTheReason) {
  // Cost leaves half the charge, carbon a quarter: carbon binds.
  CapCut carbon =
      CutAtJobCaps(Caps(10'000'000, 2'000'000), 8'000'000, 1'500'000, 4'000'000, 2'000'000);
  EXPECT_DOUBLE_EQ(carbon.fraction, 0.25);
  EXPECT_TRUE(carbon.stop);
  EXPECT_THAT(carbon.reason, HasSubstr("carbon"));
  EXPECT_THAT(carbon.reason, ::testing::Not(HasSubstr("cost")));

  // Cost leaves a quarter, carbon half: cost binds.
  CapCut cost =
      CutAtJobCaps(Caps(10'000'000, 2'000'000), 9'000'000, 1'000'000, 4'000'000, 2'000'000);
  EXPECT_DOUBLE_EQ(cost.fraction, 0.25);
  EXPECT_TRUE(cost.stop);
  EXPECT_THAT(cost.reason, HasSubstr("cost"));
  EXPECT_THAT(cost.reason, ::testing::Not(HasSubstr("carbon")));

  // Only one cap reached: it names the reason even when checked second.
  CapCut only_carbon =
      CutAtJobCaps(Caps(10'000'000, 2'000'000), 1'000'000, 1'500'000, 1'000'000, 1'000'000);
  EXPECT_DOUBLE_EQ(only_carbon.fraction, 0.5);
  EXPECT_THAT(only_carbon.reason, HasSubstr("carbon"));
}

}  // namespace
}  // namespace greenlight::scheduler
