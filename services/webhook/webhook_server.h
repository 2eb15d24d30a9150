// The HTTPS endpoint Kubernetes calls: POST /validate and POST /mutate
// (AdmissionReview v1), GET /healthz. TLS certificate and key come from files
// and are reloaded when they change (see common/tls/cert_reloader.h).
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "services/webhook/admission_backend.h"
#include "services/webhook/admission_handler.h"
#include "services/webhook/workload.h"

namespace httplib {
class SSLServer;
}  // namespace httplib

namespace greenlight::tls {
class CertReloader;
}  // namespace greenlight::tls

namespace greenlight::webhook {

struct WebhookServerOptions {
  // "host:port": host is an IPv4 literal, "localhost", "0.0.0.0" or empty
  // (all interfaces), or a bracketed IPv6 literal ("[::]:8443"); port 0
  // picks a free port (see port()).
  std::string address;
  // PEM certificate chain and private key (required: the API server only
  // calls webhooks over HTTPS).
  std::string cert_file;
  std::string key_file;
  WebhookLabels labels;
  // Larger bodies get HTTP 413. An AdmissionReview of an UPDATE carries the
  // object twice, and objects may reach etcd's 1.5 MiB each.
  size_t max_body_bytes = 8 << 20;
  // Worker threads (each answers one request at a time).
  int threads = 8;
  // How often handshakes re-check the certificate files (stat).
  absl::Duration cert_check_interval = absl::Seconds(10);
  // Per-request socket read/write timeout. The API server's own webhook
  // timeout (timeoutSeconds, default 10 s) is what callers observe.
  absl::Duration io_timeout = absl::Seconds(10);
};

// address = Config::webhook_address, TLS files = Config::tls, labels =
// Config::webhook_*.
WebhookServerOptions WebhookServerOptionsFromConfig(const Config& config);

class WebhookServer {
 public:
  // Loads the certificate, checks the port is free, binds and starts serving
  // on a background thread. `backend` must outlive the server.
  // Errors: INVALID_ARGUMENT for a malformed address or unusable certificate
  // or key (naming the file); FAILED_PRECONDITION "webhook address ...: port
  // in use" when another socket holds the port (checked before binding, since
  // httplib binds with SO_REUSEPORT like gRPC); UNAVAILABLE when listening
  // fails otherwise. Sets SIGPIPE to ignored (a peer closing a TLS connection
  // mid-write must not kill the process).
  static absl::StatusOr<std::unique_ptr<WebhookServer>> Start(const WebhookServerOptions& options,
                                                              AdmissionBackend* backend);
  ~WebhookServer();  // Stop()s
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  // Stops accepting, finishes in-flight requests, joins. Idempotent.
  void Stop();

  // The port actually listened on.
  int port() const { return port_; }
  // "host:port" with the actual port.
  std::string address() const;
  // Certificate reloads so far (for logs and tests).
  int64_t cert_reloads() const;

 private:
  WebhookServer(std::string host, AdmissionHandler handler);

  std::string host_;
  int port_ = 0;
  AdmissionHandler handler_;
  std::unique_ptr<tls::CertReloader> certs_;
  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
};

}  // namespace greenlight::webhook
