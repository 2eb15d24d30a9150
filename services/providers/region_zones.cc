// RegionTable: region -> zone mapping joined with mlco2 annual averages and PUE.
#include "services/providers/region_zones.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/csv.h"
#include "common/status_macros.h"
#include "services/providers/csv_text.h"

namespace greenlight::providers {

std::string RegionTable::Key(absl::string_view provider, absl::string_view region) {
  return absl::StrCat(absl::AsciiStrToLower(provider), "/", region);
}

absl::StatusOr<RegionTable> RegionTable::Load(const std::string& region_zones_csv,
                                              const std::string& mlco2_impact_csv) {
  RegionTable table;
  if (!mlco2_impact_csv.empty()) {
    ASSIGN_OR_RETURN(CsvTable t, CsvTable::ReadFile(mlco2_impact_csv));
    ASSIGN_OR_RETURN(int c_provider, t.Column("provider"));
    ASSIGN_OR_RETURN(int c_region, t.Column("region"));
    ASSIGN_OR_RETURN(int c_impact, t.Column("impact"));
    int c_pue = t.HasColumn("PUE") ? *t.Column("PUE") : -1;
    for (size_t r = 0; r < t.rows(); ++r) {
      std::string region = Trimmed(t, r, c_region);
      if (region.empty()) continue;  // e.g. scaleway: a provider-wide row, no region id
      RegionCarbon rc;
      ASSIGN_OR_RETURN(rc.impact_g_per_kwh, t.Double(r, c_impact));
      if (rc.impact_g_per_kwh < 0 || rc.impact_g_per_kwh > 2000) {
        return absl::InvalidArgumentError(
            absl::StrCat(t.Where(r, c_impact), ": intensity must be in [0, 2000] g/kWh"));
      }
      if (c_pue >= 0 && !Trimmed(t, r, c_pue).empty()) {
        ASSIGN_OR_RETURN(rc.pue, t.Double(r, c_pue));
        if (rc.pue < 1 || rc.pue > 3) {
          return absl::InvalidArgumentError(
              absl::StrCat(t.Where(r, c_pue), ": PUE must be in [1, 3]"));
        }
      }
      table.carbon_[Key(Trimmed(t, r, c_provider), region)] = rc;
    }
  }
  if (!region_zones_csv.empty()) {
    ASSIGN_OR_RETURN(CsvTable t, ReadCommentedCsv(region_zones_csv));
    ASSIGN_OR_RETURN(int c_provider, t.Column("provider"));
    ASSIGN_OR_RETURN(int c_region, t.Column("region"));
    ASSIGN_OR_RETURN(int c_zone, t.Column("zone"));
    ASSIGN_OR_RETURN(int c_from, t.Column("annual_from"));
    // Optional (files written before they existed still load).
    int c_country = t.HasColumn("country") ? *t.Column("country") : -1;
    int c_continent = t.HasColumn("continent") ? *t.Column("continent") : -1;
    for (size_t r = 0; r < t.rows(); ++r) {
      std::string provider = Trimmed(t, r, c_provider);
      std::string region = Trimmed(t, r, c_region);
      Row row{Trimmed(t, r, c_zone), Trimmed(t, r, c_from),
              c_country >= 0 ? Trimmed(t, r, c_country) : "",
              c_continent >= 0 ? Trimmed(t, r, c_continent) : ""};
      if (provider.empty())
        return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_provider), ": required"));
      if (region.empty())
        return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_region), ": required"));
      if (row.zone.empty())
        return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_zone), ": required"));
      if (!row.continent.empty() && std::find(std::begin(kContinents), std::end(kContinents),
                                              row.continent) == std::end(kContinents)) {
        return absl::InvalidArgumentError(
            absl::StrCat(t.Where(r, c_continent), ": unknown continent '", row.continent,
                         "' (expected one of: ", absl::StrJoin(kContinents, ", "), ")"));
      }
      if (!row.annual_from.empty()) {
        size_t slash = row.annual_from.find('/');
        if (slash == std::string::npos) {
          return absl::InvalidArgumentError(absl::StrCat(
              t.Where(r, c_from), ": expected provider/region, got '", row.annual_from, "'"));
        }
        if (!mlco2_impact_csv.empty() &&
            !table.carbon_.contains(
                Key(row.annual_from.substr(0, slash), row.annual_from.substr(slash + 1)))) {
          return absl::InvalidArgumentError(absl::StrCat(t.Where(r, c_from), ": '", row.annual_from,
                                                         "' is not a region of ",
                                                         mlco2_impact_csv));
        }
      }
      std::string key = Key(provider, region);
      if (table.rows_.contains(key)) {
        return absl::InvalidArgumentError(
            absl::StrCat(t.Where(r, c_region), ": duplicate region '", key, "'"));
      }
      table.rows_[key] = std::move(row);
    }
  }
  return table;
}

