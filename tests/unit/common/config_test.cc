#include "common/config.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace greenlight {
namespace {

using ::testing::HasSubstr;

TEST(ParseConfig, RejectsUnknownKeysWithTheirPath) {
  struct Case {
    std::string yaml;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"serverr: {}\n", "serverr: unknown key"},
           {"server:\n  grpc_adress: x\n", "server.grpc_adress: unknown key"},
           {"data:\n  catalogs:\n    - provider: aws\n      file: a.csv\n      zone: x\n",
            "data.catalogs[0].zone: unknown key"},
           {"clock:\n  time_scale: -1\n", "clock.time_scale"},
           {"store:\n  synchronous: off\n", "store.synchronous"},
           {"server:\n  max_message_bytes: abc\n", "server.max_message_bytes: wrong type"},
           {"teams:\n  - gpu_quota: 3\n", "teams[0].name: required"},
           {"auth:\n  mode: maybe\n", "auth.mode"},
           {"teams:\n  - {name: a, unknown_grid: optimistic}\n", "teams[0].unknown_grid"},
           {"agents:\n  lease_seconds: 5\n", "agents.lease_seconds: unknown key"},
           {"agents:\n  heartbeat_interval_ms: 10\n", "agents.heartbeat_interval_ms"},
           {"agents:\n  lease_timeout_seconds: 0\n", "agents.lease_timeout_seconds"},
           {"agents:\n  heartbeat_interval_ms: 2000\n  lease_timeout_seconds: 3\n",
            "agents.lease_timeout_seconds: must be in [1, 3600] and at least two heartbeat"},
       }) {
    auto cfg = ParseConfig(c.yaml, "/etc/gl/c.yaml");
    ASSERT_FALSE(cfg.ok()) << c.yaml;
    EXPECT_THAT(std::string(cfg.status().message()), HasSubstr(c.want)) << c.yaml;
  }
}

TEST(ParseConfig, AgentLeaseDefaultsAndOverrides) {
  auto def = ParseConfig("server: {}\n", "/etc/gl/c.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_EQ(def->agent_heartbeat_interval_ms, 1000);
  EXPECT_EQ(def->agent_lease_timeout_seconds, 15);
  auto set = ParseConfig("agents:\n  heartbeat_interval_ms: 200\n  lease_timeout_seconds: 3\n",
                         "/etc/gl/c.yaml");
  ASSERT_TRUE(set.ok()) << set.status();
  EXPECT_EQ(set->agent_heartbeat_interval_ms, 200);
  EXPECT_EQ(set->agent_lease_timeout_seconds, 3);
}

TEST(ParseConfig, TeamsNameTheirUnknownGridPolicy) {
  auto cfg = ParseConfig("teams:\n  - {name: a, unknown_grid: exclude}\n  - {name: b}\n",
                         "/etc/gl/c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  ASSERT_EQ(cfg->teams.size(), 2u);
  EXPECT_EQ(cfg->teams[0].unknown_grid, "exclude");
  EXPECT_EQ(cfg->teams[1].unknown_grid, "");  // the core makes it "pessimistic"
}

TEST(ParseConfig, MetricsTlsIsOffByDefaultAndNeedsTheTlsFiles) {
  auto def = ParseConfig("server:\n  metrics_address: 0.0.0.0:9464\n", "/etc/gl/c.yaml");
  ASSERT_TRUE(def.ok()) << def.status();
  EXPECT_FALSE(def->metrics_tls);

  auto on = ParseConfig(
      "server:\n  metrics_tls: true\ntls:\n  cert_file: tls/tls.crt\n  key_file: tls/tls.key\n"
      "  client_ca_file: tls/ca.crt\n",
      "/etc/gl/c.yaml");
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_TRUE(on->metrics_tls);
  EXPECT_EQ(on->tls.cert_file, "/etc/gl/tls/tls.crt");
  EXPECT_EQ(on->tls.client_ca_file, "/etc/gl/tls/ca.crt");

  struct Case {
    std::string yaml;
    std::string want;
  };
  for (const Case& c : std::vector<Case>{
           {"server:\n  metrics_tls: true\n",
            "/etc/gl/c.yaml: server.metrics_tls: needs tls.cert_file and tls.key_file"},
           {"server:\n  metrics_tls: true\ntls:\n  client_ca_file: ca.crt\n",
            "server.metrics_tls: needs tls.cert_file"},
           {"server:\n  metrics_tls: maybe\n", "server.metrics_tls: wrong type"},
           {"server:\n  metrics_tsl: true\n", "server.metrics_tsl: unknown key"},
       }) {
    auto cfg = ParseConfig(c.yaml, "/etc/gl/c.yaml");
    ASSERT_FALSE(cfg.ok()) << c.yaml;
    EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument) << c.yaml;
    EXPECT_THAT(std::string(cfg.status().message()), HasSubstr(c.want)) << c.yaml;
  }
}

TEST(ParseConfig, ShippedConfigsKeepMetricsPlainInTheDemoAndHttpsInKubernetes) {
  const char* root = std::getenv("GREENLIGHT_ROOT");
  const std::string r = root ? root : ".";
  auto demo = LoadConfig(r + "/deploy/config/demo.yaml");
  ASSERT_TRUE(demo.ok()) << demo.status();
  EXPECT_FALSE(demo->metrics_tls);
  auto k8s = LoadConfig(r + "/deploy/k8s/config/greenlightd.yaml");
  ASSERT_TRUE(k8s.ok()) << k8s.status();
  EXPECT_TRUE(k8s->metrics_tls);
  EXPECT_TRUE(k8s->tls.enabled());
}

TEST(ParseConfig, ResolvesRelativePathsAgainstTheConfigDirectory) {
  auto cfg = ParseConfig(
      "store:\n  path: ../../.demo/gl.db\n"
      "data:\n  gpu_power: ../data/g.csv\n  carbon_series:\n    - {zone: DE, file: /abs/de.csv}\n",
      "/etc/gl/c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->gpu_power_file, "/etc/data/g.csv");
  EXPECT_EQ(cfg->carbon_series[0].file, "/abs/de.csv");
  EXPECT_EQ(cfg->store_path, "/.demo/gl.db");  // the store too (make run relies on it)
}

}  // namespace
}  // namespace greenlight

