// HTTPS transport of the admission webhook: cpp-httplib's SSLServer with the
// certificate served by tls::CertReloader on every handshake.
#include "services/webhook/webhook_server.h"

#include <httplib.h>

#include <algorithm>
#include <csignal>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/net.h"
#include "common/tls/cert_reloader.h"
#include "common/tls/https_server.h"

namespace greenlight::webhook {
namespace {

void Reply(const HttpReply& r, httplib::Response& res) {
  res.status = r.status;
  res.set_content(r.body, r.content_type.c_str());
}

}  // namespace

WebhookServerOptions WebhookServerOptionsFromConfig(const Config& config) {
  WebhookServerOptions o;
  o.address = config.webhook_address;
  o.cert_file = config.tls.cert_file;
  o.key_file = config.tls.key_file;
  o.labels = WebhookLabelsFromConfig(config);
  // An AdmissionReview holds up to two objects; keep the gRPC limit as a floor.
  o.max_body_bytes =
      std::max<size_t>(o.max_body_bytes, static_cast<size_t>(config.max_message_bytes));
  return o;
}

WebhookServer::WebhookServer(std::string host, AdmissionHandler handler)
    : host_(std::move(host)), handler_(std::move(handler)) {}

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::Start(
    const WebhookServerOptions& options, AdmissionBackend* backend) {
  if (backend == nullptr) return absl::InvalidArgumentError("webhook backend is null");
  if (options.threads < 1) return absl::InvalidArgumentError("webhook threads must be >= 1");
  absl::StatusOr<ListenAddress> parsed =
      ParseListenAddress("webhook address", options.address, "0.0.0.0:8443, [::]:8443 or :8443");
  if (!parsed.ok()) return parsed.status();
  auto certs = tls::CertReloader::Create(
      "webhook", {.cert_file = options.cert_file, .key_file = options.key_file},
      options.cert_check_interval);
  if (!certs.ok()) return certs.status();
  if (absl::Status free = CheckListenPortFree("webhook address", options.address, *parsed,
                                              "server.webhook_address");
      !free.ok())
    return free;

  std::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<WebhookServer> s(
      new WebhookServer(parsed->ipv6 ? absl::StrCat("[", parsed->host, "]") : parsed->host,
                        AdmissionHandler(backend, options.labels)));
  s->certs_ = *std::move(certs);
  s->server_ = tls::NewHttpsServer(s->certs_.get());
  httplib::SSLServer& svr = *s->server_;
  if (!svr.is_valid()) return absl::UnavailableError("webhook: cannot create the TLS context");
  const int threads = options.threads;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  svr.set_payload_max_length(options.max_body_bytes);
  const time_t io_sec = std::max<time_t>(1, absl::ToInt64Seconds(options.io_timeout));
  svr.set_read_timeout(io_sec, 0);
  svr.set_write_timeout(io_sec, 0);
  WebhookServer* self = s.get();
  svr.Post("/validate", [self](const httplib::Request& req, httplib::Response& res) {
    Reply(self->handler_.Handle(Endpoint::kValidate, req.body), res);
  });
  svr.Post("/mutate", [self](const httplib::Request& req, httplib::Response& res) {
    Reply(self->handler_.Handle(Endpoint::kMutate, req.body), res);
  });
  svr.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });

  absl::StatusOr<int> port =
      tls::ServeInBackground(svr, *parsed, "webhook address", options.address, &s->thread_);
  if (!port.ok()) return port.status();
  s->port_ = *port;
  GL_LOG_INFO("webhook listening", {F("address", s->address()), F("cert_file", options.cert_file)});
  return s;
}

WebhookServer::~WebhookServer() { Stop(); }

void WebhookServer::Stop() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string WebhookServer::address() const { return absl::StrCat(host_, ":", port_); }

int64_t WebhookServer::cert_reloads() const { return certs_ != nullptr ? certs_->reloads() : 0; }

}  // namespace greenlight::webhook
