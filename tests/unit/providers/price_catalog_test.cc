// SkyPilot catalogs: real files of each cloud, the quirks they contain, and
// broken copies that must fail with file:line:column instead of crashing.
#include "services/providers/price_catalog.h"

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

const GpuTable& Gpus() {
  static const GpuTable* t = [] {
    auto r = GpuTable::Load(DataPath("gpus/mlco2_gpus.csv"), DataPath("gpu_overrides.csv"));
    EXPECT_TRUE(r.ok()) << r.status();
    return new GpuTable(r.ok() ? *std::move(r) : GpuTable());
  }();
  return *t;
}

const Pool* FindPool(const std::vector<Pool>& pools, const std::string& id) {
  for (const Pool& p : pools)
    if (p.id == id) return &p;
  return nullptr;
}

std::vector<Pool> LoadOk(const CatalogConfig& c, CatalogStats* stats = nullptr) {
  auto pools = LoadPriceCatalog(c, Gpus(), stats);
  EXPECT_TRUE(pools.ok()) << pools.status();
  return pools.ok() ? *std::move(pools) : std::vector<Pool>{};
}

// Expected figures read by hand from the CSV rows named in each comment.
TEST(LoadPriceCatalog, RealFilesOfEachCloudGiveTheHandCheckedPools) {
  struct Case {
    CatalogConfig catalog;
    std::string id, gpu;
    int gpus;
    int64_t price, spot;
  };
  for (const Case& c : std::vector<Case>{
           // 3 AZ rows at 32.7726; spots 6.7915, 9.6107, 5.0933 -> median 6.7915.
           {{"aws", DataPath("prices/aws_gpu_vms.csv"), ""},
            "aws/us-east-1/p4d.24xlarge",
            "A100",
            8,
            32'772'600,
            6'791'500},
           // GPU rows 33.60609 (spot 18.024) + host a3-highgpu-8g 9.46006 (2.17547).
           {{"gcp", DataPath("prices/gcp_gpu_vms.csv"),
             DataPath("prices/gcp_gpu_host_vms_partial.csv")},
            "gcp/us-central1/a3-highgpu-8g",
            "H100",
            8,
            43'066'150,
            20'199'470},
           // Upstream says 12 GPUs; the VM has 8. Spot equals on-demand -> no spot.
           {{"azure", DataPath("prices/azure_gpu_vms.csv"), ""},
            "azure/eastus/Standard_ND96isr_H100_v5",
            "H100",
            8,
            98'320'000,
            0},
           // Column order differs upstream (SpotPrice before Price): 12.96 / 9.52.
           {{"runpod", DataPath("prices/runpod_gpu_vms_partial.csv"), ""},
            "runpod/CA/8x_A100-80GB_SECURE",
            "A100-80GB",
            8,
            12'960'000,
            9'520'000},
           // Flat price, no spot column values.
           {{"lambda", DataPath("prices/lambda_gpu_vms.csv"), ""},
            "lambda/europe-central-1/gpu_8x_h100_sxm5",
            "H100",
            8,
            23'920'000,
            0},
       }) {
    std::vector<Pool> pools = LoadOk(c.catalog);
    const Pool* p = FindPool(pools, c.id);
    ASSERT_NE(p, nullptr) << c.id;
    EXPECT_EQ(p->gpu_type, c.gpu) << c.id;
    EXPECT_EQ(p->gpus_per_node, c.gpus) << c.id;
    EXPECT_EQ(p->price_micros_per_node_hour, c.price) << c.id;
    EXPECT_EQ(p->spot_price_micros_per_node_hour, c.spot) << c.id;
    EXPECT_GT(p->gpu_power_w, 0) << c.id;
  }
}

