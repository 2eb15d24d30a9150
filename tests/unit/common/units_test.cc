#include "common/units.h"

#include "gtest/gtest.h"

namespace greenlight {
namespace {

TEST(Money, ConvertsUsdToMicrosAndBack) {
  EXPECT_EQ(Money::FromUsd(12.5).micros(), 12'500'000);
  EXPECT_EQ(Money::FromMicros(1'234'560'000).ToString(), "$1234.56");
}

TEST(Money, SaturatesInsteadOfWrapping) {
  Money big = Money::FromMicros(std::numeric_limits<int64_t>::max() - 1);
  EXPECT_EQ((big + Money::FromMicros(10)).micros(), std::numeric_limits<int64_t>::max());
}

TEST(Carbon, WattHoursTimesIntensityIsMilligrams) {
  // 1 kWh at 400 g/kWh = 400 g = 400,000 mg.
  EXPECT_DOUBLE_EQ(MgFromWhAndIntensity(1000, 400), 400'000);
  EXPECT_EQ(Carbon::FromKg(1.5).mg(), 1'500'000);
}

TEST(Carbon, CarbonPriceConvertsTonnesToMicros) {
  // 1 tonne at $100/t = $100 = 1e8 micros.
  EXPECT_DOUBLE_EQ(CarbonCostMicros(1'000'000'000, 100'000'000), 1e8);
}

}  // namespace
}  // namespace greenlight
