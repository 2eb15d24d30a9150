// Live sources over a fake HTTP client, the TTL / last-known-good / stale
// cache on a ManualClock, and the libcurl client against a local server.
#include "services/providers/carbon_source.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <thread>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/providers/test_util.h"

namespace greenlight::providers {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::ReadAll;
using testing::Root;

const absl::Time kNow = absl::FromCivil(absl::CivilHour(2026, 3, 10, 12), absl::UTCTimeZone());

std::string Recorded(const std::string& name) {
  return ReadAll(absl::StrCat(Root(), "/tests/data/providers/", name));
}

// Answers by URL path prefix (after the host); records every request.
class FakeHttp final : public HttpClient {
 public:
  void Route(std::string path_prefix, int status, std::string body) {
    routes_.push_back({std::move(path_prefix), HttpResponse{status, std::move(body)}});
  }
  absl::StatusOr<HttpResponse> Get(const HttpRequest& req) override {
    requests.push_back(req);
    if (down) return absl::UnavailableError("connection refused");
    std::string path = req.url.substr(req.url.find('/', req.url.find("//") + 2));
    for (const auto& [prefix, resp] : routes_) {
      if (absl::StartsWith(path, prefix)) return resp;
    }
    return HttpResponse{404, "{}"};
  }
  std::vector<HttpRequest> requests;
  bool down = false;

 private:
  std::vector<std::pair<std::string, HttpResponse>> routes_;
};

std::string Header(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return "";
}

LiveSourceOptions Options(const std::string& base) {
  LiveSourceOptions o;
  o.base_url = base;
  o.annual = [](const std::string&) { return 313.0; };
  return o;
}

TEST(ElectricityMapsSource, MergesHistoryAndForecastIntoAnHourlySeries) {
  FakeHttp http;
  http.Route("/v3/carbon-intensity/history", 200, Recorded("emaps_v3_history_DE.json"));
  http.Route("/v3/carbon-intensity/forecast", 200, Recorded("emaps_v3_forecast_DE.json"));
  ManualClock clock(kNow);
  ElectricityMapsSource src(&http, &clock, ApiKey::FromValue("sekret-token", "test"),
                            Options("https://api.electricitymap.org/v3"));
  auto s = src.Fetch("DE");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(http.requests.size(), 2u);
  EXPECT_EQ(http.requests[0].url,
            "https://api.electricitymap.org/v3/carbon-intensity/history?zone=DE");
  EXPECT_EQ(Header(http.requests[0], "auth-token"), "sekret-token");
  EXPECT_EQ(s->zone(), "DE");
  EXPECT_EQ(s->step(), absl::Hours(1));
  EXPECT_EQ(s->start(), kNow - absl::Hours(23));
  EXPECT_EQ(s->end(), kNow + absl::Hours(73));  // 24 h history + 72 h forecast
  EXPECT_DOUBLE_EQ(s->annual_average(), 313);
  // The null hour (index 5) is interpolated between its neighbours.
  EXPECT_DOUBLE_EQ(s->values()[5], (s->values()[4] + s->values()[6]) / 2);
  EXPECT_THAT(s->source(), HasSubstr("forecast"));
  EXPECT_FALSE(s->stale());
}

TEST(ElectricityMapsSource, WithoutAProviderForecastOurForecasterFillsTheHorizon) {
  FakeHttp http;
  http.Route("/v3/carbon-intensity/history", 200, Recorded("emaps_v3_history_DE.json"));
  http.Route("/v3/carbon-intensity/forecast", 403, "{\"error\":\"plan\"}");
  ManualClock clock(kNow);
  ElectricityMapsSource src(&http, &clock, ApiKey::FromValue("k", "test"), Options("https://x/v3"));
  auto s = src.Fetch("DE");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_GE(s->end(), kNow + absl::Hours(72));
  EXPECT_THAT(s->source(), HasSubstr("forecast blend-yesterday-weekly"));
  // With less than a week of history the blend is the same hour yesterday.
  EXPECT_DOUBLE_EQ(s->At(kNow + absl::Hours(2)), s->At(kNow + absl::Hours(2) - absl::Hours(24)));
}

TEST(ElectricityMapsSource, HttpErrorsNeverQuoteTheKey) {
  FakeHttp http;
  http.Route("/v3/carbon-intensity/history", 401, "{\"message\":\"bad token sekret-token\"}");
  ManualClock clock(kNow);
  ElectricityMapsSource src(&http, &clock, ApiKey::FromValue("sekret-token", "test"),
                            Options("https://x/v3"));
  auto s = src.Fetch("DE");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("HTTP 401"));
  EXPECT_THAT(std::string(s.status().message()), Not(HasSubstr("sekret")));
}

