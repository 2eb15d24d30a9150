// The live carbon refresher and the wiring of data.live_carbon to its source.
#include "services/scheduler/carbon_refresher.h"

#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/csv.h"
#include "common/log.h"

namespace greenlight::scheduler {
namespace {

std::string TimeOrNever(absl::Time t) {
  return t == absl::InfinitePast() ? std::string("never")
                                   : absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

constexpr char kLive[] = "data.live_carbon";

// One credential from its variable or file; the error names the config key.
absl::StatusOr<providers::ApiKey> Credential(const std::string& env, const std::string& file,
                                             const std::string& key) {
  absl::StatusOr<providers::ApiKey> k = providers::ApiKey::FromEnvOrFile(env, file);
  if (!k.ok())
    return absl::InvalidArgumentError(absl::StrCat(kLive, ".", key, ": ", k.status().message()));
  return k;
}

}  // namespace

PushCarbonReading PushToCore(SchedulerCore* core) {
  return [core](const std::string& zone, const providers::ZoneReading& r) -> absl::Status {
    const providers::CarbonSeries& s = *r.series;
    std::vector<double> values = s.values();
    absl::Time start = s.start();
    absl::Duration step = s.step() > absl::ZeroDuration() ? s.step() : absl::Hours(1);
    if (values.empty()) values = {s.annual_average()};  // no data yet: stale anyway
    CarbonSeriesMeta meta;
    meta.source = absl::StrCat(kLiveSourcePrefix, s.source());
    meta.stale = r.stale;
    meta.updated = r.fetched_at;
    meta.persist = r.fetched_at != absl::InfinitePast() && !r.stale;
    return core->SetCarbonSeries(zone, start, step, std::move(values), s.annual_average(), meta)
        .status();
  };
}

std::vector<std::string> RestoreLiveCarbon(const SchedulerCore& core,
                                           providers::CachingCarbonSource* cache,
                                           const std::vector<std::string>& zones,
                                           const PushCarbonReading& push,
                                           const std::string& provider) {
  std::vector<std::string> restored;
  for (const std::string& zone : zones) {
    auto kept = core.ZoneSeries(zone);
    if (!kept || !absl::StartsWith(kept->first->source(), kLiveSourcePrefix) ||
        kept->second == absl::InfinitePast())
      continue;
    // The cache holds series as the source made them: PushToCore adds the
    // prefix again.
    auto good = std::make_shared<providers::CarbonSeries>(*kept->first);
    good->set_source(std::string(absl::StripPrefix(good->source(), kLiveSourcePrefix)));
    if (!cache->Seed(zone, std::move(good), kept->second)) continue;
    providers::ZoneReading r = cache->Peek(zone);
    GL_LOG_INFO("live carbon data restored from the store", F("zone", zone),
                F("provider", provider), F("data_fetched_at", TimeOrNever(kept->second)),
                F("stale", r.stale));
    if (r.stale) {
      // Loaded from the store as not stale (the flag is not kept). Should this
      // push fail, the refresher's first pass pushes the same reading again.
      absl::Status pushed = push(zone, r);
      if (!pushed.ok()) {
        GL_LOG_WARN("restored live carbon data not marked stale yet", F("zone", zone),
                    F("error", pushed.message()));
      }
    }
    restored.push_back(zone);
  }
  return restored;
}

CarbonRefresher::CarbonRefresher(providers::CachingCarbonSource* cache, PushCarbonReading push,
                                 const Clock* clock, CarbonRefresherOptions options)
    : cache_(cache), push_(std::move(push)), clock_(clock), options_(std::move(options)) {}

CarbonRefresher::~CarbonRefresher() { Stop(); }

void CarbonRefresher::Start() {
  thread_ = std::thread([this] {
    while (true) {
      RefreshOnce();
      absl::MutexLock l(&stop_mu_);
      if (stop_mu_.AwaitWithTimeout(absl::Condition(&stop_), options_.refresh)) return;
    }
  });
}

void CarbonRefresher::Stop() {
  {
    absl::MutexLock l(&stop_mu_);
    stop_ = true;
  }
  if (options_.cancel) options_.cancel();
  if (thread_.joinable()) thread_.join();
}

bool CarbonRefresher::stopping() const {
  absl::MutexLock l(&stop_mu_);
  return stop_;
}

void CarbonRefresher::RefreshOnce() {
  for (const std::string& zone : options_.zones) {
    if (stopping()) return;
    RefreshZone(zone);
  }
}

void CarbonRefresher::RefreshZone(const std::string& zone) {
  // The cache fetches outside its lock; nothing of ours is held meanwhile.
  providers::ZoneReading r = cache_->Get(zone);
  const absl::Time now = clock_->Now();
  bool changed = false;
  {
    absl::MutexLock l(&mu_);
    ZoneState& st = zones_[zone];
    const bool attempted = r.attempted_at != st.seen_attempt;
    st.seen_attempt = r.attempted_at;
    if (attempted && !r.last_error.ok()) {
      ++st.status.consecutive_failures;
      if (st.last_warn == absl::InfinitePast() || now - st.last_warn >= options_.warn_every) {
        GL_LOG_WARN("live carbon refresh failed", F("zone", zone), F("provider", options_.provider),
                    F("error", r.last_error.message()),
                    F("failures", st.status.consecutive_failures),
                    F("unreported_failures", st.unreported),
                    F("serving", r.stale ? "annual average (stale)" : "last good data"),
                    F("data_fetched_at", TimeOrNever(r.fetched_at)));
        st.last_warn = now;
        st.unreported = 0;
        ++warnings_;
      } else {
        ++st.unreported;
        GL_LOG_DEBUG("live carbon refresh failed again", F("zone", zone),
                     F("provider", options_.provider), F("error", r.last_error.message()),
                     F("failures", st.status.consecutive_failures));
      }
    } else if (attempted) {
      if (st.status.consecutive_failures > 0) {
        GL_LOG_INFO("live carbon refresh recovered", F("zone", zone),
                    F("provider", options_.provider),
                    F("failures", st.status.consecutive_failures));
      }
      st.status.consecutive_failures = 0;
      st.last_warn = absl::InfinitePast();
      st.unreported = 0;
    }
    if (r.stale && !st.warned_stale) {
      GL_LOG_WARN("live carbon data stale: the zone's annual average is used", F("zone", zone),
                  F("provider", options_.provider), F("data_fetched_at", TimeOrNever(r.fetched_at)),
                  F("annual_average_g_per_kwh", r.series->annual_average()));
      st.warned_stale = true;
      ++warnings_;
    } else if (!r.stale && st.warned_stale) {
      GL_LOG_INFO("live carbon data fresh again", F("zone", zone), F("provider", options_.provider),
                  F("data_fetched_at", TimeOrNever(r.fetched_at)));
      st.warned_stale = false;
    }
    changed = !st.pushed || r.fetched_at != st.pushed_fetched_at || r.stale != st.pushed_stale;
  }
  if (!changed) return;
  absl::Status pushed = push_(zone, r);
  absl::MutexLock l(&mu_);
  ZoneState& st = zones_[zone];
  if (pushed.ok()) {
    if (!st.pushed && !r.stale) {
      GL_LOG_INFO("live carbon data in use", F("zone", zone), F("provider", options_.provider),
                  F("points", r.series->values().size()), F("source", r.series->source()));
    }
    st.pushed = true;
    st.pushed_fetched_at = r.fetched_at;
    st.pushed_stale = r.stale;
    st.status.stale = r.stale;
    st.status.fetched_at = r.fetched_at;
    GL_LOG_DEBUG("live carbon series pushed", F("zone", zone), F("stale", r.stale),
                 F("points", r.series->values().size()), F("source", r.series->source()));
  } else if (st.last_push_warn == absl::InfinitePast() ||
             now - st.last_push_warn >= options_.warn_every) {
    // Retried at the next pass: `pushed` stays as it was.
    GL_LOG_WARN("live carbon series not applied; retried at the next refresh", F("zone", zone),
                F("provider", options_.provider), F("error", pushed.message()));
    st.last_push_warn = now;
    ++warnings_;
  }
}

absl::flat_hash_map<std::string, LiveZoneStatus> CarbonRefresher::Statuses() const {
  absl::MutexLock l(&mu_);
  absl::flat_hash_map<std::string, LiveZoneStatus> out;
  for (const auto& [zone, st] : zones_) {
    if (st.pushed) out[zone] = st.status;
  }
  return out;
}

int64_t CarbonRefresher::warnings_logged() const {
  absl::MutexLock l(&mu_);
  return warnings_;
}

absl::StatusOr<LiveCarbon> BuildLiveCarbon(const LiveCarbonConfig& config, const Clock* clock,
                                           providers::AnnualAverage annual,
                                           absl::Duration horizon) {
  LiveCarbon live;
  providers::CurlOptions curl;
  curl.allow_insecure_http = config.allow_insecure_http;
  if (!config.ca_file.empty()) {
    // Checked here: libcurl would only say "problem with the SSL CA cert" at
    // every fetch, and never at start.
    absl::StatusOr<std::string> pem = ReadFileToString(config.ca_file);
    if (!pem.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(kLive, ".ca_file: ", config.ca_file, ": ", pem.status().message()));
    if (!absl::StrContains(*pem, "-----BEGIN CERTIFICATE-----"))
      return absl::InvalidArgumentError(
          absl::StrCat(kLive, ".ca_file: ", config.ca_file, ": no PEM certificate"));
    curl.ca_file = config.ca_file;
  }
  live.http = std::make_unique<providers::CurlHttpClient>(curl);

  providers::LiveSourceOptions so;
  so.base_url = config.base_url;
  so.timeout = absl::Seconds(config.timeout_seconds);
  so.horizon = horizon;
  so.annual = annual;
  for (const LiveCarbonZone& z : config.zones) {
    if (!z.api_id.empty()) so.zone_ids[z.zone] = z.api_id;
  }
  if (config.provider == "electricitymaps") {
    absl::StatusOr<providers::ApiKey> key =
        Credential(config.api_key_env, config.api_key_file, "api_key_env");
    if (!key.ok()) return key.status();
    live.source = std::make_unique<providers::ElectricityMapsSource>(live.http.get(), clock,
                                                                     *std::move(key), so);
  } else if (config.provider == "watttime") {
    absl::StatusOr<providers::ApiKey> user =
        Credential(config.username_env, config.username_file, "username_env");
    if (!user.ok()) return user.status();
    absl::StatusOr<providers::ApiKey> password =
        Credential(config.password_env, config.password_file, "password_env");
    if (!password.ok()) return password.status();
    live.source = std::make_unique<providers::WattTimeSource>(
        live.http.get(), clock, *std::move(user), *std::move(password), config.auth_url, so);
  } else if (config.provider == "carbon-aware-sdk") {
    live.source = std::make_unique<providers::CarbonAwareSdkSource>(live.http.get(), clock, so);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(kLive, ".provider: must be electricitymaps, watttime or carbon-aware-sdk"));
  }
  providers::CacheOptions co;
  co.ttl = absl::Seconds(config.ttl_seconds);
  co.retry_after = absl::Seconds(config.retry_seconds);
  co.stale_after = absl::Seconds(config.stale_after_seconds);
  live.cache =
      std::make_unique<providers::CachingCarbonSource>(live.source.get(), clock, co, annual);
  return live;
}

std::string UrlHost(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string host = url.substr(start, end == std::string::npos ? std::string::npos : end - start);
  size_t at = host.rfind('@');  // never log userinfo
  return at == std::string::npos ? host : host.substr(at + 1);
}

}  // namespace greenlight::scheduler
