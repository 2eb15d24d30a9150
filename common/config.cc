#include "common/config.h"

#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/csv.h"
#include "common/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace greenlight {
namespace {

namespace fs = std::filesystem;

absl::Status Bad(const std::string& file, const std::string& key, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(file, ": ", key, ": ", why));
}

// Rejects keys of `node` not in `allowed`, naming the full path.
absl::Status CheckKeys(const YAML::Node& node, const std::string& path,
                       const std::set<std::string>& allowed, const std::string& file) {
  if (!node.IsMap()) return Bad(file, path, "must be a mapping");
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (!allowed.contains(key)) {
      return Bad(file, path.empty() ? key : absl::StrCat(path, ".", key),
                 absl::StrCat("unknown key (allowed: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

template <typename T>
absl::Status Get(const YAML::Node& node, const std::string& key, const std::string& path,
                 const std::string& file, T* out) {
  if (!node[key]) return absl::OkStatus();
  try {
    *out = node[key].as<T>();
  } catch (const YAML::Exception& e) {
    return Bad(file, absl::StrCat(path, ".", key), "wrong type");
  }
  return absl::OkStatus();
}

std::string Resolve(const fs::path& base, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return (base / p).lexically_normal().string();
}

constexpr char kLive[] = "data.live_carbon";

// An API root URL. Messages name the key, never the value: a URL can carry
// a credential (user:pass@host, ?token=...), which is exactly what is refused.
absl::Status CheckApiUrl(std::string* url, const std::string& key, bool allow_http,
                         const std::string& file) {
  if (url->empty()) return Bad(file, key, "required");
  const bool https = absl::StartsWith(*url, "https://");
  const bool http = absl::StartsWith(*url, "http://");
  if (!https && !http) return Bad(file, key, "must start with https://");
  if (http && !allow_http)
    return Bad(file, key,
               absl::StrCat("must be https:// (plain http:// needs ", kLive,
                            ".allow_insecure_http: true)"));
  absl::string_view rest = absl::string_view(*url).substr(https ? 8 : 7);
  absl::string_view authority = rest.substr(0, rest.find('/'));
  if (authority.empty()) return Bad(file, key, "has no host");
  if (absl::StrContains(authority, '@'))
    return Bad(file, key,
               "must not carry credentials (user:password@); use api_key_env / api_key_file");
  if (absl::StrContains(*url, '?') || absl::StrContains(*url, '#'))
    return Bad(file, key,
               "must not have a query or fragment (credentials go in api_key_env / api_key_file)");
  for (char ch : *url) {
    if (absl::ascii_isspace(static_cast<unsigned char>(ch)) || absl::ascii_iscntrl(ch))
      return Bad(file, key, "must not contain spaces or control characters");
  }
  while (!url->empty() && url->back() == '/') url->pop_back();
  return absl::OkStatus();
}

// An environment variable's name ([A-Za-z_][A-Za-z0-9_]*). The value is not
// echoed: a key pasted here by mistake must not reach a log.
absl::Status CheckEnvName(const std::string& name, const std::string& key,
                          const std::string& file) {
  if (name.empty()) return absl::OkStatus();
  bool ok = absl::ascii_isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_';
  for (char ch : name)
    ok = ok && (absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '_');
  if (!ok)
    return Bad(file, key,
               "must be the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*), not a key");
  return absl::OkStatus();
}

absl::Status ParseLiveCarbon(const YAML::Node& n, const fs::path& base, const std::string& file,
                             LiveCarbonConfig* lc) {
  const std::string p = kLive;
  RETURN_IF_ERROR(
      CheckKeys(n, p,
                {"provider", "base_url", "auth_url", "zones", "refresh_seconds", "ttl_seconds",
                 "retry_seconds", "stale_after_seconds", "timeout_seconds", "ca_file",
                 "allow_insecure_http", "api_key_env", "api_key_file", "username_env",
                 "username_file", "password_env", "password_file"},
                file));
  RETURN_IF_ERROR(Get(n, "provider", p, file, &lc->provider));
  RETURN_IF_ERROR(Get(n, "base_url", p, file, &lc->base_url));
  RETURN_IF_ERROR(Get(n, "auth_url", p, file, &lc->auth_url));
  RETURN_IF_ERROR(Get(n, "refresh_seconds", p, file, &lc->refresh_seconds));
  RETURN_IF_ERROR(Get(n, "ttl_seconds", p, file, &lc->ttl_seconds));
  RETURN_IF_ERROR(Get(n, "retry_seconds", p, file, &lc->retry_seconds));
  RETURN_IF_ERROR(Get(n, "stale_after_seconds", p, file, &lc->stale_after_seconds));
  RETURN_IF_ERROR(Get(n, "timeout_seconds", p, file, &lc->timeout_seconds));
  RETURN_IF_ERROR(Get(n, "ca_file", p, file, &lc->ca_file));
  RETURN_IF_ERROR(Get(n, "allow_insecure_http", p, file, &lc->allow_insecure_http));
  RETURN_IF_ERROR(Get(n, "api_key_env", p, file, &lc->api_key_env));
  RETURN_IF_ERROR(Get(n, "api_key_file", p, file, &lc->api_key_file));
  RETURN_IF_ERROR(Get(n, "username_env", p, file, &lc->username_env));
  RETURN_IF_ERROR(Get(n, "username_file", p, file, &lc->username_file));
  RETURN_IF_ERROR(Get(n, "password_env", p, file, &lc->password_env));
  RETURN_IF_ERROR(Get(n, "password_file", p, file, &lc->password_file));
  lc->ca_file = Resolve(base, lc->ca_file);
  lc->api_key_file = Resolve(base, lc->api_key_file);
  lc->username_file = Resolve(base, lc->username_file);
  lc->password_file = Resolve(base, lc->password_file);

  const std::string& prov = lc->provider;
  const bool emaps = prov == "electricitymaps", watttime = prov == "watttime",
             casdk = prov == "carbon-aware-sdk";
  if (prov.empty()) return Bad(file, p + ".provider", "required");
  if (!emaps && !watttime && !casdk)
    return Bad(file, p + ".provider", "must be electricitymaps, watttime or carbon-aware-sdk");
  RETURN_IF_ERROR(CheckApiUrl(&lc->base_url, p + ".base_url", lc->allow_insecure_http, file));
  if (watttime) {
    RETURN_IF_ERROR(CheckApiUrl(&lc->auth_url, p + ".auth_url", lc->allow_insecure_http, file));
  } else if (!lc->auth_url.empty()) {
    return Bad(file, p + ".auth_url", "only for watttime");
  }

  auto zones = n["zones"];
  if (!zones || !zones.IsSequence() || zones.size() == 0)
    return Bad(file, p + ".zones", "required: a non-empty list of grid zones");
  std::set<std::string> seen;
  for (size_t i = 0; i < zones.size(); ++i) {
    const std::string zp = absl::StrCat(p, ".zones[", i, "]");
    LiveCarbonZone z;
    if (zones[i].IsScalar()) {
      z.zone = zones[i].as<std::string>();
    } else {
      RETURN_IF_ERROR(CheckKeys(zones[i], zp, {"zone", "id"}, file));
      RETURN_IF_ERROR(Get(zones[i], "zone", zp, file, &z.zone));
      RETURN_IF_ERROR(Get(zones[i], "id", zp, file, &z.api_id));
    }
    if (z.zone.empty()) return Bad(file, zp + ".zone", "required");
    if (!seen.insert(z.zone).second)
      return Bad(file, zp, absl::StrCat("zone ", z.zone, " is listed twice"));
    lc->zones.push_back(std::move(z));
  }

  if (lc->refresh_seconds < 1 || lc->refresh_seconds > 86400)
    return Bad(file, p + ".refresh_seconds", "must be in [1, 86400]");
  if (lc->ttl_seconds < 0 || lc->ttl_seconds > 86400)
    return Bad(file, p + ".ttl_seconds", "must be in [0, 86400]");
  if (lc->retry_seconds < 1 || lc->retry_seconds > 86400)
    return Bad(file, p + ".retry_seconds", "must be in [1, 86400]");
  if (lc->stale_after_seconds < 1 || lc->stale_after_seconds > 30 * 86400)
    return Bad(file, p + ".stale_after_seconds", "must be in [1, 2592000]");
  if (lc->stale_after_seconds <= lc->ttl_seconds)
    return Bad(file, p + ".stale_after_seconds",
               "must be greater than ttl_seconds (data would go stale before it is refetched)");
  if (lc->timeout_seconds < 1 || lc->timeout_seconds > 300)
    return Bad(file, p + ".timeout_seconds", "must be in [1, 300]");

  // Credentials: by reference only, and only those the provider uses.
  RETURN_IF_ERROR(CheckEnvName(lc->api_key_env, p + ".api_key_env", file));
  RETURN_IF_ERROR(CheckEnvName(lc->username_env, p + ".username_env", file));
  RETURN_IF_ERROR(CheckEnvName(lc->password_env, p + ".password_env", file));
  const bool has_key = !lc->api_key_env.empty() || !lc->api_key_file.empty();
  const bool has_user = !lc->username_env.empty() || !lc->username_file.empty();
  const bool has_password = !lc->password_env.empty() || !lc->password_file.empty();
  if (emaps) {
    if (!has_key)
      return Bad(file, p + ".api_key_env",
                 "required for electricitymaps (or api_key_file): where the auth-token is");
    if (has_user || has_password)
      return Bad(file, p + (has_user ? ".username_env" : ".password_env"),
                 "only for watttime (electricitymaps uses api_key_env / api_key_file)");
  } else if (watttime) {
    if (!has_user)
      return Bad(file, p + ".username_env", "required for watttime (or username_file)");
    if (!has_password)
      return Bad(file, p + ".password_env", "required for watttime (or password_file)");
    if (has_key)
      return Bad(file, p + ".api_key_env",
                 "not used by watttime (it logs in with username_* and password_*)");
  } else if (has_key || has_user || has_password) {
    return Bad(file,
               p + (has_key    ? ".api_key_env"
                    : has_user ? ".username_env"
                               : ".password_env"),
               "not used by carbon-aware-sdk (its WebAPI takes no credentials)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfig(const std::string& text, const std::string& file) {
  Config c;
  c.source_path = file;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(file, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
  if (root.IsNull()) return c;
  RETURN_IF_ERROR(CheckKeys(root, "",
                            {"server", "store", "clock", "agents", "data", "placement", "teams",
                             "auth", "tls", "webhook"},
                            file));
  fs::path base = fs::path(file).parent_path();
  try {
    if (auto n = root["server"]) {
      RETURN_IF_ERROR(CheckKeys(
          n, "server",
          {"grpc_address", "metrics_address", "metrics_tls", "webhook_address", "log_level",
           "max_message_bytes", "max_inflight_submits", "watch_buffer_events"},
          file));
      RETURN_IF_ERROR(Get(n, "grpc_address", "server", file, &c.grpc_address));
      RETURN_IF_ERROR(Get(n, "metrics_address", "server", file, &c.metrics_address));
      RETURN_IF_ERROR(Get(n, "metrics_tls", "server", file, &c.metrics_tls));
      RETURN_IF_ERROR(Get(n, "webhook_address", "server", file, &c.webhook_address));
      RETURN_IF_ERROR(Get(n, "log_level", "server", file, &c.log_level));
      RETURN_IF_ERROR(Get(n, "max_message_bytes", "server", file, &c.max_message_bytes));
      RETURN_IF_ERROR(Get(n, "max_inflight_submits", "server", file, &c.max_inflight_submits));
      RETURN_IF_ERROR(Get(n, "watch_buffer_events", "server", file, &c.watch_buffer_events));
    }
    if (auto n = root["store"]) {
      RETURN_IF_ERROR(CheckKeys(n, "store", {"path", "synchronous"}, file));
      RETURN_IF_ERROR(Get(n, "path", "store", file, &c.store_path));
      // Relative to the config file, like every other path in it.
      c.store_path = Resolve(base, c.store_path);
      RETURN_IF_ERROR(Get(n, "synchronous", "store", file, &c.store_synchronous));
    }
    if (auto n = root["clock"]) {
      RETURN_IF_ERROR(CheckKeys(n, "clock", {"time_scale", "tick_ms"}, file));
      RETURN_IF_ERROR(Get(n, "time_scale", "clock", file, &c.time_scale));
      RETURN_IF_ERROR(Get(n, "tick_ms", "clock", file, &c.tick_ms));
    }
    if (auto n = root["agents"]) {
      RETURN_IF_ERROR(
          CheckKeys(n, "agents", {"heartbeat_interval_ms", "lease_timeout_seconds"}, file));
      RETURN_IF_ERROR(
          Get(n, "heartbeat_interval_ms", "agents", file, &c.agent_heartbeat_interval_ms));
      RETURN_IF_ERROR(
          Get(n, "lease_timeout_seconds", "agents", file, &c.agent_lease_timeout_seconds));
    }
    if (auto n = root["data"]) {
      RETURN_IF_ERROR(CheckKeys(n, "data",
                                {"catalogs", "gpu_power", "gpu_overrides", "region_carbon",
                                 "region_zones", "carbon_series", "gpu_types", "providers",
                                 "nodes_per_pool", "align_series_to_now", "live_carbon"},
                                file));
      if (auto cats = n["catalogs"]) {
        if (!cats.IsSequence()) return Bad(file, "data.catalogs", "must be a list");
        for (size_t i = 0; i < cats.size(); ++i) {
          std::string p = absl::StrCat("data.catalogs[", i, "]");
          RETURN_IF_ERROR(CheckKeys(cats[i], p, {"provider", "file", "host_file"}, file));
          CatalogConfig cc;
          RETURN_IF_ERROR(Get(cats[i], "provider", p, file, &cc.provider));
          RETURN_IF_ERROR(Get(cats[i], "file", p, file, &cc.file));
          RETURN_IF_ERROR(Get(cats[i], "host_file", p, file, &cc.host_file));
          if (cc.provider.empty()) return Bad(file, p + ".provider", "required");
          if (cc.file.empty()) return Bad(file, p + ".file", "required");
          cc.file = Resolve(base, cc.file);
          cc.host_file = Resolve(base, cc.host_file);
          c.catalogs.push_back(cc);
        }
      }
      RETURN_IF_ERROR(Get(n, "gpu_power", "data", file, &c.gpu_power_file));
      RETURN_IF_ERROR(Get(n, "gpu_overrides", "data", file, &c.gpu_overrides_file));
      RETURN_IF_ERROR(Get(n, "region_carbon", "data", file, &c.region_carbon_file));
      RETURN_IF_ERROR(Get(n, "region_zones", "data", file, &c.region_zones_file));
      c.gpu_power_file = Resolve(base, c.gpu_power_file);
      c.gpu_overrides_file = Resolve(base, c.gpu_overrides_file);
      c.region_carbon_file = Resolve(base, c.region_carbon_file);
      c.region_zones_file = Resolve(base, c.region_zones_file);
      if (auto ss = n["carbon_series"]) {
        if (!ss.IsSequence()) return Bad(file, "data.carbon_series", "must be a list");
        for (size_t i = 0; i < ss.size(); ++i) {
          std::string p = absl::StrCat("data.carbon_series[", i, "]");
          RETURN_IF_ERROR(CheckKeys(ss[i], p, {"zone", "file"}, file));
          SeriesConfig sc;
          RETURN_IF_ERROR(Get(ss[i], "zone", p, file, &sc.zone));
          RETURN_IF_ERROR(Get(ss[i], "file", p, file, &sc.file));
          if (sc.zone.empty()) return Bad(file, p + ".zone", "required");
          if (sc.file.empty()) return Bad(file, p + ".file", "required");
          sc.file = Resolve(base, sc.file);
          c.carbon_series.push_back(sc);
        }
      }
      RETURN_IF_ERROR(Get(n, "gpu_types", "data", file, &c.gpu_types));
      RETURN_IF_ERROR(Get(n, "providers", "data", file, &c.providers));
      RETURN_IF_ERROR(Get(n, "nodes_per_pool", "data", file, &c.nodes_per_pool));
      RETURN_IF_ERROR(Get(n, "align_series_to_now", "data", file, &c.align_series_to_now));
      if (auto lc = n["live_carbon"])
        RETURN_IF_ERROR(ParseLiveCarbon(lc, base, file, &c.live_carbon));
    }
    if (auto n = root["placement"]) {
      RETURN_IF_ERROR(
          CheckKeys(n, "placement",
                    {"default_mode", "default_carbon_price_usd_per_tonne", "horizon_hours"}, file));
      RETURN_IF_ERROR(Get(n, "default_mode", "placement", file, &c.default_mode));
      RETURN_IF_ERROR(Get(n, "default_carbon_price_usd_per_tonne", "placement", file,
                          &c.default_carbon_price_usd_per_tonne));
      RETURN_IF_ERROR(Get(n, "horizon_hours", "placement", file, &c.horizon_hours));
    }
    if (auto n = root["teams"]) {
      if (!n.IsSequence()) return Bad(file, "teams", "must be a list");
      for (size_t i = 0; i < n.size(); ++i) {
        std::string p = absl::StrCat("teams[", i, "]");
        RETURN_IF_ERROR(
            CheckKeys(n[i], p,
                      {"name", "parent", "monthly_cost_budget_usd", "monthly_carbon_budget_kg",
                       "gpu_quota", "carbon_price_usd_per_tonne", "unknown_grid"},
                      file));
        TeamSeed t;
        RETURN_IF_ERROR(Get(n[i], "name", p, file, &t.name));
        RETURN_IF_ERROR(Get(n[i], "parent", p, file, &t.parent));
        RETURN_IF_ERROR(Get(n[i], "monthly_cost_budget_usd", p, file, &t.monthly_cost_budget_usd));
        RETURN_IF_ERROR(
            Get(n[i], "monthly_carbon_budget_kg", p, file, &t.monthly_carbon_budget_kg));
        RETURN_IF_ERROR(Get(n[i], "gpu_quota", p, file, &t.gpu_quota));
        RETURN_IF_ERROR(
            Get(n[i], "carbon_price_usd_per_tonne", p, file, &t.carbon_price_usd_per_tonne));
        RETURN_IF_ERROR(Get(n[i], "unknown_grid", p, file, &t.unknown_grid));
        if (t.name.empty()) return Bad(file, p + ".name", "required");
        if (!t.unknown_grid.empty() && t.unknown_grid != "pessimistic" &&
            t.unknown_grid != "default" && t.unknown_grid != "exclude") {
          return Bad(file, p + ".unknown_grid", "must be pessimistic, default or exclude");
        }
        c.teams.push_back(t);
      }
    }
    if (auto n = root["auth"]) {
      RETURN_IF_ERROR(CheckKeys(n, "auth", {"mode", "admin_token_file"}, file));
      RETURN_IF_ERROR(Get(n, "mode", "auth", file, &c.auth_mode));
      RETURN_IF_ERROR(Get(n, "admin_token_file", "auth", file, &c.admin_token_file));
      c.admin_token_file = Resolve(base, c.admin_token_file);
    }
    if (auto n = root["tls"]) {
      RETURN_IF_ERROR(CheckKeys(n, "tls", {"cert_file", "key_file", "client_ca_file"}, file));
      RETURN_IF_ERROR(Get(n, "cert_file", "tls", file, &c.tls.cert_file));
      RETURN_IF_ERROR(Get(n, "key_file", "tls", file, &c.tls.key_file));
      RETURN_IF_ERROR(Get(n, "client_ca_file", "tls", file, &c.tls.client_ca_file));
      c.tls.cert_file = Resolve(base, c.tls.cert_file);
      c.tls.key_file = Resolve(base, c.tls.key_file);
      c.tls.client_ca_file = Resolve(base, c.tls.client_ca_file);
    }
    if (auto n = root["webhook"]) {
      RETURN_IF_ERROR(CheckKeys(
          n, "webhook", {"team_label", "region_label", "instance_label", "gpu_label"}, file));
      RETURN_IF_ERROR(Get(n, "team_label", "webhook", file, &c.webhook_team_label));
      RETURN_IF_ERROR(Get(n, "region_label", "webhook", file, &c.webhook_region_label));
      RETURN_IF_ERROR(Get(n, "instance_label", "webhook", file, &c.webhook_instance_label));
      RETURN_IF_ERROR(Get(n, "gpu_label", "webhook", file, &c.webhook_gpu_label));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(file, ":", e.mark.line + 1, ": ", e.msg));
  }
  // Value rules.
  if (c.store_synchronous != "full" && c.store_synchronous != "normal")
    return Bad(file, "store.synchronous", "must be full or normal");
  if (!(c.time_scale > 0 && c.time_scale <= 1e7))
    return Bad(file, "clock.time_scale", "must be in (0, 1e7]");
  if (c.tick_ms < 1 || c.tick_ms > 60000)
    return Bad(file, "clock.tick_ms", "must be in [1, 60000]");
  if (c.agent_heartbeat_interval_ms < 50 || c.agent_heartbeat_interval_ms > 60000)
    return Bad(file, "agents.heartbeat_interval_ms", "must be in [50, 60000]");
  if (c.agent_lease_timeout_seconds < 1 || c.agent_lease_timeout_seconds > 3600 ||
      c.agent_lease_timeout_seconds * 1000 < 2 * c.agent_heartbeat_interval_ms)
    return Bad(file, "agents.lease_timeout_seconds",
               "must be in [1, 3600] and at least two heartbeat intervals");
  if (c.nodes_per_pool < 1 || c.nodes_per_pool > 100000)
    return Bad(file, "data.nodes_per_pool", "must be in [1, 100000]");
  if (c.default_mode != "balanced" && c.default_mode != "cheapest" && c.default_mode != "greenest")
    return Bad(file, "placement.default_mode", "must be balanced, cheapest or greenest");
  if (c.default_carbon_price_usd_per_tonne < 0 || c.default_carbon_price_usd_per_tonne > 1e6)
    return Bad(file, "placement.default_carbon_price_usd_per_tonne", "must be in [0, 1e6]");
  if (c.horizon_hours < 1 || c.horizon_hours > 24 * 366)
    return Bad(file, "placement.horizon_hours", "must be in [1, 8784]");
  if (c.auth_mode != "open" && c.auth_mode != "token")
    return Bad(file, "auth.mode", "must be open or token");
  if (c.tls.cert_file.empty() != c.tls.key_file.empty())
    return Bad(file, "tls", "cert_file and key_file go together");
  if (c.metrics_tls && !c.tls.enabled())
    return Bad(file, "server.metrics_tls",
               "needs tls.cert_file and tls.key_file (the certificate /metrics serves)");
  if (c.grpc_address.empty()) return Bad(file, "server.grpc_address", "required");
  if (c.max_message_bytes < 1024 || c.max_message_bytes > (256 << 20))
    return Bad(file, "server.max_message_bytes", "must be in [1024, 268435456]");
  if (c.max_inflight_submits < 1) return Bad(file, "server.max_inflight_submits", "must be >= 1");
  if (c.watch_buffer_events < 16) return Bad(file, "server.watch_buffer_events", "must be >= 16");
  return c;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  return ParseConfig(text, path);
}

}  // namespace greenlight
