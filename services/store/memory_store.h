// In-memory implementation of Store, for the replay simulator and tests: the
// same contract as SqliteStore (a batch is applied whole or not at all, Load
// returns everything committed) without a file, so a replay of months of
// virtual time spends its time in the scheduler, not in fsync.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/store/store.h"

namespace greenlight::store {

struct MemoryStoreOptions {
  // Events kept for EventsAfter; older ones are dropped (the revision counter
  // still advances). < 0 keeps all. A replay nobody watches keeps none: every
  // event embeds a copy of its job, which would hold the whole history twice.
  int64_t max_events = -1;
};

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(MemoryStoreOptions options = {}) : options_(options) {}

  absl::Status Commit(const Batch& batch) override;
  absl::StatusOr<Snapshot> Load() override;
  // OUT_OF_RANGE when events after `after` were dropped under max_events.
  absl::StatusOr<std::vector<greenlight::v1::JobEvent>> EventsAfter(int64_t after,
                                                                    int limit) override;

  // Sizes, for tests and the simulator's statistics.
  size_t job_count() const;
  size_t ledger_rows() const;
  int64_t last_revision() const;

 private:
  MemoryStoreOptions options_;
  mutable absl::Mutex mu_;
  // Jobs by id, and ids by sequence for Load's order. A multimap: jobs that
  // share a sequence are all kept (SQLite keeps them too).
  absl::flat_hash_map<std::string, greenlight::v1::Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::multimap<int64_t, std::string> by_sequence_ ABSL_GUARDED_BY(mu_);
  std::deque<greenlight::v1::JobEvent> events_ ABSL_GUARDED_BY(mu_);
  int64_t last_revision_ ABSL_GUARDED_BY(mu_) = 0;
  // Highest revision dropped under max_events (0 = none).
  int64_t dropped_through_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<LedgerRow> ledger_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, greenlight::v1::Team> teams_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, greenlight::v1::NodePool> pools_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ZoneRow> zones_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, TokenRow> tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace greenlight::store
