// SqliteStore: schema migrations, atomic group commits, the append-only
// ledger, Load/EventsAfter round trips and how SQLite errors map to codes.
#include "services/store/sqlite_store.h"

#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::store {
namespace {

using ::greenlight::testing::TempDir;
using ::testing::HasSubstr;

// Raw access to the file, bypassing the store (what an operator or an
// attacker with the file could do).
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close_v2(db_); }
  // Returns the SQLite result code; *error gets the message.
  int Exec(const std::string& sql, std::string* error = nullptr) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (error) *error = err ? err : "";
    sqlite3_free(err);
    return rc;
  }
  int64_t Int(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
      v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    std::string v;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) != nullptr)
      v = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return v;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::unique_ptr<SqliteStore> OpenOrDie(const std::string& path) {
  auto s = SqliteStore::Open({path, "full"});
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

greenlight::v1::Job MakeJob(const std::string& id, int64_t seq, greenlight::v1::JobState state) {
  greenlight::v1::Job j;
  j.set_id(id);
  j.set_sequence(seq);
  j.set_state(state);
  j.mutable_spec()->set_team("ml");
  j.mutable_spec()->set_request_id(absl::StrCat("rid-", id));
  j.mutable_spec()->set_gpus(8);
  j.set_reserved_cost_micros(1'000'000 * seq);
  return j;
}

greenlight::v1::JobEvent MakeEvent(int64_t revision, const std::string& job_id) {
  greenlight::v1::JobEvent e;
  e.set_revision(revision);
  e.set_job_id(job_id);
  e.set_team("ml");
  e.set_event_type(greenlight::v1::JOB_EVENT_TYPE_STATE);
  e.set_message(absl::StrCat("event ", revision));
  return e;
}

LedgerRow MakeRow(const std::string& job_id, const std::string& kind, int64_t cost_reserved,
                  int64_t cost_spent = 0) {
  LedgerRow r;
  r.time_us = 1'773'129'600'000'000;
  r.team = "ml";
  r.period = "2026-03";
  r.job_id = job_id;
  r.kind = store::ParseLedgerKind(kind);
  r.cost_reserved_micros = cost_reserved;
  r.cost_spent_micros = cost_spent;
  r.carbon_reserved_mg = 3 * cost_reserved;
  r.carbon_spent_mg = 3 * cost_spent;
  r.energy_spent_mwh = 7 * cost_spent;
  r.reason = kind;
  return r;
}

bool Same(const google::protobuf::Message& a, const google::protobuf::Message& b) {
  return google::protobuf::util::MessageDifferencer::Equals(a, b);
}

TEST(SqliteStoreMigrations, FreshFileGetsTheLatestSchemaVersion) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), 2);
  EXPECT_EQ(SqliteStore::kLatestSchemaVersion, 2);
  RawDb raw(dir.File("g.db"));
  EXPECT_EQ(raw.Int("PRAGMA user_version"), 2);
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
  for (const char* table : {"jobs", "events", "ledger", "teams", "pools", "zones", "tokens"}) {
    EXPECT_EQ(raw.Int(absl::StrCat(
                  "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='", table, "'")),
              1)
        << table;
  }
  auto snap = store->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE(snap->jobs.empty());
  EXPECT_EQ(snap->last_revision, 0);
}

TEST(SqliteStoreMigrations, ReopeningKeepsDataAndDoesNotMigrateAgain) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.File("g.db"));
    Batch b;
    b.jobs.push_back(MakeJob("j-1", 1, greenlight::v1::JOB_STATE_RUNNING));
    b.ledger.push_back(MakeRow("j-1", "reserve", 5'000'000));
    b.events.push_back(MakeEvent(1, "j-1"));
    ASSERT_TRUE(store->Commit(b).ok());
  }
  auto store = OpenOrDie(dir.File("g.db"));
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->schema_version(), 2);
  auto snap = store->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->jobs.size(), 1u);
  EXPECT_EQ(snap->jobs[0].state(), greenlight::v1::JOB_STATE_RUNNING);
  ASSERT_EQ(snap->ledger.size(), 1u);
  EXPECT_EQ(snap->ledger[0].cost_reserved_micros, 5'000'000);
  EXPECT_EQ(snap->last_revision, 1);
}

