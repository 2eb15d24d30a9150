// RegionTable: the country/continent columns, known_grid, the pessimistic
// intensity fallbacks, and the located Lambda regions of the shipped data.
#include "services/providers/region_zones.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/providers/test_util.h"

namespace greenlight::providers {
namespace {

using testing::DataPath;
using ::testing::HasSubstr;
using testing::TempDir;

// A small mlco2 impact file: two Japanese regions, one German, one Indian and
// one row ("zz/far") that no mapping row lists.
constexpr char kMlco2[] =
    "provider,region,impact,PUE\n"
    "aws,ap-northeast-1,516,\n"
    "aws,ap-northeast-3,500,1.2\n"
    "aws,eu-central-1,615,\n"
    "aws,ap-south-1,920,\n"
    "zz,far,1500,\n";

constexpr char kZones[] =
    "# comment lines are skipped\n"
    "provider,region,zone,location,country,continent,annual_from,comment\n"
    "aws,ap-northeast-1,aws:ap-northeast-1,Tokyo (Japan),Japan,Asia,,\n"
    "aws,ap-northeast-3,aws:ap-northeast-3,Osaka (Japan),Japan,Asia,,\n"
    "lambda,asia-northeast-1,lambda:asia-northeast-1,Japan,Japan,Asia,aws/ap-northeast-1,\n"
    "aws,eu-central-1,DE,Frankfurt (Germany),Germany,Europe,,\n"
    "lambda,europe-central-1,DE,Germany,Germany,Europe,,series zone without a figure\n"
    "aws,ap-south-1,aws:ap-south-1,Mumbai (India),India,Asia,,\n"
    "lambda,me-west-1,lambda:me-west-1,Israel,Israel,Asia,,no figure\n"
    "lambda,europe-south-1,lambda:europe-south-1,Italy,Italy,Europe,,no figure\n"
    "runpod,XX,runpod:XX,not published,,,,\n";

RegionTable LoadOrDie(const std::string& zones, const std::string& mlco2) {
  auto t = RegionTable::Load(zones, mlco2);
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : RegionTable();
}

TEST(RegionTable, CountryAndContinentColumnsAreReadAndOptional) {
  TempDir dir;
  std::string mlco2 = dir.Write("impact.csv", kMlco2);
  RegionTable with = LoadOrDie(dir.Write("zones.csv", kZones), mlco2);
  // A file written before the two columns existed still loads.
  RegionTable without = LoadOrDie(
      dir.Write("old.csv",
                "provider,region,zone,annual_from\naws,ap-northeast-1,aws:ap-northeast-1,\n"),
      mlco2);
  struct Case {
    const RegionTable* table;
    std::string provider, region, country, continent;
    bool listed;
  };
  for (const Case& c : std::vector<Case>{
           {&with, "aws", "ap-northeast-1", "Japan", "Asia", true},
           {&with, "lambda", "europe-central-1", "Germany", "Europe", true},
           {&with, "runpod", "XX", "", "", true},       // location not published: both empty
           {&with, "aws", "us-east-1", "", "", false},  // not in the file
           {&without, "aws", "ap-northeast-1", "", "", true},
       }) {
    SCOPED_TRACE(c.provider + "/" + c.region);
    RegionInfo info = c.table->Lookup(c.provider, c.region);
    EXPECT_EQ(info.listed, c.listed);
    EXPECT_EQ(info.country, c.country);
    EXPECT_EQ(info.continent, c.continent);
  }
  // The annual figure is unchanged by the new columns.
  EXPECT_DOUBLE_EQ(without.Lookup("aws", "ap-northeast-1").annual_g_per_kwh, 516);
}

TEST(RegionTable, AnUnknownContinentIsAnErrorNamingFileLineColumn) {
  TempDir dir;
  struct Case {
    std::string text, where;
  };
  for (const Case& c : std::vector<Case>{
           {"provider,region,zone,country,continent,annual_from\n"
            "aws,me-south-1,aws:me-south-1,Bahrain,Middle East,\n",
            "zones.csv:2:5"},
           {"provider,region,zone,continent,annual_from\n\naws,x,aws:x,europe,\n",  // case matters
            "zones.csv:3:4"},
       }) {
    auto t = RegionTable::Load(dir.Write("zones.csv", c.text), "");
    ASSERT_FALSE(t.ok()) << c.text;
    std::string msg(t.status().message());
    EXPECT_THAT(msg, HasSubstr(c.where));
    EXPECT_THAT(msg, HasSubstr("unknown continent"));
    EXPECT_THAT(msg, HasSubstr("North America"));  // lists the accepted names
  }
}

TEST(RegionTable, KnownGridMeansAnAnnualFigureOrAGridZone) {
  TempDir dir;
  RegionTable t = LoadOrDie(dir.Write("zones.csv", kZones), dir.Write("impact.csv", kMlco2));
  struct Case {
    std::string provider, region;
    bool known_grid;
  };
  for (const Case& c : std::vector<Case>{
           {"aws", "ap-northeast-1", true},       // own mlco2 row
           {"lambda", "asia-northeast-1", true},  // annual_from
           {"lambda", "europe-central-1", true},  // grid zone DE, no figure
           {"lambda", "me-west-1", false},        // own zone, no figure
           {"runpod", "XX", false},               // location not published
           {"zz", "far", true},                   // unlisted, but mlco2 has it
           {"aws", "us-east-1", false},           // unlisted, no figure
       }) {
    EXPECT_EQ(t.Lookup(c.provider, c.region).known_grid, c.known_grid)
        << c.provider << "/" << c.region;
  }
}

TEST(RegionTable, PessimisticIntensityFallsBackFromCountryToContinentToTable) {
  TempDir dir;
  RegionTable t = LoadOrDie(dir.Write("zones.csv", kZones), dir.Write("impact.csv", kMlco2));
  struct Case {
    std::string country, continent;
    double g;
    std::string basis, from;
  };
  for (const Case& c : std::vector<Case>{
           // Japan: 516 (Tokyo and lambda via annual_from) beats Osaka's 500;
           // the tie goes to the smallest key.
           {"Japan", "Asia", 516, "highest known in Japan", "aws/ap-northeast-1"},
           {"japan", "", 516, "highest known in japan", "aws/ap-northeast-1"},  // case ignored
           // Israel has no figure: the highest in Asia (India).
           {"Israel", "Asia", 920, "highest known in Asia", "aws/ap-south-1"},
           // Italy has none; Europe's only figure is aws eu-central-1. The DE
           // row without a figure (lambda europe-central-1) takes no part.
           {"Italy", "Europe", 615, "highest known in Europe", "aws/eu-central-1"},
           {"", "Europe", 615, "highest known in Europe", "aws/eu-central-1"},
           // Neither known: the whole table, unlisted mlco2 rows included.
           {"Atlantis", "Antarctica", 1500, "highest in the table", "zz/far"},
           {"", "", 1500, "highest in the table", "zz/far"},
       }) {
    SCOPED_TRACE(c.country + " / " + c.continent);
    PessimisticEstimate e = t.PessimisticIntensity(c.country, c.continent);
    EXPECT_DOUBLE_EQ(e.g_per_kwh, c.g);
    EXPECT_EQ(e.basis, c.basis);
    EXPECT_EQ(e.from, c.from);
  }
}

TEST(RegionTable, PessimisticIntensityOfATableWithoutFiguresIsZero) {
  TempDir dir;
  RegionTable t = LoadOrDie(dir.Write("zones.csv", kZones), "");
  PessimisticEstimate e = t.PessimisticIntensity("Japan", "Asia");
  EXPECT_EQ(e.g_per_kwh, 0);
  EXPECT_EQ(e.basis, "no annual figure in the table");
  EXPECT_EQ(e.from, "");
}

// The shipped data: every Lambda region is located (sources in
// data/ATTRIBUTION.md) and resolves to its grid where the location tells it.
TEST(RegionTable, ShippedLambdaRegionsAreLocatedAndResolve) {
  RegionTable t = LoadOrDie(DataPath("region_zones.csv"),
                            DataPath("gpus/mlco2_impact_cloud_region_carbon.csv"));
  struct Case {
    std::string region, zone;
    double annual;  // 0 = no figure (inventory default)
    std::string country, continent;
  };
  const std::string kNA = "North America";
  for (const Case& c : std::vector<Case>{
           {"us-west-1", "US-CAL-CISO", 0, "USA", kNA},             // California: CAISO series
           {"us-west-2", "lambda:us-west-2", 0, "USA", kNA},        // Arizona: no mlco2 figure
           {"us-west-3", "lambda:us-west-3", 272.1, "USA", kNA},    // Utah <- gcp us-west3
           {"us-east-1", "lambda:us-east-1", 367.8, "USA", kNA},    // Virginia <- aws us-east-1
           {"us-east-2", "lambda:us-east-2", 0, "USA", kNA},        // Washington DC: grid unclear
           {"us-east-3", "lambda:us-east-3", 0, "USA", kNA},        // Washington DC: grid unclear
           {"us-midwest-1", "lambda:us-midwest-1", 0, "USA", kNA},  // Illinois: PJM or MISO
           {"us-south-1", "lambda:us-south-1", 460.4, "USA", kNA},  // Texas <- ERCOT figure
           {"us-south-2", "lambda:us-south-2", 460.4, "USA", kNA},
           {"us-south-3", "lambda:us-south-3", 460.4, "USA", kNA},
           {"europe-central-1", "DE", 0, "Germany", "Europe"},  // Germany: DE series
           {"europe-south-1", "lambda:europe-south-1", 0, "Italy", "Europe"},
           {"asia-northeast-1", "lambda:asia-northeast-1", 516, "Japan", "Asia"},
           {"asia-northeast-2", "lambda:asia-northeast-2", 516, "Japan", "Asia"},
           {"asia-south-1", "lambda:asia-south-1", 920, "India", "Asia"},
           {"australia-east-1", "lambda:australia-east-1", 802, "Australia", "Oceania"},
           {"me-west-1", "lambda:me-west-1", 0, "Israel", "Asia"},
       }) {
    SCOPED_TRACE(c.region);
    RegionInfo info = t.Lookup("lambda", c.region);
    EXPECT_TRUE(info.listed);
    EXPECT_EQ(info.zone, c.zone);
    EXPECT_DOUBLE_EQ(info.annual_g_per_kwh, c.annual);
    EXPECT_EQ(info.country, c.country);
    EXPECT_EQ(info.continent, c.continent);
    EXPECT_EQ(info.known_grid, c.annual > 0 || c.zone.find(':') == std::string::npos);
  }
  // On the shipped table the fallbacks answer from real rows.
  EXPECT_EQ(t.PessimisticIntensity("Israel", "Asia").basis, "highest known in Asia");
  EXPECT_DOUBLE_EQ(t.PessimisticIntensity("Israel", "Asia").g_per_kwh, 920);   // India
  EXPECT_DOUBLE_EQ(t.PessimisticIntensity("USA", kNA).g_per_kwh, 736.6);       // azure centralus
  EXPECT_DOUBLE_EQ(t.PessimisticIntensity("Italy", "Europe").g_per_kwh, 623);  // UK rows
  PessimisticEstimate any = t.PessimisticIntensity("", "");
  EXPECT_EQ(any.basis, "highest in the table");
  EXPECT_DOUBLE_EQ(any.g_per_kwh, 1009);  // South Africa
}

}  // namespace
}  // namespace greenlight::providers
