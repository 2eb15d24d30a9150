// HTTPS transport of the admission webhook: cpp-httplib's SSLServer with the
// certificate served by CertReloader on every handshake.
#include "services/webhook/webhook_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "services/webhook/cert_reloader.h"

namespace greenlight::webhook {
namespace {

struct ParsedAddress {
  std::string host;     // as given, without brackets ("" = any)
  std::string bind_ip;  // what the listener binds
  bool ipv6 = false;
  int port = 0;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
};

absl::StatusOr<ParsedAddress> ParseAddress(const std::string& address) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook address \"", address, "\": ", why,
                     " (want host:port, e.g. 0.0.0.0:8443, [::]:8443 or :8443)"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return invalid("no port");
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  int port = 0;
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return invalid("port must be 0..65535");
  }
  ParsedAddress out;
  out.port = port;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    out.ipv6 = true;
    out.host = host.substr(1, host.size() - 2);
    out.bind_ip = out.host;
    auto* sa = reinterpret_cast<sockaddr_in6*>(&out.addr);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, out.host.c_str(), &sa->sin6_addr) != 1) {
      return invalid("not an IPv6 address");
    }
    out.addr_len = sizeof(sockaddr_in6);
    return out;
  }
  out.host = host;
  out.bind_ip = host.empty() ? "0.0.0.0" : host == "localhost" ? "127.0.0.1" : host;
  auto* sa = reinterpret_cast<sockaddr_in*>(&out.addr);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, out.bind_ip.c_str(), &sa->sin_addr) != 1) {
    return invalid("host must be an IP address or localhost");
  }
  out.addr_len = sizeof(sockaddr_in);
  return out;
}

// Binds and closes a socket without SO_REUSEPORT, so a port held by anyone
// (also a gRPC server, which binds with SO_REUSEPORT like httplib does) is
// reported instead of silently shared.
absl::Status CheckPortFree(const std::string& address, const ParsedAddress& a) {
  if (a.port == 0) return absl::OkStatus();
  const int fd = socket(a.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("webhook address ", address, ": socket: ", std::strerror(errno)));
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.addr_len);
  const int err = errno;
  close(fd);
  if (rc == 0) return absl::OkStatus();
  switch (err) {
    case EADDRINUSE:
      return absl::FailedPreconditionError(
          absl::StrCat("webhook address ", address,
                       ": port in use (choose another server.webhook_address or stop the "
                       "process holding it)"));
    case EACCES:
      return absl::FailedPreconditionError(absl::StrCat(
          "webhook address ", address, ": permission denied (ports below 1024 need privileges)"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(
          absl::StrCat("webhook address ", address, ": not an address of this host"));
    default:
      return absl::UnavailableError(
          absl::StrCat("webhook address ", address, ": bind: ", std::strerror(err)));
  }
}

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
  absl::StatusOr<ParsedAddress> parsed = ParseAddress(options.address);
  if (!parsed.ok()) return parsed.status();
  auto certs =
      CertReloader::Create(options.cert_file, options.key_file, options.cert_check_interval);
  if (!certs.ok()) return certs.status();
  if (absl::Status free = CheckPortFree(options.address, *parsed); !free.ok()) return free;

  std::signal(SIGPIPE, SIG_IGN);
  std::unique_ptr<WebhookServer> s(
      new WebhookServer(parsed->ipv6 ? absl::StrCat("[", parsed->host, "]") : parsed->host,
                        AdmissionHandler(backend, options.labels)));
  s->certs_ = *std::move(certs);
  CertReloader* reloader = s->certs_.get();
  s->server_ = std::make_unique<httplib::SSLServer>([reloader](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    reloader->Attach(&ctx);
    return true;
  });
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

  if (parsed->port == 0) {
    s->port_ = svr.bind_to_any_port(parsed->bind_ip);
    if (s->port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("webhook address ", options.address, ": cannot bind"));
    }
  } else {
    if (!svr.bind_to_port(parsed->bind_ip, parsed->port)) {
      return absl::UnavailableError(
          absl::StrCat("webhook address ", options.address, ": cannot bind (port in use?)"));
    }
    s->port_ = parsed->port;
  }
  s->thread_ = std::thread([&svr] { svr.listen_after_bind(); });
  // stop() is a no-op until the accept loop runs: wait for it.
  for (int i = 0; i < 5000 && !svr.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!svr.is_running()) {
    s->Stop();
    return absl::UnavailableError(
        absl::StrCat("webhook address ", options.address, ": server did not start listening"));
  }
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
