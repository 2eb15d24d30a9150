// /metrics over plain HTTP (prometheus-cpp's Exposer) or HTTPS (cpp-httplib
// with common/tls), each with an explicit port check (see metrics_server.h).
#include "services/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>

#include <algorithm>
#include <csignal>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/tls/https_server.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace greenlight::metrics {
namespace {

constexpr char kExample[] = "127.0.0.1:9464, [::1]:9464 or :9464";
// What prometheus-cpp's Exposer answers with: the text format 0.0.4.
constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// civetweb's listening_ports syntax: "port" alone for all interfaces.
std::string CivetwebPorts(const ListenAddress& a) {
  if (a.ipv6) return absl::StrCat("[", a.host, "]:", a.port);
  return a.bind_ip == "0.0.0.0" ? absl::StrCat(a.port) : absl::StrCat(a.bind_ip, ":", a.port);
}

bool IsLoopback(const ListenAddress& a) {
  if (a.ipv6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&a.addr);
    return IN6_IS_ADDR_LOOPBACK(&sa->sin6_addr);
  }
  const auto* sa = reinterpret_cast<const sockaddr_in*>(&a.addr);
  return (ntohl(sa->sin_addr.s_addr) >> 24) == 127;
}

}  // namespace

absl::StatusOr<MetricsServerOptions> MetricsServerOptionsFromConfig(
    const Config& config, absl::Duration cert_check_interval) {
  MetricsServerOptions o;
  o.address = config.metrics_address;
  o.cert_check_interval = cert_check_interval;
  if (!config.metrics_tls) return o;
  if (config.tls.cert_file.empty() || config.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "server.metrics_tls: needs tls.cert_file and tls.key_file (the certificate /metrics "
        "serves)");
  }
  o.tls = {.cert_file = config.tls.cert_file,
           .key_file = config.tls.key_file,
           .client_ca_file = config.tls.client_ca_file};
  return o;
}

MetricsServer::MetricsServer(std::string host, bool loopback_only,
                             std::shared_ptr<prometheus::Registry> registry)
    : host_(std::move(host)), loopback_only_(loopback_only), registry_(std::move(registry)) {}

MetricsServer::~MetricsServer() {
  if (https_ != nullptr) https_->stop();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry) {
  MetricsServerOptions o;
  o.address = address;
  return Start(o, std::move(registry));
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const MetricsServerOptions& options, std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) return absl::InvalidArgumentError("metrics registry is null");
  const std::string& address = options.address;
  absl::StatusOr<ListenAddress> parsed = ParseListenAddress("metrics address", address, kExample);
  if (!parsed.ok()) return parsed.status();
  std::unique_ptr<MetricsServer> s(
      new MetricsServer(parsed->ipv6 ? absl::StrCat("[", parsed->host, "]") : parsed->host,
                        IsLoopback(*parsed), std::move(registry)));
  if (options.https()) {
    // Certificate errors first: they name the file to fix.
    auto certs = tls::CertReloader::Create("metrics", options.tls, options.cert_check_interval);
    if (!certs.ok()) return certs.status();
    s->certs_ = *std::move(certs);
  }
  if (absl::Status free =
          CheckListenPortFree("metrics address", address, *parsed, "--metrics_address");
      !free.ok())
    return free;
  if (options.https()) {
    if (absl::Status st = s->StartHttps(options, *parsed); !st.ok()) return st;
    return s;
  }

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(CivetwebPorts(*parsed), /*num_threads=*/2);
  } catch (const std::exception& e) {
    // Lost a race for the port after the check, or civetweb refused the address.
    return absl::UnavailableError(
        absl::StrCat("metrics address ", address, ": cannot listen (port in use?): ", e.what()));
  }
  exposer->RegisterCollectable(s->registry_);
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("metrics address ", address, ": exposer reports no listening port"));
  }
  s->port_ = ports.front();
  s->exposer_ = std::move(exposer);
  return s;
}

absl::Status MetricsServer::StartHttps(const MetricsServerOptions& options,
                                       const ListenAddress& a) {
  if (options.threads < 1) return absl::InvalidArgumentError("metrics threads must be >= 1");
  // A scraper closing its connection mid-write must not kill the process.
  std::signal(SIGPIPE, SIG_IGN);
  https_ = tls::NewHttpsServer(certs_.get());
  httplib::SSLServer& svr = *https_;
  if (!svr.is_valid()) return absl::UnavailableError("metrics: cannot create the TLS context");
  const size_t threads = static_cast<size_t>(options.threads);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr.set_payload_max_length(64 << 10);  // scrapes are GETs
  const time_t io_sec = std::max<time_t>(1, absl::ToInt64Seconds(options.io_timeout));
  svr.set_read_timeout(io_sec, 0);
  svr.set_write_timeout(io_sec, 0);
  // The same exposition as the Exposer's; httplib gzips it (or brotli) when
  // the scraper sends Accept-Encoding, as Prometheus does.
  prometheus::Registry* registry = registry_.get();
  svr.Get("/metrics", [registry](const httplib::Request&, httplib::Response& res) {
    res.set_content(prometheus::TextSerializer().Serialize(registry->Collect()), kContentType);
  });
  absl::StatusOr<int> port =
      tls::ServeInBackground(svr, a, "metrics address", options.address, &thread_);
  if (!port.ok()) return port.status();
  port_ = *port;
  return absl::OkStatus();
}

std::string MetricsServer::address() const { return absl::StrCat(host_, ":", port_); }

std::string MetricsServer::url() const {
  return absl::StrCat(https() ? "https://" : "http://", address(), "/metrics");
}

}  // namespace greenlight::metrics