TEST(LoadPriceCatalog, RealAwsQuirksAreSkippedCountedAndPoolsAreUnique) {
  CatalogStats stats;
  std::vector<Pool> pools = LoadOk({"aws", DataPath("prices/aws_gpu_vms.csv"), ""}, &stats);
  EXPECT_EQ(stats.rows, 545);
  EXPECT_EQ(stats.empty_price, 7);   // p5e.48xlarge rows have no on-demand price upstream
  EXPECT_EQ(stats.unknown_gpu, 4);   // Gaudi HL-205 and Qualcomm AI100 are not training GPUs here
  EXPECT_EQ(stats.spot_ignored, 7);  // spot equal to on-demand
  std::set<std::string> ids;
  for (const Pool& p : pools) {
    EXPECT_TRUE(ids.insert(p.id).second) << p.id;
    EXPECT_NE(p.instance_type, "p5e.48xlarge");
    EXPECT_LT(p.spot_price_micros_per_node_hour, p.price_micros_per_node_hour) << p.id;
  }
  std::vector<std::string> notes = CatalogNotes("aws", stats);
  EXPECT_THAT(notes, ::testing::Contains(HasSubstr("7 rows without an on-demand price skipped")));
  EXPECT_THAT(notes, ::testing::Contains(HasSubstr("Gaudi HL-205")));
}

TEST(LoadPriceCatalog, GcpRowsWithoutAKnownHostAreSkippedAndReported) {
  CatalogStats stats;
  std::vector<Pool> pools = LoadOk(
      {"gcp", DataPath("prices/gcp_gpu_vms.csv"), DataPath("prices/gcp_gpu_host_vms_partial.csv")},
      &stats);
  EXPECT_GT(stats.host_added, 0);
  EXPECT_GT(stats.no_host_price, 0);
  EXPECT_EQ(stats.spot_ignored, 8);  // H100 spot above on-demand in 2 zones x 4 sizes
  EXPECT_THAT(stats.no_host_gpus, ::testing::Contains("T4x1"));
  EXPECT_THAT(stats.no_host_gpus, ::testing::Contains("B200x8"));
  for (const Pool& p : pools) {
    EXPECT_FALSE(p.instance_type.empty());
    EXPECT_TRUE(p.instance_type.rfind("a2-", 0) == 0 || p.instance_type.rfind("a3-", 0) == 0)
        << p.id;
  }
  // Without the host file nothing can be priced, and that is reported, not an error.
  CatalogStats no_host;
  std::vector<Pool> none = LoadOk({"gcp", DataPath("prices/gcp_gpu_vms.csv"), ""}, &no_host);
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(no_host.no_host_price, 715);
}

TEST(GcpHostMachine, MapsGpuCountsToTheAcceleratorOptimizedFamilies) {
  EXPECT_EQ(GcpHostMachine("A100", 8), "a2-highgpu-8g");
  EXPECT_EQ(GcpHostMachine("A100", 16), "a2-megagpu-16g");
  EXPECT_EQ(GcpHostMachine("A100-80GB", 4), "a2-ultragpu-4g");
  EXPECT_EQ(GcpHostMachine("H100", 1), "a3-highgpu-1g");
  EXPECT_EQ(GcpHostMachine("H100-MEGA", 8), "a3-megagpu-8g");
  EXPECT_EQ(GcpHostMachine("H200", 8), "a3-ultragpu-8g");
  EXPECT_EQ(GcpHostMachine("H100", 3), "");
  EXPECT_EQ(GcpHostMachine("T4", 1), "");
}

constexpr char kHeader[] =
    "InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region,AvailabilityZone\n";

