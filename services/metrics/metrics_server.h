// The endpoint serving a registry on /metrics, started so that a bad or taken
// address is an absl::Status, never an abort. Plain HTTP is prometheus-cpp's
// Exposer; HTTPS (optionally mutual TLS) is cpp-httplib's SSLServer with the
// certificate, key and client CA re-read when their files change.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/net.h"
#include "common/tls/cert_reloader.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace httplib {
class SSLServer;
}  // namespace httplib

namespace greenlight::metrics {

struct MetricsServerOptions {
  // "host:port": host is an IPv4 literal, "localhost" (= 127.0.0.1),
  // "0.0.0.0" or empty (all interfaces), or a bracketed IPv6 literal
  // ("[::1]:9464"); port 0 picks a free port (see MetricsServer::port()).
  std::string address;
  // HTTPS when tls.cert_file is set; tls.client_ca_file set = every scraper
  // must present a client certificate signed by that CA (mutual TLS). The
  // files are re-read when they change (certificate rotation).
  tls::CertFiles tls;
  // How often handshakes re-check the TLS files (stat).
  absl::Duration cert_check_interval = absl::Seconds(5);
  // HTTPS only: worker threads (each serves one connection at a time) and
  // the per-connection socket read/write timeout.
  int threads = 4;
  absl::Duration io_timeout = absl::Seconds(10);

  bool https() const { return !tls.cert_file.empty(); }
};

// address = Config::metrics_address; with server.metrics_tls the TLS files
// of Config::tls (client CA included). INVALID_ARGUMENT when
// server.metrics_tls is on but tls.cert_file / tls.key_file are not set (a
// flag may have cleared them after the config was parsed).
absl::StatusOr<MetricsServerOptions> MetricsServerOptionsFromConfig(
    const Config& config, absl::Duration cert_check_interval);

class MetricsServer {
 public:
  // Serves `registry` on http(s)://address/metrics.
  // Errors: INVALID_ARGUMENT for a malformed address or an unusable
  // certificate, key or client CA (naming the file); FAILED_PRECONDITION
  // "metrics address 127.0.0.1:9464: port in use" when another socket holds
  // the port (checked before binding, because prometheus-cpp's Exposer
  // throws on a taken port, and httplib and gRPC bind with SO_REUSEPORT so a
  // shared port would otherwise go unnoticed); UNAVAILABLE for any other
  // failure to listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const MetricsServerOptions& options, std::shared_ptr<prometheus::Registry> registry);
  // Plain HTTP on `address`.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);

  ~MetricsServer();  // stops serving
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port actually listened on (the chosen one when started with port 0).
  int port() const { return port_; }
  // "host:port" with the actual port, e.g. "127.0.0.1:40123".
  std::string address() const;
  // "https://127.0.0.1:9464/metrics" (the host as configured: empty = all).
  std::string url() const;
  bool https() const { return certs_ != nullptr; }
  bool mutual_tls() const { return certs_ != nullptr && certs_->mutual(); }
  // True when only this host can connect (127.0.0.0/8, ::1).
  bool loopback_only() const { return loopback_only_; }
  // Certificate reloads so far (HTTPS; for logs and tests).
  int64_t cert_reloads() const { return certs_ != nullptr ? certs_->reloads() : 0; }

 private:
  MetricsServer(std::string host, bool loopback_only,
                std::shared_ptr<prometheus::Registry> registry);
  absl::Status StartHttps(const MetricsServerOptions& options, const ListenAddress& a);

  std::string host_;  // as given ("" = all interfaces), IPv6 in brackets
  bool loopback_only_ = false;
  int port_ = 0;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // plain HTTP
  // HTTPS; the destructor stops the server and joins its thread, then the
  // server (its SSL_CTX) goes before the reloader its handshakes call.
  std::unique_ptr<tls::CertReloader> certs_;
  std::unique_ptr<httplib::SSLServer> https_;
  std::thread thread_;
};

}  // namespace greenlight::metrics
