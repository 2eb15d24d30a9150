// The HTTP endpoint serving a registry on /metrics (prometheus-cpp's Exposer),
// started so that a bad or taken address is an absl::Status, never an abort.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace greenlight::metrics {

class MetricsServer {
 public:
  // Serves `registry` on http://address/metrics. `address` is "host:port":
  // host is an IPv4 literal, "localhost" (= 127.0.0.1), "0.0.0.0" or empty
  // (all interfaces), or a bracketed IPv6 literal ("[::1]:9464"); port 0 picks
  // a free port (see port()).
  // Errors: INVALID_ARGUMENT for a malformed address; FAILED_PRECONDITION
  // "metrics address 127.0.0.1:9464: port in use" when another socket holds
  // the port (checked before binding, because prometheus-cpp's Exposer
  // throws on a taken port and gRPC's SO_REUSEPORT sockets would otherwise go
  // unnoticed); UNAVAILABLE for any other failure to listen.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);

  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // The port actually listened on (the chosen one when started with port 0).
  int port() const { return port_; }
  // "host:port" with the actual port, e.g. "127.0.0.1:40123".
  std::string address() const;

 private:
  MetricsServer(std::string host, int port, std::shared_ptr<prometheus::Registry> registry,
                std::unique_ptr<prometheus::Exposer> exposer);

  std::string host_;  // as given ("" = all interfaces)
  int port_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
};

}  // namespace greenlight::metrics
