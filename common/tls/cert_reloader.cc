#include "services/webhook/cert_reloader.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace greenlight::webhook {
namespace {

// Identity of a file's content as far as stat() tells: a rename (kubelet's
// symlink swap) changes the inode, an in-place write the size or mtime.
struct FileStamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const FileStamp&) const = default;
};

absl::StatusOr<FileStamp> Stamp(const std::string& path, absl::string_view what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("webhook ", what, " ", path, ": cannot stat"));
  }
  return FileStamp{st.st_dev, st.st_ino, st.st_size,
                   static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec};
}

std::string OpenSslError() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

}  // namespace

struct CertReloader::Loaded {
  X509* cert = nullptr;
  STACK_OF(X509) * chain = nullptr;
  EVP_PKEY* key = nullptr;
  FileStamp cert_stamp;
  FileStamp key_stamp;
  ~Loaded() {
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
  }
};

namespace {

absl::StatusOr<std::shared_ptr<CertReloader::Loaded>> Load(const std::string& cert_file,
                                                           const std::string& key_file) {
  auto out = std::make_shared<CertReloader::Loaded>();
  // Stamps first: a change during the read is seen by the next check.
  auto cs = Stamp(cert_file, "cert_file");
  if (!cs.ok()) return cs.status();
  auto ks = Stamp(key_file, "key_file");
  if (!ks.ok()) return ks.status();
  out->cert_stamp = *cs;
  out->key_stamp = *ks;

  BIO* bio = BIO_new_file(cert_file.c_str(), "r");
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook cert_file ", cert_file, ": cannot open: ", OpenSslError()));
  }
  out->cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  out->chain = sk_X509_new_null();
  if (out->cert != nullptr) {
    while (X509* extra = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
      sk_X509_push(out->chain, extra);
    }
  }
  BIO_free(bio);
  ERR_clear_error();  // the chain loop ends on a "no start line" error
  if (out->cert == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook cert_file ", cert_file, ": no PEM certificate"));
  }
  bio = BIO_new_file(key_file.c_str(), "r");
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook key_file ", key_file, ": cannot open: ", OpenSslError()));
  }
  out->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (out->key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("webhook key_file ", key_file, ": no PEM private key: ", OpenSslError()));
  }
  if (X509_check_private_key(out->cert, out->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("webhook key_file ", key_file, " does not match cert_file ", cert_file));
  }
  return out;
}

}  // namespace

CertReloader::CertReloader(std::string cert_file, std::string key_file,
                           absl::Duration check_interval)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      check_interval_(check_interval) {}

CertReloader::~CertReloader() = default;

absl::StatusOr<std::unique_ptr<CertReloader>> CertReloader::Create(std::string cert_file,
                                                                   std::string key_file,
                                                                   absl::Duration check_interval) {
  if (cert_file.empty() || key_file.empty()) {
    return absl::InvalidArgumentError(
        "webhook needs TLS: tls.cert_file and tls.key_file are required");
  }
  auto loaded = Load(cert_file, key_file);
  if (!loaded.ok()) return loaded.status();
  std::unique_ptr<CertReloader> r(
      new CertReloader(std::move(cert_file), std::move(key_file), check_interval));
  r->current_ = *std::move(loaded);
  r->last_check_ = absl::Now();
  return r;
}

void CertReloader::Attach(ssl_ctx_st* ctx) { SSL_CTX_set_cert_cb(ctx, &OnHandshake, this); }

int CertReloader::OnHandshake(ssl_st* ssl, void* arg) {
  std::shared_ptr<const Loaded> current = static_cast<CertReloader*>(arg)->Current();
  // Takes its own references: the pair may be replaced while this
  // connection lives.
  return SSL_use_cert_and_key(ssl, current->cert, current->key, current->chain, 1) == 1 ? 1 : 0;
}

std::shared_ptr<const CertReloader::Loaded> CertReloader::Current() {
  std::lock_guard<std::mutex> lock(mu_);
  absl::Time now = absl::Now();
  if (now - last_check_ >= check_interval_) {
    last_check_ = now;
    CheckLocked();
  }
  return current_;
}

bool CertReloader::CheckNow() {
  std::lock_guard<std::mutex> lock(mu_);
  last_check_ = absl::Now();
  return CheckLocked();
}

bool CertReloader::CheckLocked() {
  auto cs = Stamp(cert_file_, "cert_file");
  auto ks = Stamp(key_file_, "key_file");
  if (cs.ok() && ks.ok() && *cs == current_->cert_stamp && *ks == current_->key_stamp) {
    return false;
  }
  auto loaded = Load(cert_file_, key_file_);
  if (!loaded.ok()) {
    std::string failure(loaded.status().message());
    if (failure != last_failure_) {
      GL_LOG_WARN("webhook: certificate reload failed, keeping the previous one",
                  {F("error", failure)});
      last_failure_ = failure;
    }
    return false;
  }
  last_failure_.clear();
  current_ = *std::move(loaded);
  ++reloads_;
  GL_LOG_INFO("webhook: certificate reloaded", {F("cert_file", cert_file_)});
  return true;
}

int64_t CertReloader::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

}  // namespace greenlight::webhook
