// SkyPilot price catalog CSV -> pools, one per (provider, region, instance
// type). Columns are found by header name (each cloud orders them
// differently); quirks of the real files are handled and counted.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/config.h"
#include "services/providers/gpu_table.h"
#include "services/providers/pool.h"

namespace greenlight::providers {

// What was skipped or adjusted while loading one catalog.
struct CatalogStats {
  int64_t rows = 0;
  int64_t empty_price = 0;       // no on-demand price (skipped; includes spot-only rows)
  int64_t unknown_gpu = 0;       // GPU not in the GpuTable (skipped)
  int64_t spot_ignored = 0;      // spot >= on-demand (spot dropped, row kept)
  int64_t no_host_price = 0;     // GCP GPU-only rows without a host VM price (skipped)
  int64_t host_added = 0;        // GCP GPU-only rows priced as host VM + GPUs
  int64_t count_corrected = 0;   // known upstream AcceleratorCount errors fixed
  int64_t ondemand_differs = 0;  // pools whose zones disagree on the on-demand price
  int64_t pools = 0;
  std::vector<std::string> unknown_gpu_names;  // distinct, for the note
  std::vector<std::string> no_host_gpus;       // distinct "A100x1" style, for the note
};

// Loads one catalog. `catalog.host_file` is read for provider "gcp" (host VM
// prices of a2-*/a3-*). Pools carry provider, region, instance_type,
// gpu_type (canonical), gpus_per_node, prices, gpu_power_w and speed; zone,
// pue and node counts are the inventory's job. Errors name file:line:column.
//
// Zones of one region collapse into one pool: on-demand = the highest zone
// price (they are equal in the real files; the highest never under-quotes a
// budget), spot = the median of the zones' valid spot prices (spot varies by
// zone and the pool cannot pick one).
absl::StatusOr<std::vector<Pool>> LoadPriceCatalog(const CatalogConfig& catalog,
                                                   const GpuTable& gpus, CatalogStats* stats);

// GCP machine type that hosts `count` GPUs of canonical type `gpu`, or "" if
// the catalog has no host for it (n1-* for T4/V100/P100/P4, g2-* for L4,
// a4-* for B200 are not in the shipped host file).
std::string GcpHostMachine(absl::string_view gpu, int count);

// Human-readable notes for Inventory.notes ("aws: 7 rows without price skipped").
std::vector<std::string> CatalogNotes(absl::string_view provider, const CatalogStats& stats);

}  // namespace greenlight::providers
