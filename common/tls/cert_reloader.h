// Serves a TLS certificate and key from files to every handshake and reloads
// them when either file changes, so a rotated Secret (cert-manager, kubelet's
// atomic symlink swap) takes effect without a restart. Works on any OpenSSL
// SSL_CTX through its certificate callback; open connections keep the
// certificate they were established with.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct ssl_ctx_st;  // OpenSSL's SSL_CTX
struct ssl_st;      // OpenSSL's SSL

namespace greenlight::webhook {

class CertReloader {
 public:
  // Loads the PEM certificate chain and private key now. INVALID_ARGUMENT
  // naming the file when a file is missing, unreadable, not PEM, or the key
  // does not match the certificate. The files are checked again (stat) at
  // most once per `check_interval` on handshakes; zero = every handshake.
  static absl::StatusOr<std::unique_ptr<CertReloader>> Create(std::string cert_file,
                                                              std::string key_file,
                                                              absl::Duration check_interval);
  ~CertReloader();
  CertReloader(const CertReloader&) = delete;
  CertReloader& operator=(const CertReloader&) = delete;

  // Makes every handshake on `ctx` use the current certificate. The reloader
  // must outlive `ctx`.
  void Attach(ssl_ctx_st* ctx);

  // Checks the files now (regardless of the interval); true when a new pair
  // was loaded. A half-written pair (key not matching) keeps the old one and
  // is retried on the next check.
  bool CheckNow();

  // Successful reloads since Create (not counting the first load).
  int64_t reloads() const;

  struct Loaded;  // certificate, chain, key and the files' stamps

 private:
  CertReloader(std::string cert_file, std::string key_file, absl::Duration check_interval);
  std::shared_ptr<const Loaded> Current();
  bool CheckLocked();
  static int OnHandshake(ssl_st* ssl, void* arg);

  const std::string cert_file_;
  const std::string key_file_;
  const absl::Duration check_interval_;
  mutable std::mutex mu_;
  std::shared_ptr<const Loaded> current_;
  absl::Time last_check_ = absl::InfinitePast();
  std::string last_failure_;  // logged once per distinct failure
  int64_t reloads_ = 0;
};

}  // namespace greenlight::webhook
