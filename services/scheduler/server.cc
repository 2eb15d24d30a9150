#include "services/scheduler/server.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/csv.h"
#include "common/log.h"
#include "common/net.h"
#include "common/status_macros.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/security/server_credentials.h"
#include "services/providers/inventory.h"

namespace greenlight::scheduler {

namespace {

placement::Mode ParseMode(const std::string& m) {
  if (m == "cheapest") return placement::Mode::kCheapest;
  if (m == "greenest") return placement::Mode::kGreenest;
  return placement::Mode::kBalanced;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const TlsConfig& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  ASSIGN_OR_RETURN(std::string cert, ReadFileToString(tls.cert_file));
  ASSIGN_OR_RETURN(std::string key, ReadFileToString(tls.key_file));
  grpc::SslServerCredentialsOptions opts(
      tls.client_ca_file.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                 : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  if (!tls.client_ca_file.empty()) {
    ASSIGN_OR_RETURN(opts.pem_root_certs, ReadFileToString(tls.client_ca_file));
  }
  opts.pem_key_cert_pairs.push_back({key, cert});
  return grpc::SslServerCredentials(opts);
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

  store::SqliteOptions so;
  so.path = cfg.store_path;
  so.synchronous = cfg.store_synchronous;
  ASSIGN_OR_RETURN(s->store_, store::SqliteStore::Open(so));
  GL_LOG_INFO("store opened", F("path", cfg.store_path), F("schema_version", s->store_->schema_version()),
              F("synchronous", cfg.store_synchronous));

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
  co.tick_interval = absl::Milliseconds(cfg.tick_ms);
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
    team.set_carbon_price_micros_per_tonne(static_cast<int64_t>(t.carbon_price_usd_per_tonne * 1e6));
    auto r = s->core_->SetTeam(team);
    if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat(cfg.source_path, ": teams: ", r.status().message()));
  }

  s->auth_ = std::make_unique<Authenticator>(cfg.auth_mode == "open");
  s->auth_->Load(s->core_->Tokens());
  if (!cfg.admin_token_file.empty()) {
    ASSIGN_OR_RETURN(std::string secret, ReadFileToString(cfg.admin_token_file));
    secret = std::string(absl::StripAsciiWhitespace(secret));
    if (secret.size() < 16)
      return absl::InvalidArgumentError(absl::StrCat(cfg.source_path, ": auth.admin_token_file: secret must be at least 16 characters"));
    s->auth_->AddAdminSecret(secret);
  }
  if (options.team_submit_rate > 0)
    s->limiter_ = std::make_unique<TeamLimiter>(options.team_submit_rate, options.team_submit_burst);

  ServiceContext ctx;
  ctx.core = s->core_.get();
  ctx.auth = s->auth_.get();
  ctx.limiter = s->limiter_.get();
  ctx.shutting_down = &s->shutting_down_;
  s->scheduler_service_ = std::make_unique<SchedulerService>(ctx);
  s->budgets_service_ = std::make_unique<BudgetsService>(ctx);
  s->inventory_service_ = std::make_unique<InventoryService>(ctx);
  s->admin_service_ = std::make_unique<AdminService>(ctx);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  ASSIGN_OR_RETURN(auto creds, Credentials(cfg.tls));
  builder.AddListeningPort(cfg.grpc_address, creds, &s->grpc_port_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(cfg.max_message_bytes));
  builder.RegisterService(s->scheduler_service_.get());
  builder.RegisterService(s->budgets_service_.get());
  builder.RegisterService(s->inventory_service_.get());
  builder.RegisterService(s->admin_service_.get());
  s->grpc_ = builder.BuildAndStart();
  if (!s->grpc_ || s->grpc_port_ == 0) {
    return absl::FailedPreconditionError(absl::StrCat("cannot listen on ", cfg.grpc_address));
  }
  s->grpc_->GetHealthCheckService()->SetServingStatus(true);

  GL_LOG_INFO("greenlightd serving", F("grpc", absl::StrCat(ParseHostPort(cfg.grpc_address)->host, ":", s->grpc_port_)),
              F("tls", cfg.tls.enabled() ? (cfg.tls.client_ca_file.empty() ? "on" : "mtls") : "off"),
              F("auth", cfg.auth_mode), F("executor", s->executor_->name()),
              F("time_scale", cfg.time_scale));
  if (cfg.auth_mode == "open") {
    GL_LOG_WARN("INSECURE: auth.mode is open: every caller is admin; use auth.mode: token outside demos");
  }
  if (!cfg.tls.enabled()) {
    GL_LOG_WARN("INSECURE: no TLS: gRPC traffic (and tokens) travel in clear text; set tls.cert_file/key_file");
  }
  return s;
}

void Server::MetricsLoop() {}

void Server::Shutdown() {
  if (shut_) return;
  shut_ = true;
  shutting_down_ = true;
  if (grpc_) {
    grpc_->GetHealthCheckService()->SetServingStatus(false);
    // In-flight calls get 5 s to finish; watchers are told to resume elsewhere.
    grpc_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }
  stop_metrics_ = true;
  if (metrics_thread_.joinable()) metrics_thread_.join();
  webhook_.reset();
  metrics_.reset();
  if (core_) core_->Stop();
  GL_LOG_INFO("greenlightd stopped", F("revision", core_ ? core_->revision() : 0));
}

void Server::Wait() {
  if (grpc_) grpc_->Wait();
}

Server::~Server() { Shutdown(); }

}  // namespace greenlight::scheduler
