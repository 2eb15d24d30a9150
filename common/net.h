// Loopback/host:port helpers. gRPC binds with SO_REUSEPORT, so a second
// server on a taken port would silently share it: we check ports ourselves.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace greenlight {

struct HostPort {
  std::string host;
  int port = 0;
};

// Parses "host:port" or "[v6]:port"; port 0..65535.
absl::StatusOr<HostPort> ParseHostPort(const std::string& address);
// FAILED_PRECONDITION "address 127.0.0.1:9464: port in use" if a listener
// cannot bind it exclusively right now. Port 0 is always OK.
absl::Status CheckPortFree(const std::string& address);
// A currently free TCP port on 127.0.0.1 (for tests and port-0 configs).
absl::StatusOr<int> PickFreePort();

}  // namespace greenlight
