// See https_server.h.
#include "common/tls/https_server.h"

#include <httplib.h>
#include <openssl/ssl.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/tls/cert_reloader.h"

namespace greenlight::tls {

std::unique_ptr<httplib::SSLServer> NewHttpsServer(CertReloader* certs) {
  return std::make_unique<httplib::SSLServer>([certs](SSL_CTX& ctx) {
    SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    certs->Attach(&ctx);
    return true;
  });
}

absl::StatusOr<int> ServeInBackground(httplib::Server& server, const ListenAddress& a,
                                      absl::string_view what, const std::string& address,
                                      std::thread* thread) {
  int port = a.port;
  if (a.port == 0) {
    port = server.bind_to_any_port(a.bind_ip);
    if (port <= 0) return absl::UnavailableError(absl::StrCat(what, " ", address, ": cannot bind"));
  } else if (!server.bind_to_port(a.bind_ip, a.port)) {
    return absl::UnavailableError(absl::StrCat(what, " ", address, ": cannot bind (port in use?)"));
  }
  *thread = std::thread([&server] { server.listen_after_bind(); });
  // stop() is a no-op until the accept loop runs: wait for it.
  for (int i = 0; i < 5000 && !server.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!server.is_running()) {
    server.stop();
    thread->join();
    return absl::UnavailableError(
        absl::StrCat(what, " ", address, ": server did not start listening"));
  }
  return port;
}

}  // namespace greenlight::tls
