// cpp-httplib HTTPS servers for our listeners (admission webhook, /metrics):
// the TLS settings they share and the bind-then-serve start that turns a
// failure into an absl::Status.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/net.h"

namespace httplib {
class Server;
class SSLServer;
}  // namespace httplib

namespace greenlight::tls {

class CertReloader;

// An HTTPS server (TLS 1.2 or newer, no TLS compression or renegotiation)
// whose certificate, and client CA with mutual TLS, come from `certs` on every
// handshake. `certs` must outlive the server. Check is_valid() before use.
std::unique_ptr<httplib::SSLServer> NewHttpsServer(CertReloader* certs);

// Binds `server` to `a` (port 0 = a free port), runs its accept loop on
// `*thread` and waits until it accepts. Returns the port listened on.
// UNAVAILABLE "<what> <address>: cannot bind ..." when binding fails (check
// the port with CheckListenPortFree first: httplib binds with SO_REUSEPORT).
// On error nothing runs and `*thread` is not started.
absl::StatusOr<int> ServeInBackground(httplib::Server& server, const ListenAddress& a,
                                      absl::string_view what, const std::string& address,
                                      std::thread* thread);

}  // namespace greenlight::tls
