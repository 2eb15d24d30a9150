// Durable state of the scheduler: jobs, events, ledger rows, teams, pools,
// carbon series and tokens. One writer applies a Batch in one transaction
// (group commit); everything is loaded back at start.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "greenlight/v1/admin.pb.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::store {

// The stored name of a ledger kind ("reserve", ...); "" for UNSPECIFIED.
const char* LedgerKindName(greenlight::v1::LedgerKind kind);
// The kind of a stored name; UNSPECIFIED for a name no release wrote.
greenlight::v1::LedgerKind ParseLedgerKind(const std::string& name);

// One append-only ledger row. Amounts are deltas in integer units: a reserve
// row adds to reserved; an accrue row adds to spent (and takes the same from
// reserved where a reservation exists); release and settle rows give back
// what remains reserved.
struct LedgerRow {
  int64_t id = 0;       // assigned by the store
  int64_t time_us = 0;  // unix micros
  std::string team;
  std::string period;  // "2026-11" (UTC month)
  std::string job_id;  // empty for team rows (budget changes)
  // Stored as its lower-case name (reserve, accrue, release, settle, budget).
  greenlight::v1::LedgerKind kind = greenlight::v1::LEDGER_KIND_UNSPECIFIED;
  int64_t cost_spent_micros = 0;
  int64_t cost_reserved_micros = 0;
  int64_t carbon_spent_mg = 0;
  int64_t carbon_reserved_mg = 0;
  int64_t energy_spent_mwh = 0;  // milliwatt-hours, integer like every ledger amount
  std::string reason;
};

struct TokenRow {
  greenlight::v1::TokenInfo info;
  std::string secret_sha256_hex;
};

struct ZoneRow {
  std::string name;
  int64_t start_us = 0;
  int64_t step_s = 3600;
  std::vector<double> values;
  double annual_average = 0;
  std::string source;
  int64_t updated_us = 0;
};

// Everything one group commit writes.
struct Batch {
  std::vector<greenlight::v1::Job> jobs;         // upsert by id
  std::vector<greenlight::v1::JobEvent> events;  // append (revision is the key)
  std::vector<LedgerRow> ledger;                 // append
  std::vector<greenlight::v1::Team> teams;       // upsert by name
  std::vector<greenlight::v1::NodePool> pools;   // upsert by id
  std::vector<ZoneRow> zones;                    // upsert by name
  std::vector<TokenRow> tokens;                  // upsert by id
  bool empty() const {
    return jobs.empty() && events.empty() && ledger.empty() && teams.empty() && pools.empty() &&
           zones.empty() && tokens.empty();
  }
};

// What Load returns.
struct Snapshot {
  std::vector<greenlight::v1::Job> jobs;  // in sequence order
  std::vector<LedgerRow> ledger;          // in id order
  std::vector<greenlight::v1::Team> teams;
  std::vector<greenlight::v1::NodePool> pools;
  std::vector<ZoneRow> zones;
  std::vector<TokenRow> tokens;
  int64_t last_revision = 0;
};

class Store {
 public:
  virtual ~Store() = default;
  // Writes the batch atomically and durably; on error nothing is written.
  virtual absl::Status Commit(const Batch& batch) = 0;
  virtual absl::StatusOr<Snapshot> Load() = 0;
  // Events with revision > after, ascending, at most `limit`.
  virtual absl::StatusOr<std::vector<greenlight::v1::JobEvent>> EventsAfter(int64_t after,
                                                                            int limit) = 0;
};

}  // namespace greenlight::store