const RegionCarbon* RegionTable::Carbon(absl::string_view provider,
                                        absl::string_view region) const {
  auto it = carbon_.find(Key(provider, region));
  return it == carbon_.end() ? nullptr : &it->second;
}

RegionInfo RegionTable::Lookup(absl::string_view provider, absl::string_view region) const {
  RegionInfo info;
  std::string key = Key(provider, region);
  info.zone = absl::StrCat(absl::AsciiStrToLower(provider), ":", region);
  auto row = rows_.find(key);
  if (row != rows_.end()) {
    info.listed = true;
    info.zone = row->second.zone;
    info.country = row->second.country;
    info.continent = row->second.continent;
  }
  if (const RegionCarbon* own = Carbon(provider, region)) {
    info.annual_g_per_kwh = own->impact_g_per_kwh;
    info.annual_source = absl::StrCat("mlco2 impact ", key);
    info.pue = own->pue;
  } else if (row != rows_.end() && !row->second.annual_from.empty()) {
    auto it = carbon_.find(row->second.annual_from);
    if (it != carbon_.end()) {
      info.annual_g_per_kwh = it->second.impact_g_per_kwh;
      info.annual_source = absl::StrCat("mlco2 impact ", row->second.annual_from, " (annual_from)");
    }
  }
  // Grid zone ids (Electricity Maps: "DE", "US-CAL-CISO") never contain ':';
  // the per-region zones "provider:region" always do.
  info.known_grid = info.annual_g_per_kwh > 0 || !absl::StrContains(info.zone, ':');
  return info;
}

double RegionTable::AnnualOf(const std::string& key, const Row& row) const {
  auto own = carbon_.find(key);
  if (own != carbon_.end()) return own->second.impact_g_per_kwh;
  if (row.annual_from.empty()) return 0;
  auto from = carbon_.find(row.annual_from);
  return from == carbon_.end() ? 0 : from->second.impact_g_per_kwh;
}

namespace {

// Keeps the highest figure; on a tie the smallest key, so the result does not
// depend on hash-map order.
struct Highest {
  double g = 0;
  std::string key;
  void Offer(double figure, const std::string& k) {
    if (figure <= 0) return;
    if (figure > g || (figure == g && k < key)) {
      g = figure;
      key = k;
    }
  }
};

}  // namespace

PessimisticEstimate RegionTable::PessimisticIntensity(absl::string_view country,
                                                      absl::string_view continent) const {
  // Only listed rows carry a country and a continent. A row mapped to a series
  // zone (DE, GB, US-CAL-CISO, ...) with no mlco2 figure of its own has no
  // annual figure in this table (its series lives in the inventory), so it is
  // left out of every maximum here.
  Highest in_country, in_continent;
  for (const auto& [key, row] : rows_) {
    double annual = AnnualOf(key, row);
    if (!country.empty() && absl::EqualsIgnoreCase(row.country, country))
      in_country.Offer(annual, key);
    if (!continent.empty() && absl::EqualsIgnoreCase(row.continent, continent))
      in_continent.Offer(annual, key);
  }
  if (in_country.g > 0)
    return {in_country.g, absl::StrCat("highest known in ", country), in_country.key};
  if (in_continent.g > 0)
    return {in_continent.g, absl::StrCat("highest known in ", continent), in_continent.key};
  Highest in_table;
  for (const auto& [key, rc] : carbon_) in_table.Offer(rc.impact_g_per_kwh, key);
  if (in_table.g > 0) return {in_table.g, "highest in the table", in_table.key};
  return {0, "no annual figure in the table", ""};
}

}  // namespace greenlight::providers
