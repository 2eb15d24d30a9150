// greenlightd: the greenlight scheduler daemon.
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "common/config.h"
#include "common/log.h"
#include "services/scheduler/server.h"

ABSL_FLAG(std::string, config, "", "YAML config file (see deploy/config/demo.yaml)");
ABSL_FLAG(std::string, grpc_address, "", "override server.grpc_address (host:port)");
ABSL_FLAG(std::string, metrics_address, "", "override server.metrics_address (host:port; 'off' disables)");
ABSL_FLAG(std::string, webhook_address, "", "override server.webhook_address (host:port)");
ABSL_FLAG(std::string, store, "", "override store.path (SQLite file)");
ABSL_FLAG(std::string, log_level, "", "override server.log_level (debug|info|warn|error)");
ABSL_FLAG(double, time_scale, 0, "override clock.time_scale (simulated seconds per second)");
ABSL_FLAG(double, team_submit_rate, 0, "per-team submits per second (0 = unlimited)");

namespace {
volatile std::sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "greenlightd --config FILE [--grpc_address=H:P] [--metrics_address=H:P] [--store=PATH]\n"
      "Schedules ML training jobs under cost (USD) and carbon (kgCO2e) budgets.");
  absl::ParseCommandLine(argc, argv);
  std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    std::fprintf(stderr, "greenlightd: --config is required (try deploy/config/demo.yaml)\n");
    return 2;
  }
  auto cfg = greenlight::LoadConfig(path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "greenlightd: bad config: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_grpc_address).empty()) cfg->grpc_address = absl::GetFlag(FLAGS_grpc_address);
  if (!absl::GetFlag(FLAGS_metrics_address).empty())
    cfg->metrics_address = absl::GetFlag(FLAGS_metrics_address) == "off" ? "" : absl::GetFlag(FLAGS_metrics_address);
  if (!absl::GetFlag(FLAGS_webhook_address).empty()) cfg->webhook_address = absl::GetFlag(FLAGS_webhook_address);
  if (!absl::GetFlag(FLAGS_store).empty()) cfg->store_path = absl::GetFlag(FLAGS_store);
  if (!absl::GetFlag(FLAGS_log_level).empty()) cfg->log_level = absl::GetFlag(FLAGS_log_level);
  if (absl::GetFlag(FLAGS_time_scale) > 0) cfg->time_scale = absl::GetFlag(FLAGS_time_scale);

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  greenlight::scheduler::ServerOptions opts;
  opts.config = *cfg;
  opts.team_submit_rate = absl::GetFlag(FLAGS_team_submit_rate);
  auto server = greenlight::scheduler::Server::BuildAndStart(opts);
  if (!server.ok()) {
    std::fprintf(stderr, "greenlightd: cannot start: %s\n", std::string(server.status().message()).c_str());
    return server.status().code() == absl::StatusCode::kInvalidArgument ||
                   server.status().code() == absl::StatusCode::kFailedPrecondition ||
                   server.status().code() == absl::StatusCode::kNotFound
               ? 2
               : 1;
  }
  while (g_signal == 0) {
    struct timespec ts{0, 100 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
  GL_LOG_INFO("signal received; draining", greenlight::F("signal", static_cast<int>(g_signal)));
  (*server)->Shutdown();
  return 0;
}
