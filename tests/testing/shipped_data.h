// The real data shipped under data/ (sources and licenses in
// data/ATTRIBUTION.md), named as deploy/config/demo.yaml names it: one
// definition for the tests and benchmarks that load it.
#pragma once

#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/config.h"

namespace greenlight::testing {

// The repository root: $GREENLIGHT_ROOT (ctest sets it), else the source
// directory compiled in (GREENLIGHT_SOURCE_DIR), else the working directory.
inline std::string RepoRoot() {
  if (const char* r = std::getenv("GREENLIGHT_ROOT")) return r;
#ifdef GREENLIGHT_SOURCE_DIR
  return GREENLIGHT_SOURCE_DIR;
#else
  return ".";
#endif
}

inline std::string ShippedDataPath(const std::string& rel) {
  return absl::StrCat(RepoRoot(), "/data/", rel);
}

// Every shipped price catalog, GPU table, region map and hourly series;
// series are not shifted (align_series_to_now is false).
inline Config ShippedDataConfig() {
  Config c;
  c.catalogs = {
      {"aws", ShippedDataPath("prices/aws_gpu_vms.csv"), ""},
      {"gcp", ShippedDataPath("prices/gcp_gpu_vms.csv"),
       ShippedDataPath("prices/gcp_gpu_host_vms_partial.csv")},
      {"azure", ShippedDataPath("prices/azure_gpu_vms.csv"), ""},
      {"lambda", ShippedDataPath("prices/lambda_gpu_vms.csv"), ""},
      {"runpod", ShippedDataPath("prices/runpod_gpu_vms_partial.csv"), ""},
  };
  c.gpu_power_file = ShippedDataPath("gpus/mlco2_gpus.csv");
  c.gpu_overrides_file = ShippedDataPath("gpu_overrides.csv");
  c.region_carbon_file = ShippedDataPath("gpus/mlco2_impact_cloud_region_carbon.csv");
  c.region_zones_file = ShippedDataPath("region_zones.csv");
  c.carbon_series = {
      {"DE", ShippedDataPath("carbon/lwa2020_ger_ci.csv")},
      {"GB", ShippedDataPath("carbon/lwa2020_gb_ci.csv")},
      {"FR", ShippedDataPath("carbon/lwa2020_fr_ci.csv")},
      {"US-CAL-CISO", ShippedDataPath("carbon/emaps_US-CAL-CISO_2022_hourly.csv")},
      {"ES", ShippedDataPath("carbon/emaps_ES_2022_hourly.csv")},
      {"NO", ShippedDataPath("carbon/emaps_NO_2022_hourly.csv")},
      {"BR", ShippedDataPath("carbon/emaps_BR_2022_hourly.csv")},
  };
  return c;
}

}  // namespace greenlight::testing
