// LoadInventory: catalogs + GPU table + region mapping + zone series.
#include "services/providers/inventory.h"

#include <filesystem>
#include <set>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "services/providers/carbon_csv.h"
#include "services/providers/price_catalog.h"
#include "services/providers/region_zones.h"

namespace greenlight::providers {

double DefaultPue(absl::string_view provider) {
  std::string p = absl::AsciiStrToLower(provider);
  if (p == "aws" || p == "gcp" || p == "azure") return kHyperscalerPue;
  return kColocationPue;
}

absl::StatusOr<CarbonSeries> LoadZoneSeries(const std::string& zone, const std::string& file,
                                            absl::Time now, bool align) {
  ResampleOptions options;  // hourly, gaps <= 6 h interpolated, longer -> series mean
  ASSIGN_OR_RETURN(LoadedSeries loaded, LoadCarbonCsv(file, options));
  CarbonSeries series(zone, loaded.start, options.step, std::move(loaded.values), loaded.mean);
  std::string source =
      absl::StrCat(std::filesystem::path(file).filename().string(), " (", loaded.format, ")");
  if (align) {
    absl::Duration shift = AlignmentShift(series.start(), series.end(), now);
    if (shift != absl::ZeroDuration()) {
      absl::StrAppend(&source, ", shifted ", shift / absl::Hours(24 * 7), " weeks to cover now");
      series = Shifted(series, shift);
    }
  }
  series.set_source(source);
  return series;
}

absl::StatusOr<Inventory> LoadInventory(const Config& config, absl::Time now) {
  Inventory inv;
  ASSIGN_OR_RETURN(inv.gpus, GpuTable::Load(config.gpu_power_file, config.gpu_overrides_file));
  ASSIGN_OR_RETURN(RegionTable regions,
                   RegionTable::Load(config.region_zones_file, config.region_carbon_file));

  for (size_t i = 0; i < config.carbon_series.size(); ++i) {
    const SeriesConfig& sc = config.carbon_series[i];
    if (inv.zones.contains(sc.zone)) {
      return absl::InvalidArgumentError(
          absl::StrCat("data.carbon_series[", i, "].zone: zone '", sc.zone, "' has two series"));
    }
    ASSIGN_OR_RETURN(CarbonSeries series,
                     LoadZoneSeries(sc.zone, sc.file, now, config.align_series_to_now));
    inv.zones[sc.zone] = std::make_shared<const CarbonSeries>(std::move(series));
  }

  absl::flat_hash_set<std::string> providers;
  for (const std::string& p : config.providers) providers.insert(absl::AsciiStrToLower(p));
  absl::flat_hash_set<std::string> gpu_types;
  for (const std::string& g : config.gpu_types) {
    std::string canonical = inv.gpus.Canonical(g);
    if (canonical.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("data.gpu_types: unknown GPU '", g,
                       "' (known: ", absl::StrJoin(inv.gpus.Names(), ", "), ")"));
    }
    gpu_types.insert(canonical);
  }

  absl::flat_hash_set<std::string> ids;
  std::set<std::string> unlisted_regions, unknown_zones;
  for (const CatalogConfig& cat : config.catalogs) {
    if (!providers.empty() && !providers.contains(absl::AsciiStrToLower(cat.provider))) continue;
    CatalogStats stats;
    ASSIGN_OR_RETURN(std::vector<Pool> pools, LoadPriceCatalog(cat, inv.gpus, &stats));
    for (std::string& n : CatalogNotes(cat.provider, stats)) inv.notes.push_back(std::move(n));
    for (Pool& p : pools) {
      if (!gpu_types.empty() && !gpu_types.contains(p.gpu_type)) continue;
      if (!ids.insert(p.id).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(cat.file, ": pool '", p.id, "' is also in another catalog"));
      }
      RegionInfo info = regions.Lookup(p.provider, p.region);
      if (!info.listed) unlisted_regions.insert(absl::StrCat(p.provider, "/", p.region));
      p.zone = info.zone;
      if (!inv.zones.contains(p.zone)) {
        double annual = info.annual_g_per_kwh;
        std::string source = absl::StrCat("annual average: ", info.annual_source);
        PessimisticEstimate pessimistic;
        if (annual <= 0) {
          // Unknown grid: the pessimistic figure is kept as the annual average
          // (what accrual, metrics and the default policy see); teams that
          // chose unknown_grid: default or exclude are served by placement.
          pessimistic = regions.PessimisticIntensity(info.country, info.continent);
          annual =
              pessimistic.g_per_kwh > 0 ? pessimistic.g_per_kwh : inv.default_intensity_g_per_kwh;
          if (pessimistic.g_per_kwh <= 0) pessimistic.basis = "the inventory default";
          source = absl::StrCat(
              "unknown grid (pessimistic: ", pessimistic.basis,
              pessimistic.from.empty() ? "" : absl::StrCat(", ", pessimistic.from), ")");
          unknown_zones.insert(absl::StrCat(p.zone, " (", pessimistic.basis, ")"));
        }
        auto series = std::make_shared<CarbonSeries>(p.zone, now, absl::Hours(1),
                                                     std::vector<double>{}, annual);
        series->set_source(source);
        if (info.annual_g_per_kwh <= 0) series->set_unknown_grid(pessimistic.basis);
        inv.zones[p.zone] = std::move(series);
      }
      p.pue = info.pue > 0 ? info.pue : DefaultPue(p.provider);
      p.nodes = config.nodes_per_pool;
      p.free_nodes = p.nodes;
      inv.pools.push_back(std::move(p));
    }
  }
  if (!unlisted_regions.empty()) {
    inv.notes.push_back(absl::StrCat(
        unlisted_regions.size(),
        " regions not in the region -> zone file: ", absl::StrJoin(unlisted_regions, ", ")));
  }
  if (!unknown_zones.empty()) {
    inv.notes.push_back(
        absl::StrCat(unknown_zones.size(),
                     " zones have an unknown grid (no series, no annual figure); each team's "
                     "unknown_grid policy decides (default pessimistic): ",
                     absl::StrJoin(unknown_zones, ", ")));
  }
  return inv;
}

}  // namespace greenlight::providers
