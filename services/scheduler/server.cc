#include "services/scheduler/server.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/csv.h"
#include "common/log.h"
#include "common/net.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/tls/cert_reloader.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "services/providers/inventory.h"
#include "services/scheduler/service_support.h"

namespace greenlight::scheduler {

namespace {

// Idle gRPC handler threads kept for the next call. Handlers block until
// their group commit is durable; with gRPC's default of 2 idle pollers every
// finished handler thread exits and every new call spawns one.
constexpr int kIdleHandlerThreads = 64;

placement::Mode ParseMode(const std::string& m) {
  if (m == "cheapest") return placement::Mode::kCheapest;
  if (m == "greenest") return placement::Mode::kGreenest;
  return placement::Mode::kBalanced;
}

// TLS (optionally mutual) whose certificate, key and client CA are re-read
// from their files every `reload` by gRPC's file watcher: a rotated
// certificate (cert-manager, a replaced Secret) takes effect for new
// connections without a restart. Replace the files atomically (rename or a
// symlink swap): a key and certificate that do not match are ignored and the
// previous pair stays in use.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const TlsConfig& tls, absl::Duration reload,
    std::shared_ptr<grpc::experimental::CertificateProviderInterface>* provider) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  // A typo or a key that does not match its certificate is a clear error at
  // start instead of failing handshakes later.
  if (tls.key_file.empty())
    return absl::InvalidArgumentError("tls.key_file: required with tls.cert_file");
  RETURN_IF_ERROR(tls::CheckCertFiles("tls", {.cert_file = tls.cert_file,
                                              .key_file = tls.key_file,
                                              .client_ca_file = tls.client_ca_file}));
  unsigned int secs = static_cast<unsigned int>(std::max<int64_t>(1, absl::ToInt64Seconds(reload)));
  *provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      tls.key_file, tls.cert_file, tls.client_ca_file, secs);
  grpc::experimental::TlsServerCredentialsOptions opts(*provider);
  opts.watch_identity_key_cert_pairs();
  if (!tls.client_ca_file.empty()) {
    opts.watch_root_certs();
    opts.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  } else {
    opts.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  }
  return grpc::experimental::TlsServerCredentials(opts);
}

