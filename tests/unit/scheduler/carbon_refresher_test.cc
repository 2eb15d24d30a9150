// The live carbon refresher on a ManualClock over a fake source: what it
// pushes and when (fresh, unchanged, failing, stale, recovered), its rate-
// limited warnings; PushToCore against a real core (quotes estimated or not);
// and BuildLiveCarbon's errors, which name the config key, never a secret.
#include "services/scheduler/carbon_refresher.h"

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/core_harness.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::scheduler {
namespace {

using ::greenlight::testing::CoreHarness;
using ::greenlight::testing::MakeJob;
using ::greenlight::testing::MakeTeam;
using ::greenlight::testing::TestStart;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

// Answers every zone with the same hourly series, or with `error`.
class FakeSource final : public providers::CarbonSource {
 public:
  std::string name() const override { return "fake"; }
  absl::StatusOr<providers::CarbonSeries> Fetch(const std::string& zone) override {
    absl::MutexLock l(&mu_);
    ++fetches_;
    if (!error_.ok()) return error_;
    providers::CarbonSeries s(zone, start_, absl::Hours(1), values_, 300);
    s.set_source("fake history + forecast");
    return s;
  }
  void Fail(absl::Status error) {
    absl::MutexLock l(&mu_);
    error_ = std::move(error);
  }
  void Serve(absl::Time start, std::vector<double> values) {
    absl::MutexLock l(&mu_);
    error_ = absl::OkStatus();
    start_ = start;
    values_ = std::move(values);
  }
  int fetches() const {
    absl::MutexLock l(&mu_);
    return fetches_;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Status error_ = absl::UnavailableError("not served yet");
  absl::Time start_;
  std::vector<double> values_;
  int fetches_ = 0;
};

struct Pushed {
  std::string zone;
  bool stale;
  absl::Time fetched_at;
  size_t points;
  std::string source;
};

// Records every push; thread-safe (the Start/Stop test pushes from the thread).
class PushLog {
 public:
  PushCarbonReading Callback() {
    return [this](const std::string& zone, const providers::ZoneReading& r) {
      absl::MutexLock l(&mu_);
      pushes_.push_back(
          {zone, r.stale, r.fetched_at, r.series->values().size(), r.series->source()});
      return absl::OkStatus();
    };
  }
  std::vector<Pushed> pushes() const {
    absl::MutexLock l(&mu_);
    return pushes_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<Pushed> pushes_;
};

std::vector<double> Hourly(int n, double first) {
  std::vector<double> v;
  for (int i = 0; i < n; ++i) v.push_back(first + i);
  return v;
}

providers::CacheOptions Cache() {
  providers::CacheOptions o;
  o.ttl = absl::Minutes(10);
  o.retry_after = absl::Minutes(1);
  o.stale_after = absl::Hours(1);
  return o;
}

TEST(CarbonRefresher, PushesFreshDataOnceThenStaleThenRecoveredWithQuietRepeatedWarnings) {
  const absl::Time t0 = TestStart();
  ManualClock clock(t0);
  FakeSource source;
  source.Serve(t0 - absl::Hours(24), Hourly(96, 100));
  providers::CachingCarbonSource cache(&source, &clock, Cache(),
                                       [](const std::string&) { return 300.0; });
  PushLog log;
  CarbonRefresherOptions o;
  o.provider = "fake";
  o.zones = {"DE"};
  o.warn_every = absl::Hours(2);
  CarbonRefresher r(&cache, log.Callback(), &clock, o);

  r.RefreshOnce();
  ASSERT_EQ(log.pushes().size(), 1u);
  EXPECT_FALSE(log.pushes()[0].stale);
  EXPECT_EQ(log.pushes()[0].fetched_at, t0);
  EXPECT_EQ(log.pushes()[0].points, 96u);
  EXPECT_FALSE(r.Statuses().at("DE").stale);
  EXPECT_EQ(r.Statuses().at("DE").fetched_at, t0);

  r.RefreshOnce();  // same data (within the TTL): nothing new to push
  EXPECT_EQ(log.pushes().size(), 1u);
  EXPECT_EQ(source.fetches(), 1);

  // The API fails from now on: last good data is served, nothing is pushed
  // until it goes stale, and the repeated failures are one warn line.
  source.Fail(absl::UnavailableError("fake: HTTP 500"));
  clock.Advance(absl::Minutes(11));
  for (int i = 0; i < 6; ++i) {
    r.RefreshOnce();
    clock.Advance(absl::Minutes(1));
  }
  EXPECT_EQ(source.fetches(), 7);
  EXPECT_EQ(log.pushes().size(), 1u);
  EXPECT_EQ(r.Statuses().at("DE").consecutive_failures, 6);
  EXPECT_FALSE(r.Statuses().at("DE").stale);
  EXPECT_EQ(r.warnings_logged(), 1);

  clock.Set(t0 + absl::Hours(1) + absl::Minutes(1));
  r.RefreshOnce();
  ASSERT_EQ(log.pushes().size(), 2u);
  EXPECT_TRUE(log.pushes()[1].stale);
  EXPECT_EQ(log.pushes()[1].fetched_at, t0);  // the data is still the t0 fetch
  EXPECT_THAT(log.pushes()[1].source, HasSubstr("stale since"));
  EXPECT_TRUE(r.Statuses().at("DE").stale);
  EXPECT_EQ(r.warnings_logged(), 2);  // + "stale" once
  r.RefreshOnce();
  EXPECT_EQ(r.warnings_logged(), 2);

  // After warn_every, a still-failing zone is reported again.
  clock.Set(t0 + absl::Hours(2) + absl::Minutes(12));
  r.RefreshOnce();
  EXPECT_EQ(r.warnings_logged(), 3);

  const absl::Time t1 = clock.Now() + absl::Minutes(2);
  clock.Set(t1);
  source.Serve(t1 - absl::Hours(24), Hourly(96, 200));
  r.RefreshOnce();
  ASSERT_EQ(log.pushes().size(), 3u);
  EXPECT_FALSE(log.pushes()[2].stale);
  EXPECT_EQ(log.pushes()[2].fetched_at, t1);
  EXPECT_FALSE(r.Statuses().at("DE").stale);
  EXPECT_EQ(r.Statuses().at("DE").consecutive_failures, 0);
}

TEST(CarbonRefresher, NoDataEverIsPushedAsStaleAndEveryZoneIsServed) {
  ManualClock clock(TestStart());
  FakeSource source;  // fails until served
  providers::CachingCarbonSource cache(&source, &clock, Cache(),
                                       [](const std::string&) { return 321.0; });
  PushLog log;
  CarbonRefresherOptions o;
  o.provider = "fake";
  o.zones = {"DE", "FR"};
  CarbonRefresher r(&cache, log.Callback(), &clock, o);
  r.RefreshOnce();
  ASSERT_EQ(log.pushes().size(), 2u);
  for (const Pushed& p : log.pushes()) {
    EXPECT_TRUE(p.stale) << p.zone;
    EXPECT_EQ(p.fetched_at, absl::InfinitePast()) << p.zone;
    EXPECT_EQ(p.points, 0u) << p.zone;
  }
  EXPECT_EQ(log.pushes()[0].zone, "DE");
  EXPECT_EQ(log.pushes()[1].zone, "FR");
  EXPECT_EQ(r.warnings_logged(), 4);  // per zone: the failure and the staleness
}

TEST(CarbonRefresher, AFailedPushIsRetriedAtTheNextPass) {
  ManualClock clock(TestStart());
  FakeSource source;
  source.Serve(TestStart() - absl::Hours(1), Hourly(10, 100));
  providers::CachingCarbonSource cache(&source, &clock, Cache(),
                                       [](const std::string&) { return 300.0; });
  int calls = 0;
  CarbonRefresherOptions o;
  o.zones = {"DE"};
  CarbonRefresher r(
      &cache,
      [&](const std::string&, const providers::ZoneReading&) {
        return ++calls == 1 ? absl::UnavailableError("scheduler is shutting down")
                            : absl::OkStatus();
      },
      &clock, o);
  r.RefreshOnce();
  EXPECT_TRUE(r.Statuses().empty());
  r.RefreshOnce();
  EXPECT_EQ(calls, 2);
  ASSERT_EQ(r.Statuses().size(), 1u);
  r.RefreshOnce();
  EXPECT_EQ(calls, 2);
}

TEST(CarbonRefresher, StartRunsAFirstPassAtOnceAndStopCancelsAndJoins) {
  ManualClock clock(TestStart());
  FakeSource source;
  source.Serve(TestStart() - absl::Hours(1), Hourly(10, 100));
  providers::CachingCarbonSource cache(&source, &clock, Cache(),
                                       [](const std::string&) { return 300.0; });
  PushLog log;
  std::atomic<bool> cancelled{false};
  CarbonRefresherOptions o;
  o.zones = {"DE"};
  o.refresh = absl::Hours(1);  // only the first pass can run in this test
  o.cancel = [&] { cancelled = true; };
  CarbonRefresher r(&cache, log.Callback(), &clock, o);
  r.Start();
  for (int i = 0; i < 3000 && log.pushes().empty(); ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(log.pushes().size(), 1u);
  r.Stop();  // wakes the thread from its hour-long wait
  EXPECT_TRUE(cancelled);
  r.Stop();  // idempotent
  EXPECT_EQ(source.fetches(), 1);
}

class PushToCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(h_.Open().ok());
    ASSERT_TRUE(h_.core().SetTeam(MakeTeam("ml", 0)).ok());
  }
  v1::GridZone Zone(const std::string& name) {
    for (const auto& z : h_.core().ListZones())
      if (z.name() == name) return z;
    ADD_FAILURE() << "no zone " << name;
    return {};
  }
  bool Estimated() {
    auto q = h_.core().Estimate(MakeJob("ml", 8, absl::Hours(3)), 1);
    EXPECT_TRUE(q.ok()) << q.status();
    return q.ok() && q->chosen().carbon_estimated();
  }
  providers::ZoneReading Reading(bool stale, absl::Time fetched_at, std::vector<double> values) {
    auto s = std::make_shared<providers::CarbonSeries>("DE", TestStart() - absl::Hours(24),
                                                       absl::Hours(1), std::move(values), 333);
    s->set_source("electricitymaps history + forecast");
    s->set_stale(stale);
    providers::ZoneReading r;
    r.series = s;
    r.stale = stale;
    r.fetched_at = fetched_at;
    return r;
  }
  CoreHarness h_;
};

TEST_F(PushToCoreTest, LiveSeriesReplacesTheZoneAndQuotesFollowItsStaleness) {
  PushCarbonReading push = PushToCore(&h_.core());
  EXPECT_FALSE(Estimated());  // the harness's own series covers now
  const absl::Time fetched = TestStart() - absl::Minutes(5);
  ASSERT_TRUE(push("DE", Reading(false, fetched, std::vector<double>(96, 150))).ok());
  v1::GridZone z = Zone("DE");
  EXPECT_EQ(z.source(), "live:electricitymaps history + forecast");
  EXPECT_EQ(z.points(), 96);
  EXPECT_EQ(z.updated().seconds(), absl::ToUnixSeconds(fetched));
  EXPECT_DOUBLE_EQ(z.current_g_per_kwh(), 150);
  EXPECT_FALSE(Estimated());

  ASSERT_TRUE(push("DE", Reading(true, fetched, std::vector<double>(96, 150))).ok());
  EXPECT_DOUBLE_EQ(Zone("DE").current_g_per_kwh(), 333);  // the annual average
  EXPECT_TRUE(Estimated());

  // No data ever: still a valid push (one slot at the annual average), stale.
  providers::ZoneReading none = Reading(true, absl::InfinitePast(), {});
  ASSERT_TRUE(push("DE", none).ok());
  EXPECT_TRUE(Estimated());
}

TEST_F(PushToCoreTest, FetchedDataIsPersistedThePlaceholderAndStaleReadingsAreNot) {
  PushCarbonReading push = PushToCore(&h_.core());
  // No data yet: the placeholder is served but never stored.
  ASSERT_TRUE(push("DE", Reading(true, absl::InfinitePast(), {})).ok());
  ASSERT_THAT(Zone("DE").source(), StartsWith("live:"));
  ASSERT_TRUE(h_.Restart().ok());
  EXPECT_THAT(Zone("DE").source(), Not(StartsWith("live:")));

  // Fetched data is durable once the push returns.
  push = PushToCore(&h_.core());
  const absl::Time fetched = TestStart() - absl::Minutes(5);
  ASSERT_TRUE(push("DE", Reading(false, fetched, std::vector<double>(96, 150))).ok());
  ASSERT_TRUE(h_.Restart().ok());
  v1::GridZone z = Zone("DE");
  EXPECT_EQ(z.source(), "live:electricitymaps history + forecast");
  EXPECT_EQ(z.points(), 96);
  EXPECT_EQ(z.updated().seconds(), absl::ToUnixSeconds(fetched));
  EXPECT_DOUBLE_EQ(z.current_g_per_kwh(), 150);

  // Neither the stale label nor a later placeholder overwrites the stored data.
  push = PushToCore(&h_.core());
  ASSERT_TRUE(push("DE", Reading(true, fetched, std::vector<double>(96, 150))).ok());
  ASSERT_THAT(Zone("DE").source(), HasSubstr("electricitymaps"));
  ASSERT_TRUE(push("DE", Reading(true, absl::InfinitePast(), {})).ok());
  ASSERT_EQ(Zone("DE").points(), 1);
  ASSERT_TRUE(h_.Restart().ok());
  z = Zone("DE");
  EXPECT_EQ(z.source(), "live:electricitymaps history + forecast");
  EXPECT_EQ(z.points(), 96);
  EXPECT_EQ(z.updated().seconds(), absl::ToUnixSeconds(fetched));
}

TEST_F(PushToCoreTest, RestoreServesStoredLiveDataWhileTheProviderIsDownThenStale) {
  FakeSource source;  // fails until told otherwise
  auto cache_on = [&] {
    return std::make_unique<providers::CachingCarbonSource>(
        &source, &h_.clock(), Cache(), [](const std::string&) { return 300.0; });
  };
  CarbonRefresherOptions o;
  o.provider = "fake";
  o.zones = {"DE", "XX"};  // XX: not in the inventory

  // Nothing live in the store: nothing restored.
  auto cache = cache_on();
  EXPECT_THAT(RestoreLiveCarbon(h_.core(), cache.get(), o.zones, PushToCore(&h_.core()), "fake"),
              ::testing::IsEmpty());

  const absl::Time fetched = TestStart() - absl::Minutes(5);
  ASSERT_TRUE(
      PushToCore(&h_.core())("DE", Reading(false, fetched, std::vector<double>(96, 150))).ok());
  ASSERT_TRUE(h_.Restart().ok());
  cache = cache_on();
  PushCarbonReading push = PushToCore(&h_.core());
  EXPECT_THAT(RestoreLiveCarbon(h_.core(), cache.get(), o.zones, push, "fake"),
              ::testing::ElementsAre("DE"));
  providers::ZoneReading kept = cache->Peek("DE");
  EXPECT_FALSE(kept.stale);
  EXPECT_EQ(kept.fetched_at, fetched);
  EXPECT_EQ(kept.series->source(), "electricitymaps history + forecast");  // no "live:" twice
  // Restored once: a second call finds the same data already there.
  EXPECT_THAT(RestoreLiveCarbon(h_.core(), cache.get(), o.zones, push, "fake"),
              ::testing::IsEmpty());

  CarbonRefresher r(cache.get(), push, &h_.clock(), o);
  h_.clock().Advance(absl::Minutes(10));  // past the TTL: the provider is asked and fails
  r.RefreshOnce();
  EXPECT_GE(source.fetches(), 1);
  v1::GridZone z = Zone("DE");
  EXPECT_EQ(z.source(), "live:electricitymaps history + forecast");
  EXPECT_EQ(z.updated().seconds(), absl::ToUnixSeconds(fetched));
  EXPECT_DOUBLE_EQ(z.current_g_per_kwh(), 150);
  EXPECT_FALSE(Estimated());
  EXPECT_EQ(r.Statuses().at("DE").fetched_at, fetched);
  EXPECT_FALSE(r.Statuses().at("DE").stale);

  h_.clock().Set(fetched + Cache().stale_after + absl::Minutes(1));
  r.RefreshOnce();
  EXPECT_TRUE(r.Statuses().at("DE").stale);
  EXPECT_THAT(Zone("DE").source(), HasSubstr("stale since"));
  EXPECT_TRUE(Estimated());

  // Restarted with the stored data already stale: marked so at once, before
  // any refresh; the fetch time is still that of the last good fetch.
  ASSERT_TRUE(h_.Restart().ok());
  EXPECT_FALSE(Estimated());  // as loaded: the stale flag is not stored
  cache = cache_on();
  EXPECT_THAT(RestoreLiveCarbon(h_.core(), cache.get(), o.zones, PushToCore(&h_.core()), "fake"),
              ::testing::ElementsAre("DE"));
  EXPECT_TRUE(Estimated());
  z = Zone("DE");
  EXPECT_THAT(z.source(), HasSubstr("stale since"));
  EXPECT_EQ(z.updated().seconds(), absl::ToUnixSeconds(fetched));
  EXPECT_DOUBLE_EQ(z.current_g_per_kwh(), 333);

  // A successful fetch replaces the restored data.
  source.Serve(h_.clock().Now() - absl::Hours(24), std::vector<double>(96, 120));
  CarbonRefresher again(cache.get(), PushToCore(&h_.core()), &h_.clock(), o);
  again.RefreshOnce();
  EXPECT_FALSE(Estimated());
  z = Zone("DE");
  EXPECT_EQ(z.source(), "live:fake history + forecast");
  EXPECT_EQ(z.updated().seconds(), absl::ToUnixSeconds(h_.clock().Now()));
}

// BuildLiveCarbon's errors name the config key and where the secret was
// looked for; never a secret.
class BuildLiveCarbonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    ::unsetenv("GL_TEST_EMAPS");
    ::unsetenv("GL_TEST_WT_USER");
    ::unsetenv("GL_TEST_WT_PASS");
  }
  void TearDown() override { SetUp(); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_.File(name)) << text;
    return dir_.File(name);
  }
  LiveCarbonConfig Emaps() {
    LiveCarbonConfig c;
    c.provider = "electricitymaps";
    c.base_url = "https://api.electricitymap.org/v3";
    c.zones = {{"DE", ""}};
    c.api_key_env = "GL_TEST_EMAPS";
    return c;
  }
  absl::StatusOr<LiveCarbon> Build(const LiveCarbonConfig& c) {
    return BuildLiveCarbon(c, &clock_, [](const std::string&) { return 300.0; });
  }
  greenlight::testing::TempDir dir_;
  ManualClock clock_{TestStart()};
};

