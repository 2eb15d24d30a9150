// Cloud region -> grid zone, annual average intensity and PUE, from
// data/region_zones.csv and mlco2 impact.csv (rules in docs/PROVIDERS.md).
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace greenlight::providers {

// One row of mlco2 impact.csv.
struct RegionCarbon {
  double impact_g_per_kwh = 0;  // static annual grid average
  double pue = 0;               // 0 = not given
};

struct RegionInfo {
  std::string zone;             // grid zone ("DE") or "provider:region"
  double annual_g_per_kwh = 0;  // 0 = no figure (caller applies its default)
  std::string annual_source;    // "mlco2 aws/us-east-1", "mlco2 azure/... (annual_from)", ""
  double pue = 0;               // mlco2 PUE of the region, 0 = not given
  bool listed = false;          // the region has a row in the mapping file
};

class RegionTable {
 public:
  // Either path may be empty. Errors name file:line:column.
  static absl::StatusOr<RegionTable> Load(const std::string& region_zones_csv,
                                          const std::string& mlco2_impact_csv);
  // Never fails: unlisted regions become their own zone "provider:region".
  RegionInfo Lookup(absl::string_view provider, absl::string_view region) const;
  // mlco2 row of (provider, region), or nullptr.
  const RegionCarbon* Carbon(absl::string_view provider, absl::string_view region) const;

 private:
  struct Row {
    std::string zone;
    std::string annual_from;  // "provider/region" or ""
  };
  static std::string Key(absl::string_view provider, absl::string_view region);
  absl::flat_hash_map<std::string, Row> rows_;             // "provider/region" -> row
  absl::flat_hash_map<std::string, RegionCarbon> carbon_;  // "provider/region" -> mlco2
};

}  // namespace greenlight::providers
