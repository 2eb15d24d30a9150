// CarbonSeries: point lookups, O(1) window integrals against a brute-force
// integral, the annual average outside the series and when stale.
#include "services/providers/carbon_series.h"

#include <random>

#include "gtest/gtest.h"

namespace greenlight::providers {
namespace {

const absl::Time kStart = absl::FromCivil(absl::CivilHour(2026, 1, 5, 0), absl::UTCTimeZone());

CarbonSeries Hourly(std::vector<double> v, double annual = 100) {
  return CarbonSeries("DE", kStart, absl::Hours(1), std::move(v), annual);
}

// Integral by 1-minute steps, the definition the prefix sums must match.
double BruteIntegral(const CarbonSeries& s, absl::Time from, absl::Time to) {
  double total = 0;
  for (absl::Time t = from; t < to; t += absl::Minutes(1)) {
    total += s.At(t) * absl::ToDoubleHours(std::min(to, t + absl::Minutes(1)) - t);
  }
  return total;
}

TEST(CarbonSeries, AtReturnsSlotValueInsideAndAnnualAverageOutside) {
  CarbonSeries s = Hourly({10, 20, 30}, 99);
  struct Case {
    absl::Duration offset;
    double want;
  };
  for (const Case& c : std::vector<Case>{{absl::ZeroDuration(), 10},
                                         {absl::Minutes(59), 10},
                                         {absl::Hours(1), 20},
                                         {absl::Minutes(179), 30},
                                         {absl::Hours(3), 99},
                                         {-absl::Seconds(1), 99},
                                         {-absl::Hours(50), 99}}) {
    EXPECT_DOUBLE_EQ(s.At(kStart + c.offset), c.want) << c.offset;
  }
  EXPECT_EQ(s.end(), kStart + absl::Hours(3));
}

TEST(CarbonSeries, SlotIndexFloorsBeforeTheStart) {
  CarbonSeries s = Hourly({1, 2});
  EXPECT_EQ(s.SlotIndex(kStart), 0);
  EXPECT_EQ(s.SlotIndex(kStart + absl::Minutes(90)), 1);
  EXPECT_EQ(s.SlotIndex(kStart - absl::Minutes(1)), -1);
  EXPECT_EQ(s.SlotIndex(kStart - absl::Hours(1)), -1);
  EXPECT_EQ(s.SlotIndex(kStart - absl::Minutes(61)), -2);
  EXPECT_EQ(s.SlotIndex(kStart + absl::Hours(5)), 5);
}

TEST(CarbonSeries, IntegralMatchesBruteForceOnRandomWindows) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> value(0, 800);
  std::vector<double> v(48);
  for (double& x : v) x = value(rng);
  CarbonSeries s = Hourly(v, 333);
  std::uniform_int_distribution<int> minute(-600, 48 * 60 + 600);
  for (int i = 0; i < 200; ++i) {
    absl::Time a = kStart + absl::Minutes(minute(rng));
    absl::Time b = kStart + absl::Minutes(minute(rng));
    if (b < a) std::swap(a, b);
    EXPECT_NEAR(s.IntegralGkwhHours(a, b), BruteIntegral(s, a, b), 1e-6) << a << " " << b;
    if (a < b) {
      EXPECT_NEAR(s.WindowMean(a, b), BruteIntegral(s, a, b) / absl::ToDoubleHours(b - a), 1e-9);
    }
  }
}

TEST(CarbonSeries, WindowMeanOfPartlyOutsideWindowBlendsTheAnnualAverage) {
  CarbonSeries s = Hourly({200, 200}, 100);
  // 1 h before the start at 100 + 2 h inside at 200 + 1 h after at 100.
  EXPECT_DOUBLE_EQ(s.WindowMean(kStart - absl::Hours(1), kStart + absl::Hours(3)), 150);
  EXPECT_DOUBLE_EQ(s.IntegralGkwhHours(kStart, kStart + absl::Minutes(30)), 100);
  EXPECT_DOUBLE_EQ(s.IntegralGkwhHours(kStart + absl::Hours(1), kStart), 0);
  EXPECT_DOUBLE_EQ(s.WindowMean(kStart, kStart), 200);
}

TEST(CarbonSeries, StaleSeriesAnswersWithTheAnnualAverageEverywhere) {
  CarbonSeries s = Hourly({500, 600, 700}, 250);
  s.set_stale(true);
  EXPECT_DOUBLE_EQ(s.At(kStart + absl::Minutes(90)), 250);
  EXPECT_DOUBLE_EQ(s.WindowMean(kStart, kStart + absl::Hours(3)), 250);
  EXPECT_DOUBLE_EQ(s.IntegralGkwhHours(kStart, kStart + absl::Hours(2)), 500);
  s.set_stale(false);
  EXPECT_DOUBLE_EQ(s.At(kStart + absl::Minutes(90)), 600);
}

TEST(CarbonSeries, EmptyOrStepLessSeriesIsTheAnnualAverage) {
  CarbonSeries empty("X", kStart, absl::Hours(1), {}, 42);
  EXPECT_DOUBLE_EQ(empty.At(kStart), 42);
  EXPECT_DOUBLE_EQ(empty.WindowMean(kStart, kStart + absl::Hours(5)), 42);
  CarbonSeries bad_step("X", kStart, absl::ZeroDuration(), {1, 2, 3}, 42);
  EXPECT_DOUBLE_EQ(bad_step.At(kStart), 42);
  EXPECT_TRUE(bad_step.values().empty());
}

TEST(CarbonSeries, QuarterHourStepIntegratesInHours) {
  CarbonSeries s("GB", kStart, absl::Minutes(15), {100, 200, 300, 400}, 0);
  EXPECT_DOUBLE_EQ(s.IntegralGkwhHours(kStart, kStart + absl::Hours(1)), 250);
  EXPECT_DOUBLE_EQ(s.At(kStart + absl::Minutes(31)), 300);
}

}  // namespace
}  // namespace greenlight::providers
