// Loopback/host:port helpers. gRPC binds with SO_REUSEPORT, so a second
// server on a taken port would silently share it: we check ports ourselves.
#pragma once

#include <sys/socket.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

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
// A numeric listen address, ready for bind(): "127.0.0.1:9464", "[::1]:9464",
// ":9464" (any IPv4 interface) or "localhost:9464".
struct ListenAddress {
  std::string host;     // as given, without brackets ("" = any)
  std::string bind_ip;  // the numeric IP to bind ("0.0.0.0" for any)
  bool ipv6 = false;
  int port = 0;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
};
// `what` names the setting in errors ("metrics address"), `example` lists
// valid forms ("127.0.0.1:9464, [::1]:9464 or :9464").
absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view what, const std::string& address,
                                                 absl::string_view example);
// Binds and closes a socket without SO_REUSEPORT (as civetweb and httplib
// bind), so a port held by anyone, also a gRPC server bound with
// SO_REUSEPORT, is reported instead of silently shared or thrown on.
// `setting` says how to choose another ("--metrics_address").
absl::Status CheckListenPortFree(absl::string_view what, const std::string& address,
                                 const ListenAddress& a, absl::string_view setting);
// A currently free TCP port on 127.0.0.1 (for tests and port-0 configs).
absl::StatusOr<int> PickFreePort();

}  // namespace greenlight
