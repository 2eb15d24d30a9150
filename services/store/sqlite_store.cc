#include "services/store/sqlite_store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace greenlight::store {
namespace {

// Migrations run in order; each brings the schema from version i to i + 1.
// Never edit a shipped migration: add a new one.
const char* const kMigrations[] = {
    // v1
    R"sql(
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  sequence INTEGER NOT NULL,
  team TEXT NOT NULL,
  request_id TEXT NOT NULL,
  state INTEGER NOT NULL,
  body BLOB NOT NULL
);
CREATE INDEX jobs_sequence ON jobs(sequence);
CREATE TABLE events (
  revision INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL,
  team TEXT NOT NULL,
  body BLOB NOT NULL
);
CREATE TABLE ledger (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  time_us INTEGER NOT NULL,
  team TEXT NOT NULL,
  period TEXT NOT NULL,
  job_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('reserve','accrue','release','settle','budget')),
  cost_spent_micros INTEGER NOT NULL,
  cost_reserved_micros INTEGER NOT NULL,
  carbon_spent_mg INTEGER NOT NULL,
  carbon_reserved_mg INTEGER NOT NULL,
  energy_spent_mwh INTEGER NOT NULL,
  reason TEXT NOT NULL
);
CREATE INDEX ledger_team_period ON ledger(team, period);
CREATE TRIGGER ledger_append_only_update BEFORE UPDATE ON ledger
  BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TRIGGER ledger_append_only_delete BEFORE DELETE ON ledger
  BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
CREATE TABLE teams (name TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE pools (id TEXT PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE zones (
  name TEXT PRIMARY KEY, start_us INTEGER NOT NULL, step_s INTEGER NOT NULL,
  annual_average REAL NOT NULL, source TEXT NOT NULL, updated_us INTEGER NOT NULL,
  vals BLOB NOT NULL
);
CREATE TABLE tokens (id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, body BLOB NOT NULL);
)sql",
    // v2: INSERT OR REPLACE deletes the old row without firing DELETE
    // triggers; refuse any insert that reuses an existing ledger id.
    R"sql(
CREATE TRIGGER ledger_append_only_replace BEFORE INSERT ON ledger
  WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM ledger WHERE id = NEW.id)
  BEGIN SELECT RAISE(ABORT, 'ledger is append-only'); END;
)sql",
};

class Stmt {
 public:
  Stmt(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr); }
  ~Stmt() { sqlite3_finalize(s_); }
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return s_; }
  void Text(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Blob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  }
  void Int(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Real(int i, double v) { sqlite3_bind_double(s_, i, v); }
  int Step() { return sqlite3_step(s_); }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  std::string ColText(int i) {
    const unsigned char* p = sqlite3_column_text(s_, i);
    return p ? std::string(reinterpret_cast<const char*>(p), sqlite3_column_bytes(s_, i)) : "";
  }
  std::string ColBlob(int i) {
    const void* p = sqlite3_column_blob(s_, i);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(s_, i)) : "";
  }
  int64_t ColInt(int i) { return sqlite3_column_int64(s_, i); }
  double ColReal(int i) { return sqlite3_column_double(s_, i); }

 private:
  sqlite3_stmt* s_ = nullptr;
  int rc_;
};

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  std::string msg =
      absl::StrCat("store: ", what, ": ", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  // Disk full, read-only or I/O trouble: the caller may retry later.
  int primary = rc & 0xff;
  if (primary == SQLITE_FULL || primary == SQLITE_READONLY || primary == SQLITE_IOERR ||
      primary == SQLITE_BUSY || primary == SQLITE_LOCKED || primary == SQLITE_CANTOPEN) {
    return absl::UnavailableError(msg);
  }
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB) return absl::DataLossError(msg);
  return absl::InternalError(msg);
}

