#include "common/net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace greenlight {

absl::StatusOr<HostPort> ParseHostPort(const std::string& address) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0)
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "': expected host:port"));
  HostPort hp;
  hp.host = address.substr(0, colon);
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']')
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  if (!absl::SimpleAtoi(address.substr(colon + 1), &hp.port) || hp.port < 0 || hp.port > 65535)
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "': port must be 0..65535"));
  return hp;
}

absl::Status CheckPortFree(const std::string& address) {
  auto hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status();
  if (hp->port == 0) return absl::OkStatus();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  std::string host = hp->host == "0.0.0.0" || hp->host == "*" ? "" : hp->host;
  int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), std::to_string(hp->port).c_str(),
                       &hints, &res);
  if (rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("address '", address, "': ", gai_strerror(rc)));
  }
  absl::Status st = absl::OkStatus();
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
      int err = errno;
      st = absl::FailedPreconditionError(absl::StrCat(
          "address ", address, ": ", err == EADDRINUSE ? "port in use" : std::strerror(err)));
    }
    close(fd);
    if (!st.ok()) break;
  }
  freeaddrinfo(res);
  return st;
}

absl::StatusOr<ListenAddress> ParseListenAddress(absl::string_view what, const std::string& address,
                                                 absl::string_view example) {
  const auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " \"", address, "\": ", why, " (want host:port, e.g. ", example, ")"));
  };
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return invalid("no port");
  const std::string host = address.substr(0, colon);
  const std::string port_text = address.substr(colon + 1);
  int port = 0;
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos ||
      !absl::SimpleAtoi(port_text, &port) || port < 0 || port > 65535) {
    return invalid("port must be 0..65535");
  }
  ListenAddress out;
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

absl::Status CheckListenPortFree(absl::string_view what, const std::string& address,
                                 const ListenAddress& a, absl::string_view setting) {
  if (a.port == 0) return absl::OkStatus();
  const int fd = socket(a.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat(what, " ", address, ": socket: ", std::strerror(errno)));
  }
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const int rc = bind(fd, reinterpret_cast<const sockaddr*>(&a.addr), a.addr_len);
  const int err = errno;
  close(fd);
  if (rc == 0) return absl::OkStatus();
  switch (err) {
    case EADDRINUSE:
      return absl::FailedPreconditionError(absl::StrCat(what, " ", address,
                                                        ": port in use (choose another ", setting,
                                                        " or stop the process holding it)"));
    case EACCES:
      return absl::FailedPreconditionError(absl::StrCat(
          what, " ", address, ": permission denied (ports below 1024 need privileges)"));
    case EADDRNOTAVAIL:
      return absl::InvalidArgumentError(
          absl::StrCat(what, " ", address, ": not an address of this host"));
    default:
      return absl::UnavailableError(
          absl::StrCat(what, " ", address, ": bind: ", std::strerror(err)));
  }
}

absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return absl::InternalError("bind failed");
  }
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

}  // namespace greenlight
