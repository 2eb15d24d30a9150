// Live sources (requests, merging history and forecast) and the TTL / stale cache.
#include "services/providers/carbon_source.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "nlohmann/json.hpp"

namespace greenlight::providers {
namespace {

std::string Escape(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", c));  // RFC 3986: upper-case hex
    }
  }
  return out;
}

std::string IsoUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string ApiId(const LiveSourceOptions& o, const std::string& zone) {
  auto it = o.zone_ids.find(zone);
  return it == o.zone_ids.end() ? zone : it->second;
}

// Maps an HTTP status to a Status. The body is not quoted: some APIs echo
// request details, and a message must never carry a credential.
absl::Status HttpStatus(absl::string_view api, absl::string_view what, int status) {
  std::string msg = absl::StrCat(api, ": ", what, ": HTTP ", status);
  if (status >= 200 && status < 300) return absl::OkStatus();
  if (status == 401 || status == 403)
    return absl::PermissionDeniedError(absl::StrCat(msg, " (check the API key)"));
  if (status == 404) return absl::NotFoundError(msg);
  if (status == 429) return absl::ResourceExhaustedError(absl::StrCat(msg, " (rate limited)"));
  return absl::UnavailableError(msg);
}

absl::StatusOr<std::string> GetBody(HttpClient* http, absl::string_view api, absl::string_view what,
                                    HttpRequest req) {
  auto resp = http->Get(req);
  if (!resp.ok())
    return absl::Status(resp.status().code(),
                        absl::StrCat(api, ": ", what, ": ", resp.status().message()));
  absl::Status s = HttpStatus(api, what, resp->status);
  if (!s.ok()) return s;
  return std::move(resp->body);
}

}  // namespace

absl::StatusOr<CarbonSeries> SeriesFromLivePoints(const std::string& zone,
                                                  std::vector<SeriesPoint> points, double annual,
                                                  absl::Time now, absl::Duration horizon,
                                                  const Forecaster& forecaster,
                                                  const std::string& source) {
  if (points.empty())
    return absl::UnavailableError(absl::StrCat(source, ": no data points for zone ", zone));
  ResampleOptions options;
  options.fallback = annual;
  absl::Time start;
  std::vector<double> values = Resample(std::move(points), options, &start, nullptr);
  CarbonSeries series(zone, start, options.step, std::move(values), annual);
  series.set_source(source);
  return ExtendWithForecast(series, now + horizon, forecaster);
}

// ---------------------------------------------------------------- Electricity Maps

ElectricityMapsSource::ElectricityMapsSource(HttpClient* http, const Clock* clock, ApiKey key,
                                             LiveSourceOptions options)
    : http_(http), clock_(clock), key_(std::move(key)), options_(std::move(options)) {}

absl::StatusOr<CarbonSeries> ElectricityMapsSource::Fetch(const std::string& zone) {
  const absl::Time now = clock_->Now();
  const std::string id = Escape(ApiId(options_, zone));
  HttpRequest req;
  req.headers = {{"auth-token", key_.value()}};
  req.timeout = options_.timeout;
  req.url = absl::StrCat(options_.base_url, "/carbon-intensity/history?zone=", id);
  absl::StatusOr<std::string> body = GetBody(http_, "electricitymaps", "history", req);
  if (!body.ok()) return body.status();
  absl::StatusOr<LivePoints> history = ParseElectricityMaps(*body);
  if (!history.ok()) return history.status();
  std::vector<SeriesPoint> points = std::move(history->points);
  std::string source = "electricitymaps history";
  req.url = absl::StrCat(options_.base_url, "/carbon-intensity/forecast?zone=", id);
  absl::StatusOr<std::string> fbody = GetBody(http_, "electricitymaps", "forecast", req);
  absl::StatusOr<LivePoints> forecast =
      fbody.ok() ? ParseElectricityMaps(*fbody) : absl::StatusOr<LivePoints>(fbody.status());
  if (forecast.ok()) {
    // The forecast wins where both cover an hour: it is the newer estimate.
    absl::Time first =
        forecast->points.empty() ? absl::InfiniteFuture() : forecast->points.front().t;
    points.erase(std::remove_if(points.begin(), points.end(),
                                [&](const SeriesPoint& p) { return p.t >= first; }),
                 points.end());
    points.insert(points.end(), forecast->points.begin(), forecast->points.end());
    absl::StrAppend(&source, " + forecast");
  } else {
    GL_LOG_DEBUG("electricitymaps forecast unavailable",
                 {F("zone", zone), F("error", forecast.status().message())});
  }
  return SeriesFromLivePoints(zone, std::move(points), options_.annual(zone), now, options_.horizon,
                              *DefaultForecaster(), source);
}