TEST(WattTimeSource, LogsInOnceConvertsMoerAndAveragesFiveMinutePoints) {
  FakeHttp http;
  http.Route("/login", 200, "{\"token\":\"tok123\"}");
  http.Route("/v3/historical", 200, Recorded("watttime_v3_historical_CAISO_NORTH.json"));
  http.Route("/v3/forecast", 200, Recorded("watttime_v3_forecast_CAISO_NORTH.json"));
  ManualClock clock(kNow);
  LiveSourceOptions o = Options("https://api.watttime.org");
  o.zone_ids = {{"US-CAL-CISO", "CAISO_NORTH"}};
  WattTimeSource src(&http, &clock, ApiKey::FromValue("user", "t"), ApiKey::FromValue("pw", "t"),
                     "https://api.watttime.org", o);
  auto s = src.Fetch("US-CAL-CISO");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(http.requests.size(), 3u);
  EXPECT_EQ(Header(http.requests[0], "Authorization"), "Basic dXNlcjpwdw==");  // base64("user:pw")
  EXPECT_EQ(Header(http.requests[1], "Authorization"), "Bearer tok123");
  EXPECT_THAT(http.requests[1].url,
              HasSubstr("region=CAISO_NORTH&signal_type=co2_moer&start=2026-03-09T12%3A00%3A00Z"));
  EXPECT_EQ(s->zone(), "US-CAL-CISO");
  EXPECT_EQ(s->start(), kNow - absl::Hours(24));
  // Hour 12:00-13:00 is the mean of twelve 5-minute forecast points, in g/kWh.
  auto parsed = ParseWattTime(Recorded("watttime_v3_forecast_CAISO_NORTH.json"));
  ASSERT_TRUE(parsed.ok());
  double mean = 0;
  for (int i = 0; i < 12; ++i) mean += parsed->points[i].value / 12;
  EXPECT_NEAR(s->At(kNow + absl::Minutes(30)), mean, 1e-9);
  // Within the token's life a second fetch does not log in again; after it, it does.
  ASSERT_TRUE(src.Fetch("US-CAL-CISO").ok());
  EXPECT_EQ(http.requests.size(), 5u);
  clock.Advance(absl::Minutes(26));
  ASSERT_TRUE(src.Fetch("US-CAL-CISO").ok());
  EXPECT_EQ(http.requests.size(), 8u);
  EXPECT_THAT(http.requests[5].url, HasSubstr("/login"));
}

TEST(CarbonAwareSdkSource, ReadsEmissionsAndTheCurrentForecast) {
  FakeHttp http;
  http.Route("/emissions/bylocation", 200, Recorded("casdk_emissions_bylocation_westus.json"));
  http.Route("/emissions/forecasts/current", 200,
             Recorded("casdk_forecasts_current_westus_eastus.json"));
  ManualClock clock(kNow);
  LiveSourceOptions o = Options("http://127.0.0.1:8090");
  o.zone_ids = {{"US-CAL-CISO", "westus"}};
  CarbonAwareSdkSource src(&http, &clock, o);
  auto s = src.Fetch("US-CAL-CISO");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(http.requests[1].url, HasSubstr("/emissions/forecasts/current?location=westus"));
  EXPECT_EQ(s->start(), kNow - absl::Hours(24));
  EXPECT_GE(s->end(), kNow + absl::Hours(72));
  EXPECT_GT(s->At(kNow), 200);
  EXPECT_LT(s->At(kNow), 600);
}

// A source that returns a fixed series, or fails on demand.
class ScriptedSource final : public CarbonSource {
 public:
  std::string name() const override { return "scripted"; }
  absl::StatusOr<CarbonSeries> Fetch(const std::string& zone) override {
    ++calls;
    if (fail) return absl::UnavailableError("upstream down");
    CarbonSeries s(zone, kNow - absl::Hours(24), absl::Hours(1), std::vector<double>(96, value),
                   300);
    s.set_source("scripted");
    return s;
  }
  int calls = 0;
  bool fail = false;
  double value = 100;
};

