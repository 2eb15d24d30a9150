// /metrics exposer startup with an explicit port check (see metrics_server.h).
#include "services/metrics/metrics_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"

namespace greenlight::metrics {
namespace {

struct ParsedAddress {
  std::string host;  // as given, without brackets ("" = any)
  bool ipv6 = false;
  int port = 0;
  sockaddr_storage addr{};  // host and port, ready for bind()
  socklen_t addr_len = 0;
  std::string civetweb;  // civetweb's listening_ports syntax
};

absl::StatusOr<ParsedAddress> ParseAddress(const std::string& address) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\": ", why,
                     " (want host:port, e.g. 127.0.0.1:9464, [::1]:9464 or :9464)"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return invalid("no port");
  std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  int port = 0;
  if (port_text.empty() || !absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535 ||
      port_text.find_first_not_of("0123456789") != std::string::npos) {
    return invalid("port must be 0..65535");
  }
  ParsedAddress out;
  out.port = port;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    out.ipv6 = true;
    out.host = host.substr(1, host.size() - 2);
    auto* sa = reinterpret_cast<sockaddr_in6*>(&out.addr);
    sa->sin6_family = AF_INET6;
    sa->sin6_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET6, out.host.c_str(), &sa->sin6_addr) != 1) {
      return invalid("not an IPv6 address");
    }
    out.addr_len = sizeof(sockaddr_in6);
    out.civetweb = absl::StrCat("[", out.host, "]:", port);
    return out;
  }
  out.host = host;
  std::string ip = host;
  if (ip.empty()) ip = "0.0.0.0";
  if (ip == "localhost") ip = "127.0.0.1";
  auto* sa = reinterpret_cast<sockaddr_in*>(&out.addr);
  sa->sin_family = AF_INET;
  sa->sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip.c_str(), &sa->sin_addr) != 1) {
    return invalid("host must be an IP address or localhost");
  }
  out.addr_len = sizeof(sockaddr_in);
  // civetweb takes "port" alone for all interfaces.
  out.civetweb = ip == "0.0.0.0" ? absl::StrCat(port) : absl::StrCat(ip, ":", port);
  return out;
}

// Binds and closes a socket the way civetweb will bind (SO_REUSEADDR, no
// SO_REUSEPORT), so that a port held by anyone, including a gRPC server bound
// with SO_REUSEPORT, is reported before the Exposer tries and throws.
absl::Status CheckPortFree(const std::string& address, const ParsedAddress& a) {
  if (a.port == 0) return absl::OkStatus();
  const int fd = socket(a.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("metrics address ", address, ": socket: ", std::strerror(errno)));
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
          absl::StrCat("metrics address ", address,
                       ": port in use (choose another --metrics_address or stop the "
                       "process holding it)"));
    case EACCES:
      return absl::FailedPreconditionError(absl::StrCat(
          "metrics address ", address, ": permission denied (ports below 1024 need privileges)"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(
          absl::StrCat("metrics address ", address, ": not an address of this host"));
    default:
      return absl::UnavailableError(
          absl::StrCat("metrics address ", address, ": bind: ", std::strerror(err)));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry) {
  if (registry == nullptr) return absl::InvalidArgumentError("metrics registry is null");
  absl::StatusOr<ParsedAddress> parsed = ParseAddress(address);
  if (!parsed.ok()) return parsed.status();
  if (absl::Status free = CheckPortFree(address, *parsed); !free.ok()) return free;

  std::unique_ptr<prometheus::Exposer> exposer;
  try {
    exposer = std::make_unique<prometheus::Exposer>(parsed->civetweb, /*num_threads=*/2);
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
