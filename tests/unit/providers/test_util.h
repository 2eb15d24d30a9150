// Shared helpers for the providers tests: repo paths and temp files.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "gtest/gtest.h"

namespace greenlight::providers::testing {

inline std::string Root() {
  const char* r = std::getenv("GREENLIGHT_ROOT");
  return r ? r : ".";
}
inline std::string DataPath(const std::string& rel) { return absl::StrCat(Root(), "/data/", rel); }

// A fresh directory under the test temp dir, removed by the destructor.
class TempDir {
 public:
  TempDir() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            absl::StrCat("gl_providers_", info ? info->name() : "x", "_", ::getpid());
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& text) const {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The shipped data, as a demo config would name it.
inline Config RealDataConfig() {
  Config c;
  c.catalogs = {
      {"aws", DataPath("prices/aws_gpu_vms.csv"), ""},
      {"gcp", DataPath("prices/gcp_gpu_vms.csv"), DataPath("prices/gcp_gpu_host_vms_partial.csv")},
      {"azure", DataPath("prices/azure_gpu_vms.csv"), ""},
      {"lambda", DataPath("prices/lambda_gpu_vms.csv"), ""},
      {"runpod", DataPath("prices/runpod_gpu_vms_partial.csv"), ""},
  };
  c.gpu_power_file = DataPath("gpus/mlco2_gpus.csv");
  c.gpu_overrides_file = DataPath("gpu_overrides.csv");
  c.region_carbon_file = DataPath("gpus/mlco2_impact_cloud_region_carbon.csv");
  c.region_zones_file = DataPath("region_zones.csv");
  c.carbon_series = {
      {"DE", DataPath("carbon/lwa2020_ger_ci.csv")},
      {"GB", DataPath("carbon/lwa2020_gb_ci.csv")},
      {"FR", DataPath("carbon/lwa2020_fr_ci.csv")},
      {"US-CAL-CISO", DataPath("carbon/emaps_US-CAL-CISO_2022_hourly.csv")},
      {"ES", DataPath("carbon/emaps_ES_2022_hourly.csv")},
      {"NO", DataPath("carbon/emaps_NO_2022_hourly.csv")},
      {"BR", DataPath("carbon/emaps_BR_2022_hourly.csv")},
  };
  return c;
}

}  // namespace greenlight::providers::testing