namespace greenlight {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A valid data.live_carbon section; each case below breaks one rule of it.
std::string LiveYaml(const std::string& body) { return "data:\n  live_carbon:\n" + body; }
const char kEmaps[] =
    "    provider: electricitymaps\n"
    "    base_url: https://api.electricitymap.org/v3/\n"
    "    zones: [DE, {zone: US-CAL-CISO, id: CAISO_NORTH}]\n"
    "    api_key_env: GL_EMAPS_TOKEN\n"
    "    api_key_file: secrets/emaps.key\n"
    "    ca_file: ca.pem\n"
    "    refresh_seconds: 30\n"
    "    ttl_seconds: 600\n"
    "    stale_after_seconds: 7200\n";

TEST(ParseConfigLiveCarbon, ParsesTheSectionResolvesFilesAndTrimsTheUrl) {
  auto cfg = ParseConfig(LiveYaml(kEmaps), "/etc/gl/c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  const LiveCarbonConfig& lc = cfg->live_carbon;
  EXPECT_TRUE(lc.enabled());
  EXPECT_EQ(lc.provider, "electricitymaps");
  EXPECT_EQ(lc.base_url, "https://api.electricitymap.org/v3");
  ASSERT_EQ(lc.zones.size(), 2u);
  EXPECT_EQ(lc.zones[0].zone, "DE");
  EXPECT_EQ(lc.zones[0].api_id, "");
  EXPECT_EQ(lc.zones[1].zone, "US-CAL-CISO");
  EXPECT_EQ(lc.zones[1].api_id, "CAISO_NORTH");
  EXPECT_EQ(lc.api_key_file, "/etc/gl/secrets/emaps.key");
  EXPECT_EQ(lc.ca_file, "/etc/gl/ca.pem");
  EXPECT_EQ(lc.refresh_seconds, 30);
  EXPECT_EQ(lc.ttl_seconds, 600);
  EXPECT_EQ(lc.stale_after_seconds, 7200);
  EXPECT_EQ(lc.timeout_seconds, 10);  // default
  EXPECT_FALSE(lc.allow_insecure_http);

  auto off = ParseConfig("data:\n  nodes_per_pool: 2\n", "/etc/gl/c.yaml");
  ASSERT_TRUE(off.ok());
  EXPECT_FALSE(off->live_carbon.enabled());
}

TEST(ParseConfigLiveCarbon, EachBrokenRuleIsAnErrorNamingItsKey) {
  struct Case {
    std::string name;
    std::string yaml;
    std::string want;
  };
  const std::string ok_tail =
      "    zones: [DE]\n"
      "    api_key_env: GL_EMAPS_TOKEN\n";
  const std::string emaps =
      "    provider: electricitymaps\n"
      "    base_url: https://api.electricitymap.org/v3\n";
  const std::string watttime =
      "    provider: watttime\n"
      "    base_url: https://api.watttime.org\n"
      "    auth_url: https://api.watttime.org\n"
      "    zones: [US-CAL-CISO]\n";
  const std::string casdk =
      "    provider: carbon-aware-sdk\n"
      "    base_url: https://casdk.internal\n"
      "    zones: [DE]\n";
  for (const Case& c : std::vector<Case>{
           {"unknown key", emaps + ok_tail + "    api_key: abc\n",
            "data.live_carbon.api_key: unknown key"},
           {"no provider", "    base_url: https://x.org\n" + ok_tail,
            "data.live_carbon.provider: required"},
           {"unknown provider", "    provider: co2signal\n    base_url: https://x.org\n" + ok_tail,
            "data.live_carbon.provider: must be electricitymaps, watttime or carbon-aware-sdk"},
           {"no base_url", "    provider: electricitymaps\n" + ok_tail,
            "data.live_carbon.base_url: required"},
           {"plain http",
            "    provider: electricitymaps\n    base_url: http://api.electricitymap.org/v3\n" +
                ok_tail,
            "data.live_carbon.base_url: must be https://"},
           {"plain http to loopback too",
            "    provider: electricitymaps\n    base_url: http://127.0.0.1:8080\n" + ok_tail,
            "allow_insecure_http: true"},
           {"not a URL",
            "    provider: electricitymaps\n    base_url: api.electricitymap.org\n" + ok_tail,
            "data.live_carbon.base_url: must start with https://"},
           {"no host", "    provider: electricitymaps\n    base_url: https:///v3\n" + ok_tail,
            "data.live_carbon.base_url: has no host"},
           {"zones missing", emaps + "    api_key_env: GL_EMAPS_TOKEN\n",
            "data.live_carbon.zones: required"},
           {"zones empty", emaps + "    zones: []\n    api_key_env: GL_EMAPS_TOKEN\n",
            "data.live_carbon.zones: required"},
           {"zones not a list", emaps + "    zones: DE\n    api_key_env: GL_EMAPS_TOKEN\n",
            "data.live_carbon.zones: required"},
           {"zone twice", emaps + "    zones: [DE, FR, DE]\n    api_key_env: K\n",
            "data.live_carbon.zones[2]: zone DE is listed twice"},
           {"zone entry unknown key",
            emaps + "    zones: [{zone: DE, region: x}]\n    api_key_env: K\n",
            "data.live_carbon.zones[0].region: unknown key"},
           {"zone entry without zone",
            emaps + "    zones: [{id: CAISO_NORTH}]\n    api_key_env: K\n",
            "data.live_carbon.zones[0].zone: required"},
           {"refresh zero", emaps + ok_tail + "    refresh_seconds: 0\n",
            "data.live_carbon.refresh_seconds: must be in [1, 86400]"},
           {"refresh negative", emaps + ok_tail + "    refresh_seconds: -5\n",
            "data.live_carbon.refresh_seconds"},
           {"refresh not a number", emaps + ok_tail + "    refresh_seconds: often\n",
            "data.live_carbon.refresh_seconds: wrong type"},
           {"ttl negative", emaps + ok_tail + "    ttl_seconds: -1\n",
            "data.live_carbon.ttl_seconds"},
           {"retry zero", emaps + ok_tail + "    retry_seconds: 0\n",
            "data.live_carbon.retry_seconds"},
           {"stale before refetch",
            emaps + ok_tail + "    ttl_seconds: 900\n    stale_after_seconds: 900\n",
            "data.live_carbon.stale_after_seconds: must be greater than ttl_seconds"},
           {"stale zero", emaps + ok_tail + "    ttl_seconds: 0\n    stale_after_seconds: 0\n",
            "data.live_carbon.stale_after_seconds: must be in"},
           {"timeout zero", emaps + ok_tail + "    timeout_seconds: 0\n",
            "data.live_carbon.timeout_seconds"},
           {"emaps without key", emaps + "    zones: [DE]\n",
            "data.live_carbon.api_key_env: required for electricitymaps"},
           {"emaps with a username", emaps + ok_tail + "    username_env: WT_USER\n",
            "data.live_carbon.username_env: only for watttime"},
           {"emaps with auth_url", emaps + ok_tail + "    auth_url: https://api.watttime.org\n",
            "data.live_carbon.auth_url: only for watttime"},
           {"watttime without auth_url",
            "    provider: watttime\n    base_url: https://api.watttime.org\n    zones: [X]\n"
            "    username_env: U\n    password_env: P\n",
            "data.live_carbon.auth_url: required"},
           {"watttime without username", watttime + "    password_file: /run/wt.pw\n",
            "data.live_carbon.username_env: required for watttime"},
           {"watttime without password", watttime + "    username_env: WT_USER\n",
            "data.live_carbon.password_env: required for watttime"},
           {"watttime with an api key",
            watttime + "    username_env: U\n    password_env: P\n    api_key_env: K\n",
            "data.live_carbon.api_key_env: not used by watttime"},
           {"carbon-aware-sdk with a key", casdk + "    api_key_file: k\n",
            "data.live_carbon.api_key_env: not used by carbon-aware-sdk"},
           {"env name that is not a name", emaps + "    zones: [DE]\n    api_key_env: 1x-2y\n",
            "data.live_carbon.api_key_env: must be the name of an environment variable"},
       }) {
    auto cfg = ParseConfig(LiveYaml(c.yaml), "/etc/gl/c.yaml");
    ASSERT_FALSE(cfg.ok()) << c.name;
    EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(cfg.status().message()), HasSubstr(c.want)) << c.name;
  }
}

TEST(ParseConfigLiveCarbon, TheShippedExampleParses) {
  const char* root = std::getenv("GREENLIGHT_ROOT");
  auto cfg = LoadConfig(std::string(root ? root : ".") +
                        "/deploy/config/live-electricitymaps.example.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->live_carbon.provider, "electricitymaps");
  EXPECT_EQ(cfg->live_carbon.api_key_env, "GREENLIGHT_EMAPS_TOKEN");
  EXPECT_EQ(cfg->live_carbon.zones.size(), 5u);
  EXPECT_EQ(cfg->time_scale, 1.0);
  auto demo = LoadConfig(std::string(root ? root : ".") + "/deploy/config/demo.yaml");
  ASSERT_TRUE(demo.ok()) << demo.status();
  EXPECT_FALSE(demo->live_carbon.enabled());
}

TEST(ParseConfigLiveCarbon, PlainHttpOnlyWithTheExplicitOptIn) {
  auto cfg = ParseConfig(LiveYaml("    provider: carbon-aware-sdk\n"
                                  "    base_url: http://carbon-aware-sdk.greenlight.svc:8080\n"
                                  "    zones: [westus]\n"
                                  "    allow_insecure_http: true\n"),
                         "/etc/gl/c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_TRUE(cfg->live_carbon.allow_insecure_http);
  EXPECT_EQ(cfg->live_carbon.base_url, "http://carbon-aware-sdk.greenlight.svc:8080");
  auto ftp = ParseConfig(LiveYaml("    provider: carbon-aware-sdk\n"
                                  "    base_url: ftp://casdk\n"
                                  "    zones: [westus]\n"
                                  "    allow_insecure_http: true\n"),
                         "/etc/gl/c.yaml");
  EXPECT_FALSE(ftp.ok());
}

TEST(ParseConfigLiveCarbon, SecretsPutInTheWrongPlaceAreRefusedWithoutEchoingThem) {
  const std::string secret = "sk-live-7f3a9c";
  for (const std::string& yaml : {
           // The key itself where the variable's name goes.
           "    provider: electricitymaps\n    base_url: https://api.electricitymap.org/v3\n"
           "    zones: [DE]\n    api_key_env: " +
               secret + "\n",
           // An inline key (not a known key).
           "    provider: electricitymaps\n    base_url: https://api.electricitymap.org/v3\n"
           "    zones: [DE]\n    api_key_env: K\n    token: " +
               secret + "\n",
           // Credentials in the URL.
           "    provider: electricitymaps\n    base_url: https://me:" + secret +
               "@api.electricitymap.org/v3\n    zones: [DE]\n    api_key_env: K\n",
           "    provider: electricitymaps\n    base_url: "
           "https://api.electricitymap.org/v3?auth-token=" +
               secret + "\n    zones: [DE]\n    api_key_env: K\n",
       }) {
    auto cfg = ParseConfig(LiveYaml(yaml), "/etc/gl/c.yaml");
    ASSERT_FALSE(cfg.ok()) << yaml;
    EXPECT_THAT(std::string(cfg.status().message()), HasSubstr("data.live_carbon")) << yaml;
    EXPECT_THAT(std::string(cfg.status().message()), Not(HasSubstr(secret))) << yaml;
  }
}

}  // namespace
}  // namespace greenlight
