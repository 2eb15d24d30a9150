#include "services/scheduler/auth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace greenlight::scheduler {
namespace {
std::string Hex(const unsigned char* p, size_t n) {
  static const char* k = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(k[p[i] >> 4]);
    out.push_back(k[p[i] & 15]);
  }
  return out;
}
}  // namespace

std::string Authenticator::Sha256Hex(absl::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return Hex(md, len);
}

std::string Authenticator::NewSecret() {
  unsigned char buf[32];
  RAND_bytes(buf, sizeof(buf));
  return absl::StrCat("glt_", Hex(buf, sizeof(buf)));
}

void Authenticator::Load(const std::vector<store::TokenRow>& tokens) {
  for (const auto& t : tokens) Put(t);
}

void Authenticator::Put(const store::TokenRow& t) {
  absl::MutexLock l(&mu_);
  if (t.info.revoked()) {
    by_hash_.erase(t.secret_sha256_hex);
    return;
  }
  by_hash_[t.secret_sha256_hex] =
      Principal{t.info.team(), t.info.admin(), t.info.id(), t.info.agent_pool()};
}

void Authenticator::AddAdminSecret(const std::string& secret) {
  absl::MutexLock l(&mu_);
  by_hash_[Sha256Hex(secret)] = Principal{"", true, "bootstrap-admin"};
}

absl::StatusOr<Principal> Authenticator::Authenticate(absl::string_view authorization) const {
  if (open_) return Principal{"", true, "open"};
  if (authorization.empty()) {
    return absl::UnauthenticatedError(
        "missing credentials: send metadata 'authorization: Bearer <token>' (greenlight CLI: "
        "--token, "
        "GREENLIGHT_TOKEN or --token-file)");
  }
  absl::string_view v = absl::StripAsciiWhitespace(authorization);
  if (!absl::StartsWithIgnoreCase(v, "bearer ")) {
    return absl::UnauthenticatedError("authorization: expected 'Bearer <token>'");
  }
  v.remove_prefix(7);
  v = absl::StripAsciiWhitespace(v);
  std::string h = Sha256Hex(v);
  absl::MutexLock l(&mu_);
  auto it = by_hash_.find(h);
  if (it == by_hash_.end()) return absl::UnauthenticatedError("invalid or revoked token");
  return it->second;
}

}  // namespace greenlight::scheduler