TEST(SqliteStoreMigrations, RefusesAFileWithANewerSchemaNamingBothVersions) {
  TempDir dir;
  {
    RawDb raw(dir.File("g.db"));
    ASSERT_EQ(raw.Exec("CREATE TABLE future(x); PRAGMA user_version=7"), SQLITE_OK);
  }
  auto s = SqliteStore::Open({dir.File("g.db"), "full"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  std::string msg(s.status().message());
  EXPECT_THAT(msg, HasSubstr("schema version 7"));
  EXPECT_THAT(msg, HasSubstr("newer than this binary (2)"));
  EXPECT_THAT(msg, HasSubstr(dir.File("g.db")));
  // And the file was left alone.
  RawDb raw(dir.File("g.db"));
  EXPECT_EQ(raw.Int("PRAGMA user_version"), 7);
  EXPECT_EQ(raw.Int("SELECT COUNT(*) FROM sqlite_master WHERE name='jobs'"), 0);
}

TEST(SqliteStoreCommit, BatchWithABadLedgerRowWritesNothing) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  Batch good;
  good.jobs.push_back(MakeJob("j-1", 1, greenlight::v1::JOB_STATE_PENDING));
  good.ledger.push_back(MakeRow("j-1", "reserve", 5'000'000));
  good.events.push_back(MakeEvent(1, "j-1"));
  ASSERT_TRUE(store->Commit(good).ok());

  Batch bad;
  bad.jobs.push_back(MakeJob("j-1", 1, greenlight::v1::JOB_STATE_RUNNING));  // update
  bad.jobs.push_back(MakeJob("j-2", 2, greenlight::v1::JOB_STATE_PENDING));  // insert
  bad.events.push_back(MakeEvent(2, "j-2"));
  bad.ledger.push_back(MakeRow("j-2", "reserve", 1'000'000));
  bad.ledger.push_back(MakeRow("j-2", "refund", 1'000'000));  // not allowed by the CHECK
  greenlight::v1::Team team;
  team.set_name("ml");
  bad.teams.push_back(team);
  absl::Status st = store->Commit(bad);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("ledger"));

  auto snap = store->Load();
  ASSERT_TRUE(snap.ok());
  ASSERT_EQ(snap->jobs.size(), 1u);
  EXPECT_EQ(snap->jobs[0].state(), greenlight::v1::JOB_STATE_PENDING) << "update leaked";
  EXPECT_EQ(snap->ledger.size(), 1u);
  EXPECT_TRUE(snap->teams.empty());
  EXPECT_EQ(snap->last_revision, 1);

  // The connection is usable afterwards (the transaction was rolled back).
  Batch next;
  next.events.push_back(MakeEvent(2, "j-1"));
  EXPECT_TRUE(store->Commit(next).ok());
}

TEST(SqliteStoreCommit, DuplicateEventRevisionFailsTheWholeBatch) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  Batch b;
  b.events.push_back(MakeEvent(1, "j-1"));
  ASSERT_TRUE(store->Commit(b).ok());
  Batch dup;
  dup.ledger.push_back(MakeRow("j-1", "reserve", 1));
  dup.events.push_back(MakeEvent(2, "j-1"));
  dup.events.push_back(MakeEvent(1, "j-1"));  // revision already taken
  EXPECT_FALSE(store->Commit(dup).ok());
  auto snap = store->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->ledger.empty());
  EXPECT_EQ(snap->last_revision, 1);
}

TEST(SqliteStoreCommit, EmptyBatchIsANoOp) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  EXPECT_TRUE(store->Commit(Batch{}).ok());
  RawDb raw(dir.File("g.db"));
  EXPECT_EQ(raw.Int("SELECT COUNT(*) FROM ledger"), 0);
}

