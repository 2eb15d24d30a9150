// Live carbon data end to end: the real greenlightd with data.live_carbon
// fetches the recorded API responses (tests/data/providers) from a local
// HTTPS server (fake_carbon_api.py) whose certificate comes from a CA made by
// the test and trusted through ca_file. Asserts over gRPC and /metrics that
// the zone's series is the live one and quotes are exact; that when the API
// fails the zone goes stale (quotes estimated, metric 1) with one warn line;
// that the API key never reaches the log; and that libcurl verifies the
// server's certificate and name.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "greenlight/v1/inventory.grpc.pb.h"
#include "greenlight/v1/scheduler.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/providers/http_client.h"
#include "tests/testing/daemon_process.h"
#include "tests/testing/temp_dir.h"

namespace greenlight {
namespace {

using ::greenlight::testing::DaemonProcess;
using ::greenlight::testing::GreenlightRoot;
using ::greenlight::testing::TempDir;
using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::greenlight::v1;

// A key nobody else would print; the daemon log must never contain it.
constexpr char kEmapsKey[] = "emaps-test-key-4b1f0c9e7d2a";
constexpr char kWattTimeUser[] = "wt-user-test";
constexpr char kWattTimePassword[] = "wt-password-test-8c3e";

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Count(const std::string& text, const std::string& needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

// Polls `done` every 100 ms for up to `limit`; the limit is generous on
// purpose: it only bounds a failing test, it measures nothing.
bool WaitFor(const std::function<bool()>& done,
             std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto give_up = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < give_up) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// A CA and a server certificate for 127.0.0.1 only (not "localhost": the
// host-name check is tested with it), made with the openssl CLI.
bool MakePki(const std::string& dir) {
  auto run = [&](const std::string& args) {
    return std::system(
               absl::StrCat("cd '", dir, "' && openssl ", args, " >>openssl.log 2>&1").c_str()) ==
           0;
  };
  std::ofstream(dir + "/server.ext") << "subjectAltName=IP:127.0.0.1\n"
                                        "extendedKeyUsage=serverAuth\n";
  return run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key "
             "-out ca.pem -days 2 -subj /CN=greenlight-test-ca") &&
         run("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "
             "other-ca.key -out other-ca.pem -days 2 -subj /CN=someone-else") &&
         run("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key "
             "-out server.csr -subj /CN=127.0.0.1") &&
         run("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 7 -days 2 -out "
             "server.pem -extfile server.ext");
}

// fake_carbon_api.py as a child process (killed with the test, even on a crash).
class FakeApi {
 public:
  explicit FakeApi(std::string dir) : dir_(std::move(dir)) {}
  ~FakeApi() { Stop(); }
  bool Start() {
    std::filesystem::create_directories(state());
    std::vector<std::string> args = {
        "/usr/bin/python3",
        GreenlightRoot() + "/tests/integration/live_carbon/fake_carbon_api.py",
        "--cert=" + dir_ + "/server.pem",
        "--key=" + dir_ + "/server.key",
        "--data-dir=" + GreenlightRoot() + "/tests/data/providers",
        "--state-dir=" + state()};
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      FILE* log = std::fopen((dir_ + "/fake_api.log").c_str(), "a");
      if (log) {
        dup2(fileno(log), 1);
        dup2(fileno(log), 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
    return WaitFor([&] {
      std::string p = Slurp(state() + "/port");
      return absl::SimpleAtoi(p, &port_) && port_ > 0;
    });
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // From now on the data endpoints answer HTTP 500.
  void Fail() { std::ofstream(state() + "/fail") << "1\n"; }
  std::string url() const { return absl::StrCat("https://127.0.0.1:", port_); }
  int port() const { return port_; }
  std::vector<std::string> requests() const {
    return absl::StrSplit(Slurp(state() + "/requests.log"), '\n', absl::SkipEmpty());
  }
  int CountRequests(const std::string& prefix) const {
    int n = 0;
    for (const auto& r : requests()) n += absl::StartsWith(r, prefix) ? 1 : 0;
    return n;
  }
  std::string log() const { return Slurp(dir_ + "/fake_api.log"); }

 private:
  std::string state() const { return dir_ + "/api"; }
  std::string dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class LiveCarbonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    if (std::system("openssl version >/dev/null 2>&1") != 0)
      GTEST_SKIP() << "openssl CLI not installed";
    ASSERT_TRUE(MakePki(dir_.path())) << Slurp(dir_.File("openssl.log"));
    ::setenv("FAKE_EMAPS_TOKEN", kEmapsKey, 1);
    ::setenv("FAKE_WT_USER", kWattTimeUser, 1);
    ::setenv("FAKE_WT_PASSWORD", kWattTimePassword, 1);
    // greenlightd reads its credentials from these (the config names them).
    ::setenv("GL_TEST_EMAPS_TOKEN", kEmapsKey, 1);
    ::setenv("GL_TEST_WT_USER", kWattTimeUser, 1);
    std::ofstream(dir_.File("wt.password")) << kWattTimePassword << "\n";
    ASSERT_TRUE(api_.Start()) << api_.log();
  }
  void TearDown() override {
    ::unsetenv("GL_TEST_EMAPS_TOKEN");
    ::unsetenv("GL_TEST_WT_USER");
  }

  // A small real inventory (the AWS catalog) with time at wall speed, plus
  // data.live_carbon from `live` (YAML lines under live_carbon:).
  std::string WriteConfig(const std::string& live) {
    const std::string d = GreenlightRoot() + "/data";
    std::ofstream(dir_.File("greenlight.yaml"))
        << "clock: {time_scale: 1, tick_ms: 200}\n"
        << "data:\n"
        << "  catalogs:\n"
        << "    - {provider: aws, file: " << d << "/prices/aws_gpu_vms.csv}\n"
        << "  gpu_power: " << d << "/gpus/mlco2_gpus.csv\n"
        << "  gpu_overrides: " << d << "/gpu_overrides.csv\n"
        << "  region_carbon: " << d << "/gpus/mlco2_impact_cloud_region_carbon.csv\n"
        << "  region_zones: " << d << "/region_zones.csv\n"
        << "  carbon_series:\n"
        << "    - {zone: DE, file: " << d << "/carbon/lwa2020_ger_ci.csv}\n"
        << "    - {zone: US-CAL-CISO, file: " << d << "/carbon/emaps_US-CAL-CISO_2022_hourly.csv}\n"
        << "  live_carbon:\n"
        << live << "teams:\n"
        << "  - {name: acme, monthly_cost_budget_usd: 100000, monthly_carbon_budget_kg: 10000}\n";
    return dir_.File("greenlight.yaml");
  }

  std::unique_ptr<DaemonProcess> StartDaemon(const std::string& config, bool expect_ok = true,
                                             const std::string& store = "gl.db") {
    metrics_port_ = *PickFreePort();
    auto d = std::make_unique<DaemonProcess>(DaemonProcess::Options{
        .store = dir_.File(store),
        .flags = {absl::StrCat("--metrics_address=127.0.0.1:", metrics_port_),
                  "--log_level=debug"},  // the most lines: none may hold the key
        .config = config,
        .log_file = dir_.File("greenlightd.log")});
    bool started = d->Start();
    if (expect_ok) {
      EXPECT_TRUE(started) << d->log();
    }
    return d;
  }

  std::optional<v1::GridZone> Zone(const DaemonProcess& d, const std::string& name) {
    auto stub = v1::Inventory::NewStub(d.channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListZonesResponse resp;
    if (!stub->ListZones(&ctx, v1::ListZonesRequest(), &resp).ok()) return std::nullopt;
    for (const auto& z : resp.zones())
      if (z.name() == name) return z;
    return std::nullopt;
  }

  // The quote of a 1-GPU, 1-hour job that may only run in `region`, due
  // within 6 hours (inside the live series).
  std::optional<v1::Placement> Quote(const DaemonProcess& d, const std::string& region) {
    auto stub = v1::Scheduler::NewStub(d.channel());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::EstimateJobRequest req;
    v1::JobSpec* s = req.mutable_spec();
    s->set_team("acme");
    s->set_name("live-carbon-probe");
    s->set_gpus(1);
    s->mutable_duration()->set_seconds(3600);
    s->add_regions(region);
    s->mutable_deadline()->set_seconds(absl::ToUnixSeconds(absl::Now() + absl::Hours(6)));
    v1::EstimateJobResponse resp;
    grpc::Status st = stub->EstimateJob(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    if (!st.ok() || !resp.quote().feasible()) return std::nullopt;
    return resp.quote().chosen();
  }

  // A sample of greenlightd's /metrics, or nullopt.
  std::optional<double> Metric(const std::string& series) {
    providers::CurlHttpClient http;
    auto r = http.Get(
        {absl::StrCat("http://127.0.0.1:", metrics_port_, "/metrics"), {}, absl::Seconds(5)});
    if (!r.ok() || r->status != 200) return std::nullopt;
    for (absl::string_view line : absl::StrSplit(r->body, '\n')) {
      if (!absl::StartsWith(line, series + " ")) continue;
      double v;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
    }
    return std::nullopt;
  }

  std::string EmapsLive(const std::string& extra = "") {
    return absl::StrCat("    provider: electricitymaps\n", "    base_url: ", api_.url(), "/v3\n",
                        "    zones: [DE]\n", "    api_key_env: GL_TEST_EMAPS_TOKEN\n",
                        "    ca_file: ", dir_.File("ca.pem"), "\n", extra);
  }

  TempDir dir_;
  FakeApi api_{dir_.path()};
  int metrics_port_ = 0;
};

// The served DE values around now: the recording's last history hour (its
// "now") and first forecast hour, i.e. the hour of the fetch and the next.
std::vector<double> RecordedDeValuesAroundNow() {
  const std::string dir = GreenlightRoot() + "/tests/data/providers/";
  auto history = nlohmann::json::parse(Slurp(dir + "emaps_v3_history_DE.json"));
  auto forecast = nlohmann::json::parse(Slurp(dir + "emaps_v3_forecast_DE.json"));
  return {history["history"].back()["carbonIntensity"].get<double>(),
          forecast["forecast"].front()["carbonIntensity"].get<double>()};
}

TEST_F(LiveCarbonTest, ElectricityMapsDataIsUsedThenGoesStaleWhenTheApiFails) {
  auto d =
      StartDaemon(WriteConfig(EmapsLive("    refresh_seconds: 1\n"
                                        "    ttl_seconds: 1\n"
                                        "    retry_seconds: 1\n"
                                        "    stale_after_seconds: 4\n"
                                        "    timeout_seconds: 5\n")));
  ASSERT_TRUE(d->running());

  // Fresh: the zone's series is the live one and quotes are exact.
  std::optional<v1::GridZone> de;
  ASSERT_TRUE(WaitFor([&] {
    de = Zone(*d, "DE");
    return de && absl::StartsWith(de->source(), "live:electricitymaps history + forecast") &&
           !absl::StrContains(de->source(), "stale");
  })) << (de ? de->source() : "no zone DE")
      << "\n"
      << d->log();
  EXPECT_GE(de->points(), 72);
  EXPECT_THAT(RecordedDeValuesAroundNow(), ::testing::Contains(de->current_g_per_kwh()));
  EXPECT_GE(de->updated().seconds(), absl::ToUnixSeconds(absl::Now()) - 60);
  std::optional<v1::Placement> q = Quote(*d, "eu-central-1");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->grid_zone(), "DE");
  EXPECT_FALSE(q->carbon_estimated());
  ASSERT_TRUE(
      WaitFor([&] { return Metric("greenlight_zone_carbon_data_stale{zone=\"DE\"}") == 0.0; }));
  // The age counts from the fetch (ttl 1 s: a few seconds at most), not
  // from the start of the hour in use as for file series. The gauges are
  // refreshed every second, after the push: poll.
  std::optional<double> age;
  EXPECT_TRUE(WaitFor([&] {
    age = Metric("greenlight_zone_carbon_data_age_seconds{zone=\"DE\"}");
    return age && *age < 10;
  })) << (age ? *age : -1);
  // Every request carried the right key; none was refused.
  EXPECT_GE(api_.CountRequests("200 /v3/carbon-intensity/history auth=ok"), 1);
  EXPECT_EQ(api_.CountRequests("401"), 0) << absl::StrJoin(api_.requests(), "\n");

  // The API fails: last good data until stale_after, then the annual average.
  api_.Fail();
  ASSERT_TRUE(WaitFor([&] {
    de = Zone(*d, "DE");
    return de && absl::StrContains(de->source(), "stale since");
  })) << (de ? de->source() : "no zone DE")
      << "\n"
      << d->log();
  EXPECT_DOUBLE_EQ(de->current_g_per_kwh(), de->annual_average_g_per_kwh());
  q = Quote(*d, "eu-central-1");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->grid_zone(), "DE");
  EXPECT_TRUE(q->carbon_estimated());
  ASSERT_TRUE(
      WaitFor([&] { return Metric("greenlight_zone_carbon_data_stale{zone=\"DE\"}") == 1.0; }));
  age = Metric("greenlight_zone_carbon_data_age_seconds{zone=\"DE\"}");
  ASSERT_TRUE(age.has_value());
  EXPECT_GE(*age, 4);  // older than stale_after: still counted from the last good fetch
  // Several failed fetches, reported once (then quiet), plus the staleness once.
  ASSERT_TRUE(WaitFor([&] { return api_.CountRequests("500 ") >= 3; }));
  const std::string log = d->log();
  EXPECT_EQ(Count(log, "msg=\"live carbon refresh failed\""), 1) << log;
  EXPECT_EQ(Count(log, "msg=\"live carbon data stale"), 1) << log;
  EXPECT_THAT(
      log,
      HasSubstr("zone=DE provider=electricitymaps error=\"electricitymaps: history: HTTP 500\""));

  // SIGTERM drains cleanly with the refresher running.
  int status = d->Terminate();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  const std::string full = d->log();
  EXPECT_THAT(full, HasSubstr("msg=\"live carbon data on\" provider=electricitymaps zones=DE"));
  EXPECT_THAT(full, HasSubstr(absl::StrCat("host=127.0.0.1:", api_.port(), " ")));
  EXPECT_THAT(full, HasSubstr("greenlightd stopped"));
  EXPECT_THAT(full, Not(HasSubstr(kEmapsKey)));
}

// The last good live data is in the store: killed and restarted while the
// API is down, greenlightd serves it (with its real fetch time) until it is
// older than stale_after, then the annual average; never the "no data yet"
// placeholder.
TEST_F(LiveCarbonTest, LastGoodDataSurvivesAKillAndIsServedUntilStaleWhileTheApiIsDown) {
  const std::string config =
      WriteConfig(EmapsLive("    refresh_seconds: 1\n"
                            "    ttl_seconds: 1\n"
                            "    retry_seconds: 1\n"
                            "    stale_after_seconds: 30\n"
                            "    timeout_seconds: 5\n"));
  constexpr char kLiveSource[] = "live:electricitymaps history + forecast";
  auto d = StartDaemon(config);
  ASSERT_TRUE(d->running());
  std::optional<v1::GridZone> de;
  ASSERT_TRUE(WaitFor([&] {
    de = Zone(*d, "DE");
    return de && absl::StartsWith(de->source(), kLiveSource) &&
           !absl::StrContains(de->source(), "stale");
  })) << (de ? de->source() : "no zone DE")
      << "\n"
      << d->log();

  // A failed history request means the fetch before it, and its push, are
  // done: the zone's fetch time is final.
  api_.Fail();
  ASSERT_TRUE(WaitFor([&] { return api_.CountRequests("500 /v3/carbon-intensity/history") >= 1; }));
  de = Zone(*d, "DE");
  ASSERT_TRUE(de.has_value());
  const std::string live_source = de->source();
  ASSERT_THAT(live_source, ::testing::StartsWith(kLiveSource));
  const absl::Time fetched = absl::FromUnixSeconds(de->updated().seconds());
  const std::string fetched_text =
      absl::FormatTime(absl::RFC3339_sec, fetched, absl::UTCTimeZone());
  d->Kill();
  // An outage: the restored data's age must count from the fetch, not the restart.
  std::this_thread::sleep_for(std::chrono::seconds(3));

  const size_t log_before = d->log().size();
  d = StartDaemon(config);
  ASSERT_TRUE(d->running());
  bool placeholder_seen = false;
  auto zone = [&] {
    std::optional<v1::GridZone> z = Zone(*d, "DE");
    if (z && absl::StrContains(z->source(), "no data yet")) placeholder_seen = true;
    return z;
  };
  // At once, before any fetch succeeds: the stored series and its fetch time.
  de = zone();
  ASSERT_TRUE(de.has_value());
  EXPECT_EQ(de->source(), live_source);
  EXPECT_EQ(de->updated().seconds(), absl::ToUnixSeconds(fetched));
  EXPECT_THAT(RecordedDeValuesAroundNow(), ::testing::Contains(de->current_g_per_kwh()));
  std::optional<v1::Placement> q = Quote(*d, "eu-central-1");
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->grid_zone(), "DE");
  EXPECT_FALSE(q->carbon_estimated());
  std::optional<double> age;
  EXPECT_TRUE(WaitFor([&] {
    age = Metric("greenlight_zone_carbon_data_age_seconds{zone=\"DE\"}");
    const double since_fetch = absl::ToDoubleSeconds(absl::Now() - fetched);
    return age && *age >= since_fetch - 2 && *age <= since_fetch + 2 &&
           Metric("greenlight_zone_carbon_data_stale{zone=\"DE\"}") == 0.0;
  })) << (age ? *age : -1);

  // Stale once older than stale_after, counted from the fetch before the kill.
  ASSERT_TRUE(WaitFor([&] {
    de = zone();
    return de && absl::StrContains(de->source(), "stale since");
  })) << (de ? de->source() : "no zone DE")
      << "\n"
      << d->log();
  EXPECT_GE(absl::Now() - fetched, absl::Seconds(30));
  EXPECT_THAT(de->source(), ::testing::StartsWith(live_source + " (stale since"));
  EXPECT_EQ(de->updated().seconds(), absl::ToUnixSeconds(fetched));
  EXPECT_DOUBLE_EQ(de->current_g_per_kwh(), de->annual_average_g_per_kwh());
  q = Quote(*d, "eu-central-1");
  ASSERT_TRUE(q.has_value());
  EXPECT_TRUE(q->carbon_estimated());
  ASSERT_TRUE(
      WaitFor([&] { return Metric("greenlight_zone_carbon_data_stale{zone=\"DE\"}") == 1.0; }));
  age = Metric("greenlight_zone_carbon_data_age_seconds{zone=\"DE\"}");
  ASSERT_TRUE(age.has_value());
  EXPECT_GE(*age, 30);
  EXPECT_FALSE(placeholder_seen);
  EXPECT_GE(api_.CountRequests("500 /v3/carbon-intensity/history"), 2);  // it did ask
  const std::string log = d->log().substr(log_before);
  EXPECT_EQ(Count(log, absl::StrCat("msg=\"live carbon data restored from the store\" zone=DE "
                                    "provider=electricitymaps data_fetched_at=",
                                    fetched_text)),
            1)
      << log;
  EXPECT_THAT(log, Not(HasSubstr("data_fetched_at=never")));
  EXPECT_THAT(log, Not(HasSubstr("no data yet")));

  // Killed again and restarted with the kept data stale already: stale from
  // the start, still with the fetch time from before the first kill.
  d->Kill();
  d = StartDaemon(config);
  ASSERT_TRUE(d->running());
  de = zone();
  ASSERT_TRUE(de.has_value());
  EXPECT_THAT(de->source(), HasSubstr("stale since"));
  EXPECT_EQ(de->updated().seconds(), absl::ToUnixSeconds(fetched));
  q = Quote(*d, "eu-central-1");
  ASSERT_TRUE(q.has_value());
  EXPECT_TRUE(q->carbon_estimated());
  EXPECT_FALSE(placeholder_seen);
  EXPECT_EQ(d->Terminate(), 0);
}

TEST_F(LiveCarbonTest, WattTimeAndCarbonAwareSdkDataIsUsedForTheirZones) {
  struct Case {
    std::string name;
    std::string live;
    std::string source;
  };
  for (const Case& c : std::vector<Case>{
           {"watttime",
            absl::StrCat("    provider: watttime\n    base_url: ", api_.url(),
                         "\n    auth_url: ", api_.url(),
                         "\n    zones: [{zone: US-CAL-CISO, id: CAISO_NORTH}]\n"
                         "    username_env: GL_TEST_WT_USER\n    password_file: ",
                         dir_.File("wt.password"), "\n    ca_file: ", dir_.File("ca.pem"), "\n"),
            "live:watttime co2_moer historical + forecast"},
           {"carbon-aware-sdk",
            absl::StrCat("    provider: carbon-aware-sdk\n    base_url: ", api_.url(),
                         "\n    zones: [{zone: US-CAL-CISO, id: westus}]\n    ca_file: ",
                         dir_.File("ca.pem"), "\n"),
            "live:carbon-aware-sdk emissions + forecast"},
       }) {
    auto d = StartDaemon(WriteConfig(c.live), true, c.name + ".db");
    ASSERT_TRUE(d->running()) << c.name;
    std::optional<v1::GridZone> z;
    EXPECT_TRUE(WaitFor([&] {
      z = Zone(*d, "US-CAL-CISO");
      return z && absl::StartsWith(z->source(), c.source);
    })) << c.name
        << ": " << (z ? z->source() : "no zone") << "\n"
        << d->log();
    std::optional<v1::Placement> q = Quote(*d, "us-west-1");
    ASSERT_TRUE(q.has_value()) << c.name;
    EXPECT_EQ(q->grid_zone(), "US-CAL-CISO") << c.name;
    EXPECT_FALSE(q->carbon_estimated()) << c.name;
    EXPECT_TRUE(WaitFor([&] {
      return Metric("greenlight_zone_carbon_data_stale{zone=\"US-CAL-CISO\"}") == 0.0;
    })) << c.name;
    EXPECT_EQ(d->Terminate(), 0) << c.name;
    EXPECT_THAT(d->log(), Not(HasSubstr(kWattTimePassword))) << c.name;
  }
  EXPECT_GE(api_.CountRequests("200 /login auth=ok"), 1);
  EXPECT_EQ(api_.CountRequests("401"), 0) << absl::StrJoin(api_.requests(), "\n");
}

TEST_F(LiveCarbonTest, MissingKeyOrAnUnknownZoneIsAConfigErrorNamingTheKey) {
  ::unsetenv("GL_TEST_EMAPS_TOKEN");
  auto d = StartDaemon(WriteConfig(EmapsLive()), /*expect_ok=*/false);
  EXPECT_FALSE(d->running());
  EXPECT_TRUE(WIFEXITED(d->exit_status()) && WEXITSTATUS(d->exit_status()) == 2)
      << d->exit_status();
  EXPECT_THAT(d->log(), HasSubstr("data.live_carbon.api_key_env"));
  EXPECT_THAT(d->log(), HasSubstr("GL_TEST_EMAPS_TOKEN"));

  ::setenv("GL_TEST_EMAPS_TOKEN", kEmapsKey, 1);
  std::string live = EmapsLive();
  live.replace(live.find("zones: [DE]"), 11, "zones: [DE, XX-NOWHERE]");
  d = StartDaemon(WriteConfig(live), /*expect_ok=*/false);
  EXPECT_FALSE(d->running());
  EXPECT_TRUE(WIFEXITED(d->exit_status()) && WEXITSTATUS(d->exit_status()) == 2)
      << d->exit_status();
  EXPECT_THAT(d->log(), HasSubstr("data.live_carbon.zones[1]: 'XX-NOWHERE'"));

  live = EmapsLive();
  live.replace(live.find("https://"), 8, "http://");
  d = StartDaemon(WriteConfig(live), /*expect_ok=*/false);
  EXPECT_TRUE(WIFEXITED(d->exit_status()) && WEXITSTATUS(d->exit_status()) == 2)
      << d->exit_status();
  EXPECT_THAT(d->log(), HasSubstr("data.live_carbon.base_url: must be https://"));
  EXPECT_THAT(d->log(), Not(HasSubstr(kEmapsKey)));
}

// The transport itself: certificates and host names are verified; ca_file
// is what makes a private CA trusted.
TEST_F(LiveCarbonTest, TheHttpsClientVerifiesTheCertificateAndTheHostName) {
  const std::string path = "/v3/carbon-intensity/history?zone=DE";
  providers::HttpRequest req{api_.url() + path, {{"auth-token", kEmapsKey}}, absl::Seconds(10)};

  providers::CurlHttpClient trusting(providers::CurlOptions{.ca_file = dir_.File("ca.pem")});
  auto ok = trusting.Get(req);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->status, 200);
  EXPECT_TRUE(nlohmann::json::parse(ok->body).contains("history"));

  providers::CurlHttpClient system_store;  // the test CA is not in it
  auto untrusted = system_store.Get(req);
  EXPECT_EQ(untrusted.status().code(), absl::StatusCode::kUnavailable) << untrusted.status();

  providers::CurlHttpClient other(providers::CurlOptions{.ca_file = dir_.File("other-ca.pem")});
  auto wrong_ca = other.Get(req);
  EXPECT_EQ(wrong_ca.status().code(), absl::StatusCode::kUnavailable) << wrong_ca.status();

  // The certificate names 127.0.0.1 only.
  providers::HttpRequest by_name = req;
  by_name.url = absl::StrCat("https://localhost:", api_.port(), path);
  auto wrong_name = trusting.Get(by_name);
  EXPECT_EQ(wrong_name.status().code(), absl::StatusCode::kUnavailable) << wrong_name.status();

  EXPECT_THAT(std::string(untrusted.status().message()) + std::string(wrong_ca.status().message()) +
                  std::string(wrong_name.status().message()),
              Not(HasSubstr(kEmapsKey)));
}

}  // namespace
}  // namespace greenlight
