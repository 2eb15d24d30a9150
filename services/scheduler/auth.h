// Bearer-token authentication: per-team tokens and an admin role. Secrets are
// never stored: only their SHA-256 (hex) is kept in the store and in memory.
#pragma once

#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "services/store/store.h"

namespace greenlight::scheduler {

struct Principal {
  std::string team;  // empty for admin
  bool admin = false;
  std::string token_id;
  // Set for an agent token: it may only act as a node agent of this pool
  // (AgentService); every other service refuses it.
  std::string agent_pool;
  // May the principal act on `team`'s jobs and budgets?
  bool CanAccess(const std::string& t) const { return admin || t == team; }
};

class Authenticator {
 public:
  // open = every caller is admin (demo only; the server warns at start).
  explicit Authenticator(bool open) : open_(open) {}
  bool open() const { return open_; }
  // Loads stored tokens (revoked ones are ignored).
  void Load(const std::vector<store::TokenRow>& tokens);
  void Put(const store::TokenRow& token);
  // The bootstrap admin secret from auth.admin_token_file.
  void AddAdminSecret(const std::string& secret);
  // `authorization` is the metadata value ("Bearer <secret>"); empty = none.
  absl::StatusOr<Principal> Authenticate(absl::string_view authorization) const;

  static std::string Sha256Hex(absl::string_view data);
  // 32 random bytes, hex: a new bearer secret.
  static std::string NewSecret();

 private:
  bool open_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Principal> by_hash_ ABSL_GUARDED_BY(mu_);
};

}  // namespace greenlight::scheduler
