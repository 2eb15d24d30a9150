// Live grid carbon data in greenlightd (data.live_carbon): builds the
// configured API source behind its TTL / stale cache, and a refresher thread
// that pushes each zone's series into the scheduler core. Rules:
// docs/PROVIDERS.md "Live data in greenlightd".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config.h"
#include "services/providers/carbon_source.h"
#include "services/providers/http_client.h"
#include "services/scheduler/core.h"

namespace greenlight::scheduler {

// Hands one zone's reading to whoever serves quotes (the core, in greenlightd).
using PushCarbonReading =
    std::function<absl::Status(const std::string& zone, const providers::ZoneReading& reading)>;

// Pushes readings into `core` with SetCarbonSeries: source "live:<source>",
// the stale flag, GridZone.updated = the fetch time. Fresh fetched data is
// persisted (durable when the push returns), so that it outlives a restart;
// a stale reading is not (its data is that of the last fresh push, already
// stored, and the stored label stays that of the fetch). A zone with no good
// data yet gets one hour at its annual average, marked stale, never stored.
PushCarbonReading PushToCore(SchedulerCore* core);

// Source prefix of live series in the core (GridZone.source).
inline constexpr char kLiveSourcePrefix[] = "live:";

// At start, before the refresher: seeds `cache` with the live series the
// store kept for each of `zones` (source "live:..."; fetched at its
// GridZone.updated), so that a provider down at restart leaves the zone on
// its last good data (stale once older than stale_after), not on nothing.
// Zones whose restored data is stale already are pushed at once, so that no
// quote takes them for fresh meanwhile. Logs one info line per zone restored;
// returns the zones restored.
std::vector<std::string> RestoreLiveCarbon(const SchedulerCore& core,
                                           providers::CachingCarbonSource* cache,
                                           const std::vector<std::string>& zones,
                                           const PushCarbonReading& push,
                                           const std::string& provider);

struct CarbonRefresherOptions {
  std::string provider;  // for logs: "electricitymaps"
  std::vector<std::string> zones;
  absl::Duration refresh = absl::Minutes(1);
  // A zone that keeps failing is reported at warn once, then at most once per
  // this (debug in between), with the number of failures not reported.
  absl::Duration warn_every = absl::Minutes(15);
  // Called by Stop() before it waits for the thread: aborts HTTP transfers in
  // flight, so that a drain does not wait out a request timeout.
  std::function<void()> cancel;
};

// What the core holds for a live zone (for the zone metrics).
struct LiveZoneStatus {
  bool stale = true;
  absl::Time fetched_at = absl::InfinitePast();  // of the data pushed; InfinitePast = none yet
  int64_t consecutive_failures = 0;
};

// Every `refresh`, reads each zone from the cache (which fetches when its TTL
// has run out) and pushes the reading when it changed: new data, or data that
// went stale or recovered. Failures are logged at warn with zone, provider
// and error, quietly when repeated; staleness once when it starts.
class CarbonRefresher {
 public:
  CarbonRefresher(providers::CachingCarbonSource* cache, PushCarbonReading push, const Clock* clock,
                  CarbonRefresherOptions options);
  ~CarbonRefresher();
  CarbonRefresher(const CarbonRefresher&) = delete;
  CarbonRefresher& operator=(const CarbonRefresher&) = delete;

  // Starts the thread: a first pass at once, then one every `refresh`.
  void Start();
  // Stops and joins the thread. Idempotent.
  void Stop();
  // One pass over every zone (the thread's body; tests call it directly).
  void RefreshOnce();

  // Zones pushed at least once, with what was pushed.
  absl::flat_hash_map<std::string, LiveZoneStatus> Statuses() const;
  // Warn lines written so far (tests check the rate limit with it).
  int64_t warnings_logged() const;

 private:
  struct ZoneState {
    LiveZoneStatus status;
    bool pushed = false;
    absl::Time pushed_fetched_at = absl::InfinitePast();
    bool pushed_stale = false;
    absl::Time seen_attempt = absl::InfinitePast();  // latest fetch attempt already counted
    absl::Time last_warn = absl::InfinitePast();
    int64_t unreported = 0;  // failures since the last warn line
    bool warned_stale = false;
    absl::Time last_push_warn = absl::InfinitePast();
  };
  void RefreshZone(const std::string& zone);
  bool stopping() const;

  providers::CachingCarbonSource* cache_;
  PushCarbonReading push_;
  const Clock* clock_;
  CarbonRefresherOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, ZoneState> zones_ ABSL_GUARDED_BY(mu_);
  int64_t warnings_ ABSL_GUARDED_BY(mu_) = 0;

  mutable absl::Mutex stop_mu_;
  bool stop_ ABSL_GUARDED_BY(stop_mu_) = false;
  std::thread thread_;
};

// data.live_carbon, built: the HTTPS client (CA from ca_file), the provider's
// source and the cache in front of it.
struct LiveCarbon {
  std::unique_ptr<providers::CurlHttpClient> http;
  std::unique_ptr<providers::CarbonSource> source;
  std::unique_ptr<providers::CachingCarbonSource> cache;
};

// Reads the credentials from the variables / files the config names and
// checks ca_file. Errors are INVALID_ARGUMENT naming the config key
// ("data.live_carbon.api_key_env: ...") and where the key was looked for,
// never a key's value. `annual` gives each zone's annual average; series
// reach now + `horizon` (the provider's forecast, then ours).
absl::StatusOr<LiveCarbon> BuildLiveCarbon(const LiveCarbonConfig& config, const Clock* clock,
                                           providers::AnnualAverage annual,
                                           absl::Duration horizon = absl::Hours(72));

// "api.electricitymap.org" (host[:port]) from a base URL, for logs: no path, no userinfo.
std::string UrlHost(const std::string& url);

}  // namespace greenlight::scheduler
