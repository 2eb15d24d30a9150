// Live API parsers on the recorded responses in tests/data/providers, and on
// broken bodies that must fail with the JSON path, never crash.
#include "services/providers/live_parsers.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/providers/test_util.h"

namespace greenlight::providers {
namespace {

using ::testing::HasSubstr;
using testing::ReadAll;
using testing::Root;

std::string Recorded(const std::string& name) {
  std::string text = ReadAll(absl::StrCat(Root(), "/tests/data/providers/", name));
  EXPECT_FALSE(text.empty()) << name;
  return text;
}

absl::Time Utc(int y, int m, int d, int h, int min = 0) {
  return absl::FromCivil(absl::CivilMinute(y, m, d, h, min), absl::UTCTimeZone());
}

TEST(ParseElectricityMaps, HistorySkipsNullHoursAndKeepsOrder) {
  auto p = ParseElectricityMaps(Recorded("emaps_v3_history_DE.json"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->zone, "DE");
  EXPECT_EQ(p->points.size(), 23u);  // 24 entries, one carbonIntensity: null
  EXPECT_EQ(p->points.front().t, Utc(2026, 3, 9, 13));
  EXPECT_DOUBLE_EQ(p->points.front().value, 310);
  EXPECT_EQ(p->points.back().t, Utc(2026, 3, 10, 12));
  EXPECT_THAT(p->warnings, ::testing::Contains("estimated points"));
}

TEST(ParseElectricityMaps, LatestIsOnePointAndForecastCarriesUpdatedAt) {
  auto latest = ParseElectricityMaps(Recorded("emaps_v3_latest_DE.json"));
  ASSERT_TRUE(latest.ok()) << latest.status();
  ASSERT_EQ(latest->points.size(), 1u);
  EXPECT_EQ(latest->points[0].t, Utc(2026, 3, 10, 12));
  auto forecast = ParseElectricityMaps(Recorded("emaps_v3_forecast_DE.json"));
  ASSERT_TRUE(forecast.ok()) << forecast.status();
  EXPECT_EQ(forecast->points.size(), 72u);
  EXPECT_EQ(forecast->points.front().t, Utc(2026, 3, 10, 13));
  EXPECT_EQ(forecast->generated_at, Utc(2026, 3, 10, 11, 47));
  EXPECT_EQ(forecast->period, absl::Hours(1));
}

TEST(ParseWattTime, MoerInPoundsPerMegawattHourBecomesGramsPerKilowattHour) {
  auto p = ParseWattTime(Recorded("watttime_v3_forecast_CAISO_NORTH.json"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->zone, "CAISO_NORTH");
  EXPECT_EQ(p->units, "g_co2_per_kwh");
  EXPECT_EQ(p->period, absl::Minutes(5));
  EXPECT_EQ(p->points.size(), 288u);
  EXPECT_EQ(p->generated_at, Utc(2026, 3, 10, 12));
  // First point: 850 + 250 cos((12 - 3) / 24 * 2 pi) lbs/MWh.
  EXPECT_NEAR(p->points[0].value, 673.2 * 0.453592, 1e-9);
  auto h = ParseWattTime(Recorded("watttime_v3_historical_CAISO_NORTH.json"));
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->points.size(), 288u);
  EXPECT_THAT(h->warnings, ::testing::Contains(HasSubstr("EXAMPLE_WARNING")));
}

TEST(ParseWattTime, HistoricalForecastsTakeTheNewest) {
  auto p = ParseWattTime(Recorded("watttime_v3_forecast_historical_CAISO_NORTH.json"));
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->generated_at, Utc(2026, 3, 10, 12));
  ASSERT_EQ(p->points.size(), 12u);
  EXPECT_NEAR(p->points[0].value, 870 * kGramsPerKwhPerLbPerMwh, 1e-9);
}

TEST(ParseWattTime, SignalIndexIsAPercentileNotAnIntensity) {
  auto idx = ParseWattTimeSignalIndex(Recorded("watttime_v3_signal_index_CAISO_NORTH.json"));
  ASSERT_TRUE(idx.ok()) << idx.status();
  EXPECT_EQ(idx->units, "percentile");
  EXPECT_DOUBLE_EQ(idx->points[0].value, 62);
  auto as_intensity = ParseWattTime(Recorded("watttime_v3_signal_index_CAISO_NORTH.json"));
  ASSERT_FALSE(as_intensity.ok());
  EXPECT_THAT(std::string(as_intensity.status().message()), HasSubstr("percentile"));
}

TEST(ParseCarbonAware, ForecastPicksTheRequestedLocation) {
  const std::string body = Recorded("casdk_forecasts_current_westus_eastus.json");
  auto west = ParseCarbonAwareForecast(body, "westus");
  ASSERT_TRUE(west.ok()) << west.status();
  EXPECT_EQ(west->zone, "westus");
  EXPECT_EQ(west->points.size(), 288u);
  EXPECT_EQ(west->period, absl::Minutes(5));
  auto east = ParseCarbonAwareForecast(body, "eastus");
  ASSERT_TRUE(east.ok()) << east.status();
  ASSERT_EQ(east->points.size(), 1u);
  EXPECT_DOUBLE_EQ(east->points[0].value, 401.2);
  EXPECT_EQ(ParseCarbonAwareForecast(body, "mars").status().code(), absl::StatusCode::kNotFound);
  auto hist =
      ParseCarbonAwareEmissions(Recorded("casdk_emissions_bylocation_westus.json"), "westus");
  ASSERT_TRUE(hist.ok()) << hist.status();
  EXPECT_EQ(hist->points.size(), 288u);
  EXPECT_EQ(hist->points.front().t, Utc(2026, 3, 9, 12));
}

TEST(LiveParsers, BrokenBodiesFailWithTheJsonPath) {
  struct Case {
    std::string name;
    std::function<absl::StatusOr<LivePoints>(const std::string&)> parse;
    std::string body, want;
  };
  auto emaps = [](const std::string& b) { return ParseElectricityMaps(b); };
  auto wt = [](const std::string& b) { return ParseWattTime(b); };
  auto ca = [](const std::string& b) { return ParseCarbonAwareForecast(b, ""); };
  for (
      const Case& c : std::vector<Case>{
          {"not json", emaps, "<html>502 Bad Gateway</html>", "not valid JSON"},
          {"empty body", emaps, "", "not valid JSON"},
          {"wrong shape", emaps, "{\"zone\":\"DE\"}", "neither history"},
          {"bad time", emaps,
           R"({"zone":"DE","history":[{"datetime":"yesterday","carbonIntensity":1}]})",
           "history[0].datetime: not a time"},
          {"string value", emaps,
           R"({"zone":"DE","history":[{"datetime":"2026-03-10T00:00:00Z","carbonIntensity":"300"}]})",
           "history[0].carbonIntensity: not a number"},
          {"negative", emaps,
           R"({"zone":"DE","carbonIntensity":-5,"datetime":"2026-03-10T00:00:00Z"})",
           "out of range"},
          {"no meta", wt, R"({"data":[]})", "meta: missing"},
          {"unknown units", wt, R"({"data":[],"meta":{"units":"kg_per_mwh"}})", "kg_per_mwh"},
          {"data not array", wt, R"({"data":{},"meta":{"units":"lbs_co2_per_mwh"}})",
           "data: not an array"},
          {"ca not array", ca, R"({"forecastData":[]})", "not an array"},
          {"ca no data", ca, R"([{"location":"x"}])", "[0].forecastData: missing"},
      }) {
    auto r = c.parse(c.body);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.want)) << c.name;
  }
}

}  // namespace
}  // namespace greenlight::providers
