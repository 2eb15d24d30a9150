// GpuTable: real mlco2 + override files, aliases, cited figures, and broken
// copies that must fail with file:line:column.
#include "services/providers/gpu_table.h"

#include <cmath>
#include <map>

#include "absl/strings/str_replace.h"
#include "common/csv.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/providers/test_util.h"

namespace greenlight::providers {
namespace {

using testing::DataPath;
using ::testing::HasSubstr;
using testing::ReadAll;
using testing::TempDir;

GpuTable Real() {
  auto t = GpuTable::Load(DataPath("gpus/mlco2_gpus.csv"), DataPath("gpu_overrides.csv"));
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : GpuTable();
}

TEST(GpuTable, AliasesResolveToTheCanonicalSkyPilotName) {
  GpuTable t = Real();
  struct Case {
    std::string alias, canonical;
  };
  for (const Case& c : std::vector<Case>{{"A100-80GB", "A100-80GB"},
                                         {"A100 80GB", "A100-80GB"},
                                         {"a100_80gb", "A100-80GB"},
                                         {"A100-80GB-SXM", "A100-80GB"},
                                         {"A100 SXM4 80 GB", "A100-80GB"},
                                         {"Tesla V100", "V100"},
                                         {"v100", "V100"},
                                         {"V100M32", "V100-32GB"},
                                         {"H100 SXM", "H100"},
                                         {"k80", "K80"},
                                         {"p100", "P100"},
                                         {"RTX A6000", "A6000"},
                                         {"A10", "A10"},
                                         {"A10G", "A10G"},
                                         {"Gaudi HL-205", ""},
                                         {"", ""}}) {
    EXPECT_EQ(t.Canonical(c.alias), c.canonical) << c.alias;
  }
  EXPECT_EQ(t.Find("nope"), nullptr);
}

TEST(GpuTable, PowerComesFromMlco2UnlessTheOverrideCitesItsOwn) {
  GpuTable t = Real();
  struct Case {
    std::string gpu;
    double power_w;
    std::string source_part;
  };
  for (const Case& c : std::vector<Case>{
           {"H100", 700, "mlco2"},       // H100 SXM row
           {"A100-80GB", 400, "mlco2"},  // A100 SXM4 80 GB row
           {"A10G", 150, "mlco2"},       // the short upstream row still loads
           {"L4", 72, "mlco2"},
           {"T4", 70, "mlco2"},
           {"V100", 300, "NVIDIA V100 datasheet"},
           {"H200", 700, "H200 datasheet"},
           {"B200", 1000, "B200"},
           {"K80", 150, "half of the 300 W"},
       }) {
    const GpuModel* m = t.Find(c.gpu);
    ASSERT_NE(m, nullptr) << c.gpu;
    EXPECT_DOUBLE_EQ(m->power_w, c.power_w) << c.gpu;
    EXPECT_THAT(m->power_source, HasSubstr(c.source_part)) << c.gpu;
  }
}

TEST(GpuTable, EveryModelHasCitedPowerAndSpeedAndA100IsTheReference) {
  GpuTable t = Real();
  EXPECT_GE(t.Names().size(), 20u);
  for (const std::string& n : t.Names()) {
    const GpuModel* m = t.Find(n);
    ASSERT_NE(m, nullptr);
    EXPECT_FALSE(m->power_source.empty()) << n;
    EXPECT_FALSE(m->speed_source.empty()) << n;
    EXPECT_GT(m->speed, 0) << n;
  }
  EXPECT_DOUBLE_EQ(t.Find("A100")->speed, 1.0);
  // Ordering that any benchmark agrees on.
  EXPECT_LT(t.Find("K80")->speed, t.Find("P100")->speed);
  EXPECT_LT(t.Find("V100")->speed, t.Find("A100")->speed);
  EXPECT_LT(t.Find("A100")->speed, t.Find("H100")->speed);
  EXPECT_LT(t.Find("H100")->speed, t.Find("B200")->speed);
}

// The K80 and P100 speeds are Gavel's measured ratios to V100 (chained to
// A100 through one shared factor), so their ratio must equal Gavel's.
TEST(GpuTable, GavelGpusKeepGavelsMeasuredRatio) {
  auto csv = CsvTable::ReadFile(DataPath("gpus/gavel_isolated_throughputs.csv"));
  ASSERT_TRUE(csv.ok()) << csv.status();
  int c_gpu = *csv->Column("gpu_type"), c_cons = *csv->Column("consolidated");
  int c_job = *csv->Column("job_type"), c_sf = *csv->Column("scale_factor");
  int c_tp = *csv->Column("throughput_steps_per_sec");
  std::map<std::string, std::map<std::string, double>> by_job;
  for (size_t r = 0; r < csv->rows(); ++r) {
    if (csv->Cell(r, c_cons) != "true" || csv->Cell(r, c_sf) != "1") continue;
    by_job[csv->Cell(r, c_job)][csv->Cell(r, c_gpu)] = *csv->Double(r, c_tp);
  }
  auto geomean_ratio = [&](const std::string& a, const std::string& b) {
    double log_sum = 0;
    int n = 0;
    for (auto& [job, tp] : by_job) {
      if (tp.count(a) && tp.count(b) && tp[a] > 0 && tp[b] > 0) {
        log_sum += std::log(tp[a] / tp[b]);
        ++n;
      }
    }
    return std::exp(log_sum / n);
  };
  GpuTable t = Real();
  double gavel = geomean_ratio("k80", "p100");
  double table = t.Find("K80")->speed / t.Find("P100")->speed;
  EXPECT_NEAR(table / gavel, 1.0, 0.03) << "gavel k80/p100=" << gavel << " table=" << table;
}

TEST(GpuTable, WithoutOverridesEachMlco2GpuIsItsOwnModel) {
  auto t = GpuTable::Load(DataPath("gpus/mlco2_gpus.csv"), "");
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_NE(t->Find("Tesla K80"), nullptr);
  EXPECT_DOUBLE_EQ(t->Find("Tesla K80")->power_w, 300);
  EXPECT_EQ(t->Find("Intel Xeon Gold 6148"), nullptr);  // cpu rows are not GPUs
  EXPECT_EQ(t->Find("TPUv3 Chip"), nullptr);
}

TEST(GpuTable, AddRegistersNameAndAliases) {
  GpuTable t;
  t.Add(GpuModel{"X1", 123, 1.5, "test", "test"}, {"Xeno One"});
  ASSERT_NE(t.Find("xeno-one"), nullptr);
  EXPECT_EQ(t.Find("x1")->power_w, 123);
  EXPECT_EQ(t.Names(), std::vector<std::string>{"X1"});
}

TEST(GpuTable, BrokenCopiesFailWithFileLineAndColumn) {
  TempDir dir;
  const std::string mlco2 = ReadAll(DataPath("gpus/mlco2_gpus.csv"));
  const std::string overrides = ReadAll(DataPath("gpu_overrides.csv"));
  ASSERT_FALSE(mlco2.empty());
  ASSERT_FALSE(overrides.empty());
  struct Case {
    std::string name;
    std::string mlco2_text, overrides_text;
    std::vector<std::string> want;  // substrings of the error
  };
  const std::string header = "name,aliases,mlco2_name,power_w,power_source,speed,speed_source\n";
  for (const Case& c : std::vector<Case>{
           {"missing column",
            mlco2,
            absl::StrReplaceAll(overrides, {{",speed,speed_source", ",velocity,speed_source"}}),
            {"overrides.csv:", "missing column 'speed'"}},
           {"bad speed number",
            mlco2,
            header + "\n\nH100,,H100 SXM,,,fast,Lambda\n",
            {"overrides.csv:4:6", "'speed'", "not a number"}},
           {"bad power number",
            mlco2,
            header + "H100,,,7OO,NVIDIA,2.0,Lambda\n",
            {"overrides.csv:2:4", "'power_w'", "not a number"}},
           {"unknown GPU in mlco2",
            mlco2,
            header + "Z9,,Zeta 9000,,,1.0,made up\n",
            {"overrides.csv:2:3", "unknown GPU 'Zeta 9000'"}},
           {"no citation",
            mlco2,
            header + "H100,,,700,,2.0,Lambda\n",
            {"overrides.csv:2:5", "source"}},
           {"empty overrides", mlco2, "", {"overrides.csv:1", "empty file"}},
           {"empty mlco2", "", overrides, {"mlco2.csv:1", "empty file"}},
           {"mlco2 bad tdp",
            absl::StrReplaceAll(mlco2, {{"H100 SXM,gpu,700", "H100 SXM,gpu,seven hundred"}}),
            overrides,
            {"mlco2.csv:2:3", "'tdp_watts'", "not a number"}},
           {"duplicate alias",
            mlco2,
            header + "A,,,1,x,1,x\nB,a,,1,x,1,x\n",
            {"overrides.csv:3:2", "alias 'a'"}},
       }) {
    std::string m = dir.Write("mlco2.csv", c.mlco2_text);
    std::string o = dir.Write("overrides.csv", c.overrides_text);
    auto t = GpuTable::Load(m, o);
    ASSERT_FALSE(t.ok()) << c.name;
    for (const std::string& w : c.want)
      EXPECT_THAT(std::string(t.status().message()), HasSubstr(w)) << c.name;
  }
  auto missing = GpuTable::Load(dir.path() + "/nope.csv", "");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace greenlight::providers
