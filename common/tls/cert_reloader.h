// Serves a TLS certificate and key from files to every handshake, and
// optionally verifies client certificates against a CA file (mutual TLS),
// reloading all of them when a file changes, so that a rotated Secret
// (cert-manager, kubelet's atomic symlink swap) takes effect without a
// restart. Works on any OpenSSL SSL_CTX through its certificate callback;
// open connections keep what they were established with. Used by the
// admission webhook and the HTTPS /metrics endpoint.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX
struct ssl_st;      // OpenSSL's SSL

namespace greenlight::tls {

struct CertFiles {
  std::string cert_file;       // PEM certificate chain (leaf first)
  std::string key_file;        // PEM private key of the leaf
  std::string client_ca_file;  // PEM CA(s); set = clients must present a certificate they signed
};

// Loads the files once and checks them (a PEM certificate, a private key that
// matches it, a client CA), for listeners that load them their own way (gRPC's
// file watcher), so that a typo is a clear error at start. Errors name the
// file by `what`.cert_file, `what`.key_file, `what`.client_ca_file.
absl::Status CheckCertFiles(absl::string_view what, const CertFiles& files);

class CertReloader {
 public:
  // Loads the files now. `what` names the listener in errors and logs
  // ("webhook", "metrics"). INVALID_ARGUMENT naming the file when a file is
  // missing, unreadable or not PEM, or the key does not match the
  // certificate. The files are checked again (stat) at most once per
  // `check_interval` on handshakes; zero = every handshake.
  static absl::StatusOr<std::unique_ptr<CertReloader>> Create(std::string what, CertFiles files,
                                                              absl::Duration check_interval);
  ~CertReloader();
  CertReloader(const CertReloader&) = delete;
  CertReloader& operator=(const CertReloader&) = delete;

  // Makes every handshake on `ctx` use the current certificate and, with a
  // client CA, require a client certificate that verifies against the
  // current CA (sent to clients as the acceptable CA names). The reloader
  // must outlive `ctx`.
  void Attach(ssl_ctx_st* ctx);

  // Checks the files now (regardless of the interval); true when a new set
  // was loaded. A half-written set (key not matching, CA file empty) keeps
  // the previous one and is retried on the next check.
  bool CheckNow();

  // Successful reloads since Create (not counting the first load).
  int64_t reloads() const;
  bool mutual() const { return !files_.client_ca_file.empty(); }
  const CertFiles& files() const { return files_; }

  struct Loaded;  // certificate, chain, key, client CA and the files' stamps

 private:
  CertReloader(std::string what, CertFiles files, absl::Duration check_interval);
  std::shared_ptr<const Loaded> Current();
  bool CheckLocked();
  static int OnHandshake(ssl_st* ssl, void* arg);

  const std::string what_;
  const CertFiles files_;
  const absl::Duration check_interval_;
  mutable std::mutex mu_;
  std::shared_ptr<const Loaded> current_;
  absl::Time last_check_ = absl::InfinitePast();
  std::string last_failure_;  // logged once per distinct failure
  int64_t reloads_ = 0;
};

}  // namespace greenlight::tls
