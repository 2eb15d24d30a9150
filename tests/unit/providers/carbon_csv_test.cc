// Carbon series CSVs: both real formats, the resampling rule, the published
// 2020 means of the LWA paper, alignment to now, and broken copies.
#include "services/providers/carbon_csv.h"

#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/providers/test_util.h"

namespace greenlight::providers {
namespace {

using testing::DataPath;
using ::testing::HasSubstr;
using testing::ReadAll;
using testing::TempDir;

absl::Time Utc(int y, int m, int d, int h = 0, int min = 0) {
  return absl::FromCivil(absl::CivilMinute(y, m, d, h, min), absl::UTCTimeZone());
}

CarbonSeries AsSeries(const LoadedSeries& s) {
  return CarbonSeries("Z", s.start, absl::Hours(1), s.values, s.mean);
}

// Let's Wait Awhile's analysis notebook reports these 2020 means (from the
// rows with minute % 30 == 0); averaging every sample into hourly slots must
// land within 0.5% of them.
TEST(LoadCarbonCsv, LetsWaitAwhileFilesReproduceThePublished2020Means) {
  struct Case {
    std::string file;
    double mean_2020;
  };
  for (const Case& c : std::vector<Case>{{"carbon/lwa2020_ger_ci.csv", 313.4},
                                         {"carbon/lwa2020_gb_ci.csv", 212.9},
                                         {"carbon/lwa2020_fr_ci.csv", 56.3}}) {
    auto s = LoadCarbonCsv(DataPath(c.file), ResampleOptions{});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->format, "lwa");
    EXPECT_EQ(s->start, Utc(2019, 12, 20));
    double mean = AsSeries(*s).WindowMean(Utc(2020, 1, 1), Utc(2021, 1, 1));
    EXPECT_NEAR(mean / c.mean_2020, 1.0, 0.005) << c.file << " mean " << mean;
  }
}

TEST(LoadCarbonCsv, GermanQuarterHoursAreAveragedIntoHours) {
  auto s = LoadCarbonCsv(DataPath("carbon/lwa2020_ger_ci.csv"), ResampleOptions{});
  ASSERT_TRUE(s.ok()) << s.status();
  // First hour: rows 00:00, 00:15, 00:30, 00:45 of 2019-12-20.
  const double want =
      (218.29003068829462 + 217.8834341330206 + 217.49442613204167 + 217.60302457466918) / 4;
  EXPECT_NEAR(s->values[0], want, 1e-9);
  EXPECT_EQ(s->stats.samples, 37147);
  EXPECT_EQ(s->values.size(), static_cast<size_t>(s->stats.slots));
}

TEST(LoadCarbonCsv, ElectricityMapsUsesTheLcaColumnUnlessToldOtherwise) {
  auto lca = LoadCarbonCsv(DataPath("carbon/emaps_ES_2022_hourly.csv"), ResampleOptions{});
  ASSERT_TRUE(lca.ok()) << lca.status();
  EXPECT_EQ(lca->format, "emaps-lca");
  EXPECT_EQ(lca->start, Utc(2022, 1, 1));
  EXPECT_EQ(lca->values.size(), 8760u);
  EXPECT_DOUBLE_EQ(lca->values[0], 175.54);
  EXPECT_DOUBLE_EQ(lca->values[1], 181.54);
  auto direct = LoadCarbonCsv(DataPath("carbon/emaps_ES_2022_hourly.csv"), ResampleOptions{},
                              EmapsColumn::kDirect);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_DOUBLE_EQ(direct->values[0], 133.64);
  EXPECT_EQ(lca->stats.interpolated_slots + lca->stats.fallback_slots, 0);
}

TEST(LoadCarbonCsv, EveryShippedSeriesLoadsHourlyWithoutLongGaps) {
  for (const char* f :
       {"carbon/lwa2020_ger_ci.csv", "carbon/lwa2020_gb_ci.csv", "carbon/lwa2020_fr_ci.csv",
        "carbon/lwa2025_cal_ci.csv", "carbon/emaps_US-CAL-CISO_2022_hourly.csv",
        "carbon/emaps_ES_2022_hourly.csv", "carbon/emaps_NO_2022_hourly.csv",
        "carbon/emaps_BR_2022_hourly.csv"}) {
    auto s = LoadCarbonCsv(DataPath(f), ResampleOptions{});
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_GT(s->values.size(), 8700u) << f;
    EXPECT_GT(s->mean, 10) << f;
    EXPECT_EQ(s->stats.fallback_slots, 0) << f;
    for (double v : s->values) ASSERT_GE(v, 0) << f;
  }
}

TEST(Resample, AveragesSlotsInterpolatesShortGapsAndFallsBackOnLongOnes) {
  const absl::Time t0 = Utc(2026, 1, 1);
  auto at = [&](double h) { return t0 + absl::Minutes(static_cast<int64_t>(h * 60)); };
  std::vector<SeriesPoint> pts = {
      {at(0.5), 200}, {at(0), 100},  // slot 0: mean 150 (unsorted input)
      {at(1), 300},   {at(1), 500},  // slot 1: duplicates averaged -> 400
      {at(5), 800},                  // slots 2..4 empty: 3 h gap, interpolated
      {at(16), 100},                 // slots 6..15 empty: 10 h gap -> fallback
  };
  ResampleOptions opt;
  opt.fallback = 42;
  absl::Time start;
  ResampleStats stats;
  std::vector<double> v = Resample(pts, opt, &start, &stats);
  EXPECT_EQ(start, t0);
  ASSERT_EQ(v.size(), 17u);
  EXPECT_DOUBLE_EQ(v[0], 150);
  EXPECT_DOUBLE_EQ(v[1], 400);
  EXPECT_DOUBLE_EQ(v[2], 500);
  EXPECT_DOUBLE_EQ(v[3], 600);
  EXPECT_DOUBLE_EQ(v[4], 700);
  EXPECT_DOUBLE_EQ(v[5], 800);
  for (int i = 6; i < 16; ++i) EXPECT_DOUBLE_EQ(v[i], 42) << i;
  EXPECT_DOUBLE_EQ(v[16], 100);
  EXPECT_EQ(stats.interpolated_slots, 3);
  EXPECT_EQ(stats.fallback_slots, 10);
  EXPECT_EQ(stats.duplicate_samples, 1);
  // Without a fallback the long gap takes the mean of the slots with data.
  opt.fallback = 0;
  v = Resample(pts, opt, &start, &stats);
  EXPECT_DOUBLE_EQ(v[10], (150 + 400 + 800 + 100) / 4.0);
}

TEST(Resample, StartsOnAStepBoundary) {
  absl::Time start;
  std::vector<double> v =
      Resample({{Utc(2026, 1, 1, 3, 40), 10}}, ResampleOptions{}, &start, nullptr);
  EXPECT_EQ(start, Utc(2026, 1, 1, 3));
  EXPECT_EQ(v, std::vector<double>{10});
}

TEST(ParseSeriesTime, AcceptsTheShippedAndApiFormats) {
  absl::Time t;
  for (const char* s :
       {"2020-01-01 00:00:00", "2020-01-01 00:00", "2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00+00:00", "2020-01-01T01:00:00+01:00", "2020-01-01T00:00:00.000Z"}) {
    ASSERT_TRUE(ParseSeriesTime(s, &t)) << s;
    EXPECT_EQ(t, Utc(2020, 1, 1)) << s;
  }
  EXPECT_FALSE(ParseSeriesTime("01/01/2020", &t));
  EXPECT_FALSE(ParseSeriesTime("", &t));
}

TEST(LoadCarbonCsv, BrokenCopiesFailWithFileLineAndColumn) {
  TempDir dir;
  const std::string lwa = ReadAll(DataPath("carbon/lwa2020_fr_ci.csv"));
  ASSERT_FALSE(lwa.empty());
  struct Case {
    std::string name, text;
    std::vector<std::string> want;
  };
  for (const Case& c : std::vector<Case>{
           {"missing value column",
            absl::StrReplaceAll(lwa, {{"Time,Carbon Intensity", "Time,CI"}}),
            {"bad.csv:1", "missing column 'Carbon Intensity'"}},
           {"missing time column",
            "When,Carbon Intensity\n2020-01-01 00:00:00,1\n",
            {"bad.csv:1", "'Time'"}},
           {"bad number",
            "Time,Carbon Intensity\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,12,5\n",
            {"bad.csv:3", "expected 2 fields"}},
           {"not a number",
            "Time,Carbon Intensity\n2020-01-01 00:00:00,1\n2020-01-01 01:00:00,twelve\n",
            {"bad.csv:3:2", "'Carbon Intensity'", "not a number"}},
           {"bad time",
            "Time,Carbon Intensity\n2020-13-45 00:00:00,1\n",
            {"bad.csv:2:1", "not a time"}},
           {"negative",
            "Time,Carbon Intensity\n2020-01-01 00:00:00,-3\n",
            {"bad.csv:2:2", "[0, 5000]"}},
           {"empty file", "", {"bad.csv:1", "empty file"}},
           {"header only", "Time,Carbon Intensity\n", {"bad.csv", "no samples"}},
           {"emaps without LCA",
            "Datetime (UTC),Carbon Intensity gCO₂eq/kWh (direct)\n2022-01-01 00:00:00,1\n",
            {"bad.csv:1", "(LCA)"}},
           {"absurd span",
            "Time,Carbon Intensity\n2020-01-01 00:00:00,1\n2920-01-01 00:00:00,1\n",
            {"bad.csv", "20 years"}},
       }) {
    std::string f = dir.Write("bad.csv", c.text);
    auto s = LoadCarbonCsv(f, ResampleOptions{});
    ASSERT_FALSE(s.ok()) << c.name;
    for (const std::string& w : c.want)
      EXPECT_THAT(std::string(s.status().message()), HasSubstr(w)) << c.name;
  }
}

TEST(AlignmentShift, WholeWeeksThatCoverNowOnAboutTheSameDayOfYear) {
  struct Case {
    absl::Time start, end, now;
  };
  for (const Case& c : std::vector<Case>{
           {Utc(2019, 12, 20), Utc(2021, 1, 10), Utc(2026, 3, 10, 12)},  // LWA 2020
           {Utc(2022, 1, 1), Utc(2023, 1, 1), Utc(2026, 11, 28, 7)},     // Electricity Maps 2022
           {Utc(2022, 1, 1), Utc(2023, 1, 1), Utc(2026, 1, 2)},          // early January
           {Utc(2025, 1, 1), Utc(2026, 1, 7), Utc(2025, 6, 1)},          // already covers now
       }) {
    absl::Duration shift = AlignmentShift(c.start, c.end, c.now);
    EXPECT_EQ(shift % absl::Hours(24 * 7), absl::ZeroDuration()) << c.now;
    EXPECT_LE(c.start + shift, c.now) << c.now;
    EXPECT_LT(c.now, c.end + shift) << c.now;
    // The weekday of `now` in the series equals the real weekday.
    absl::CivilDay real = absl::ToCivilDay(c.now, absl::UTCTimeZone());
    absl::CivilDay in_series = absl::ToCivilDay(c.now - shift, absl::UTCTimeZone());
    EXPECT_EQ(absl::GetWeekday(real), absl::GetWeekday(in_series));
  }
  // Day of year moves by at most half a week plus leap-year drift.
  absl::Time now = Utc(2026, 3, 10, 12);
  absl::Duration shift = AlignmentShift(Utc(2019, 12, 20), Utc(2021, 1, 10), now);
  absl::CivilDay same_day_2020(2020, 3, 10);
  absl::CivilDay mapped = absl::ToCivilDay(now - shift, absl::UTCTimeZone());
  EXPECT_LE(std::abs(mapped - same_day_2020), 5);
  EXPECT_EQ(AlignmentShift(Utc(2025, 1, 1), Utc(2026, 1, 7), Utc(2025, 6, 1)),
            absl::ZeroDuration());
}

}  // namespace
}  // namespace greenlight::providers
