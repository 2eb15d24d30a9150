// SQLite implementation of Store: WAL journal, synchronous=FULL by default so
// that a commit that returned OK survives kill -9 and power loss.
#pragma once

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "services/store/store.h"

struct sqlite3;

namespace greenlight::store {

struct SqliteOptions {
  std::string path;
  // "full": fsync the WAL on every commit (default, durable against power
  // loss). "normal": durable against process crashes (kill -9) but a power
  // loss may drop the last commits; see docs/RELIABILITY.md.
  std::string synchronous = "full";
};

class SqliteStore final : public Store {
 public:
  // Opens (creating if needed) and migrates the schema to the latest version.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(const SqliteOptions& options);
  ~SqliteStore() override;

  absl::Status Commit(const Batch& batch) override;
  absl::StatusOr<Snapshot> Load() override;
  absl::StatusOr<std::vector<greenlight::v1::JobEvent>> EventsAfter(int64_t after,
                                                                    int limit) override;
  int schema_version() const { return schema_version_; }
  static constexpr int kLatestSchemaVersion = 2;

 private:
  SqliteStore() = default;
  absl::Status Exec(const char* sql);
  absl::Status Migrate();

  absl::Mutex mu_;
  sqlite3* db_ = nullptr;
  int schema_version_ = 0;
  std::string path_;
};

}  // namespace greenlight::store
