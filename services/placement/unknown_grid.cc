// Pools whose grid is unknown: the team's policy (pessimistic, default,
// exclude) and the words quotes use for what an intensity rests on.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/placement/engine.h"
#include "services/placement/snapshot.h"

namespace greenlight::placement {

UnknownGrid UnknownGridFromName(const std::string& name) {
  if (name == "default") return UnknownGrid::kDefault;
  if (name == "exclude") return UnknownGrid::kExclude;
  return UnknownGrid::kPessimistic;
}

const char* UnknownGridName(UnknownGrid policy) {
  switch (policy) {
    case UnknownGrid::kPessimistic:
      return "pessimistic";
    case UnknownGrid::kDefault:
      return "default";
    case UnknownGrid::kExclude:
      return "exclude";
  }
  return "pessimistic";
}

double UnknownGridIntensity(const providers::CarbonSeries& zone, UnknownGrid policy,
                            double default_g_per_kwh) {
  // An excluded pool is never priced; should one be, it is priced as
  // pessimistic, the policy that can only overstate its carbon.
  if (policy == UnknownGrid::kDefault || zone.annual_average() <= 0) return default_g_per_kwh;
  return zone.annual_average();
}

std::string CarbonBasis(const Snapshot& snapshot, const std::string& zone, bool estimated,
                        bool* unknown) {
  *unknown = false;
  const auto& zones = snapshot.Zones();
  auto it = zones.find(zone);
  if (it == zones.end() || it->second == nullptr) return "default intensity (zone not loaded)";
  const providers::CarbonSeries& s = *it->second;
  if (s.unknown_grid()) {
    *unknown = true;
    UnknownGrid policy = snapshot.team.unknown_grid;
    double g = UnknownGridIntensity(s, policy, snapshot.default_intensity_g_per_kwh);
    if (policy == UnknownGrid::kDefault) {
      return absl::StrFormat("unknown grid: default %.0f g/kWh (team policy unknown_grid=default)",
                             g);
    }
    return absl::StrFormat("unknown grid: pessimistic %.0f g/kWh, %s (team policy unknown_grid=%s)",
                           g,
                           s.unknown_basis().empty() ? "highest in the table" : s.unknown_basis(),
                           UnknownGridName(policy));
  }
  if (s.stale()) return "annual average (live data stale)";
  if (s.values().empty()) return "annual average";
  return estimated ? "hourly series, annual average outside it" : "hourly series";
}

}  // namespace greenlight::placement
