// The grid zones: each zone's carbon series (configured, stored through the
// API, or fetched live), when it was last updated, and the intensity a
// charge uses at an instant. Snapshots share an immutable copy of the map.
//
// Single-threaded: changed under the core's state lock.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "services/placement/snapshot.h"
#include "services/providers/carbon_series.h"

namespace greenlight::scheduler {

class ZoneTable {
 public:
  using ZoneMap = absl::flat_hash_map<std::string, providers::CarbonSeriesPtr>;

  explicit ZoneTable(double default_intensity_g_per_kwh = 400)
      : default_intensity_(default_intensity_g_per_kwh) {}
  // Replaces every zone (none has an update time).
  void Reset(ZoneMap zones);
  void Put(const std::string& zone, providers::CarbonSeriesPtr series, absl::Time updated);

  providers::CarbonSeriesPtr Find(const std::string& zone) const;
  std::optional<absl::Time> Updated(const std::string& zone) const;
  const ZoneMap& zones() const { return zones_; }
  std::shared_ptr<const ZoneMap> view() const { return view_; }

  // The intensity (g/kWh) charged in `zone` at `t`: the series, or the
  // annual average (estimated) outside it or while it is stale; an unknown
  // grid as the team's policy says, a zone without any entry the default.
  double IntensityAt(const std::string& zone, absl::Time t, bool* estimated,
                     placement::UnknownGrid policy) const;
  double default_intensity() const { return default_intensity_; }

 private:
  double default_intensity_;
  ZoneMap zones_;
  std::shared_ptr<const ZoneMap> view_ = std::make_shared<const ZoneMap>();
  absl::flat_hash_map<std::string, absl::Time> updated_;
};

}  // namespace greenlight::scheduler
