// greenlightd: the greenlight scheduler daemon.
#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "common/config.h"
#include "common/log.h"
#include "services/scheduler/server.h"

ABSL_FLAG(std::string, config, "", "YAML config file (see deploy/config/demo.yaml)");
ABSL_FLAG(std::string, grpc_address, "", "override server.grpc_address (host:port)");
ABSL_FLAG(std::string, metrics_address, "",
          "override server.metrics_address (host:port; 'off' disables)");
ABSL_FLAG(std::string, webhook_address, "", "override server.webhook_address (host:port)");
ABSL_FLAG(std::string, store, "", "override store.path (SQLite file)");
ABSL_FLAG(std::string, log_level, "", "override server.log_level (debug|info|warn|error)");
ABSL_FLAG(double, time_scale, 0, "override clock.time_scale (simulated seconds per second)");
ABSL_FLAG(double, team_submit_rate, 0, "per-team submits per second (0 = unlimited)");
ABSL_FLAG(int, team_submit_burst, 1000,
          "per-team submit burst (token bucket size) with --team_submit_rate");
ABSL_FLAG(int, team_max_inflight_submits, 0, "per-team submits in flight at once (0 = unlimited)");
ABSL_FLAG(int, max_inflight_submits, 0,
          "override server.max_inflight_submits (command queue bound)");
ABSL_FLAG(int, command_timeout_ms, 30000,
          "longest wait of a call for the scheduler core (then UNAVAILABLE)");
ABSL_FLAG(int, max_watchers, 128,
          "WatchJobs streams open at once (0 = unlimited; each holds a thread)");
ABSL_FLAG(int, max_concurrent_placements, 64,
          "SubmitJob/EstimateJob calls placing at once (0 = unlimited)");
ABSL_FLAG(int, max_concurrent_streams, 128,
          "gRPC calls open at once per client connection (0 = unlimited)");
ABSL_FLAG(int, max_threads, 0,
          "gRPC handler threads; calls beyond get RESOURCE_EXHAUSTED (0 = unlimited)");
ABSL_FLAG(int, watch_stall_timeout_s, 60,
          "drop a WatchJobs stream whose client reads nothing for this long");
// Security overrides (the same keys as auth.* and tls.* in the config).
ABSL_FLAG(std::string, auth_mode, "", "override auth.mode (open|token)");
ABSL_FLAG(std::string, admin_token_file, "",
          "override auth.admin_token_file (bootstrap admin secret)");
ABSL_FLAG(std::string, tls_cert_file, "", "override tls.cert_file (PEM chain; enables TLS)");
ABSL_FLAG(std::string, tls_key_file, "", "override tls.key_file (PEM private key)");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "override tls.client_ca_file (PEM CA; enables mutual TLS)");
ABSL_FLAG(bool, metrics_tls, false,
          "serve /metrics over HTTPS with the tls.* files, mutual TLS with a client CA (sets "
          "server.metrics_tls: true)");
ABSL_FLAG(int, tls_reload_s, 5,
          "how often the TLS files are re-read (certificate rotation without restart)");

namespace {
volatile std::sig_atomic_t g_signal = 0;
void OnSignal(int sig) { g_signal = sig; }
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "greenlightd --config FILE [--grpc_address=H:P] [--metrics_address=H:P] [--store=PATH]\n"
      "Schedules ML training jobs under cost (USD) and carbon (kgCO2e) budgets.");
  absl::ParseCommandLine(argc, argv);