TEST_F(BuildLiveCarbonTest, MissingCredentialsNameTheKeyAndWhereTheyWereLookedFor) {
  auto none = Build(Emaps());
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("data.live_carbon.api_key_env"));
  EXPECT_THAT(std::string(none.status().message()), HasSubstr("GL_TEST_EMAPS"));

  LiveCarbonConfig c = Emaps();
  c.api_key_file = Write("empty.key", "\n");
  auto empty = Build(c);
  ASSERT_FALSE(empty.ok());
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("empty key"));

  LiveCarbonConfig wt;
  wt.provider = "watttime";
  wt.base_url = "https://api.watttime.org";
  wt.auth_url = "https://api.watttime.org";
  wt.zones = {{"US-CAL-CISO", "CAISO_NORTH"}};
  wt.username_env = "GL_TEST_WT_USER";
  wt.password_env = "GL_TEST_WT_PASS";
  wt.password_file = dir_.File("absent.pw");
  ::setenv("GL_TEST_WT_USER", "user-secret-value", 1);
  auto no_password = Build(wt);
  ASSERT_FALSE(no_password.ok());
  const std::string msg(no_password.status().message());
  EXPECT_THAT(msg, HasSubstr("data.live_carbon.password_env"));
  EXPECT_THAT(msg, HasSubstr("absent.pw"));
  EXPECT_THAT(msg, Not(HasSubstr("user-secret-value")));
}