// ---------------------------------------------------------------- WattTime

WattTimeSource::WattTimeSource(HttpClient* http, const Clock* clock, ApiKey username,
                               ApiKey password, std::string auth_base, LiveSourceOptions options)
    : http_(http),
      clock_(clock),
      username_(std::move(username)),
      password_(std::move(password)),
      auth_base_(std::move(auth_base)),
      options_(std::move(options)) {}

absl::StatusOr<std::string> WattTimeSource::Token() {
  const absl::Time now = clock_->Now();
  absl::MutexLock l(&token_mu_);
  // Tokens live 30 minutes (WattTime docs); renew a little early.
  if (!token_.empty() && now - token_at_ < absl::Minutes(25)) return token_;
  HttpRequest req;
  req.url = absl::StrCat(auth_base_, "/login");
  req.timeout = options_.timeout;
  req.headers = {
      {"Authorization", absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(
                                                   username_.value(), ":", password_.value())))}};
  absl::StatusOr<std::string> body = GetBody(http_, "watttime", "login", req);
  if (!body.ok()) return body.status();
  nlohmann::json j = nlohmann::json::parse(*body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("token") || !j.at("token").is_string()) {
    return absl::UnavailableError("watttime: login: no token in the response");
  }
  token_ = j.at("token").get<std::string>();
  token_at_ = now;
  return token_;
}

absl::StatusOr<CarbonSeries> WattTimeSource::Fetch(const std::string& zone) {
  const absl::Time now = clock_->Now();
  absl::StatusOr<std::string> token = Token();
  if (!token.ok()) return token.status();
  const std::string region = Escape(ApiId(options_, zone));
  HttpRequest req;
  req.headers = {{"Authorization", absl::StrCat("Bearer ", *token)}};
  req.timeout = options_.timeout;
  req.url = absl::StrCat(options_.base_url, "/v3/historical?region=", region,
                         "&signal_type=co2_moer&start=", Escape(IsoUtc(now - options_.history)),
                         "&end=", Escape(IsoUtc(now)));
  absl::StatusOr<std::string> body = GetBody(http_, "watttime", "historical", req);
  if (!body.ok()) {
    if (absl::IsPermissionDenied(body.status())) {
      absl::MutexLock l(&token_mu_);
      token_.clear();  // log in again next time
    }
    return body.status();
  }
  absl::StatusOr<LivePoints> history = ParseWattTime(*body);
  if (!history.ok()) return history.status();
  std::vector<SeriesPoint> points = std::move(history->points);
  std::string source = "watttime co2_moer historical";
  req.url = absl::StrCat(options_.base_url, "/v3/forecast?region=", region,
                         "&signal_type=co2_moer&horizon_hours=",
                         std::clamp<int64_t>(options_.horizon / absl::Hours(1), 0, 72));
  absl::StatusOr<std::string> fbody = GetBody(http_, "watttime", "forecast", req);
  absl::StatusOr<LivePoints> forecast =
      fbody.ok() ? ParseWattTime(*fbody) : absl::StatusOr<LivePoints>(fbody.status());
  if (forecast.ok()) {
    absl::Time first =
        forecast->points.empty() ? absl::InfiniteFuture() : forecast->points.front().t;
    points.erase(std::remove_if(points.begin(), points.end(),
                                [&](const SeriesPoint& p) { return p.t >= first; }),
                 points.end());
    points.insert(points.end(), forecast->points.begin(), forecast->points.end());
    absl::StrAppend(&source, " + forecast");
  }
  return SeriesFromLivePoints(zone, std::move(points), options_.annual(zone), now, options_.horizon,
                              *DefaultForecaster(), source);
}

// ---------------------------------------------------------------- Carbon Aware SDK

CarbonAwareSdkSource::CarbonAwareSdkSource(HttpClient* http, const Clock* clock,
                                           LiveSourceOptions options)
    : http_(http), clock_(clock), options_(std::move(options)) {}

