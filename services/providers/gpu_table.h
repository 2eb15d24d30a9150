// GPU models: power draw (W) and relative training speed, keyed by canonical
// (SkyPilot) name with aliases from mlco2 and Gavel spellings.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace greenlight::providers {

struct GpuModel {
  std::string name;          // canonical: "H100", "A100-80GB", "V100"
  double power_w = 0;        // board power (TDP), W
  double speed = 1.0;        // training throughput relative to A100 (40 GB) = 1.0
  std::string power_source;  // citation of the power figure
  std::string speed_source;  // citation of the speed figure
};

// Alias key: lowercase letters and digits only, so "A100-80GB", "A100 80GB"
// and "a100_80gb" are one name.
std::string NormalizeGpuName(absl::string_view name);

class GpuTable {
 public:
  // Loads mlco2 gpus.csv (power) and the override file (canonical names,
  // aliases, models mlco2 lacks, speeds with citations; see
  // docs/PROVIDERS.md). Either path may be empty: without overrides every
  // mlco2 GPU is its own model at speed 1.0; without mlco2 every override row
  // must carry power_w. Errors name file:line:column.
  static absl::StatusOr<GpuTable> Load(const std::string& mlco2_gpus_csv,
                                       const std::string& overrides_csv);
  // Model by canonical name or alias (case-insensitive); nullptr if unknown.
  const GpuModel* Find(absl::string_view name) const;
  // Canonical name for an alias, or "" if unknown.
  std::string Canonical(absl::string_view name) const;
  std::vector<std::string> Names() const;
  void Add(GpuModel model, const std::vector<std::string>& aliases);

 private:
  absl::flat_hash_map<std::string, GpuModel> models_;    // canonical -> model
  absl::flat_hash_map<std::string, std::string> alias_;  // lowercased alias -> canonical
};

}  // namespace greenlight::providers
