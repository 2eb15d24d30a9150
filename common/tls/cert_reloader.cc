// TLS files served through OpenSSL's certificate callback (see cert_reloader.h).
#include "common/tls/cert_reloader.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace greenlight::tls {
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

absl::StatusOr<FileStamp> Stamp(absl::string_view what, const std::string& path,
                                absl::string_view key) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, ".", key, " ", path, ": cannot stat"));
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
  // Client CA (mutual TLS only): the store that verifies client
  // certificates, and the subject names offered in CertificateRequest.
  X509_STORE* client_ca = nullptr;
  STACK_OF(X509_NAME) * client_ca_names = nullptr;
  FileStamp cert_stamp;
  FileStamp key_stamp;
  FileStamp client_ca_stamp;
  ~Loaded() {
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    EVP_PKEY_free(key);
    X509_STORE_free(client_ca);
    sk_X509_NAME_pop_free(client_ca_names, X509_NAME_free);
  }
};

namespace {

absl::Status LoadClientCa(absl::string_view what, const std::string& file,
                          CertReloader::Loaded* out) {
  BIO* bio = BIO_new_file(file.c_str(), "r");
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".client_ca_file ", file, ": cannot open: ", OpenSslError()));
  }
  out->client_ca = X509_STORE_new();
  out->client_ca_names = sk_X509_NAME_new_null();
  int count = 0;
  while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(out->client_ca, ca);  // takes its own reference
    sk_X509_NAME_push(out->client_ca_names, X509_NAME_dup(X509_get_subject_name(ca)));
    X509_free(ca);
    ++count;
  }
  BIO_free(bio);
  ERR_clear_error();  // the loop ends on a "no start line" error
  if (count == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".client_ca_file ", file, ": no PEM certificate"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<CertReloader::Loaded>> Load(absl::string_view what,
                                                           const CertFiles& files) {
  auto out = std::make_shared<CertReloader::Loaded>();
  // Stamps first: a change during the read is seen by the next check.
  auto cs = Stamp(what, files.cert_file, "cert_file");
  if (!cs.ok()) return cs.status();
  auto ks = Stamp(what, files.key_file, "key_file");
  if (!ks.ok()) return ks.status();
  out->cert_stamp = *cs;
  out->key_stamp = *ks;
  if (!files.client_ca_file.empty()) {
    auto as = Stamp(what, files.client_ca_file, "client_ca_file");
    if (!as.ok()) return as.status();
    out->client_ca_stamp = *as;
  }

  BIO* bio = BIO_new_file(files.cert_file.c_str(), "r");
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".cert_file ", files.cert_file, ": cannot open: ", OpenSslError()));
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
        absl::StrCat(what, ".cert_file ", files.cert_file, ": no PEM certificate"));
  }
  bio = BIO_new_file(files.key_file.c_str(), "r");
  if (bio == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".key_file ", files.key_file, ": cannot open: ", OpenSslError()));
  }
  out->key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (out->key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ".key_file ", files.key_file, ": no PEM private key: ", OpenSslError()));
  }
  if (X509_check_private_key(out->cert, out->key) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(what, ".key_file ", files.key_file,
                                                   " does not match ", what, ".cert_file ",
                                                   files.cert_file));
  }
  if (!files.client_ca_file.empty()) {
    if (absl::Status st = LoadClientCa(what, files.client_ca_file, out.get()); !st.ok()) return st;
  }
  return out;
}

}  // namespace

absl::Status CheckCertFiles(absl::string_view what, const CertFiles& files) {
  return Load(what, files).status();
}

CertReloader::CertReloader(std::string what, CertFiles files, absl::Duration check_interval)
    : what_(std::move(what)), files_(std::move(files)), check_interval_(check_interval) {}

CertReloader::~CertReloader() = default;

absl::StatusOr<std::unique_ptr<CertReloader>> CertReloader::Create(std::string what,
                                                                   CertFiles files,
                                                                   absl::Duration check_interval) {
  if (files.cert_file.empty() || files.key_file.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " needs TLS: tls.cert_file and tls.key_file are required"));
  }
  auto loaded = Load(what, files);
  if (!loaded.ok()) return loaded.status();
  std::unique_ptr<CertReloader> r(
      new CertReloader(std::move(what), std::move(files), check_interval));
  r->current_ = *std::move(loaded);
  r->last_check_ = absl::Now();
  return r;
}

void CertReloader::Attach(ssl_ctx_st* ctx) {
  SSL_CTX_set_cert_cb(ctx, &OnHandshake, this);
  if (!mutual()) return;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // No resumption: a resumed session skips the client certificate check,
  // which must always run against the current CA file.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
}

int CertReloader::OnHandshake(ssl_st* ssl, void* arg) {
  std::shared_ptr<const Loaded> current = static_cast<CertReloader*>(arg)->Current();
  // Each call takes its own references: the set may be replaced while this
  // connection lives. Runs before the server's CertificateRequest is built
  // and the client's certificate verified, so both use this connection's CA.
  if (SSL_use_cert_and_key(ssl, current->cert, current->key, current->chain, 1) != 1) return 0;
  if (current->client_ca != nullptr) {
    if (SSL_set1_verify_cert_store(ssl, current->client_ca) != 1) return 0;
    SSL_set_client_CA_list(ssl, SSL_dup_CA_list(current->client_ca_names));
  }
  return 1;
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
  auto cs = Stamp(what_, files_.cert_file, "cert_file");
  auto ks = Stamp(what_, files_.key_file, "key_file");
  bool same = cs.ok() && ks.ok() && *cs == current_->cert_stamp && *ks == current_->key_stamp;
  if (same && mutual()) {
    auto as = Stamp(what_, files_.client_ca_file, "client_ca_file");
    same = as.ok() && *as == current_->client_ca_stamp;
  }
  if (same) return false;
  auto loaded = Load(what_, files_);
  if (!loaded.ok()) {
    std::string failure(loaded.status().message());
    if (failure != last_failure_) {
      GL_LOG_WARN(absl::StrCat(what_, ": certificate reload failed, keeping the previous one"),
                  {F("error", failure)});
      last_failure_ = failure;
    }
    return false;
  }
  last_failure_.clear();
  current_ = *std::move(loaded);
  ++reloads_;
  GL_LOG_INFO(absl::StrCat(what_, ": certificate reloaded"), {F("cert_file", files_.cert_file)});
  return true;
}

int64_t CertReloader::reloads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reloads_;
}

}  // namespace greenlight::tls
