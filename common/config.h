// greenlightd configuration: one YAML file (see deploy/config/demo.yaml for
// every key, documented). Unknown keys are rejected with their path; relative
// paths are resolved against the config file's directory.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace greenlight {

struct TlsConfig {
  std::string cert_file;       // PEM server certificate chain; empty = no TLS
  std::string key_file;        // PEM private key
  std::string client_ca_file;  // PEM CA for client certificates; set = mTLS
  bool enabled() const { return !cert_file.empty(); }
};

struct CatalogConfig {
  std::string provider;   // aws | gcp | azure | lambda | runpod
  std::string file;       // SkyPilot catalog CSV
  std::string host_file;  // GCP only: host VM prices (a2-*, a3-*)
};

struct SeriesConfig {
  std::string zone;  // grid zone name, e.g. "DE"
  std::string file;  // CSV: Let's Wait Awhile or Electricity Maps export format
};

// Live grid carbon intensity from an API (services/providers/carbon_source.h,
// docs/PROVIDERS.md "Live data in greenlightd"). Off when `provider` is empty.
// Credentials are never in the config itself: only the name of an
// environment variable or of a file that holds them.
struct LiveCarbonZone {
  std::string zone;    // our grid zone, e.g. "DE", "US-CAL-CISO"
  std::string api_id;  // the API's id when it differs (WattTime "CAISO_NORTH"); empty = zone
};

struct LiveCarbonConfig {
  std::string provider;  // electricitymaps | watttime | carbon-aware-sdk; empty = off
  std::string base_url;  // API root without trailing slash, e.g. https://api.electricitymap.org/v3
  std::string auth_url;  // WattTime only: login root, e.g. https://api.watttime.org
  std::vector<LiveCarbonZone> zones;
  int refresh_seconds = 60;          // how often each zone is re-read from the cache and pushed
  int ttl_seconds = 900;             // a fetch younger than this is reused (API calls per zone)
  int retry_seconds = 60;            // after a failed fetch, no new attempt for this long
  int stale_after_seconds = 10800;   // last good data older than this: annual average used
  int timeout_seconds = 10;          // per HTTP request
  std::string ca_file;               // PEM CAs to trust instead of the system store
  bool allow_insecure_http = false;  // permits http:// base_url/auth_url (logged as INSECURE)
  // Electricity Maps: the auth-token, from the variable if set, else the file's first line.
  std::string api_key_env;
  std::string api_key_file;
  // WattTime: login username and password, each from a variable or a file.
  std::string username_env;
  std::string username_file;
  std::string password_env;
  std::string password_file;
  bool enabled() const { return !provider.empty(); }
};

struct TeamSeed {
  std::string name;
  std::string parent;
  double monthly_cost_budget_usd = 0;
  double monthly_carbon_budget_kg = 0;
  int gpu_quota = 0;
  double carbon_price_usd_per_tonne = 0;
  std::string unknown_grid;  // "" = pessimistic (v1.Team.unknown_grid)
};

struct Config {
  std::string source_path;  // the file this was read from ("" = defaults)

  // server
  std::string grpc_address = "127.0.0.1:50051";
  std::string metrics_address = "127.0.0.1:9464";  // empty = no metrics
  bool metrics_tls = false;                        // HTTPS with tls.* (mTLS with its client CA)
  std::string webhook_address;                     // empty = no webhook
  std::string log_level = "info";
  int64_t max_message_bytes = 4 << 20;
  int max_inflight_submits = 4096;  // queue bound; beyond it RESOURCE_EXHAUSTED
  int64_t watch_buffer_events = 10000;

  // store
  std::string store_path = "greenlight.db";
  std::string store_synchronous = "full";  // full | normal

  // node agents (greenlight-agent): how often they heartbeat, and how long a
  // node may stay silent before it is lost (its jobs requeued or failed)
  int agent_heartbeat_interval_ms = 1000;
  int agent_lease_timeout_seconds = 15;
  // clock and executor
  double time_scale = 1.0;  // simulated seconds per wall second
  int tick_ms = 200;

  // data (paths resolved against the config file's directory)
  std::vector<CatalogConfig> catalogs;
  std::string gpu_power_file;               // mlco2 gpus.csv
  std::string gpu_overrides_file;           // extra GPU models (power, speed)
  std::string region_carbon_file;           // mlco2 impact (annual averages, PUE)
  std::string region_zones_file;            // region -> grid zone mapping
  std::vector<SeriesConfig> carbon_series;  // hourly or finer series per grid zone
  std::vector<std::string> gpu_types;       // keep only pools of these GPU types (empty = all)
  std::vector<std::string> providers;       // keep only these providers (empty = all)
  int nodes_per_pool = 4;                   // synthetic node count of each real pool
  // Shift series so their first year lines up with the current year: the
  // shipped series are historical, the demo runs now.
  bool align_series_to_now = true;
  LiveCarbonConfig live_carbon;  // data.live_carbon

  // placement defaults
  std::string default_mode = "balanced";
  double default_carbon_price_usd_per_tonne = 100.0;
  int horizon_hours = 168;

  // teams created at first start when absent
  std::vector<TeamSeed> teams;

  // security
  std::string auth_mode = "open";  // open | token
  std::string admin_token_file;    // file holding the bootstrap admin secret
  TlsConfig tls;

  // webhook
  std::string webhook_team_label;  // label/annotation naming the team; empty = namespace
  std::string webhook_region_label = "topology.kubernetes.io/region";
  std::string webhook_instance_label = "node.kubernetes.io/instance-type";
  std::string webhook_gpu_label = "nvidia.com/gpu.product";
};

// Parses YAML text; `path` is used for messages and relative paths.
absl::StatusOr<Config> ParseConfig(const std::string& yaml_text, const std::string& path);
absl::StatusOr<Config> LoadConfig(const std::string& path);

}  // namespace greenlight