// data.live_carbon against the loaded inventory: every live zone must be the
// grid zone of a pool (a typo would otherwise be fetched and never used), and
// live data is on wall time, so the clock must not be sped up.
absl::StatusOr<LiveCarbon> BuildLiveCarbonFor(const Config& cfg,
                                              const providers::Inventory& inventory,
                                              const Clock* clock) {
  const LiveCarbonConfig& lc = cfg.live_carbon;
  auto bad = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat(cfg.source_path, ": ", msg));
  };
  if (cfg.time_scale != 1.0)
    return bad(
        absl::StrCat("data.live_carbon: needs clock.time_scale 1 (live data is on wall "
                     "time), not ",
                     cfg.time_scale));
  absl::flat_hash_map<std::string, double> annual;
  for (size_t i = 0; i < lc.zones.size(); ++i) {
    const std::string& zone = lc.zones[i].zone;
    auto it = inventory.zones.find(zone);
    if (it == inventory.zones.end())
      return bad(absl::StrCat("data.live_carbon.zones[", i, "]: '", zone,
                              "' is not the grid zone of any pool or series (zones come from "
                              "data.region_zones and data.carbon_series)"));
    annual[zone] = it->second && it->second->annual_average() > 0
                       ? it->second->annual_average()
                       : inventory.default_intensity_g_per_kwh;
  }
  const double fallback = inventory.default_intensity_g_per_kwh;
  // The provider's forecast, then ours, covers the placement horizon (72 h at least).
  const absl::Duration horizon = std::max(absl::Hours(72), absl::Hours(cfg.horizon_hours));
  auto live = BuildLiveCarbon(
      lc, clock,
      [annual, fallback](const std::string& zone) {
        auto it = annual.find(zone);
        return it == annual.end() ? fallback : it->second;
      },
      horizon);
  if (!live.ok()) return bad(std::string(live.status().message()));
  return live;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::BuildAndStart(ServerOptions options) {
  std::unique_ptr<Server> s(new Server());
  s->options_ = options;
  const Config& cfg = s->options_.config;
  LogLevel level;
  if (ParseLogLevel(cfg.log_level, &level)) SetLogLevel(level);

  // Ports first: a taken port is a clear error, not a silent share.
  RETURN_IF_ERROR(CheckPortFree(cfg.grpc_address));
  if (!cfg.metrics_address.empty()) RETURN_IF_ERROR(CheckPortFree(cfg.metrics_address));
  if (!cfg.webhook_address.empty()) RETURN_IF_ERROR(CheckPortFree(cfg.webhook_address));

  Clock* clock = options.clock;
  if (!clock) {
    s->own_clock_ = std::make_unique<RealClock>(cfg.time_scale);
    clock = s->own_clock_.get();
  }
  ASSIGN_OR_RETURN(providers::Inventory inventory, providers::LoadInventory(cfg, clock->Now()));
  GL_LOG_INFO("inventory loaded", F("config", cfg.source_path), F("pools", inventory.pools.size()),
              F("zones", inventory.zones.size()), F("gpu_models", inventory.gpus.Names().size()));
  for (const auto& note : inventory.notes) GL_LOG_DEBUG("inventory note", F("note", note));
  if (cfg.live_carbon.enabled()) {
    ASSIGN_OR_RETURN(s->live_, BuildLiveCarbonFor(cfg, inventory, clock));
  }

  store::SqliteOptions so;
  so.path = cfg.store_path;
  so.synchronous = cfg.store_synchronous;
  ASSIGN_OR_RETURN(s->store_, store::SqliteStore::Open(so));
  GL_LOG_INFO("store opened", F("path", cfg.store_path),
              F("schema_version", s->store_->schema_version()),
              F("synchronous", cfg.store_synchronous));

  // Metrics families exist before the core so that its hooks can feed them.
  s->registry_ = std::make_shared<prometheus::Registry>();
  s->metrics_ = std::make_unique<metrics::SchedulerMetrics>(*s->registry_, "0.1.0");
  if (!cfg.metrics_address.empty()) {
    ASSIGN_OR_RETURN(metrics::MetricsServerOptions mo,
                     metrics::MetricsServerOptionsFromConfig(cfg, options.tls_reload_interval));
    ASSIGN_OR_RETURN(s->metrics_server_, metrics::MetricsServer::Start(mo, s->registry_));
    s->metrics_port_ = s->metrics_server_->port();
    const metrics::MetricsServer& ms = *s->metrics_server_;
    GL_LOG_INFO(ms.https() ? "metrics serving over HTTPS" : "metrics serving over plain HTTP",
                F("url", ms.url()),
                F("tls", ms.mutual_tls() ? "mtls"
                         : ms.https()    ? "on"
                                         : "off"));
  }
  metrics::SchedulerMetrics* m = s->metrics_.get();

  s->executor_ = std::make_unique<SimulatedExecutor>();
  CoreOptions co;
  co.clock = clock;
  co.store = s->store_.get();
  co.executor = s->executor_.get();
  co.inventory = std::move(inventory);
  co.default_mode = ParseMode(cfg.default_mode);
  co.default_carbon_price_micros_per_tonne =
      static_cast<int64_t>(cfg.default_carbon_price_usd_per_tonne * 1e6);
  co.horizon = absl::Hours(cfg.horizon_hours);
  co.max_queue = cfg.max_inflight_submits;
  co.command_timeout = options.command_timeout;
  co.tick_interval = absl::Milliseconds(cfg.tick_ms);
  co.agent_heartbeat_interval = absl::Milliseconds(cfg.agent_heartbeat_interval_ms);
  co.agent_lease_timeout = absl::Seconds(cfg.agent_lease_timeout_seconds);
  co.agent_clock_scale = cfg.time_scale;
  co.on_commit = [m](double secs, int batch) {
    m->ObserveCommitSeconds(secs);
    m->ObserveBatchSize(batch);
  };
  co.on_placement = [m](double secs) { m->ObservePlacementSeconds(secs); };
  ASSIGN_OR_RETURN(s->core_, SchedulerCore::Create(std::move(co)));
  s->core_->Start();

  // Seed teams named in the config that the store does not have yet.
  for (const auto& t : cfg.teams) {
    if (s->core_->GetTeam(t.name).ok()) continue;
    v1::Team team;
    team.set_name(t.name);
    team.set_parent(t.parent);
    team.set_monthly_cost_budget_micros(static_cast<int64_t>(t.monthly_cost_budget_usd * 1e6));
    team.set_monthly_carbon_budget_mg(static_cast<int64_t>(t.monthly_carbon_budget_kg * 1e6));
    team.set_gpu_quota(t.gpu_quota);
    team.set_carbon_price_micros_per_tonne(
        static_cast<int64_t>(t.carbon_price_usd_per_tonne * 1e6));
    team.set_unknown_grid(t.unknown_grid);
    auto r = s->core_->SetTeam(team);
    if (!r.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(cfg.source_path, ": teams: ", r.status().message()));
  }

  // Live carbon data replaces the file series of its zones from the first
  // successful fetch on, and is kept in the store: after a restart the zone
  // serves its last good data until a fetch succeeds. With no good data ever
  // (and whenever it is stale) quotes use the zone's annual average and say
  // carbon_estimated.
  if (s->live_.cache) {
    const LiveCarbonConfig& lc = cfg.live_carbon;
    CarbonRefresherOptions ro;
    ro.provider = lc.provider;
    for (const auto& z : lc.zones) ro.zones.push_back(z.zone);
    ro.refresh = absl::Seconds(lc.refresh_seconds);
    ro.cancel = [http = s->live_.http.get()] { http->Cancel(); };
    PushCarbonReading push = PushToCore(s->core_.get());
    RestoreLiveCarbon(*s->core_, s->live_.cache.get(), ro.zones, push, lc.provider);
    s->refresher_ = std::make_unique<CarbonRefresher>(s->live_.cache.get(), std::move(push), clock,
                                                      std::move(ro));
    s->live_since_ = clock->Now();
    s->refresher_->Start();
    GL_LOG_INFO("live carbon data on", F("provider", lc.provider),
                F("zones", absl::StrJoin(lc.zones, ",",
                                         [](std::string* out, const LiveCarbonZone& z) {
                                           absl::StrAppend(out, z.zone);
                                           if (!z.api_id.empty())
                                             absl::StrAppend(out, "=", z.api_id);
                                         })),
                F("host", UrlHost(lc.base_url)), F("refresh_s", lc.refresh_seconds),
                F("ttl_s", lc.ttl_seconds), F("stale_after_s", lc.stale_after_seconds),
                F("ca", lc.ca_file.empty() ? std::string("system") : lc.ca_file));
    if (lc.allow_insecure_http) {
      GL_LOG_WARN(
          "INSECURE: data.live_carbon.allow_insecure_http is true: plain http:// API URLs are "
          "allowed and credentials can travel in clear text",
          F("host", UrlHost(lc.base_url)));
    }
  }

  s->auth_ = std::make_unique<Authenticator>(cfg.auth_mode == "open");
  s->auth_->Load(s->core_->Tokens());
  if (!cfg.admin_token_file.empty()) {
    ASSIGN_OR_RETURN(std::string secret, ReadFileToString(cfg.admin_token_file));
    secret = std::string(absl::StripAsciiWhitespace(secret));
    if (secret.size() < 16)
      return absl::InvalidArgumentError(absl::StrCat(
          cfg.source_path, ": auth.admin_token_file: secret must be at least 16 characters"));
    s->auth_->AddAdminSecret(secret);
  }
  if (options.team_submit_rate > 0 || options.team_max_inflight_submits > 0)
    s->limiter_ = std::make_unique<TeamLimiter>(options.team_submit_rate, options.team_submit_burst,
                                                options.team_max_inflight_submits);
  s->watches_ = std::make_unique<WatchLimiter>(options.max_watchers, options.watch_stall_timeout);
  s->placements_ = std::make_unique<InflightGate>(options.max_concurrent_placements);

  ServiceContext ctx;
  ctx.core = s->core_.get();
  ctx.auth = s->auth_.get();
  ctx.limiter = s->limiter_.get();
  ctx.watches = s->watches_.get();
  ctx.placements = s->placements_.get();
  ctx.shutting_down = &s->shutting_down_;
  ctx.on_admit = [m](const std::string& team) { m->RecordAdmission(team); };
  ctx.on_reject = [m](const std::string& reason) { m->RecordRejection(reason); };
  ctx.on_decision = [m](const std::string& team, const v1::Quote& q) {
    metrics::DecisionSample d;
    d.team = team;
    d.cost_micros = q.chosen().cost_micros();
    d.carbon_mg = q.chosen().carbon_mg();
    d.baseline_cost_micros = q.baseline().cost_micros();
    d.baseline_carbon_mg = q.baseline().carbon_mg();
    m->RecordDecision(d);
  };
  s->scheduler_service_ = std::make_unique<SchedulerService>(ctx);
  s->budgets_service_ = std::make_unique<BudgetsService>(ctx);
  s->inventory_service_ = std::make_unique<InventoryService>(ctx);
  s->admin_service_ = std::make_unique<AdminService>(ctx);
  s->agent_service_ = std::make_unique<AgentService>(ctx);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  ASSIGN_OR_RETURN(auto creds,
                   Credentials(cfg.tls, options.tls_reload_interval, &s->tls_provider_));
  builder.AddListeningPort(cfg.grpc_address, creds, &s->grpc_port_);
  grpc::ResourceQuota quota("greenlightd");
  if (options.max_threads > 0) {
    quota.SetMaxThreads(options.max_threads);
    builder.SetResourceQuota(quota);
  }
  if (options.max_concurrent_streams > 0)
    builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  // Measured in bench/README.md (submit_load): +10 % submits/s, fewer
  // thread creations. Bounded by max_threads when that is set.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS,
                              options.max_threads > 0
                                  ? std::min(options.max_threads, kIdleHandlerThreads)
                                  : kIdleHandlerThreads);
  builder.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(cfg.max_message_bytes));
  builder.RegisterService(s->scheduler_service_.get());
  builder.RegisterService(s->budgets_service_.get());
  builder.RegisterService(s->inventory_service_.get());
  builder.RegisterService(s->admin_service_.get());
  builder.RegisterService(s->agent_service_.get());
  s->grpc_ = builder.BuildAndStart();
  if (!s->grpc_ || s->grpc_port_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot listen on ", cfg.grpc_address));
  }
  s->grpc_->GetHealthCheckService()->SetServingStatus(true);

  if (!cfg.webhook_address.empty()) {
    s->admission_ = std::make_unique<WebhookAdapter>(s->core_.get());
    auto wh = webhook::WebhookServer::Start(webhook::WebhookServerOptionsFromConfig(cfg),
                                            s->admission_.get());
    if (!wh.ok()) return wh.status();
    s->webhook_ = std::move(*wh);
    s->webhook_port_ = s->webhook_->port();
    GL_LOG_INFO("admission webhook serving", F("address", s->webhook_->address()),
                F("paths", "/validate,/mutate"));
  }

  s->RefreshMetrics();
  s->metrics_thread_ = std::thread([srv = s.get()] { srv->MetricsLoop(); });

  GL_LOG_INFO(
      "greenlightd serving",
      F("grpc", absl::StrCat(ParseHostPort(cfg.grpc_address)->host, ":", s->grpc_port_)),
      F("tls", cfg.tls.enabled() ? (cfg.tls.client_ca_file.empty() ? "on" : "mtls") : "off"),
      F("auth", cfg.auth_mode), F("executor", s->executor_->name()),
      F("time_scale", cfg.time_scale),
      F("metrics", s->metrics_server_ ? s->metrics_server_->url() : std::string("off")));
  if (cfg.auth_mode == "open") {
    GL_LOG_WARN(
        "INSECURE: auth.mode is open: every caller is admin; use auth.mode: token outside demos");
  }
  if (!cfg.tls.enabled()) {
    GL_LOG_WARN(
        "INSECURE: no TLS: gRPC traffic (and tokens) travel in clear text; set "
        "tls.cert_file/key_file");
  }
  if (s->metrics_server_ && !s->metrics_server_->https() && !s->metrics_server_->loopback_only()) {
    GL_LOG_WARN(
        "INSECURE: /metrics is plain HTTP on a non-loopback address: every team's budgets and "
        "usage travel in clear text; set server.metrics_tls: true (with tls.*)",
        F("address", s->metrics_server_->address()));
  }
  return s;
}

