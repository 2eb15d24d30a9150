// greenlightd assembled: config -> inventory, store, core, live carbon data
// (data.live_carbon), gRPC server (with health and reflection), metrics
// exposer and admission webhook. main() fills ServerOptions and calls
// BuildAndStart, like TF Serving.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/config.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "services/metrics/metrics_server.h"
#include "services/metrics/scheduler_metrics.h"
#include "services/scheduler/admin_service.h"
#include "services/scheduler/agent_service.h"
#include "services/scheduler/auth.h"
#include "services/scheduler/budgets_service.h"
#include "services/scheduler/carbon_refresher.h"
#include "services/scheduler/core.h"
#include "services/scheduler/inventory_service.h"
#include "services/scheduler/limiters.h"
#include "services/scheduler/scheduler_service.h"
#include "services/scheduler/webhook_adapter.h"
#include "services/store/sqlite_store.h"
#include "services/webhook/webhook_server.h"

namespace greenlight::scheduler {

struct ServerOptions {
  Config config;
  // A clock to use instead of wall time (tests); null = RealClock(time_scale).
  Clock* clock = nullptr;
  // Submits per second per team (token bucket); 0 = unlimited.
  double team_submit_rate = 0;
  int team_submit_burst = 1000;
  // Submits of one team in flight at once; 0 = unlimited.
  int team_max_inflight_submits = 0;
  // Longest wait of a call for the scheduler core (see CoreOptions).
  absl::Duration command_timeout = absl::Seconds(30);
  // WatchJobs streams open at once (0 = unlimited), and how long a stream may
  // block on a client that reads nothing before it is dropped.
  int max_watchers = 128;
  absl::Duration watch_stall_timeout = absl::Seconds(60);
  // Calls open at once per client connection (HTTP/2 SETTINGS
  // MAX_CONCURRENT_STREAMS); a client's further calls wait on its side. The
  // sync server runs a thread per open call, so this bounds server threads
  // and memory per connection. 0 = gRPC's default (unlimited).
  int max_concurrent_streams = 128;
  // gRPC handler threads (0 = unlimited). gRPC 1.51 refuses calls beyond
  // with RESOURCE_EXHAUSTED "Server Threadpool Exhausted", also below the
  // limit (grpc/grpc#32680), and retains memory per refused call: prefer
  // max_concurrent_streams.
  int max_threads = 0;
  // SubmitJob + EstimateJob calls placing at once; beyond: RESOURCE_EXHAUSTED.
  int max_concurrent_placements = 64;
  // How often the TLS certificate, key and client CA files are re-read.
  absl::Duration tls_reload_interval = absl::Seconds(5);
};

class Server {
 public:
  static absl::StatusOr<std::unique_ptr<Server>> BuildAndStart(ServerOptions options);
  ~Server();
  // Stops accepting, drains in-flight calls and the command queue, closes the store.
  void Shutdown();
  void Wait();
  SchedulerCore* core() { return core_.get(); }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  int webhook_port() const { return webhook_port_; }

 private:
  Server() = default;
  // Refreshes the gauges from the core's views (the same as GetUsage) every second.
  void MetricsLoop();
  void RefreshMetrics();

  ServerOptions options_;
  std::unique_ptr<Clock> own_clock_;
  std::unique_ptr<store::SqliteStore> store_;
  std::unique_ptr<SimulatedExecutor> executor_;
  std::unique_ptr<SchedulerCore> core_;
  // Live carbon data; the refresher pushes into core_ and reads live_.cache,
  // so it is declared after both (destroyed first) and stopped before the core.
  LiveCarbon live_;
  std::unique_ptr<CarbonRefresher> refresher_;
  absl::Time live_since_ = absl::InfinitePast();
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<TeamLimiter> limiter_;
  std::unique_ptr<WatchLimiter> watches_;
  std::unique_ptr<InflightGate> placements_;
  // Re-reads the TLS files; must outlive the gRPC server.
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> tls_provider_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<SchedulerService> scheduler_service_;
  std::unique_ptr<BudgetsService> budgets_service_;
  std::unique_ptr<InventoryService> inventory_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<AgentService> agent_service_;
  std::unique_ptr<grpc::Server> grpc_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  int webhook_port_ = 0;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<metrics::SchedulerMetrics> metrics_;
  std::unique_ptr<metrics::MetricsServer> metrics_server_;
  std::unique_ptr<WebhookAdapter> admission_;
  std::unique_ptr<webhook::WebhookServer> webhook_;
  std::thread metrics_thread_;
  std::atomic<bool> stop_metrics_{false};
  bool shut_ = false;
};

}  // namespace greenlight::scheduler