#define SQL_CHECK(db, expr, what)                                    \
  do {                                                               \
    int rc_ = (expr);                                                \
    if (rc_ != SQLITE_OK && rc_ != SQLITE_DONE && rc_ != SQLITE_ROW) \
      return SqliteError(db, rc_, what);                             \
  } while (0)

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(const SqliteOptions& options) {
  std::unique_ptr<SqliteStore> s(new SqliteStore());
  s->path_ = options.path;
  int rc =
      sqlite3_open_v2(options.path.c_str(), &s->db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    return absl::UnavailableError(
        absl::StrCat("store: cannot open ", options.path, ": ",
                     s->db_ ? sqlite3_errmsg(s->db_) : sqlite3_errstr(rc)));
  }
  sqlite3_busy_timeout(s->db_, 5000);
  RETURN_IF_ERROR(s->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(s->Exec(options.synchronous == "normal" ? "PRAGMA synchronous=NORMAL"
                                                          : "PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(s->Exec("PRAGMA foreign_keys=ON"));
  RETURN_IF_ERROR(s->Migrate());
  return s;
}

SqliteStore::~SqliteStore() {
  if (db_) sqlite3_close_v2(db_);
}

absl::Status SqliteStore::Exec(const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    // Name the statement ("COMMIT"), and the detail only when it adds to
    // the code's text: "store: COMMIT: database or disk is full".
    absl::string_view stmt = absl::StripLeadingAsciiWhitespace(sql);
    stmt = stmt.substr(0, std::min(stmt.find_first_of(" \n("), size_t{40}));
    return SqliteError(
        nullptr, rc, msg == sqlite3_errstr(rc) ? std::string(stmt) : absl::StrCat(stmt, ": ", msg));
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::Migrate() {
  Stmt v(db_, "PRAGMA user_version");
  if (v.Step() != SQLITE_ROW) return SqliteError(db_, SQLITE_ERROR, "read schema version");
  int version = static_cast<int>(v.ColInt(0));
  int latest = static_cast<int>(sizeof(kMigrations) / sizeof(kMigrations[0]));
  if (version > latest) {
    return absl::FailedPreconditionError(absl::StrCat("store: ", path_, " has schema version ",
                                                      version, ", newer than this binary (", latest,
                                                      "); upgrade greenlightd"));
  }
  for (int i = version; i < latest; ++i) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status st = Exec(kMigrations[i]);
    if (st.ok()) st = Exec(absl::StrCat("PRAGMA user_version=", i + 1).c_str());
    if (!st.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return st;
    }
    RETURN_IF_ERROR(Exec("COMMIT"));
  }
  schema_version_ = latest;
  return absl::OkStatus();
}

absl::Status SqliteStore::Commit(const Batch& b) {
  if (b.empty()) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  auto write = [&]() -> absl::Status {
    if (!b.jobs.empty()) {
      Stmt s(db_,
             "INSERT INTO jobs(id, sequence, team, request_id, state, body) VALUES(?,?,?,?,?,?) "
             "ON CONFLICT(id) DO UPDATE SET state=excluded.state, body=excluded.body");
      for (const auto& j : b.jobs) {
        s.Text(1, j.id());
        s.Int(2, j.sequence());
        s.Text(3, j.spec().team());
        s.Text(4, j.spec().request_id());
        s.Int(5, j.state());
        s.Blob(6, j.SerializeAsString());
        SQL_CHECK(db_, s.Step(), "write job");
        s.Reset();
      }
    }
    if (!b.events.empty()) {
      Stmt s(db_, "INSERT INTO events(revision, job_id, team, body) VALUES(?,?,?,?)");
      for (const auto& e : b.events) {
        s.Int(1, e.revision());
        s.Text(2, e.job_id());
        s.Text(3, e.team());
        s.Blob(4, e.SerializeAsString());
        SQL_CHECK(db_, s.Step(), "write event");
        s.Reset();
      }
    }
    if (!b.ledger.empty()) {
      Stmt s(db_,
             "INSERT INTO ledger(time_us, team, period, job_id, kind, cost_spent_micros, "
             "cost_reserved_micros, carbon_spent_mg, carbon_reserved_mg, energy_spent_mwh, reason) "
             "VALUES(?,?,?,?,?,?,?,?,?,?,?)");
      for (const auto& r : b.ledger) {
        s.Int(1, r.time_us);
        s.Text(2, r.team);
        s.Text(3, r.period);
        s.Text(4, r.job_id);
        s.Text(5, LedgerKindName(r.kind));
        s.Int(6, r.cost_spent_micros);
        s.Int(7, r.cost_reserved_micros);
        s.Int(8, r.carbon_spent_mg);
        s.Int(9, r.carbon_reserved_mg);
        s.Int(10, r.energy_spent_mwh);
        s.Text(11, r.reason);
        SQL_CHECK(db_, s.Step(), "write ledger row");
        s.Reset();
      }
    }
    if (!b.teams.empty()) {
      Stmt s(db_, "INSERT OR REPLACE INTO teams(name, body) VALUES(?,?)");
      for (const auto& t : b.teams) {
        s.Text(1, t.name());
        s.Blob(2, t.SerializeAsString());
        SQL_CHECK(db_, s.Step(), "write team");
        s.Reset();
      }
    }
    if (!b.pools.empty()) {
      Stmt s(db_, "INSERT OR REPLACE INTO pools(id, body) VALUES(?,?)");
      for (const auto& p : b.pools) {
        s.Text(1, p.id());
        s.Blob(2, p.SerializeAsString());
        SQL_CHECK(db_, s.Step(), "write pool");
        s.Reset();
      }
    }
    if (!b.zones.empty()) {
      Stmt s(db_,
             "INSERT OR REPLACE INTO zones(name, start_us, step_s, annual_average, source, "
             "updated_us, vals) VALUES(?,?,?,?,?,?,?)");
      for (const auto& z : b.zones) {
        s.Text(1, z.name);
        s.Int(2, z.start_us);
        s.Int(3, z.step_s);
        s.Real(4, z.annual_average);
        s.Text(5, z.source);
        s.Int(6, z.updated_us);
        s.Blob(7, std::string(reinterpret_cast<const char*>(z.values.data()),
                              z.values.size() * sizeof(double)));
        SQL_CHECK(db_, s.Step(), "write zone");
        s.Reset();
      }
    }
    if (!b.tokens.empty()) {
      Stmt s(db_, "INSERT OR REPLACE INTO tokens(id, secret_sha256, body) VALUES(?,?,?)");
      for (const auto& t : b.tokens) {
        s.Text(1, t.info.id());
        s.Text(2, t.secret_sha256_hex);
        s.Blob(3, t.info.SerializeAsString());
        SQL_CHECK(db_, s.Step(), "write token");
        s.Reset();
      }
    }
    return absl::OkStatus();
  };
  absl::Status st = write();
  if (st.ok()) {
    st = Exec("COMMIT");
    if (st.ok()) return st;
  }
  Exec("ROLLBACK").IgnoreError();
  return st;
}

absl::StatusOr<Snapshot> SqliteStore::Load() {
  absl::MutexLock l(&mu_);
  Snapshot snap;
  {
    Stmt s(db_, "SELECT body FROM jobs ORDER BY sequence");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      greenlight::v1::Job j;
      if (!j.ParseFromString(s.ColBlob(0))) return absl::DataLossError("store: corrupt job row");
      snap.jobs.push_back(std::move(j));
    }
    SQL_CHECK(db_, rc, "read jobs");
  }
  {
    Stmt s(db_,
           "SELECT id, time_us, team, period, job_id, kind, cost_spent_micros, "
           "cost_reserved_micros, carbon_spent_mg, carbon_reserved_mg, energy_spent_mwh, reason "
           "FROM ledger ORDER BY id");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      LedgerRow r;
      r.id = s.ColInt(0);
      r.time_us = s.ColInt(1);
      r.team = s.ColText(2);
      r.period = s.ColText(3);
      r.job_id = s.ColText(4);
      r.kind = ParseLedgerKind(s.ColText(5));
      if (r.kind == greenlight::v1::LEDGER_KIND_UNSPECIFIED) {
        return absl::DataLossError(
            absl::StrCat("store: ledger row ", r.id, " has unknown kind '", s.ColText(5), "'"));
      }
      r.cost_spent_micros = s.ColInt(6);
      r.cost_reserved_micros = s.ColInt(7);
      r.carbon_spent_mg = s.ColInt(8);
      r.carbon_reserved_mg = s.ColInt(9);
      r.energy_spent_mwh = s.ColInt(10);
      r.reason = s.ColText(11);
      snap.ledger.push_back(std::move(r));
    }
    SQL_CHECK(db_, rc, "read ledger");
  }
  {
    Stmt s(db_, "SELECT body FROM teams ORDER BY name");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      greenlight::v1::Team t;
      if (!t.ParseFromString(s.ColBlob(0))) return absl::DataLossError("store: corrupt team row");
      snap.teams.push_back(std::move(t));
    }
    SQL_CHECK(db_, rc, "read teams");
  }
  {
    Stmt s(db_, "SELECT body FROM pools ORDER BY id");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      greenlight::v1::NodePool p;
      if (!p.ParseFromString(s.ColBlob(0))) return absl::DataLossError("store: corrupt pool row");
      snap.pools.push_back(std::move(p));
    }
    SQL_CHECK(db_, rc, "read pools");
  }
  {
    Stmt s(db_,
           "SELECT name, start_us, step_s, annual_average, source, updated_us, vals FROM zones "
           "ORDER BY name");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      ZoneRow z;
      z.name = s.ColText(0);
      z.start_us = s.ColInt(1);
      z.step_s = s.ColInt(2);
      z.annual_average = s.ColReal(3);
      z.source = s.ColText(4);
      z.updated_us = s.ColInt(5);
      std::string vals = s.ColBlob(6);
      z.values.resize(vals.size() / sizeof(double));
      // A zone without values has no buffer: memcpy from null is undefined.
      if (!z.values.empty()) memcpy(z.values.data(), vals.data(), z.values.size() * sizeof(double));
      snap.zones.push_back(std::move(z));
    }
    SQL_CHECK(db_, rc, "read zones");
  }
  {
    Stmt s(db_, "SELECT secret_sha256, body FROM tokens ORDER BY id");
    int rc;
    while ((rc = s.Step()) == SQLITE_ROW) {
      TokenRow t;
      t.secret_sha256_hex = s.ColText(0);
      if (!t.info.ParseFromString(s.ColBlob(1)))
        return absl::DataLossError("store: corrupt token row");
      snap.tokens.push_back(std::move(t));
    }
    SQL_CHECK(db_, rc, "read tokens");
  }
  {
    Stmt s(db_, "SELECT COALESCE(MAX(revision), 0) FROM events");
    if (s.Step() != SQLITE_ROW) return SqliteError(db_, SQLITE_ERROR, "read revision");
    snap.last_revision = s.ColInt(0);
  }
  return snap;
}

absl::StatusOr<std::vector<greenlight::v1::JobEvent>> SqliteStore::EventsAfter(int64_t after,
                                                                               int limit) {
  absl::MutexLock l(&mu_);
  std::vector<greenlight::v1::JobEvent> out;
  Stmt s(db_, "SELECT body FROM events WHERE revision > ? ORDER BY revision LIMIT ?");
  s.Int(1, after);
  s.Int(2, limit);
  int rc;
  while ((rc = s.Step()) == SQLITE_ROW) {
    greenlight::v1::JobEvent e;
    if (!e.ParseFromString(s.ColBlob(0))) return absl::DataLossError("store: corrupt event row");
    out.push_back(std::move(e));
  }
  SQL_CHECK(db_, rc, "read events");
  return out;
}

}  // namespace greenlight::store