TEST(SqliteStoreLedger, UpdateAndDeleteAreRefusedByTriggers) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  Batch b;
  b.ledger.push_back(MakeRow("j-1", "reserve", 5'000'000));
  b.ledger.push_back(MakeRow("j-1", "accrue", -1'000'000, 1'000'000));
  ASSERT_TRUE(store->Commit(b).ok());

  RawDb raw(dir.File("g.db"));
  std::string err;
  EXPECT_NE(raw.Exec("UPDATE ledger SET cost_spent_micros = 0", &err), SQLITE_OK);
  EXPECT_THAT(err, HasSubstr("append-only"));
  EXPECT_NE(raw.Exec("DELETE FROM ledger WHERE kind = 'accrue'", &err), SQLITE_OK);
  EXPECT_THAT(err, HasSubstr("append-only"));
  EXPECT_EQ(raw.Int("SELECT COUNT(*) FROM ledger"), 2);
  EXPECT_EQ(raw.Int("SELECT SUM(cost_spent_micros) FROM ledger"), 1'000'000);
  EXPECT_EQ(raw.Int("SELECT cost_reserved_micros FROM ledger WHERE id = 1"), 5'000'000);
}

// Known gap (reported, not fixed: it needs a schema migration): SQLite fires
// no DELETE trigger for the rows REPLACE removes unless recursive_triggers is
// on, so INSERT OR REPLACE rewrites a ledger row despite the triggers. Enable
// once a migration adds a BEFORE INSERT guard on existing ids.
TEST(SqliteStoreLedger, InsertOrReplaceCannotRewriteARow) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  Batch b;
  b.ledger.push_back(MakeRow("j-1", "reserve", 5'000'000));
  ASSERT_TRUE(store->Commit(b).ok());
  RawDb raw(dir.File("g.db"));
  std::string err;
  EXPECT_NE(raw.Exec("INSERT OR REPLACE INTO ledger(id, time_us, team, period, job_id, kind, "
                     "cost_spent_micros, cost_reserved_micros, carbon_spent_mg, "
                     "carbon_reserved_mg, energy_spent_mwh, reason) "
                     "VALUES(1, 0, 'ml', '2026-03', 'j-1', 'reserve', 0, 0, 0, 0, 0, 'x')",
                     &err),
            SQLITE_OK);
  EXPECT_EQ(raw.Int("SELECT cost_reserved_micros FROM ledger WHERE id = 1"), 5'000'000);
}

