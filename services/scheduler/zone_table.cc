#include "services/scheduler/zone_table.h"

namespace greenlight::scheduler {

void ZoneTable::Reset(ZoneMap zones) {
  zones_ = std::move(zones);
  updated_.clear();
  view_ = std::make_shared<const ZoneMap>(zones_);
}

void ZoneTable::Put(const std::string& zone, providers::CarbonSeriesPtr series,
                    absl::Time updated) {
  zones_[zone] = std::move(series);
  updated_[zone] = updated;
  view_ = std::make_shared<const ZoneMap>(zones_);
}

providers::CarbonSeriesPtr ZoneTable::Find(const std::string& zone) const {
  auto it = zones_.find(zone);
  return it == zones_.end() ? nullptr : it->second;
}

std::optional<absl::Time> ZoneTable::Updated(const std::string& zone) const {
  auto it = updated_.find(zone);
  if (it == updated_.end()) return std::nullopt;
  return it->second;
}

double ZoneTable::IntensityAt(const std::string& zone, absl::Time t, bool* estimated,
                              placement::UnknownGrid policy) const {
  auto it = zones_.find(zone);
  if (it == zones_.end() || !it->second) {
    if (estimated) *estimated = true;
    return default_intensity_;
  }
  const auto& s = *it->second;
  if (s.unknown_grid()) {
    // Charged as the team's quote assumed (an unknown grid has no real figure).
    if (estimated) *estimated = true;
    return placement::UnknownGridIntensity(s, policy, default_intensity_);
  }
  if (s.stale() || t < s.start() || t >= s.end()) {
    if (estimated) *estimated = true;
    return s.annual_average();
  }
  return s.At(t);
}

}  // namespace greenlight::scheduler
