// /metrics exposer startup with an explicit port check (see metrics_server.h).
#include "services/metrics/metrics_server.h"


#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/net.h"
#include "prometheus/exposer.h"

namespace greenlight::metrics {
namespace {

// civetweb's listening_ports syntax: "port" alone for all interfaces.
std::string CivetwebPorts(const ListenAddress& a) {
  if (a.ipv6) return absl::StrCat("[", a.host, "]:", a.port);
  return a.bind_ip == "0.0.0.0" ? absl::StrCat(a.port) : absl::StrCat(a.bind_ip, ":", a.port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) return absl::InvalidArgumentError("metrics registry is null");
  absl::StatusOr<ListenAddress> parsed =
      ParseListenAddress("metrics address", address, "127.0.0.1:9464, [::1]:9464 or :9464");
  if (!parsed.ok()) return parsed.status();
  if (absl::Status free =
          CheckListenPortFree("metrics address", address, *parsed, "--metrics_address");
      !free.ok())
    return free;

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(CivetwebPorts(*parsed), /*num_threads=*/2);
  } catch (const std::exception& e) {
    // Lost a race for the port after the check, or civetweb refused the address.
    return absl::UnavailableError(
        absl::StrCat("metrics address ", address, ": cannot listen (port in use?): ", e.what()));
  }
  exposer->RegisterCollectable(registry);
  const std::vector<int> ports = exposer->GetListeningPorts();
  if (ports.empty()) {
    return absl::UnavailableError(
        absl::StrCat("metrics address ", address, ": exposer reports no listening port"));
  }
  return std::unique_ptr<MetricsServer>(
      new MetricsServer(parsed->ipv6 ? absl::StrCat("[", parsed->host, "]") : parsed->host,
                        ports.front(), std::move(registry), std::move(exposer)));
}

MetricsServer::MetricsServer(std::string host, int port,
                             std::shared_ptr<prometheus::Registry> registry,
                             std::unique_ptr<prometheus::Exposer> exposer)
    : host_(std::move(host)),
      port_(port),
      registry_(std::move(registry)),
      exposer_(std::move(exposer)) {}

MetricsServer::~MetricsServer() = default;

std::string MetricsServer::address() const { return absl::StrCat(host_, ":", port_); }

}  // namespace greenlight::metrics