TEST(SqliteStoreLoad, ReturnsWhatWasCommitted) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  Batch b;
  // Job rows arrive out of sequence order; Load sorts by sequence.
  b.jobs.push_back(MakeJob("j-b", 2, greenlight::v1::JOB_STATE_PENDING));
  b.jobs.push_back(MakeJob("j-a", 1, greenlight::v1::JOB_STATE_RUNNING));
  b.jobs[0].mutable_spec()->set_payload(std::string("\0\x01\xff binary", 10));
  for (int r = 1; r <= 3; ++r) b.events.push_back(MakeEvent(r, "j-a"));
  b.ledger.push_back(MakeRow("j-a", "reserve", 9'000'000));
  b.ledger.push_back(MakeRow("j-a", "accrue", -2'000'000, 2'500'000));
  b.ledger.push_back(MakeRow("", "budget", 0));
  greenlight::v1::Team team;
  team.set_name("ml");
  team.set_parent("acme");
  team.set_monthly_cost_budget_micros(100'000'000);
  (*team.mutable_gpu_quota_by_type())["H100"] = 16;
  b.teams.push_back(team);
  greenlight::v1::NodePool pool;
  pool.set_id("aws/us-east-1/p4d.24xlarge");
  pool.set_gpus_per_node(8);
  pool.set_price_micros_per_node_hour(32'772'600);
  b.pools.push_back(pool);
  ZoneRow zone;
  zone.name = "DE";
  zone.start_us = 1'773'100'800'000'000;
  zone.step_s = 900;
  zone.values = {217.8, 215.5, 0.0, 4999.9};
  zone.annual_average = 338.5;
  zone.source = "lwa2020";
  zone.updated_us = 42;
  b.zones.push_back(zone);
  TokenRow token;
  token.info.set_id("t-0001");
  token.secret_sha256_hex = std::string(64, 'a');
  b.tokens.push_back(token);
  ASSERT_TRUE(store->Commit(b).ok());
  // An upsert of a job replaces its state and body.
  Batch upd;
  upd.jobs.push_back(MakeJob("j-a", 1, greenlight::v1::JOB_STATE_SUCCEEDED));
  ASSERT_TRUE(store->Commit(upd).ok());

  auto snap = store->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  ASSERT_EQ(snap->jobs.size(), 2u);
  EXPECT_EQ(snap->jobs[0].id(), "j-a");
  EXPECT_EQ(snap->jobs[0].state(), greenlight::v1::JOB_STATE_SUCCEEDED);
  EXPECT_TRUE(Same(snap->jobs[1], b.jobs[0]));
  ASSERT_EQ(snap->ledger.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    const LedgerRow& got = snap->ledger[i];
    const LedgerRow& want = b.ledger[i];
    EXPECT_EQ(got.id, static_cast<int64_t>(i + 1));
    EXPECT_EQ(got.time_us, want.time_us);
    EXPECT_EQ(got.team, want.team);
    EXPECT_EQ(got.period, want.period);
    EXPECT_EQ(got.job_id, want.job_id);
    EXPECT_EQ(got.kind, want.kind);
    EXPECT_EQ(got.cost_spent_micros, want.cost_spent_micros);
    EXPECT_EQ(got.cost_reserved_micros, want.cost_reserved_micros);
    EXPECT_EQ(got.carbon_spent_mg, want.carbon_spent_mg);
    EXPECT_EQ(got.carbon_reserved_mg, want.carbon_reserved_mg);
    EXPECT_EQ(got.energy_spent_mwh, want.energy_spent_mwh);
    EXPECT_EQ(got.reason, want.reason);
  }
  ASSERT_EQ(snap->teams.size(), 1u);
  EXPECT_TRUE(Same(snap->teams[0], team));
  ASSERT_EQ(snap->pools.size(), 1u);
  EXPECT_TRUE(Same(snap->pools[0], pool));
  ASSERT_EQ(snap->zones.size(), 1u);
  EXPECT_EQ(snap->zones[0].name, "DE");
  EXPECT_EQ(snap->zones[0].start_us, zone.start_us);
  EXPECT_EQ(snap->zones[0].step_s, 900);
  EXPECT_EQ(snap->zones[0].values, zone.values);
  EXPECT_DOUBLE_EQ(snap->zones[0].annual_average, 338.5);
  EXPECT_EQ(snap->zones[0].source, "lwa2020");
  EXPECT_EQ(snap->zones[0].updated_us, 42);
  ASSERT_EQ(snap->tokens.size(), 1u);
  EXPECT_EQ(snap->tokens[0].info.id(), "t-0001");
  EXPECT_EQ(snap->tokens[0].secret_sha256_hex, token.secret_sha256_hex);
  EXPECT_EQ(snap->last_revision, 3);
}

