// LoadInventory on the shipped data: every pool priced, powered and zoned.
#include "services/providers/inventory.h"

#include <iostream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/providers/test_util.h"

namespace greenlight::providers {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using testing::RealDataConfig;

const absl::Time kNow = absl::FromCivil(absl::CivilHour(2026, 3, 10, 12), absl::UTCTimeZone());

TEST(LoadInventory, RealDataGivesPricedPoweredZonedPools) {
  auto inv = LoadInventory(RealDataConfig(), kNow);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_GT(inv->pools.size(), 200u);
  for (const Pool& p : inv->pools) {
    SCOPED_TRACE(p.id);
    EXPECT_EQ(p.id, absl::StrCat(p.provider, "/", p.region, "/", p.instance_type));
    EXPECT_GT(p.price_micros_per_node_hour, 0);
    EXPECT_LT(p.spot_price_micros_per_node_hour, p.price_micros_per_node_hour);
    EXPECT_GT(p.gpus_per_node, 0);
    EXPECT_LE(p.gpus_per_node, 16);
    EXPECT_GT(p.gpu_power_w, 0);
    EXPECT_GE(p.pue, 1.0);
    EXPECT_GT(p.speed, 0);
    EXPECT_EQ(p.nodes, 4);
    EXPECT_EQ(p.free_nodes, 4);
    ASSERT_TRUE(inv->zones.contains(p.zone));
    EXPECT_GT(inv->zones.at(p.zone)->annual_average(), 0);
  }
  std::set<std::string> ids;
  std::map<std::string, int> per_provider;
  for (const Pool& p : inv->pools) {
    EXPECT_TRUE(ids.insert(p.id).second) << p.id;
    ++per_provider[p.provider];
  }
  // Summary for docs/PROVIDERS.md.
  for (const auto& [provider, n] : per_provider)
    std::cout << "pools " << provider << ": " << n << "\n";
  for (const std::string& n : inv->notes) std::cout << "note: " << n << "\n";
  EXPECT_THAT(inv->notes, Contains(HasSubstr("aws: 7 rows without an on-demand price skipped")));
  EXPECT_THAT(inv->notes, Contains(HasSubstr("GPU-only rows skipped, no host VM price")));
  EXPECT_THAT(inv->notes,
              Contains(HasSubstr("azure: 3 rows with a known wrong GPU count corrected")));
  EXPECT_THAT(inv->notes, Contains(HasSubstr("zones have an unknown grid")));
}

TEST(LoadInventory, RegionsMapToTheirGridZoneAndPue) {
  auto inv = LoadInventory(RealDataConfig(), kNow);
  ASSERT_TRUE(inv.ok()) << inv.status();
  auto pool = [&](const std::string& id) -> const Pool* {
    for (const Pool& p : inv->pools)
      if (p.id == id) return &p;
    return nullptr;
  };
  struct Case {
    std::string id, zone;
    double pue;
  };
  for (const Case& c : std::vector<Case>{
           {"aws/eu-central-1/p4d.24xlarge", "DE", kHyperscalerPue},
           {"aws/eu-west-2/p3.2xlarge", "GB", kHyperscalerPue},
           {"aws/us-west-1/g4dn.xlarge", "US-CAL-CISO", kHyperscalerPue},
           {"gcp/europe-west4/a2-highgpu-8g", "gcp:europe-west4", 1.09},  // mlco2 PUE
           {"gcp/us-central1/a3-highgpu-8g", "gcp:us-central1", 1.11},
           {"aws/eu-north-1/g5.xlarge", "aws:eu-north-1", kHyperscalerPue},  // Stockholm is not NO
           {"azure/westus/Standard_NC24ads_A100_v4", "US-CAL-CISO", kHyperscalerPue},
           {"lambda/us-east-1/gpu_8x_h100_sxm5", "lambda:us-east-1", kColocationPue},
           {"lambda/us-west-1/gpu_8x_h100_sxm5", "US-CAL-CISO", kColocationPue},  // California
           {"lambda/europe-central-1/gpu_8x_h100_sxm5", "DE", kColocationPue},    // Germany
           {"runpod/NO/8x_A100-80GB_SECURE", "runpod:NO", kColocationPue},
       }) {
    const Pool* p = pool(c.id);
    ASSERT_NE(p, nullptr) << c.id;
    EXPECT_EQ(p->zone, c.zone) << c.id;
    EXPECT_DOUBLE_EQ(p->pue, c.pue) << c.id;
  }
  // Zones without a series carry the region's mlco2 annual average.
  EXPECT_DOUBLE_EQ(inv->zones.at("aws:us-east-1")->annual_average(), 367.8);
  EXPECT_DOUBLE_EQ(inv->zones.at("gcp:us-east5")->annual_average(),
                   568.2);  // annual_from aws/us-east-2
  EXPECT_TRUE(inv->zones.at("aws:us-east-1")->values().empty());
  // Lambda us-east-1 is in Virginia: annual_from aws/us-east-1.
  EXPECT_DOUBLE_EQ(inv->zones.at("lambda:us-east-1")->annual_average(), 367.8);
  EXPECT_FALSE(inv->zones.at("lambda:us-east-1")->unknown_grid());
  // Israel has no figure: an unknown grid, priced pessimistically by default
  // at the highest annual average known in Asia.
  const auto& israel = *inv->zones.at("lambda:me-west-1");
  EXPECT_TRUE(israel.unknown_grid());
  EXPECT_EQ(israel.unknown_basis(), "highest known in Asia");
  EXPECT_GT(israel.annual_average(), inv->default_intensity_g_per_kwh);
  EXPECT_THAT(israel.source(), HasSubstr("unknown grid"));
}

TEST(LoadInventory, AlignedSeriesCoverNowAndKeepTheirValues) {
  Config c = RealDataConfig();
  auto inv = LoadInventory(c, kNow);
  ASSERT_TRUE(inv.ok()) << inv.status();
  for (const char* zone : {"DE", "GB", "FR", "US-CAL-CISO", "ES", "NO", "BR"}) {
    const CarbonSeries& s = *inv->zones.at(zone);
    EXPECT_LE(s.start(), kNow) << zone;
    EXPECT_GT(s.end(), kNow + absl::Hours(168)) << zone;
    EXPECT_EQ(s.step(), absl::Hours(1)) << zone;
    EXPECT_THAT(s.source(), HasSubstr("shifted")) << zone;
  }
  c.align_series_to_now = false;
  auto raw = LoadInventory(c, kNow);
  ASSERT_TRUE(raw.ok()) << raw.status();
  const CarbonSeries& de = *raw->zones.at("DE");
  EXPECT_EQ(de.start(), absl::FromCivil(absl::CivilDay(2019, 12, 20), absl::UTCTimeZone()));
  EXPECT_EQ(de.values(), inv->zones.at("DE")->values());
  EXPECT_NEAR(de.annual_average(), 313, 5);
}

TEST(LoadInventory, FiltersKeepOnlyTheNamedGpuTypesAndProviders) {
  Config c = RealDataConfig();
  c.gpu_types = {"A100 80GB", "h100"};
  c.providers = {"AWS", "gcp"};
  c.nodes_per_pool = 7;
  auto inv = LoadInventory(c, kNow);
  ASSERT_TRUE(inv.ok()) << inv.status();
  ASSERT_FALSE(inv->pools.empty());
  std::set<std::string> gpus, providers;
  for (const Pool& p : inv->pools) {
    gpus.insert(p.gpu_type);
    providers.insert(p.provider);
    EXPECT_EQ(p.nodes, 7);
  }
  EXPECT_EQ(gpus, (std::set<std::string>{"A100-80GB", "H100"}));
  EXPECT_EQ(providers, (std::set<std::string>{"aws", "gcp"}));

  c.gpu_types = {"Warp9000"};
  auto bad = LoadInventory(c, kNow);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("data.gpu_types: unknown GPU 'Warp9000'"));
}

