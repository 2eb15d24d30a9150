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
  std::string country;          // "Japan", "USA"; "" = not published / not listed
  std::string continent;        // one of kContinents; "" = not published / not listed
  // The table knows the region's grid: it has an annual figure, or it maps to a
  // grid zone id (no ':' in it, e.g. "DE", "US-CAL-CISO") rather than to its own
  // "provider:region" zone. A grid zone's hourly series is configured in the
  // inventory, not here: a zone id without a configured series still counts.
  bool known_grid = false;
};

// The continent names region_zones.csv accepts (the Middle East is Asia).
inline constexpr const char* kContinents[] = {"Africa",        "Asia",    "Europe",
                                              "North America", "Oceania", "South America"};

// A conservative intensity for a region whose grid is unknown.
struct PessimisticEstimate {
  double g_per_kwh = 0;  // 0 only when the table holds no annual figure at all
  std::string basis;     // "highest known in Japan", "highest known in Asia",
                         // "highest in the table", "no annual figure in the table"
  std::string from;      // "provider/region" whose figure it is ("" when g_per_kwh is 0)
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
  // The highest annual average (g/kWh) among the listed regions with a figure
  // (own mlco2 row or annual_from) whose country equals `country` (ASCII case
  // ignored); else among those of `continent`; else the highest figure of the
  // whole table, mlco2 rows included. An empty argument skips its step. Rows
  // mapped to a series zone (DE, GB, US-CAL-CISO, ...) without an mlco2 figure
  // have no annual figure here and take no part. Ties go to the smallest
  // "provider/region", so the answer does not depend on hash order.
  PessimisticEstimate PessimisticIntensity(absl::string_view country,
                                           absl::string_view continent) const;

 private:
  struct Row {
    std::string zone;
    std::string annual_from;  // "provider/region" or ""
    std::string country, continent;
  };
  static std::string Key(absl::string_view provider, absl::string_view region);
  // The annual figure Lookup would give the row `key` (0 = none).
  double AnnualOf(const std::string& key, const Row& row) const;
  absl::flat_hash_map<std::string, Row> rows_;             // "provider/region" -> row
  absl::flat_hash_map<std::string, RegionCarbon> carbon_;  // "provider/region" -> mlco2
};

}  // namespace greenlight::providers