TEST(SqliteStoreEvents, EventsAfterPagesWithoutGapsOrDuplicates) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  // Three commits of 10 events each.
  for (int c = 0; c < 3; ++c) {
    Batch b;
    for (int i = 1; i <= 10; ++i) b.events.push_back(MakeEvent(c * 10 + i, "j-1"));
    ASSERT_TRUE(store->Commit(b).ok());
  }
  std::vector<int64_t> seen;
  int64_t after = 0;
  int pages = 0;
  for (;;) {
    auto page = store->EventsAfter(after, 7);
    ASSERT_TRUE(page.ok()) << page.status();
    if (page->empty()) break;
    EXPECT_LE(page->size(), 7u);
    for (const auto& e : *page) {
      seen.push_back(e.revision());
      EXPECT_EQ(e.message(), absl::StrCat("event ", e.revision()));
    }
    after = page->back().revision();
    ++pages;
  }
  EXPECT_EQ(pages, 5);  // 7 + 7 + 7 + 7 + 2
  ASSERT_EQ(seen.size(), 30u);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(seen[i], i + 1);
  auto tail = store->EventsAfter(28, 100);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 2u);
  EXPECT_EQ((*tail)[0].revision(), 29);
  auto none = store->EventsAfter(30, 100);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(SqliteStoreErrors, PathThatCannotBeOpenedIsUnavailableNamingThePath) {
  TempDir dir;
  std::string path = dir.File("no/such/dir/g.db");
  auto s = SqliteStore::Open({path, "full"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.status().message()), HasSubstr(path));
}

TEST(SqliteStoreErrors, FileThatIsNotADatabaseIsDataLoss) {
  TempDir dir;
  {
    std::ofstream f(dir.File("g.db"), std::ios::binary);
    for (int i = 0; i < 4096; ++i) f << "this is not sqlite ";
  }
  auto s = SqliteStore::Open({dir.File("g.db"), "full"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss) << s.status();
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("not a database"));
}

TEST(SqliteStoreErrors, CommitWhileAnotherWriterHoldsTheLockIsUnavailableAndWritesNothing) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  RawDb other(dir.File("g.db"));
  ASSERT_EQ(other.Exec("BEGIN IMMEDIATE"), SQLITE_OK);
  Batch b;
  b.ledger.push_back(MakeRow("j-1", "reserve", 1'000'000));
  b.events.push_back(MakeEvent(1, "j-1"));
  // Waits for the store's busy timeout (5 s), then gives up.
  absl::Status st = store->Commit(b);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
  EXPECT_THAT(std::string(st.message()), HasSubstr("locked"));
  ASSERT_EQ(other.Exec("ROLLBACK"), SQLITE_OK);
  auto snap = store->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_TRUE(snap->ledger.empty());
  EXPECT_TRUE(store->Commit(b).ok()) << "the store recovers once the lock is gone";
}

// Disk full, produced for real: a file size limit (RLIMIT_FSIZE) below what
// the commit needs makes SQLite's write fail, as a full disk would. Works as
// root, unlike a read-only directory.
TEST(SqliteStoreErrors, DiskFullIsUnavailableAndTheStoreRecovers) {
  TempDir dir;
  auto store = OpenOrDie(dir.File("g.db"));
  Batch small;
  small.ledger.push_back(MakeRow("j-0", "reserve", 1));
  ASSERT_TRUE(store->Commit(small).ok());

  uintmax_t largest = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    largest = std::max<uintmax_t>(largest, e.file_size());
  struct rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  struct sigaction ignore = {}, old_action = {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(sigaction(SIGXFSZ, &ignore, &old_action), 0);
  struct rlimit tight = old;
  tight.rlim_cur = largest + 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &tight), 0);

  Batch big;
  for (int i = 0; i < 64; ++i) {
    auto j = MakeJob(absl::StrCat("j-big-", i), 100 + i, greenlight::v1::JOB_STATE_PENDING);
    j.mutable_spec()->set_payload(std::string(32 * 1024, 'x'));
    big.jobs.push_back(j);
  }
  big.ledger.push_back(MakeRow("j-big-0", "reserve", 5));
  absl::Status st = store->Commit(big);

  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &old), 0);
  sigaction(SIGXFSZ, &old_action, nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;

  auto snap = store->Load();
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_TRUE(snap->jobs.empty());
  EXPECT_EQ(snap->ledger.size(), 1u);
  EXPECT_TRUE(store->Commit(big).ok()) << "writes succeed again once there is room";
  snap = store->Load();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->jobs.size(), 64u);
}

}  // namespace
}  // namespace greenlight::store