TEST(LoadPriceCatalog, ZonesOfARegionCollapseToOnePool) {
  TempDir dir;
  std::string f = dir.Write("aws.csv", std::string(kHeader) +
                                           "x8,A100 80GB,8.0,10.0,3.0,r1,r1a\n"
                                           "x8,A100-80GB,8.0,10.0,5.0,r1,r1b\n"
                                           "x8,a100-80gb,8.0,10.5,4.0,r1,r1c\n"
                                           "x8,A100-80GB,8.0,10.0,,r1,r1d\n"
                                           "x8,A100-80GB,8.0,9.0,9.5,r2,r2a\n");
  CatalogStats stats;
  std::vector<Pool> pools = LoadOk({"aws", f, ""}, &stats);
  ASSERT_EQ(pools.size(), 2u);
  const Pool* r1 = FindPool(pools, "aws/r1/x8");
  ASSERT_NE(r1, nullptr);
  EXPECT_EQ(r1->gpu_type, "A100-80GB");                       // three spellings, one model
  EXPECT_EQ(r1->price_micros_per_node_hour, 10'500'000);      // highest zone price
  EXPECT_EQ(r1->spot_price_micros_per_node_hour, 4'000'000);  // median of 3, 5, 4
  EXPECT_EQ(stats.ondemand_differs, 1);
  const Pool* r2 = FindPool(pools, "aws/r2/x8");
  ASSERT_NE(r2, nullptr);
  EXPECT_EQ(r2->spot_price_micros_per_node_hour, 0);  // 9.5 > 9.0: dropped
  EXPECT_EQ(stats.spot_ignored, 1);
}

TEST(LoadPriceCatalog, UnknownGpuAndEmptyPriceRowsAreSkippedNotFatal) {
  TempDir dir;
  std::string f = dir.Write("c.csv", std::string(kHeader) +
                                         "a,Warp9000,1,1.0,,r1,z\n"
                                         "b,H100,8,,5.0,r1,z\n"
                                         "c,H100,8,30.0,,r1,z\n");
  CatalogStats stats;
  std::vector<Pool> pools = LoadOk({"aws", f, ""}, &stats);
  ASSERT_EQ(pools.size(), 1u);
  EXPECT_EQ(pools[0].id, "aws/r1/c");
  EXPECT_EQ(stats.unknown_gpu, 1);
  EXPECT_EQ(stats.unknown_gpu_names, std::vector<std::string>{"Warp9000"});
  EXPECT_EQ(stats.empty_price, 1);
}

TEST(LoadPriceCatalog, BrokenCopiesFailWithFileLineAndColumn) {
  TempDir dir;
  const std::string aws = ReadAll(DataPath("prices/aws_gpu_vms.csv"));
  ASSERT_FALSE(aws.empty());
  struct Case {
    std::string name, text;
    std::vector<std::string> want;
  };
  for (const Case& c : std::vector<Case>{
           {"missing column",
            absl::StrReplaceAll(aws, {{",Price,SpotPrice,", ",Cost,SpotPrice,"}}),
            {"broken.csv:1", "missing column 'Price'"}},
           {"bad number",
            std::string(kHeader) + "a,H100,8,12.x,,r1,z\n",
            {"broken.csv:2:4", "'Price'", "not a number"}},
           {"bad count",
            std::string(kHeader) + "a,H100,eight,1,,r1,z\n",
            {"broken.csv:2:3", "AcceleratorCount"}},
           {"fractional count",
            std::string(kHeader) + "a,H100,1.5,1,,r1,z\n",
            {"broken.csv:2:3", "whole number"}},
           {"negative price",
            std::string(kHeader) + "a,H100,8,-1,,r1,z\n",
            {"broken.csv:2:4", "negative"}},
           {"short row",
            std::string(kHeader) + "a,H100,8,1\n",
            {"broken.csv:2:", "expected 7 fields"}},
           {"unterminated quote",
            std::string(kHeader) + "a,\"H100,8,1,,r1,z\n",
            {"broken.csv:2", "unterminated"}},
           {"empty file", "", {"broken.csv:1", "empty file"}},
           {"gpu changes within a pool",
            std::string(kHeader) + "a,H100,8,1,,r1,z1\na,A100,8,1,,r1,z2\n",
            {"broken.csv:3:2", "was 8 x H100"}},
       }) {
    std::string f = dir.Write("broken.csv", c.text);
    auto pools = LoadPriceCatalog({"aws", f, ""}, Gpus(), nullptr);
    ASSERT_FALSE(pools.ok()) << c.name;
    for (const std::string& w : c.want)
      EXPECT_THAT(std::string(pools.status().message()), HasSubstr(w)) << c.name;
  }
  auto missing = LoadPriceCatalog({"aws", dir.path() + "/absent.csv", ""}, Gpus(), nullptr);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace greenlight::providers