void Server::MetricsLoop() {
  while (!stop_metrics_) {
    for (int i = 0; i < 10 && !stop_metrics_; ++i) absl::SleepFor(absl::Milliseconds(100));
    if (!stop_metrics_) RefreshMetrics();
  }
}

namespace {
// The agent nodes and counters of the core, for the metrics.
metrics::AgentSample AgentSampleOf(const SchedulerCore& core,
                                   const std::vector<v1::NodePool>& pools, absl::Time now) {
  metrics::AgentSample a;
  const double scale = core.agent_clock_scale() > 0 ? core.agent_clock_scale() : 1;
  for (const auto& p : pools) {
    for (const auto& n : p.agent_nodes()) {
      metrics::AgentSample::Node s;
      s.pool = p.id();
      s.node = n.name();
      s.state = n.state() == v1::NODE_STATE_LOST ? "LOST" : "READY";
      if (n.has_last_heartbeat()) {
        s.heartbeat_age_seconds =
            std::max(0.0, absl::ToDoubleSeconds(now - FromProto(n.last_heartbeat())) / scale);
      }
      a.nodes.push_back(std::move(s));
    }
  }
  const AgentRegistry::Counters c = core.AgentCounters();
  a.energy_measured_wh = c.energy_measured_wh;
  a.energy_modelled_wh = c.energy_modelled_wh;
  a.starts = c.starts;
  a.failures = c.failures;
  return a;
}
}  // namespace