TEST(LoadInventory, ErrorsOfAnyInputFilePropagateWithTheirLocation) {
  testing::TempDir dir;
  Config c = RealDataConfig();
  c.carbon_series.push_back({"DE", testing::DataPath("carbon/lwa2020_ger_ci.csv")});
  auto dup = LoadInventory(c, kNow);
  ASSERT_FALSE(dup.ok());
  EXPECT_THAT(std::string(dup.status().message()), HasSubstr("data.carbon_series[7].zone"));

  c = RealDataConfig();
  c.region_zones_file =
      dir.Write("zones.csv", "provider,region,zone,annual_from\naws,us-east-1,X,gcp/nowhere\n");
  auto zones = LoadInventory(c, kNow);
  ASSERT_FALSE(zones.ok());
  EXPECT_THAT(std::string(zones.status().message()), HasSubstr("zones.csv:2:4"));

  c = RealDataConfig();
  c.catalogs[0].file = dir.Write("aws.csv", "InstanceType,AcceleratorName\n");
  auto cat = LoadInventory(c, kNow);
  ASSERT_FALSE(cat.ok());
  EXPECT_THAT(std::string(cat.status().message()),
              HasSubstr("aws.csv:1: missing column 'AcceleratorCount'"));

  c = RealDataConfig();
  c.carbon_series[0].file = dir.Write("de.csv", "Time,Carbon Intensity\n2020-01-01 00:00:00,abc\n");
  auto series = LoadInventory(c, kNow);
  ASSERT_FALSE(series.ok());
  EXPECT_THAT(std::string(series.status().message()), HasSubstr("de.csv:2:2"));
}

TEST(LoadInventory, EmptyConfigGivesAnEmptyInventory) {
  auto inv = LoadInventory(Config{}, kNow);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->pools.empty());
  EXPECT_TRUE(inv->zones.empty());
}

}  // namespace
}  // namespace greenlight::providers

namespace greenlight::providers {
namespace {

// The shipped demo config names the shipped data; it must load as is.
TEST(LoadInventory, TheDemoConfigLoads) {
  auto config = LoadConfig(absl::StrCat(testing::Root(), "/deploy/config/demo.yaml"));
  ASSERT_TRUE(config.ok()) << config.status();
  auto inv = LoadInventory(*config, kNow);
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_GT(inv->pools.size(), 100u);
  for (const Pool& p : inv->pools) ASSERT_TRUE(inv->zones.contains(p.zone)) << p.id;
}

}  // namespace
}  // namespace greenlight::providers