TEST_F(BuildLiveCarbonTest, CaFileMustBeAReadablePemFile) {
  ::setenv("GL_TEST_EMAPS", "emaps-secret-value", 1);
  LiveCarbonConfig c = Emaps();
  c.ca_file = dir_.File("absent.pem");
  auto absent = Build(c);
  ASSERT_FALSE(absent.ok());
  EXPECT_THAT(std::string(absent.status().message()), HasSubstr("data.live_carbon.ca_file"));
  c.ca_file = Write("junk.pem", "not a certificate\n");
  auto junk = Build(c);
  ASSERT_FALSE(junk.ok());
  EXPECT_THAT(std::string(junk.status().message()), HasSubstr("no PEM certificate"));
  EXPECT_THAT(std::string(junk.status().message()), Not(HasSubstr("emaps-secret-value")));
}

TEST_F(BuildLiveCarbonTest, BuildsTheConfiguredProvidersSource) {
  ::setenv("GL_TEST_EMAPS", "emaps-secret-value", 1);
  auto emaps = Build(Emaps());
  ASSERT_TRUE(emaps.ok()) << emaps.status();
  EXPECT_EQ(emaps->source->name(), "electricitymaps");
  EXPECT_EQ(emaps->cache->name(), "cached:electricitymaps");

  LiveCarbonConfig wt = Emaps();
  wt.provider = "watttime";
  wt.api_key_env.clear();
  wt.auth_url = "https://api.watttime.org";
  wt.username_file = Write("wt.user", "me\n");
  wt.password_file = Write("wt.pw", "pw\n");
  auto watttime = Build(wt);
  ASSERT_TRUE(watttime.ok()) << watttime.status();
  EXPECT_EQ(watttime->source->name(), "watttime");

  LiveCarbonConfig sdk = Emaps();
  sdk.provider = "carbon-aware-sdk";
  sdk.api_key_env.clear();
  auto casdk = Build(sdk);
  ASSERT_TRUE(casdk.ok()) << casdk.status();
  EXPECT_EQ(casdk->source->name(), "carbon-aware-sdk");
}

TEST(UrlHost, KeepsHostAndPortOnly) {
  EXPECT_EQ(UrlHost("https://api.electricitymap.org/v3"), "api.electricitymap.org");
  EXPECT_EQ(UrlHost("https://127.0.0.1:8443/v3?x=1"), "127.0.0.1:8443");
  EXPECT_EQ(UrlHost("https://me:secret@host.example/x"), "host.example");
}

}  // namespace
}  // namespace greenlight::scheduler