#ifdef NDEBUG
  // Debian's abseil is built without NDEBUG, so every Mutex::Lock would also
  // update the deadlock detector's lock graph (3 % of submit throughput in
  // bench/submit_load). The sanitizer builds check locking instead.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  std::string path = absl::GetFlag(FLAGS_config);
  if (path.empty()) {
    std::fprintf(stderr, "greenlightd: --config is required (try deploy/config/demo.yaml)\n");
    return 2;
  }
  auto cfg = greenlight::LoadConfig(path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "greenlightd: bad config: %s\n",
                 std::string(cfg.status().message()).c_str());
    return 2;
  }
  if (!absl::GetFlag(FLAGS_grpc_address).empty())
    cfg->grpc_address = absl::GetFlag(FLAGS_grpc_address);
  if (!absl::GetFlag(FLAGS_metrics_address).empty())
    cfg->metrics_address =
        absl::GetFlag(FLAGS_metrics_address) == "off" ? "" : absl::GetFlag(FLAGS_metrics_address);
  if (!absl::GetFlag(FLAGS_webhook_address).empty())
    cfg->webhook_address = absl::GetFlag(FLAGS_webhook_address);
  if (!absl::GetFlag(FLAGS_store).empty()) cfg->store_path = absl::GetFlag(FLAGS_store);
  if (!absl::GetFlag(FLAGS_log_level).empty()) cfg->log_level = absl::GetFlag(FLAGS_log_level);
  if (absl::GetFlag(FLAGS_time_scale) > 0) cfg->time_scale = absl::GetFlag(FLAGS_time_scale);
  if (absl::GetFlag(FLAGS_max_inflight_submits) > 0)
    cfg->max_inflight_submits = absl::GetFlag(FLAGS_max_inflight_submits);
  if (!absl::GetFlag(FLAGS_auth_mode).empty()) {
    cfg->auth_mode = absl::GetFlag(FLAGS_auth_mode);
    if (cfg->auth_mode != "open" && cfg->auth_mode != "token") {
      std::fprintf(stderr, "greenlightd: --auth_mode: must be open or token, not '%s'\n",
                   cfg->auth_mode.c_str());
      return 2;
    }
  }
  if (!absl::GetFlag(FLAGS_admin_token_file).empty())
    cfg->admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  if (!absl::GetFlag(FLAGS_tls_cert_file).empty())
    cfg->tls.cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  if (!absl::GetFlag(FLAGS_tls_key_file).empty())
    cfg->tls.key_file = absl::GetFlag(FLAGS_tls_key_file);
  if (!absl::GetFlag(FLAGS_tls_client_ca_file).empty())
    cfg->tls.client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  if (absl::GetFlag(FLAGS_metrics_tls)) cfg->metrics_tls = true;
  if (cfg->auth_mode == "token" && cfg->admin_token_file.empty()) {
    std::fprintf(
        stderr,
        "greenlightd: warning: auth.mode is token but no auth.admin_token_file: only tokens "
        "already in the store can call\n");
  }

  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  greenlight::scheduler::ServerOptions opts;
  opts.config = *cfg;
  opts.team_submit_rate = absl::GetFlag(FLAGS_team_submit_rate);
  opts.team_submit_burst = std::max(1, absl::GetFlag(FLAGS_team_submit_burst));
  opts.team_max_inflight_submits = absl::GetFlag(FLAGS_team_max_inflight_submits);
  opts.command_timeout = absl::Milliseconds(std::max(1, absl::GetFlag(FLAGS_command_timeout_ms)));
  opts.max_watchers = absl::GetFlag(FLAGS_max_watchers);
  opts.max_threads = absl::GetFlag(FLAGS_max_threads);
  opts.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  opts.max_concurrent_placements = absl::GetFlag(FLAGS_max_concurrent_placements);
  opts.watch_stall_timeout = absl::GetFlag(FLAGS_watch_stall_timeout_s) > 0
                                 ? absl::Seconds(absl::GetFlag(FLAGS_watch_stall_timeout_s))
                                 : absl::InfiniteDuration();
  opts.tls_reload_interval = absl::Seconds(std::max(1, absl::GetFlag(FLAGS_tls_reload_s)));
  auto server = greenlight::scheduler::Server::BuildAndStart(opts);
  if (!server.ok()) {
    std::fprintf(stderr, "greenlightd: cannot start: %s\n",
                 std::string(server.status().message()).c_str());
    return server.status().code() == absl::StatusCode::kInvalidArgument ||
                   server.status().code() == absl::StatusCode::kFailedPrecondition ||
                   server.status().code() == absl::StatusCode::kNotFound
               ? 2
               : 1;
  }
  while (g_signal == 0) {
    struct timespec ts {
      0, 100 * 1000 * 1000
    };
    nanosleep(&ts, nullptr);
  }
  GL_LOG_INFO("signal received; draining", greenlight::F("signal", static_cast<int>(g_signal)));
  (*server)->Shutdown();
  return 0;
}