TEST(CachingCarbonSource, ServesWithinTtlThenRefetches) {
  ScriptedSource inner;
  ManualClock clock(kNow);
  CachingCarbonSource cache(&inner, &clock, CacheOptions{},
                            [](const std::string&) { return 300.0; });
  ZoneReading r = cache.Get("DE");
  EXPECT_EQ(inner.calls, 1);
  EXPECT_FALSE(r.stale);
  EXPECT_DOUBLE_EQ(r.series->At(kNow), 100);
  clock.Advance(absl::Minutes(14));
  inner.value = 150;
  EXPECT_DOUBLE_EQ(cache.Get("DE").series->At(kNow), 100);
  EXPECT_EQ(inner.calls, 1);
  clock.Advance(absl::Minutes(2));
  EXPECT_DOUBLE_EQ(cache.Get("DE").series->At(kNow), 150);
  EXPECT_EQ(inner.calls, 2);
  cache.Get("GB");
  EXPECT_EQ(inner.calls, 3);  // zones are cached separately
}

TEST(CachingCarbonSource, FailuresServeLastGoodUntilStaleThenTheAnnualAverage) {
  ScriptedSource inner;
  ManualClock clock(kNow);
  CacheOptions opt;  // ttl 15 min, retry 1 min, stale after 3 h
  CachingCarbonSource cache(&inner, &clock, opt, [](const std::string&) { return 300.0; });
  ASSERT_FALSE(cache.Get("DE").stale);
  inner.fail = true;
  clock.Advance(absl::Minutes(20));
  ZoneReading r = cache.Get("DE");
  EXPECT_EQ(inner.calls, 2);
  EXPECT_FALSE(r.stale);  // last good is 20 min old
  EXPECT_EQ(r.last_error.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.fetched_at, kNow);
  EXPECT_DOUBLE_EQ(r.series->At(clock.Now()), 100);
  clock.Advance(absl::Seconds(30));
  cache.Get("DE");
  EXPECT_EQ(inner.calls, 2);  // backing off for retry_after
  clock.Advance(absl::Hours(3));
  r = cache.Get("DE");
  EXPECT_EQ(inner.calls, 3);
  EXPECT_TRUE(r.stale);
  EXPECT_TRUE(r.series->stale());
  EXPECT_DOUBLE_EQ(r.series->At(kNow), 300);  // annual average, though the data says 100
  EXPECT_THAT(r.series->source(), HasSubstr("stale"));
  inner.fail = false;
  clock.Advance(absl::Minutes(2));
  r = cache.Get("DE");
  EXPECT_FALSE(r.stale);
  EXPECT_TRUE(r.last_error.ok());
  EXPECT_DOUBLE_EQ(r.series->At(kNow), 100);
}

