// The Store contract (services/store/store.h), run against every
// implementation in ContractStores(): what the scheduler core relies on when
// it commits batches and loads them back, whichever store it was given.
#include "tests/unit/store/store_contract.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/testing/status_testing.h"
#include "tests/testing/temp_dir.h"

namespace greenlight::store::testing {
namespace {

using ::greenlight::testing::TempDir;
using greenlight::v1::Job;
using greenlight::v1::JobEvent;
using greenlight::v1::NodePool;
using greenlight::v1::Team;

// Every implementation of Store. A new one (PostgreSQL) is one more line.
std::vector<StoreFactory> ContractStores() {
  return {
      MemoryStoreFactory(),
      SqliteStoreFactory(),
  };
}

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

::testing::AssertionResult ProtoEq(const google::protobuf::Message& got,
                                   const google::protobuf::Message& want) {
  google::protobuf::util::MessageDifferencer d;
  std::string diff;
  d.ReportDifferencesToString(&diff);
  if (d.Compare(want, got)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "(want -> got) " << diff;
}

google::protobuf::Timestamp Ts(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Timestamp t;
  t.set_seconds(seconds);
  t.set_nanos(nanos);
  return t;
}

// A job with every field set, so that a store dropping one is caught.
Job FullJob(const std::string& id, int64_t sequence) {
  Job j;
  j.set_id(id);
  j.set_sequence(sequence);
  j.set_state(greenlight::v1::JOB_STATE_RUNNING);
  auto* spec = j.mutable_spec();
  spec->set_team("ml");
  spec->set_name(absl::StrCat("train ", id));
  spec->set_gpus(16);
  spec->add_gpu_types("H100");
  spec->add_gpu_types("A100-80GB");
  spec->mutable_duration()->set_seconds(7200);
  spec->set_max_cost_micros(kMax);
  spec->set_max_carbon_mg(1'000'000'000'000'000);
  *spec->mutable_not_before() = Ts(1'773'100'800);
  *spec->mutable_deadline() = Ts(1'773'200'800, 5);
  spec->set_checkpointable(true);
  spec->set_priority(-1000);
  spec->add_regions("eu-north-1");
  (*spec->mutable_labels())["owner"] = "ana";
  (*spec->mutable_labels())["ünïcode"] = "välue";
  spec->set_request_id(absl::StrCat("rid-", id));
  spec->set_payload(std::string("\0\x01\xff payload", 11));
  spec->set_mode(greenlight::v1::PLACEMENT_MODE_GREENEST);
  spec->set_carbon_price_micros_per_tonne(85'000'000);
  j.set_pending(greenlight::v1::PENDING_REASON_QUOTA);
  auto* quote = j.mutable_quote();
  quote->set_feasible(true);
  quote->mutable_chosen()->set_pool_id("aws/eu-north-1/p5.48xlarge");
  quote->mutable_chosen()->set_cost_micros(412'000'000);
  quote->mutable_chosen()->set_energy_wh(1234.5);
  auto* alt = quote->add_alternatives();
  alt->set_pool_id("gcp/europe-west4/a3-highgpu-8g");
  alt->set_why_not("dearer");
  quote->mutable_baseline()->set_pool_id("aws/us-east-1/p5.48xlarge");
  auto* rej = quote->add_rejections();
  rej->set_reason("gpu_type");
  rej->set_pools(3);
  quote->set_summary("greenest feasible");
  quote->set_pools_considered(9);
  quote->set_not_now(true);
  *j.mutable_submit_time() = Ts(1'773'100'000);
  *j.mutable_start_time() = Ts(1'773'100'900);
  *j.mutable_end_time() = Ts(1'773'108'100);
  j.set_accrued_cost_micros(kMax - 1);
  j.set_accrued_carbon_mg(kMin + 1);
  j.set_accrued_energy_wh(0.1 + 0.2);
  j.set_reserved_cost_micros(-5);
  j.set_reserved_carbon_mg(7);
  j.set_message("started");
  j.set_revision(42);
  *j.mutable_accrued_until() = Ts(1'773'104'000);
  auto* placement = j.mutable_placement();
  placement->set_pool_id("aws/eu-north-1/p5.48xlarge");
  placement->set_nodes(2);
  placement->set_spot(true);
  auto* slot = placement->add_slots();
  *slot->mutable_start() = Ts(1'773'100'900);
  *slot->mutable_end() = Ts(1'773'108'100);
  placement->set_mean_intensity_g_per_kwh(31.25);
  placement->set_carbon_basis("hourly series");
  j.mutable_remaining()->set_seconds(3600);
  j.set_alerted(true);
  return j;
}

Job SmallJob(const std::string& id, int64_t sequence,
             greenlight::v1::JobState state = greenlight::v1::JOB_STATE_PENDING) {
  Job j;
  j.set_id(id);
  j.set_sequence(sequence);
  j.set_state(state);
  j.mutable_spec()->set_team("ml");
  j.mutable_spec()->set_request_id(absl::StrCat("rid-", id));
  j.mutable_spec()->set_gpus(8);
  return j;
}

JobEvent Event(int64_t revision, const std::string& job_id = "j-1") {
  JobEvent e;
  e.set_revision(revision);
  e.set_job_id(job_id);
  e.set_team("ml");
  e.set_event_type(greenlight::v1::JOB_EVENT_TYPE_STATE);
  e.set_state(greenlight::v1::JOB_STATE_RUNNING);
  *e.mutable_time() = Ts(1'773'100'000 + revision, 999'999'999);
  e.set_message(absl::StrCat("event ", revision));
  *e.mutable_job() = SmallJob(job_id, 1, greenlight::v1::JOB_STATE_RUNNING);
  return e;
}

LedgerRow Row(const std::string& job_id, const std::string& kind, int64_t cost_reserved,
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
  r.reason = absl::StrCat(kind, " for ", job_id);
  return r;
}

Team FullTeam(const std::string& name) {
  Team t;
  t.set_name(name);
  t.set_parent("acme");
  t.set_monthly_cost_budget_micros(kMax);
  t.set_monthly_carbon_budget_mg(250'000'000'000);
  t.set_gpu_quota(64);
  (*t.mutable_gpu_quota_by_type())["H100"] = 16;
  (*t.mutable_gpu_quota_by_type())["A100-80GB"] = 32;
  t.set_carbon_price_micros_per_tonne(85'000'000);
  t.set_alert_ratio(0.75);
  t.set_budget_policy(greenlight::v1::BUDGET_POLICY_STOP);
  t.set_unknown_grid("exclude");
  return t;
}

NodePool FullPool(const std::string& id) {
  NodePool p;
  p.set_id(id);
  p.set_provider("aws");
  p.set_region("eu-north-1");
  p.set_grid_zone("SE-SE3");
  p.set_instance_type("p5.48xlarge");
  p.set_gpu_type("H100");
  p.set_gpus_per_node(8);
  p.set_nodes(12);
  p.set_price_micros_per_node_hour(98'320'000);
  p.set_spot_price_micros_per_node_hour(39'000'000);
  p.set_gpu_power_w(700.5);
  p.set_pue(1.125);
  p.set_free_nodes(3);
  return p;
}

ZoneRow FullZone(const std::string& name) {
  ZoneRow z;
  z.name = name;
  z.start_us = 1'773'100'800'000'000;
  z.step_s = 900;
  z.values = {217.8, 0.0, 4999.9, 0.1 + 0.2, 1e300, 5e-324 /* subnormal */};
  z.annual_average = 338.5;
  z.source = "csv:data/carbon/DE.csv";
  z.updated_us = 1'773'100'900'123'456;
  return z;
}

TokenRow FullToken(const std::string& id) {
  TokenRow t;
  t.info.set_id(id);
  t.info.set_team("ml");
  t.info.set_admin(true);
  *t.info.mutable_created() = Ts(1'773'000'000, 123);
  t.info.set_revoked(true);
  t.info.set_description("ci runner");
  t.secret_sha256_hex = std::string(64, 'c');
  return t;
}

// Every field but the store-assigned id.
auto Fields(const LedgerRow& r) {
  return std::tie(r.time_us, r.team, r.period, r.job_id, r.kind, r.cost_spent_micros,
                  r.cost_reserved_micros, r.carbon_spent_mg, r.carbon_reserved_mg,
                  r.energy_spent_mwh, r.reason);
}
auto Fields(const ZoneRow& z) {
  return std::tie(z.name, z.start_us, z.step_s, z.values, z.annual_average, z.source, z.updated_us);
}

// store.h orders jobs (by sequence) and the ledger (by id) only; the other
// tables are looked up by key.
template <typename T, typename KeyFn>
std::map<std::string, T> ByKey(const std::vector<T>& rows, KeyFn key) {
  std::map<std::string, T> out;
  for (const T& r : rows) EXPECT_TRUE(out.emplace(key(r), r).second) << "duplicate " << key(r);
  return out;
}
auto TeamsByName(const Snapshot& s) {
  return ByKey(s.teams, [](const Team& t) { return t.name(); });
}
auto PoolsById(const Snapshot& s) {
  return ByKey(s.pools, [](const NodePool& p) { return p.id(); });
}
auto ZonesByName(const Snapshot& s) {
  return ByKey(s.zones, [](const ZoneRow& z) { return z.name; });
}
auto TokensById(const Snapshot& s) {
  return ByKey(s.tokens, [](const TokenRow& t) { return t.info.id(); });
}

std::vector<std::string> JobIds(const Snapshot& s) {
  std::vector<std::string> ids;
  for (const Job& j : s.jobs) ids.push_back(j.id());
  return ids;
}

std::vector<int64_t> Revisions(const std::vector<JobEvent>& events) {
  std::vector<int64_t> out;
  for (const JobEvent& e : events) out.push_back(e.revision());
  return out;
}

// Two snapshots hold the same rows, ledger ids included.
void ExpectSameSnapshot(const Snapshot& got, const Snapshot& want) {
  ASSERT_EQ(got.jobs.size(), want.jobs.size());
  for (size_t i = 0; i < want.jobs.size(); ++i) EXPECT_TRUE(ProtoEq(got.jobs[i], want.jobs[i]));
  ASSERT_EQ(got.ledger.size(), want.ledger.size());
  for (size_t i = 0; i < want.ledger.size(); ++i) {
    EXPECT_EQ(got.ledger[i].id, want.ledger[i].id) << i;
    EXPECT_EQ(Fields(got.ledger[i]), Fields(want.ledger[i])) << i;
  }
  auto got_teams = TeamsByName(got), want_teams = TeamsByName(want);
  ASSERT_EQ(got_teams.size(), want_teams.size());
  for (const auto& [k, t] : want_teams) EXPECT_TRUE(ProtoEq(got_teams[k], t)) << k;
  auto got_pools = PoolsById(got), want_pools = PoolsById(want);
  ASSERT_EQ(got_pools.size(), want_pools.size());
  for (const auto& [k, p] : want_pools) EXPECT_TRUE(ProtoEq(got_pools[k], p)) << k;
  auto got_zones = ZonesByName(got), want_zones = ZonesByName(want);
  ASSERT_EQ(got_zones.size(), want_zones.size());
  for (const auto& [k, z] : want_zones) EXPECT_EQ(Fields(got_zones[k]), Fields(z)) << k;
  auto got_tokens = TokensById(got), want_tokens = TokensById(want);
  ASSERT_EQ(got_tokens.size(), want_tokens.size());
  for (const auto& [k, t] : want_tokens) {
    EXPECT_TRUE(ProtoEq(got_tokens[k].info, t.info)) << k;
    EXPECT_EQ(got_tokens[k].secret_sha256_hex, t.secret_sha256_hex) << k;
  }
  EXPECT_EQ(got.last_revision, want.last_revision);
}

// A batch touching every table.
Batch EveryTableBatch() {
  Batch b;
  b.jobs.push_back(FullJob("j-1", 1));
  b.jobs.push_back(SmallJob("j-2", 2));
  b.events.push_back(Event(1, "j-1"));
  b.events.push_back(Event(2, "j-2"));
  b.ledger.push_back(Row("j-1", "reserve", 5'000'000));
  b.ledger.push_back(Row("", "budget", 0));
  b.teams.push_back(FullTeam("ml"));
  b.pools.push_back(FullPool("aws/eu-north-1/p5.48xlarge"));
  b.zones.push_back(FullZone("DE"));
  b.tokens.push_back(FullToken("t-00000001"));
  return b;
}

class StoreContract : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok()) << "no temporary directory";
    ASSERT_OK_AND_ASSIGN(store_, GetParam().open(dir_.path()));
    ASSERT_NE(store_, nullptr);
  }

  Store& store() { return *store_; }

  // Destroys the store and opens what it left. Durable stores only (see
  // StoreContractDurability).
  absl::Status Reopen() {
    store_.reset();
    auto s = GetParam().reopen(dir_.path());
    if (!s.ok()) return s.status();
    store_ = std::move(*s);
    return absl::OkStatus();
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
};

// The cases that need a store to outlive its object.
class StoreContractDurability : public StoreContract {
 protected:
  void SetUp() override {
    if (!GetParam().durable || !GetParam().reopen) {
      GTEST_SKIP() << GetParam().name << " is not durable: a reopened store starts empty by design";
    }
    StoreContract::SetUp();
  }
};

TEST_P(StoreContract, EmptyStoreLoadsEmptyAtRevisionZero) {
  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  EXPECT_TRUE(snap.jobs.empty());
  EXPECT_TRUE(snap.ledger.empty());
  EXPECT_TRUE(snap.teams.empty());
  EXPECT_TRUE(snap.pools.empty());
  EXPECT_TRUE(snap.zones.empty());
  EXPECT_TRUE(snap.tokens.empty());
  EXPECT_EQ(snap.last_revision, 0);
  ASSERT_OK_AND_ASSIGN(auto events, store().EventsAfter(0, 100));
  EXPECT_TRUE(events.empty());
}

TEST_P(StoreContract, EmptyBatchCommitsAndChangesNothing) {
  EXPECT_OK(store().Commit(Batch{})) << "on an empty store";
  ASSERT_OK(store().Commit(EveryTableBatch()));
  ASSERT_OK_AND_ASSIGN(Snapshot before, store().Load());
  EXPECT_OK(store().Commit(Batch{})) << "on a store with data";
  ASSERT_OK_AND_ASSIGN(Snapshot after, store().Load());
  ExpectSameSnapshot(after, before);
  Batch next;
  next.events.push_back(Event(3));
  EXPECT_OK(store().Commit(next)) << "a commit after an empty one";
  ASSERT_OK_AND_ASSIGN(Snapshot last, store().Load());
  EXPECT_EQ(last.last_revision, 3);
}

TEST_P(StoreContract, EveryTableRoundTripsEveryField) {
  Batch b = EveryTableBatch();
  ASSERT_OK(store().Commit(b));
  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());

  ASSERT_EQ(snap.jobs.size(), 2u);
  EXPECT_TRUE(ProtoEq(snap.jobs[0], b.jobs[0]));
  EXPECT_TRUE(ProtoEq(snap.jobs[1], b.jobs[1]));
  ASSERT_EQ(snap.ledger.size(), 2u);
  EXPECT_EQ(Fields(snap.ledger[0]), Fields(b.ledger[0]));
  EXPECT_EQ(Fields(snap.ledger[1]), Fields(b.ledger[1]));
  ASSERT_EQ(snap.teams.size(), 1u);
  EXPECT_TRUE(ProtoEq(snap.teams[0], b.teams[0]));
  ASSERT_EQ(snap.pools.size(), 1u);
  EXPECT_TRUE(ProtoEq(snap.pools[0], b.pools[0]));
  ASSERT_EQ(snap.zones.size(), 1u);
  EXPECT_EQ(Fields(snap.zones[0]), Fields(b.zones[0]));
  ASSERT_EQ(snap.tokens.size(), 1u);
  EXPECT_TRUE(ProtoEq(snap.tokens[0].info, b.tokens[0].info));
  EXPECT_EQ(snap.tokens[0].secret_sha256_hex, b.tokens[0].secret_sha256_hex);
  EXPECT_EQ(snap.last_revision, 2);

  ASSERT_OK_AND_ASSIGN(auto events, store().EventsAfter(0, 10));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(ProtoEq(events[0], b.events[0]));
  EXPECT_TRUE(ProtoEq(events[1], b.events[1]));
}

TEST_P(StoreContract, JobsComeBackInSequenceOrderWhateverTheCommitOrder) {
  Batch b;
  b.jobs.push_back(SmallJob("j-c", 30));
  b.jobs.push_back(SmallJob("j-a", 10));
  ASSERT_OK(store().Commit(b));
  Batch later;
  later.jobs.push_back(SmallJob("j-b", 20));
  later.jobs.push_back(SmallJob("j-0", 1));
  ASSERT_OK(store().Commit(later));
  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  EXPECT_EQ(JobIds(snap), (std::vector<std::string>{"j-0", "j-a", "j-b", "j-c"}));
}

// The core gives each job its own sequence, but a store must not lose a job
// whose sequence another job has (0, unset, in hand-built batches): Load
// returns everything committed. Their order among themselves is unspecified.
TEST_P(StoreContract, JobsSharingASequenceAreAllLoaded) {
  Batch b;
  b.jobs.push_back(SmallJob("j-late", 9));
  b.jobs.push_back(SmallJob("j-b", 0));
  b.jobs.push_back(SmallJob("j-a", 0));
  b.jobs.push_back(SmallJob("j-x", 5));
  b.jobs.push_back(SmallJob("j-y", 5));
  ASSERT_OK(store().Commit(b));
  Batch later;
  later.jobs.push_back(SmallJob("j-c", 0));
  later.jobs.push_back(SmallJob("j-a", 0, greenlight::v1::JOB_STATE_RUNNING));  // upsert
  ASSERT_OK(store().Commit(later));

  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  std::vector<std::string> ids = JobIds(snap);
  ASSERT_EQ(ids.size(), 6u) << ::testing::PrintToString(ids);
  std::vector<int64_t> sequences;
  for (const Job& j : snap.jobs) sequences.push_back(j.sequence());
  EXPECT_TRUE(std::is_sorted(sequences.begin(), sequences.end()))
      << ::testing::PrintToString(sequences);
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids, (std::vector<std::string>{"j-a", "j-b", "j-c", "j-late", "j-x", "j-y"}));
  for (const Job& j : snap.jobs) {
    if (j.id() == "j-a") {
      EXPECT_EQ(j.state(), greenlight::v1::JOB_STATE_RUNNING);
    }
  }
}

// The core never changes a job's sequence (Submit assigns it once), so an
// upsert rewrites the job in place: same position, new body.
TEST_P(StoreContract, JobUpsertByIdReplacesTheWholeJobAndKeepsItsPlace) {
  Batch b;
  b.jobs.push_back(FullJob("j-1", 1));
  b.jobs.push_back(SmallJob("j-2", 2));
  b.jobs.push_back(SmallJob("j-3", 3));
  ASSERT_OK(store().Commit(b));

  Job updated = FullJob("j-1", 1);
  updated.set_state(greenlight::v1::JOB_STATE_SUCCEEDED);
  updated.clear_pending();  // a cleared field stays cleared: no merge
  updated.clear_placement();
  updated.set_message("finished");
  Batch upd;
  upd.jobs.push_back(updated);
  ASSERT_OK(store().Commit(upd));

  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  EXPECT_EQ(JobIds(snap), (std::vector<std::string>{"j-1", "j-2", "j-3"}));
  ASSERT_EQ(snap.jobs.size(), 3u);
  EXPECT_TRUE(ProtoEq(snap.jobs[0], updated));
  EXPECT_TRUE(ProtoEq(snap.jobs[1], b.jobs[1]));
}

TEST_P(StoreContract, WithinOneBatchTheLastWriteOfAKeyWins) {
  Batch b;
  b.jobs.push_back(SmallJob("j-1", 1, greenlight::v1::JOB_STATE_PENDING));
  b.jobs.push_back(SmallJob("j-1", 1, greenlight::v1::JOB_STATE_RUNNING));
  Team t1 = FullTeam("ml"), t2 = FullTeam("ml");
  t2.set_gpu_quota(8);
  b.teams = {t1, t2};
  NodePool p1 = FullPool("p"), p2 = FullPool("p");
  p2.set_nodes(1);
  b.pools = {p1, p2};
  ZoneRow z1 = FullZone("DE"), z2 = FullZone("DE");
  z2.values = {1.0};
  b.zones = {z1, z2};
  TokenRow k1 = FullToken("t-1"), k2 = FullToken("t-1");
  k2.info.set_revoked(false);
  b.tokens = {k1, k2};
  ASSERT_OK(store().Commit(b));

  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  ASSERT_EQ(snap.jobs.size(), 1u);
  EXPECT_EQ(snap.jobs[0].state(), greenlight::v1::JOB_STATE_RUNNING);
  ASSERT_EQ(snap.teams.size(), 1u);
  EXPECT_TRUE(ProtoEq(snap.teams[0], t2));
  ASSERT_EQ(snap.pools.size(), 1u);
  EXPECT_TRUE(ProtoEq(snap.pools[0], p2));
  ASSERT_EQ(snap.zones.size(), 1u);
  EXPECT_EQ(Fields(snap.zones[0]), Fields(z2));
  ASSERT_EQ(snap.tokens.size(), 1u);
  EXPECT_TRUE(ProtoEq(snap.tokens[0].info, k2.info));
}

TEST_P(StoreContract, LedgerIsAppendOnlyInCommitOrderWithEveryField) {
  std::vector<LedgerRow> want;
  Batch first;
  first.ledger.push_back(Row("j-1", "reserve", 9'000'000));
  first.ledger.push_back(Row("j-1", "accrue", -2'000'000, 2'500'000));
  // The extremes of int64 in every amount: money is micro-USD, carbon mg.
  LedgerRow extreme = Row("j-1", "release", 0);
  extreme.time_us = kMax;
  extreme.cost_spent_micros = kMax;
  extreme.cost_reserved_micros = kMin;
  extreme.carbon_spent_mg = kMin;
  extreme.carbon_reserved_mg = kMax;
  extreme.energy_spent_mwh = kMin;
  extreme.reason = "";
  first.ledger.push_back(extreme);
  ASSERT_OK(store().Commit(first));
  want = first.ledger;

  // The same row again is a second row, and a caller's id is not a key: the
  // store assigns ids, it never overwrites row 1.
  Batch second;
  second.ledger.push_back(Row("j-1", "reserve", 9'000'000));
  second.ledger.back().id = 1;
  second.ledger.push_back(Row("j-1", "settle", -7'000'000));
  second.ledger.back().id = 999;
  second.ledger.push_back(Row("", "budget", 0));
  ASSERT_OK(store().Commit(second));
  want.insert(want.end(), second.ledger.begin(), second.ledger.end());

  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  ASSERT_EQ(snap.ledger.size(), want.size());
  int64_t previous_id = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_GT(snap.ledger[i].id, previous_id) << "ids ascend in commit order, row " << i;
    previous_id = snap.ledger[i].id;
    EXPECT_EQ(Fields(snap.ledger[i]), Fields(want[i])) << "row " << i;
  }
}

TEST_P(StoreContract, TeamsPoolsZonesAndTokensUpsertByKeyReplacingTheWholeRow) {
  ASSERT_OK(store().Commit(EveryTableBatch()));
  Batch b;
  Team ml;
  ml.set_name("ml");  // every other field cleared
  b.teams = {ml, FullTeam("infra")};
  NodePool pool;
  pool.set_id("aws/eu-north-1/p5.48xlarge");
  pool.set_nodes(1);
  b.pools = {pool, FullPool("gcp/europe-west4/a3-highgpu-8g")};
  ZoneRow de;
  de.name = "DE";
  de.step_s = 3600;  // and no values at all
  b.zones = {de, FullZone("FR")};
  TokenRow token;
  token.info.set_id("t-00000001");
  token.secret_sha256_hex = std::string(64, 'd');
  b.tokens = {token, FullToken("t-00000002")};
  ASSERT_OK(store().Commit(b));

  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  auto teams = TeamsByName(snap);
  ASSERT_EQ(teams.size(), 2u);
  EXPECT_TRUE(ProtoEq(teams["ml"], ml));
  EXPECT_TRUE(ProtoEq(teams["infra"], FullTeam("infra")));
  auto pools = PoolsById(snap);
  ASSERT_EQ(pools.size(), 2u);
  EXPECT_TRUE(ProtoEq(pools["aws/eu-north-1/p5.48xlarge"], pool));
  EXPECT_TRUE(
      ProtoEq(pools["gcp/europe-west4/a3-highgpu-8g"], FullPool("gcp/europe-west4/a3-highgpu-8g")));
  auto zones = ZonesByName(snap);
  ASSERT_EQ(zones.size(), 2u);
  EXPECT_EQ(Fields(zones["DE"]), Fields(de));
  EXPECT_EQ(Fields(zones["FR"]), Fields(FullZone("FR")));
  auto tokens = TokensById(snap);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_TRUE(ProtoEq(tokens["t-00000001"].info, token.info));
  EXPECT_EQ(tokens["t-00000001"].secret_sha256_hex, token.secret_sha256_hex);
  EXPECT_TRUE(ProtoEq(tokens["t-00000002"].info, FullToken("t-00000002").info));
}

TEST_P(StoreContract, EventsAfterReturnsLaterRevisionsAscendingWithinTheLimit) {
  // Revisions need not be contiguous for the store; `after` need not exist.
  Batch b;
  for (int64_t r : {1, 2, 5, 9}) b.events.push_back(Event(r));
  ASSERT_OK(store().Commit(b));
  Batch more;
  more.events.push_back(Event(10, "j-2"));
  ASSERT_OK(store().Commit(more));

  struct Case {
    int64_t after;
    int limit;
    std::vector<int64_t> want;
  };
  for (const Case& c : std::vector<Case>{
           {0, 100, {1, 2, 5, 9, 10}},
           {0, 2, {1, 2}},
           {2, 100, {5, 9, 10}},
           {3, 100, {5, 9, 10}},
           {3, 1, {5}},
           {9, 100, {10}},
           {10, 100, {}},
           {1000, 100, {}},
           {0, 0, {}},
       }) {
    auto got = store().EventsAfter(c.after, c.limit);
    ASSERT_OK(got) << "after " << c.after << " limit " << c.limit;
    EXPECT_EQ(Revisions(*got), c.want) << "after " << c.after << " limit " << c.limit;
  }
  ASSERT_OK_AND_ASSIGN(auto events, store().EventsAfter(8, 100));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(ProtoEq(events[0], b.events[3]));
  EXPECT_TRUE(ProtoEq(events[1], more.events[0]));
}

TEST_P(StoreContract, EventsAfterPagesThroughManyCommitsWithoutGapsOrDuplicates) {
  for (int c = 0; c < 3; ++c) {
    Batch b;
    for (int i = 1; i <= 10; ++i) b.events.push_back(Event(c * 10 + i));
    ASSERT_OK(store().Commit(b));
  }
  std::vector<int64_t> seen;
  int64_t after = 0;
  int pages = 0;
  for (;;) {
    ASSERT_OK_AND_ASSIGN(auto page, store().EventsAfter(after, 7));
    if (page.empty()) break;
    EXPECT_LE(page.size(), 7u);
    for (const auto& e : page) seen.push_back(e.revision());
    after = page.back().revision();
    ASSERT_LT(++pages, 10) << "paging does not end";
  }
  EXPECT_EQ(pages, 5);  // 7 + 7 + 7 + 7 + 2
  std::vector<int64_t> want;
  for (int r = 1; r <= 30; ++r) want.push_back(r);
  EXPECT_EQ(seen, want);
}

TEST_P(StoreContract, LastRevisionIsTheHighestCommittedEvent) {
  Batch b;
  for (int64_t r = 1; r <= 4; ++r) b.events.push_back(Event(r));
  ASSERT_OK(store().Commit(b));
  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  EXPECT_EQ(snap.last_revision, 4);

  Batch no_events;  // jobs and ledger rows do not move the revision
  no_events.jobs.push_back(SmallJob("j-1", 1));
  no_events.ledger.push_back(Row("j-1", "reserve", 1));
  ASSERT_OK(store().Commit(no_events));
  ASSERT_OK_AND_ASSIGN(snap, store().Load());
  EXPECT_EQ(snap.last_revision, 4);

  Batch gap;
  gap.events.push_back(Event(7));
  ASSERT_OK(store().Commit(gap));
  ASSERT_OK_AND_ASSIGN(snap, store().Load());
  EXPECT_EQ(snap.last_revision, 7);
}

// The two ways every store refuses a batch: a ledger kind outside the five
// (SQLite's CHECK) and an event revision already taken (its key).
struct BadBatchCase {
  std::string name;
  std::function<void(Batch&)> spoil;
};

std::vector<BadBatchCase> BadBatches() {
  return {
      {"unknown ledger kind",
       [](Batch& b) { b.ledger.push_back(Row("j-2", "refund", 1'000'000)); }},
      {"event revision already committed", [](Batch& b) { b.events.push_back(Event(1)); }},
      {"event revision twice in the batch", [](Batch& b) { b.events.push_back(Event(3)); }},
  };
}

// Touches every table, including an update of what the good batch wrote.
Batch BatchToSpoil() {
  Batch b;
  b.jobs.push_back(SmallJob("j-1", 1, greenlight::v1::JOB_STATE_CANCELLED));  // update
  b.jobs.push_back(SmallJob("j-2", 2));                                       // insert
  b.events.push_back(Event(3, "j-2"));
  b.ledger.push_back(Row("j-2", "reserve", 1'000'000));
  Team team = FullTeam("ml");
  team.set_gpu_quota(1);
  b.teams = {team, FullTeam("infra")};
  b.pools.push_back(FullPool("new-pool"));
  ZoneRow zone = FullZone("DE");
  zone.values = {1.0};
  b.zones.push_back(zone);
  TokenRow token = FullToken("t-00000001");
  token.info.set_revoked(false);
  b.tokens.push_back(token);
  return b;
}

TEST_P(StoreContract, ARefusedBatchWritesNothingAndTheStoreGoesOn) {
  for (const BadBatchCase& c : BadBatches()) {
    TempDir dir;
    ASSERT_TRUE(dir.ok());
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> s, GetParam().open(dir.path()));
    ASSERT_OK(s->Commit(EveryTableBatch())) << c.name;
    ASSERT_OK_AND_ASSIGN(Snapshot before, s->Load());

    Batch bad = BatchToSpoil();
    c.spoil(bad);
    EXPECT_FALSE(s->Commit(bad).ok()) << c.name << ": the batch was accepted";

    ASSERT_OK_AND_ASSIGN(Snapshot after, s->Load());
    {
      SCOPED_TRACE(c.name);
      ExpectSameSnapshot(after, before);
    }
    ASSERT_OK_AND_ASSIGN(auto events, s->EventsAfter(before.last_revision, 100));
    EXPECT_TRUE(events.empty()) << c.name << ": an event of the refused batch is visible";

    Batch good = BatchToSpoil();
    EXPECT_OK(s->Commit(good)) << c.name << ": the store refuses the repaired batch";
    ASSERT_OK_AND_ASSIGN(Snapshot last, s->Load());
    EXPECT_EQ(last.jobs.size(), 2u) << c.name;
    EXPECT_EQ(last.last_revision, 3) << c.name;
  }
}

TEST_P(StoreContract, ALargeBatchRoundTrips) {
  constexpr int kRows = 5000;
  Batch b;
  for (int i = 0; i < kRows; ++i) {
    std::string id = absl::StrCat("j-", i);
    b.jobs.push_back(i % 100 == 0 ? FullJob(id, i + 1) : SmallJob(id, i + 1));
    b.ledger.push_back(Row(id, "reserve", i));
    b.events.push_back(Event(i + 1, id));
  }
  ASSERT_OK(store().Commit(b));
  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  ASSERT_EQ(snap.jobs.size(), static_cast<size_t>(kRows));
  ASSERT_EQ(snap.ledger.size(), static_cast<size_t>(kRows));
  for (int i = 0; i < kRows; ++i) {
    ASSERT_TRUE(ProtoEq(snap.jobs[i], b.jobs[i])) << "job " << i;
    ASSERT_EQ(Fields(snap.ledger[i]), Fields(b.ledger[i])) << "row " << i;
  }
  EXPECT_EQ(snap.last_revision, kRows);
  ASSERT_OK_AND_ASSIGN(auto events, store().EventsAfter(kRows - 3, 100));
  EXPECT_EQ(Revisions(events), (std::vector<int64_t>{kRows - 2, kRows - 1, kRows}));
  ASSERT_OK_AND_ASSIGN(auto all, store().EventsAfter(0, kRows + 1));
  EXPECT_EQ(all.size(), static_cast<size_t>(kRows));
}

// The core loads while it may commit (restarts, admin reads): a Load sees
// each batch whole or not at all.
TEST_P(StoreContract, LoadSeesWholeBatchesWhileAnotherThreadCommits) {
  constexpr int kCommits = 100;
  std::atomic<bool> done{false};
  std::atomic<int> loads{0}, torn{0}, failed{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto snap = store().Load();
      if (!snap.ok()) {
        ++failed;
        continue;
      }
      ++loads;
      // Batch i holds job i, ledger row i, event i and team quota i.
      const int64_t n = snap->last_revision;
      const bool whole = static_cast<int64_t>(snap->jobs.size()) == n &&
                         static_cast<int64_t>(snap->ledger.size()) == n &&
                         (n == 0 ? snap->teams.empty()
                                 : snap->teams.size() == 1 && snap->teams[0].gpu_quota() == n);
      if (!whole) ++torn;
    }
  });
  for (int i = 1; i <= kCommits; ++i) {
    Batch b;
    b.jobs.push_back(SmallJob(absl::StrCat("j-", i), i));
    b.ledger.push_back(Row(absl::StrCat("j-", i), "reserve", i));
    b.events.push_back(Event(i));
    Team t;
    t.set_name("ml");
    t.set_gpu_quota(i);
    b.teams.push_back(t);
    EXPECT_OK(store().Commit(b)) << i;
  }
  done = true;
  reader.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(torn.load(), 0) << "of " << loads.load() << " loads";
  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  EXPECT_EQ(snap.last_revision, kCommits);
  EXPECT_EQ(snap.jobs.size(), static_cast<size_t>(kCommits));
}

TEST_P(StoreContractDurability, EverythingCommittedSurvivesAReopen) {
  ASSERT_OK(store().Commit(EveryTableBatch()));
  Batch upd;
  upd.jobs.push_back(SmallJob("j-1", 1, greenlight::v1::JOB_STATE_SUCCEEDED));
  upd.ledger.push_back(Row("j-1", "accrue", -1, 1));
  upd.events.push_back(Event(3));
  ASSERT_OK(store().Commit(upd));
  ASSERT_OK_AND_ASSIGN(Snapshot before, store().Load());
  ASSERT_OK_AND_ASSIGN(auto events_before, store().EventsAfter(0, 100));

  ASSERT_OK(Reopen());
  ASSERT_OK_AND_ASSIGN(Snapshot after, store().Load());
  ExpectSameSnapshot(after, before);
  ASSERT_OK_AND_ASSIGN(auto events_after, store().EventsAfter(0, 100));
  ASSERT_EQ(events_after.size(), events_before.size());
  for (size_t i = 0; i < events_before.size(); ++i)
    EXPECT_TRUE(ProtoEq(events_after[i], events_before[i]));
}

TEST_P(StoreContractDurability, AReopenedStoreGoesOnWhereItStopped) {
  ASSERT_OK(store().Commit(EveryTableBatch()));
  ASSERT_OK_AND_ASSIGN(Snapshot before, store().Load());
  ASSERT_OK(Reopen());

  Batch b;
  b.jobs.push_back(SmallJob("j-1", 1, greenlight::v1::JOB_STATE_FAILED));  // upsert
  b.jobs.push_back(SmallJob("j-0", 0));                                    // sorts first
  b.ledger.push_back(Row("j-1", "release", -5'000'000));
  b.events.push_back(Event(3));
  ASSERT_OK(store().Commit(b));
  EXPECT_FALSE(store()
                   .Commit([] {
                     Batch dup;
                     dup.events.push_back(Event(2));  // committed before the reopen
                     return dup;
                   }())
                   .ok())
      << "a revision from before the reopen is still taken";

  ASSERT_OK_AND_ASSIGN(Snapshot snap, store().Load());
  EXPECT_EQ(JobIds(snap), (std::vector<std::string>{"j-0", "j-1", "j-2"}));
  ASSERT_EQ(snap.jobs.size(), 3u);
  EXPECT_EQ(snap.jobs[1].state(), greenlight::v1::JOB_STATE_FAILED);
  ASSERT_EQ(snap.ledger.size(), before.ledger.size() + 1);
  EXPECT_GT(snap.ledger.back().id, before.ledger.back().id) << "a ledger id was reused";
  EXPECT_EQ(Fields(snap.ledger.back()), Fields(b.ledger[0]));
  EXPECT_EQ(snap.last_revision, 3);
}

TEST_P(StoreContractDurability, ARefusedBatchIsStillAbsentAfterAReopen) {
  ASSERT_OK(store().Commit(EveryTableBatch()));
  ASSERT_OK_AND_ASSIGN(Snapshot before, store().Load());
  Batch bad = BatchToSpoil();
  bad.ledger.push_back(Row("j-2", "refund", 1));
  ASSERT_FALSE(store().Commit(bad).ok());
  ASSERT_OK(Reopen());
  ASSERT_OK_AND_ASSIGN(Snapshot after, store().Load());
  ExpectSameSnapshot(after, before);
}

TEST_P(StoreContractDurability, ALargeBatchSurvivesAReopen) {
  constexpr int kRows = 5000;
  Batch b;
  for (int i = 0; i < kRows; ++i) {
    std::string id = absl::StrCat("j-", i);
    b.jobs.push_back(SmallJob(id, i + 1));
    b.ledger.push_back(Row(id, "reserve", i));
    b.events.push_back(Event(i + 1, id));
  }
  ASSERT_OK(store().Commit(b));
  ASSERT_OK_AND_ASSIGN(Snapshot before, store().Load());
  ASSERT_OK(Reopen());
  ASSERT_OK_AND_ASSIGN(Snapshot after, store().Load());
  ExpectSameSnapshot(after, before);
  ASSERT_OK_AND_ASSIGN(auto all, store().EventsAfter(0, kRows + 1));
  EXPECT_EQ(all.size(), static_cast<size_t>(kRows));
}

std::string FactoryName(const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

INSTANTIATE_TEST_SUITE_P(AllStores, StoreContract, ::testing::ValuesIn(ContractStores()),
                         FactoryName);
INSTANTIATE_TEST_SUITE_P(AllStores, StoreContractDurability, ::testing::ValuesIn(ContractStores()),
                         FactoryName);

}  // namespace
}  // namespace greenlight::store::testing