absl::StatusOr<CarbonSeries> CarbonAwareSdkSource::Fetch(const std::string& zone) {
  const absl::Time now = clock_->Now();
  const std::string location = ApiId(options_, zone);
  HttpRequest req;
  req.timeout = options_.timeout;
  req.url = absl::StrCat(options_.base_url, "/emissions/bylocation?location=", Escape(location),
                         "&time=", Escape(IsoUtc(now - options_.history)),
                         "&toTime=", Escape(IsoUtc(now)));
  absl::StatusOr<std::string> body = GetBody(http_, "carbon-aware-sdk", "emissions", req);
  if (!body.ok()) return body.status();
  absl::StatusOr<LivePoints> history = ParseCarbonAwareEmissions(*body, location);
  if (!history.ok()) return history.status();
  std::vector<SeriesPoint> points = std::move(history->points);
  std::string source = "carbon-aware-sdk emissions";
  req.url =
      absl::StrCat(options_.base_url, "/emissions/forecasts/current?location=", Escape(location));
  absl::StatusOr<std::string> fbody = GetBody(http_, "carbon-aware-sdk", "forecast", req);
  absl::StatusOr<LivePoints> forecast = fbody.ok() ? ParseCarbonAwareForecast(*fbody, location)
                                                   : absl::StatusOr<LivePoints>(fbody.status());
  if (forecast.ok()) {
    absl::Time first =
        forecast->points.empty() ? absl::InfiniteFuture() : forecast->points.front().t;
    points.erase(std::remove_if(points.begin(), points.end(),
                                [&](const SeriesPoint& p) { return p.t >= first; }),
                 points.end());
    points.insert(points.end(), forecast->points.begin(), forecast->points.end());
    absl::StrAppend(&source, " + forecast");
  }
  return SeriesFromLivePoints(zone, std::move(points), options_.annual(zone), now, options_.horizon,
                              *DefaultForecaster(), source);
}

// ---------------------------------------------------------------- cache

CachingCarbonSource::CachingCarbonSource(CarbonSource* inner, const Clock* clock,
                                         CacheOptions options, AnnualAverage annual)
    : inner_(inner), clock_(clock), options_(options), annual_(std::move(annual)) {}

ZoneReading CachingCarbonSource::Reading(const std::string& zone, const Entry& e,
                                         absl::Time now) const {
  ZoneReading r;
  r.last_error = e.last_error;
  r.attempted_at = e.attempt_at;
  if (e.good == nullptr) {
    auto empty = std::make_shared<CarbonSeries>(zone, now, absl::Hours(1), std::vector<double>{},
                                                annual_(zone));
    empty->set_source(absl::StrCat(inner_->name(), ": no data yet, annual average"));
    empty->set_stale(true);
    r.series = std::move(empty);
    r.stale = true;
    return r;
  }
  r.fetched_at = e.good_at;
  r.stale = now - e.good_at > options_.stale_after;
  if (r.stale) {
    auto copy = std::make_shared<CarbonSeries>(*e.good);
    copy->set_stale(true);
    copy->set_source(absl::StrCat(
        e.good->source(), " (stale since ",
        absl::FormatTime(absl::RFC3339_sec, e.good_at + options_.stale_after, absl::UTCTimeZone()),
        ": annual average used)"));
    r.series = std::move(copy);
  } else {
    r.series = e.good;
  }
  return r;
}

ZoneReading CachingCarbonSource::Peek(const std::string& zone) {
  const absl::Time now = clock_->Now();
  absl::MutexLock l(&mu_);
  auto it = entries_.find(zone);
  return Reading(zone, it != entries_.end() ? it->second : Entry{}, now);
}

bool CachingCarbonSource::Seed(const std::string& zone, CarbonSeriesPtr good, absl::Time good_at) {
  if (good == nullptr) return false;
  absl::MutexLock l(&mu_);
  Entry& e = entries_[zone];
  if (e.good != nullptr && e.good_at >= good_at) return false;
  if (good->stale()) {
    // Staleness is ours to decide from good_at, not a flag the data brought.
    auto copy = std::make_shared<CarbonSeries>(*good);
    copy->set_stale(false);
    good = std::move(copy);
  }
  e.good = std::move(good);
  e.good_at = good_at;
  return true;
}

ZoneReading CachingCarbonSource::Get(const std::string& zone) {
  const absl::Time now = clock_->Now();
  {
    absl::MutexLock l(&mu_);
    Entry& e = entries_[zone];
    const bool fresh = e.good != nullptr && now - e.good_at < options_.ttl;
    const bool backing_off = !e.last_error.ok() && now - e.attempt_at < options_.retry_after;
    if (fresh || backing_off) return Reading(zone, e, now);
    e.attempt_at = now;
  }
  absl::StatusOr<CarbonSeries> fetched = inner_->Fetch(zone);
  absl::MutexLock l(&mu_);
  Entry& e = entries_[zone];
  if (fetched.ok()) {
    e.good = std::make_shared<const CarbonSeries>(*std::move(fetched));
    e.good_at = now;
    e.last_error = absl::OkStatus();
  } else {
    e.last_error = fetched.status();
    GL_LOG_DEBUG(
        "carbon source fetch failed; serving last good data",
        {F("source", inner_->name()), F("zone", zone), F("error", fetched.status().message())});
  }
  return Reading(zone, e, now);
}

}  // namespace greenlight::providers