TEST(CachingCarbonSource, SeededLastGoodIsServedLikeAFetchOfItsTimeUntilAFetchReplacesIt) {
  ScriptedSource inner;
  inner.fail = true;
  ManualClock clock(kNow);
  CacheOptions opt;  // ttl 15 min, retry 1 min, stale after 3 h
  CachingCarbonSource cache(&inner, &clock, opt, [](const std::string&) { return 300.0; });
  const absl::Time kept_at = kNow - absl::Minutes(10);
  auto kept = std::make_shared<CarbonSeries>("DE", kNow - absl::Hours(24), absl::Hours(1),
                                             std::vector<double>(96, 70), 300);
  kept->set_source("scripted");
  ASSERT_TRUE(cache.Seed("DE", kept, kept_at));

  ZoneReading r = cache.Peek("DE");
  EXPECT_FALSE(r.stale);
  EXPECT_EQ(r.fetched_at, kept_at);
  // Within the TTL of its fetch time: served as it is, no fetch.
  r = cache.Get("DE");
  EXPECT_EQ(inner.calls, 0);
  EXPECT_FALSE(r.stale);
  EXPECT_EQ(r.fetched_at, kept_at);
  EXPECT_DOUBLE_EQ(r.series->At(kNow), 70);

  // Past the TTL the provider is asked; it fails and the kept data is served.
  clock.Advance(absl::Minutes(10));
  r = cache.Get("DE");
  EXPECT_EQ(inner.calls, 1);
  EXPECT_FALSE(r.stale);
  EXPECT_EQ(r.last_error.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(r.fetched_at, kept_at);
  EXPECT_DOUBLE_EQ(r.series->At(kNow), 70);

  // Stale once older than stale_after, counted from its own fetch time.
  clock.Set(kept_at + opt.stale_after + absl::Minutes(1));
  r = cache.Get("DE");
  EXPECT_TRUE(r.stale);
  EXPECT_EQ(r.fetched_at, kept_at);
  EXPECT_DOUBLE_EQ(r.series->At(kNow), 300);
  EXPECT_THAT(r.series->source(), HasSubstr("stale since"));

  // A real fetch replaces it; older or equally old kept data never replaces
  // a newer entry.
  inner.fail = false;
  clock.Advance(absl::Minutes(2));
  r = cache.Get("DE");
  EXPECT_FALSE(r.stale);
  EXPECT_EQ(r.fetched_at, clock.Now());
  EXPECT_DOUBLE_EQ(r.series->At(kNow), 100);
  EXPECT_FALSE(cache.Seed("DE", kept, kept_at));
  EXPECT_FALSE(cache.Seed("DE", kept, clock.Now()));
  EXPECT_DOUBLE_EQ(cache.Peek("DE").series->At(kNow), 100);
  EXPECT_EQ(cache.Peek("DE").fetched_at, clock.Now());

  const absl::Time gb_at = clock.Now() - absl::Minutes(5);
  ASSERT_TRUE(cache.Seed("GB", kept, gb_at));
  auto older = std::make_shared<CarbonSeries>(*kept);
  older->set_source("older");
  EXPECT_FALSE(cache.Seed("GB", older, gb_at - absl::Hours(1)));
  EXPECT_EQ(cache.Peek("GB").series->source(), "scripted");
  auto newer = std::make_shared<CarbonSeries>(*kept);
  newer->set_source("newer");
  EXPECT_TRUE(cache.Seed("GB", newer, gb_at + absl::Minutes(1)));
  EXPECT_EQ(cache.Peek("GB").series->source(), "newer");
  EXPECT_EQ(cache.Peek("GB").fetched_at, gb_at + absl::Minutes(1));
}

TEST(CachingCarbonSource, NoDataEverIsAStaleAnnualAverageNotAnError) {
  ScriptedSource inner;
  inner.fail = true;
  ManualClock clock(kNow);
  CachingCarbonSource cache(&inner, &clock, CacheOptions{},
                            [](const std::string& z) { return z == "NO" ? 30.0 : 400.0; });
  ZoneReading r = cache.Get("NO");
  ASSERT_NE(r.series, nullptr);
  EXPECT_TRUE(r.stale);
  EXPECT_FALSE(r.last_error.ok());
  EXPECT_DOUBLE_EQ(r.series->WindowMean(kNow, kNow + absl::Hours(5)), 30);
  auto as_source = cache.Fetch("NO");
  ASSERT_TRUE(as_source.ok());
  EXPECT_TRUE(as_source->stale());
}

// One-connection-at-a-time HTTP/1.1 server on 127.0.0.1:<ephemeral>.
class LocalServer {
 public:
  LocalServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(::listen(fd_, 8), 0);
    socklen_t len = sizeof(addr);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LocalServer() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string url(const std::string& path) const {
    return absl::StrCat("http://127.0.0.1:", port_, path);
  }
  std::string last_request() {
    absl::MutexLock l(&mu_);
    return last_request_;
  }
  int status = 200;
  std::string body = "{\"ok\":true}";
  absl::Duration delay = absl::ZeroDuration();

 private:
  void Serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string req;
      char buf[4096];
      while (req.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
      }
      {
        absl::MutexLock l(&mu_);
        last_request_ = req;
      }
      absl::SleepFor(delay);
      std::string resp =
          absl::StrCat("HTTP/1.1 ", status,
                       " X\r\nContent-Type: application/json\r\nContent-Length: ", body.size(),
                       "\r\nConnection: close\r\n\r\n", body);
      ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  absl::Mutex mu_;
  std::string last_request_;
};

TEST(CurlHttpClient, GetsBodyStatusAndSendsHeadersToALocalServer) {
  LocalServer server;
  server.body = Recorded("emaps_v3_latest_DE.json");
  CurlHttpClient http;
  HttpRequest req{
      server.url("/v3/carbon-intensity/latest?zone=DE"), {{"auth-token", "abc"}}, absl::Seconds(5)};
  auto resp = http.Get(req);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->status, 200);
  EXPECT_EQ(resp->body, server.body);
  EXPECT_THAT(server.last_request(), HasSubstr("GET /v3/carbon-intensity/latest?zone=DE HTTP/1.1"));
  EXPECT_THAT(server.last_request(), HasSubstr("auth-token: abc"));
  auto parsed = ParseElectricityMaps(resp->body);
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  server.status = 503;
  resp = http.Get(req);
  ASSERT_TRUE(resp.ok());
  EXPECT_EQ(resp->status, 503);
}