void Server::RefreshMetrics() {
  std::vector<metrics::TeamSample> teams;
  for (const auto& v : core_->TeamViews()) {
    metrics::TeamSample t;
    t.team = v.team.name();
    t.parent = v.team.parent();
    t.cost_budget_micros = v.usage.cost_budget_micros();
    t.cost_spent_micros = v.usage.cost_spent_micros();
    t.cost_reserved_micros = v.usage.cost_reserved_micros();
    t.carbon_budget_mg = v.usage.carbon_budget_mg();
    t.carbon_spent_mg = v.usage.carbon_spent_mg();
    t.carbon_reserved_mg = v.usage.carbon_reserved_mg();
    t.cost_burn_micros_per_hour = v.cost_burn_micros_per_hour;
    t.carbon_burn_mg_per_hour = v.carbon_burn_mg_per_hour;
    t.running_gpus = v.usage.running_gpus();
    t.gpu_quota = v.usage.gpu_quota();
    t.pending_by_reason = v.pending_by_reason;
    teams.push_back(std::move(t));
  }
  metrics_->SetTeams(teams);
  absl::Time now = core_->clock()->Now();
  absl::flat_hash_map<std::string, LiveZoneStatus> live;
  if (refresher_) live = refresher_->Statuses();
  std::vector<metrics::ZoneSample> zones;
  for (const auto& z : core_->ListZones()) {
    metrics::ZoneSample s;
    s.zone = z.name();
    s.intensity_g_per_kwh = z.current_g_per_kwh();
    if (auto it = live.find(z.name()); it != live.end()) {
      // Live data ages from its fetch, not from the slot in use: a series
      // fetched 5 h ago still covers now with its forecast. With no data yet
      // it is as old as the attempts.
      const LiveZoneStatus& st = it->second;
      s.stale = st.stale;
      absl::Time since = st.fetched_at == absl::InfinitePast() ? live_since_ : st.fetched_at;
      s.data_age_seconds = std::max(0.0, absl::ToDoubleSeconds(now - since));
      zones.push_back(std::move(s));
      continue;
    }
    if (z.points() == 0) {
      s.annual_only = true;  // no series configured: the annual average by design
      zones.push_back(std::move(s));
      continue;
    }
    absl::Time start = FromProto(z.series_start()), end = FromProto(z.series_end());
    absl::Duration step = FromProto(z.step());
    if (now >= start && now < end && step > absl::ZeroDuration()) {
      absl::Duration into = now - start;
      s.data_age_seconds = absl::ToDoubleSeconds(into - absl::Floor(into, step));
    } else {
      s.stale = true;
      s.data_age_seconds = now >= end ? absl::ToDoubleSeconds(now - end) : 0;
    }
    zones.push_back(std::move(s));
  }
  metrics_->SetZones(zones);
  // Cheapest on-demand price per GPU-hour per region and GPU type.
  std::map<std::pair<std::string, std::string>, double> best;
  const std::vector<v1::NodePool> pools = core_->ListPools();
  for (const auto& p : pools) {
    if (p.gpus_per_node() <= 0) continue;
    double usd = p.price_micros_per_node_hour() / 1e6 / p.gpus_per_node();
    auto key = std::make_pair(p.region(), p.gpu_type());
    auto it = best.find(key);
    if (it == best.end() || usd < it->second) best[key] = usd;
  }
  std::vector<metrics::PriceSample> prices;
  for (const auto& [k, usd] : best) prices.push_back({k.first, k.second, usd});
  metrics_->SetPrices(prices);
  metrics_->SetJobsByState(core_->JobsByState());
  metrics_->SetAgents(AgentSampleOf(*core_, pools, now));
  metrics_->SetQueueDepth(core_->queue_depth());
}

void Server::Shutdown() {
  if (shut_) return;
  shut_ = true;
  shutting_down_ = true;
  if (grpc_) {
    grpc_->GetHealthCheckService()->SetServingStatus(false);
    // In-flight calls get 2 s to finish (a submit waits for one group commit,
    // milliseconds); watchers get UNAVAILABLE with their resume revision.
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  stop_metrics_ = true;
  if (metrics_thread_.joinable()) metrics_thread_.join();
  webhook_.reset();
  // Before the core: the refresher pushes into it. Aborts a fetch in flight.
  if (refresher_) refresher_->Stop();
  if (core_) core_->Stop();
  metrics_server_.reset();
  GL_LOG_INFO("greenlightd stopped", F("revision", core_ ? core_->revision() : 0));
}

void Server::Wait() {
  if (grpc_) grpc_->Wait();
}

Server::~Server() { Shutdown(); }

}  // namespace greenlight::scheduler
