// Builders shared by the placement tests: pools, series and snapshots with
// round numbers so expected values can be checked by hand.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "services/placement/engine.h"
#include "services/placement/snapshot.h"
#include "services/providers/carbon_series.h"

namespace greenlight::placement::testing {

// 2025-06-01 00:00 UTC, a slot boundary.
inline absl::Time T0() {
  return absl::FromCivil(absl::CivilHour(2025, 6, 1, 0), absl::UTCTimeZone());
}

inline int64_t Usd(double usd) { return static_cast<int64_t>(usd * 1e6 + (usd >= 0 ? 0.5 : -0.5)); }
inline int64_t Kg(double kg) { return static_cast<int64_t>(kg * 1e6 + 0.5); }

// An 8 x H100 node pool at $10/node-hour, 700 W per GPU, PUE 1.0, 4 free nodes.
inline Pool MakePool(std::string id, std::string zone = "Z", int64_t price_micros = 10'000'000) {
  Pool p;
  p.id = std::move(id);
  p.provider = "aws";
  p.region = "us-east-1";
  p.zone = std::move(zone);
  p.instance_type = "p5.48xlarge";
  p.gpu_type = "H100";
  p.gpus_per_node = 8;
  p.nodes = 4;
  p.free_nodes = 4;
  p.price_micros_per_node_hour = price_micros;
  p.spot_price_micros_per_node_hour = 0;
  p.gpu_power_w = 700;
  p.pue = 1.0;
  p.speed = 1.0;
  return p;
}

inline providers::CarbonSeriesPtr Series(std::string zone, absl::Time start,
                                         std::vector<double> hourly, double annual_average) {
  return std::make_shared<providers::CarbonSeries>(std::move(zone), start, absl::Hours(1),
                                                   std::move(hourly), annual_average);
}

// A snapshot at T0 with unlimited team, $100/t, hourly slots, 48 h horizon,
// zones without series at 400 g/kWh.
inline Snapshot MakeSnapshot(std::vector<Pool> pools) {
  Snapshot s;
  s.now = T0();
  s.pools = std::move(pools);
  s.default_intensity_g_per_kwh = 400;
  s.slot = absl::Hours(1);
  s.horizon = absl::Hours(48);
  s.team.carbon_price_micros_per_tonne = 100'000'000;
  return s;
}

// 8 GPUs for a fixed 10 h, balanced.
inline JobRequest MakeJob() {
  JobRequest j;
  j.gpus = 8;
  j.duration = absl::Hours(10);
  j.mode = Mode::kBalanced;
  return j;
}

}  // namespace greenlight::placement::testing