TEST(CurlHttpClient, TimeoutsOversizedBodiesAndRefusedConnectionsAreErrors) {
  LocalServer server;
  server.body = std::string(100, 'x');
  CurlHttpClient small(/*max_body_bytes=*/16);
  auto big = small.Get({server.url("/x"), {}, absl::Seconds(5)});
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);

  server.delay = absl::Milliseconds(1500);
  CurlHttpClient http;
  auto slow = http.Get({server.url("/slow"), {}, absl::Milliseconds(300)});
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
  server.delay = absl::ZeroDuration();

  // A port nobody listens on: bind one, close it, connect.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  auto refused = http.Get(
      {absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/"), {}, absl::Seconds(2)});
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable) << refused.status();
}

TEST(CurlHttpClient, RefusesPlainHttpToAnythingButLoopback) {
  CurlHttpClient http;
  auto r = http.Get({"http://api.electricitymap.org/v3/x?auth=secret", {}, absl::Seconds(1)});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              Not(HasSubstr("secret")));  // query dropped from messages
  EXPECT_TRUE(IsLoopbackHttpUrl("http://127.0.0.1:80/x"));
  EXPECT_TRUE(IsLoopbackHttpUrl("http://localhost/x"));
  EXPECT_FALSE(IsLoopbackHttpUrl("http://localhost.evil.com/x"));
  EXPECT_FALSE(IsLoopbackHttpUrl("http://127.0.0.10/x"));
}

TEST(CurlHttpClient, PlainHttpToOtherHostsOnlyWithTheExplicitOptInAndNeverOtherSchemes) {
  CurlOptions insecure;
  insecure.allow_insecure_http = true;
  CurlHttpClient http(insecure);
  // Refused before any connection without the opt-in; with it, the request
  // is made (and fails here: the name does not resolve).
  auto r = http.Get({"http://greenlight-test.invalid/v3/x", {}, absl::Seconds(2)});
  EXPECT_NE(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  EXPECT_FALSE(r.ok());
  CurlHttpClient strict;
  auto s = strict.Get({"http://greenlight-test.invalid/v3/x", {}, absl::Seconds(2)});
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << s.status();
  auto ftp = http.Get({"ftp://127.0.0.1/x", {}, absl::Seconds(2)});
  EXPECT_EQ(ftp.status().code(), absl::StatusCode::kInvalidArgument) << ftp.status();
}

TEST(CurlHttpClient, CancelAbortsATransferInFlightAndRefusesNewOnes) {
  LocalServer server;
  server.delay = absl::Seconds(2);  // answers long after the cancel below
  CurlHttpClient http;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    http.Cancel();
  });
  // A 60 s timeout: only the cancel can end this call early.
  auto r = http.Get({server.url("/slow"), {}, absl::Seconds(60)});
  canceller.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled) << r.status();
  auto again = http.Get({server.url("/x"), {}, absl::Seconds(5)});
  EXPECT_EQ(again.status().code(), absl::StatusCode::kCancelled) << again.status();
}

TEST(ApiKey, ComesFromTheEnvironmentElseTheFileAndErrorsNameBothButNoValue) {
  testing::TempDir dir;
  std::string file = dir.Write("key", "  file-secret \nignored\n");
  ::unsetenv("GL_TEST_KEY");
  auto from_file = ApiKey::FromEnvOrFile("GL_TEST_KEY", file);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  EXPECT_EQ(from_file->value(), "file-secret");
  EXPECT_EQ(from_file->origin(), absl::StrCat("file ", file));
  ::setenv("GL_TEST_KEY", "env-secret", 1);
  auto from_env = ApiKey::FromEnvOrFile("GL_TEST_KEY", file);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->value(), "env-secret");
  EXPECT_EQ(from_env->origin(), "env GL_TEST_KEY");
  ::unsetenv("GL_TEST_KEY");
  auto none = ApiKey::FromEnvOrFile("GL_TEST_KEY", dir.path() + "/absent");
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("GL_TEST_KEY"));
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("absent"));
}

}  // namespace
}  // namespace greenlight::providers
