// Live carbon-intensity sources behind one interface (Electricity Maps v3,
// WattTime v3, Carbon Aware SDK WebAPI), and a cache that adds TTL,
// last-known-good fallback and staleness. Rules: docs/PROVIDERS.md.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "services/providers/carbon_series.h"
#include "services/providers/forecast.h"
#include "services/providers/http_client.h"
#include "services/providers/live_parsers.h"

namespace greenlight::providers {

class CarbonSource {
 public:
  virtual ~CarbonSource() = default;
  virtual std::string name() const = 0;
  // History and forecast of grid zone `zone` around now: hourly, g/kWh.
  virtual absl::StatusOr<CarbonSeries> Fetch(const std::string& zone) = 0;
};

// Annual average of a zone (the value outside a series and when stale).
using AnnualAverage = std::function<double(const std::string& zone)>;

struct LiveSourceOptions {
  std::string base_url;                      // no trailing slash
  absl::Duration history = absl::Hours(24);  // how far back to ask for
  absl::Duration horizon = absl::Hours(72);  // forecast (provider's or ours) reaches now + horizon
  absl::Duration timeout = absl::Seconds(10);
  // Our grid zone -> the API's id (WattTime region, Carbon Aware location);
  // zones not listed are sent as they are.
  absl::flat_hash_map<std::string, std::string> zone_ids;
  AnnualAverage annual = [](const std::string&) { return 400.0; };
};

// Points -> hourly CarbonSeries (Resample rule of carbon_csv.h, gaps up to
// 6 h interpolated), extended to now + horizon by `forecaster` when the
// provider's data stops earlier.
absl::StatusOr<CarbonSeries> SeriesFromLivePoints(const std::string& zone,
                                                  std::vector<SeriesPoint> points, double annual,
                                                  absl::Time now, absl::Duration horizon,
                                                  const Forecaster& forecaster,
                                                  const std::string& source);

// GET {base}/carbon-intensity/history?zone=Z and /carbon-intensity/forecast
// with header auth-token. The forecast is optional (not every plan has it).
class ElectricityMapsSource final : public CarbonSource {
 public:
  ElectricityMapsSource(HttpClient* http, const Clock* clock, ApiKey key,
                        LiveSourceOptions options);
  std::string name() const override { return "electricitymaps"; }
  absl::StatusOr<CarbonSeries> Fetch(const std::string& zone) override;

 private:
  HttpClient* http_;
  const Clock* clock_;
  ApiKey key_;
  LiveSourceOptions options_;
};

// Logs in at {auth_base}/login (HTTP Basic, token valid 30 min, renewed after
// 25), then GET {base}/v3/historical and {base}/v3/forecast with
// signal_type=co2_moer (Bearer token). MOER lbs/MWh -> g/kWh.
class WattTimeSource final : public CarbonSource {
 public:
  WattTimeSource(HttpClient* http, const Clock* clock, ApiKey username, ApiKey password,
                 std::string auth_base, LiveSourceOptions options);
  std::string name() const override { return "watttime"; }
  absl::StatusOr<CarbonSeries> Fetch(const std::string& zone) override;

 private:
  absl::StatusOr<std::string> Token();
  HttpClient* http_;
  const Clock* clock_;
  ApiKey username_, password_;
  std::string auth_base_;
  LiveSourceOptions options_;
  absl::Mutex token_mu_;  // Fetch may run for several zones at once
  std::string token_ ABSL_GUARDED_BY(token_mu_);
  absl::Time token_at_ ABSL_GUARDED_BY(token_mu_) = absl::InfinitePast();
};

// GET {base}/emissions/bylocation?location=L&time=..&toTime=.. (history) and
// {base}/emissions/forecasts/current?location=L (forecast; optional).
class CarbonAwareSdkSource final : public CarbonSource {
 public:
  CarbonAwareSdkSource(HttpClient* http, const Clock* clock, LiveSourceOptions options);
  std::string name() const override { return "carbon-aware-sdk"; }
  absl::StatusOr<CarbonSeries> Fetch(const std::string& zone) override;

 private:
  HttpClient* http_;
  const Clock* clock_;
  LiveSourceOptions options_;
};

struct CacheOptions {
  absl::Duration ttl = absl::Minutes(15);         // a fetch younger than this is served as is
  absl::Duration retry_after = absl::Minutes(1);  // no refetch sooner than this after a failure
  absl::Duration stale_after = absl::Hours(3);    // last good data older than this is stale
};

// What the cache hands out. `series` is never null: with no good data at all
// it is an empty series at the zone's annual average, marked stale.
struct ZoneReading {
  CarbonSeriesPtr series;
  bool stale = false;
  absl::Time fetched_at = absl::InfinitePast();    // of the data served
  absl::Time attempted_at = absl::InfinitePast();  // latest fetch attempt, ok or not
  absl::Status last_error;                         // of the latest attempt
};

// TTL cache with last-known-good fallback. Stale readings carry a series
// with stale() set, so every query answers with the annual average and
// quotes/metrics can say so. Thread-safe; fetches run outside the lock.
// Failures are logged at debug only: the caller decides how loudly to report
// them (services/scheduler/carbon_refresher.h warns, rate-limited).
class CachingCarbonSource final : public CarbonSource {
 public:
  CachingCarbonSource(CarbonSource* inner, const Clock* clock, CacheOptions options,
                      AnnualAverage annual);
  std::string name() const override { return absl::StrCat("cached:", inner_->name()); }
  ZoneReading Get(const std::string& zone);
  // What Get() would serve now, without fetching.
  ZoneReading Peek(const std::string& zone);
  // Last good data kept from before a restart (fetched at `good_at`): served
  // like a fetch made then (fresh within the TTL, stale after stale_after)
  // until a fetch succeeds. Never replaces data as new or newer; false then.
  bool Seed(const std::string& zone, CarbonSeriesPtr good, absl::Time good_at);
  // Get() as a CarbonSource: never an error.
  absl::StatusOr<CarbonSeries> Fetch(const std::string& zone) override { return *Get(zone).series; }

 private:
  struct Entry {
    CarbonSeriesPtr good;  // last successful fetch
    absl::Time good_at = absl::InfinitePast();
    absl::Time attempt_at = absl::InfinitePast();
    absl::Status last_error;
  };
  ZoneReading Reading(const std::string& zone, const Entry& e, absl::Time now) const;

  CarbonSource* inner_;
  const Clock* clock_;
  CacheOptions options_;
  AnnualAverage annual_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
};

}  // namespace greenlight::providers
