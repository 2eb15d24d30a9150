// Shared by the reliability tests (crash loop, full disk, overload): calls
// with request ids, the gRPC health check without generated stubs, ledger
// sums read straight from the SQLite file, and the invariants every test
// checks after its abuse.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/proto_time.h"
#include "greenlight/v1/budgets.grpc.pb.h"
#include "greenlight/v1/scheduler.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace greenlight::testing {

namespace rv1 = ::greenlight::v1;

inline int EnvInt(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

inline std::chrono::system_clock::time_point In(std::chrono::milliseconds d) {
  return std::chrono::system_clock::now() + d;
}

// A small job whose reservation is a few dollars (demo config, A100).
inline rv1::JobSpec ReliabilityJob(const std::string& team, const std::string& rid) {
  rv1::JobSpec s;
  s.set_team(team);
  s.set_name("rel");
  s.set_gpus(1);
  s.add_gpu_types("A100");
  s.set_reference_gpu_hours(0.5);
  s.set_request_id(rid);
  return s;
}

// grpc.health.v1.Health/Check for the whole server ("" service), over raw
// bytes (no health.proto in this toolchain). True when SERVING.
inline bool HealthServing(const std::shared_ptr<grpc::Channel>& ch,
                          std::chrono::milliseconds deadline, grpc::Status* status = nullptr) {
  grpc::GenericStub stub(ch);
  grpc::ClientContext ctx;
  ctx.set_deadline(In(deadline));
  grpc::CompletionQueue cq;
  grpc::Slice empty;
  grpc::ByteBuffer req(&empty, 1);
  auto call = stub.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", req, &cq);
  call->StartCall();
  grpc::ByteBuffer resp;
  grpc::Status st;
  call->Finish(&resp, &st, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (status) *status = st;
  if (!st.ok()) return false;
  std::vector<grpc::Slice> slices;
  if (!resp.Dump(&slices).ok()) return false;
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse{status: SERVING(1)} is field 1, varint 1.
  return bytes == std::string("\x08\x01", 2);
}

// Every job, paged.
inline bool ListAllJobs(rv1::Scheduler::Stub* stub, std::vector<rv1::Job>* out) {
  std::string token;
  do {
    grpc::ClientContext ctx;
    ctx.set_deadline(In(std::chrono::seconds(60)));
    rv1::ListJobsRequest req;
    req.set_page_size(1000);
    req.set_page_token(token);
    rv1::ListJobsResponse resp;
    grpc::Status st = stub->ListJobs(&ctx, req, &resp);
    if (!st.ok()) {
      ADD_FAILURE() << "ListJobs: " << st.error_message();
      return false;
    }
    out->insert(out->end(), resp.jobs().begin(), resp.jobs().end());
    token = resp.next_page_token();
  } while (!token.empty());
  return true;
}

inline grpc::Status GetUsage(rv1::Budgets::Stub* stub, const std::string& team, rv1::Usage* u) {
  grpc::ClientContext ctx;
  ctx.set_deadline(In(std::chrono::seconds(30)));
  rv1::GetUsageRequest req;
  req.set_team(team);
  rv1::GetUsageResponse resp;
  grpc::Status st = stub->GetUsage(&ctx, req, &resp);
  *u = resp.usage();
  return st;
}

struct LedgerSums {
  int64_t cost_spent = 0, cost_reserved = 0, carbon_spent = 0, carbon_reserved = 0;
  int64_t rows = 0;
};

// Sums of the append-only ledger for `teams` in `period` ("2026-11"), read
// from the SQLite file with the C API (a second, read-only connection: WAL
// readers never block the daemon).
inline bool ReadLedgerSums(const std::string& db_path, const std::vector<std::string>& teams,
                           const std::string& period, LedgerSums* out) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "open " << db_path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return false;
  }
  sqlite3_busy_timeout(db, 10000);
  *out = LedgerSums();
  for (const auto& team : teams) {
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(
        db,
        "SELECT COALESCE(SUM(cost_spent_micros),0), COALESCE(SUM(cost_reserved_micros),0), "
        "COALESCE(SUM(carbon_spent_mg),0), COALESCE(SUM(carbon_reserved_mg),0), COUNT(*) "
        "FROM ledger WHERE team = ? AND period = ?",
        -1, &s, nullptr);
    sqlite3_bind_text(s, 1, team.c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, period.c_str(), -1, SQLITE_TRANSIENT);
    if (sqlite3_step(s) != SQLITE_ROW) {
      ADD_FAILURE() << "ledger query: " << sqlite3_errmsg(db);
      sqlite3_finalize(s);
      sqlite3_close(db);
      return false;
    }
    out->cost_spent += sqlite3_column_int64(s, 0);
    out->cost_reserved += sqlite3_column_int64(s, 1);
    out->carbon_spent += sqlite3_column_int64(s, 2);
    out->carbon_reserved += sqlite3_column_int64(s, 3);
    out->rows += sqlite3_column_int64(s, 4);
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return true;
}

// "PRAGMA integrity_check" of a store file ("ok" when sound).
inline std::string IntegrityCheck(const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string e = sqlite3_errmsg(db);
    sqlite3_close(db);
    return "cannot open: " + e;
  }
  std::string result;
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr);
  while (sqlite3_step(s) == SQLITE_ROW) {
    if (!result.empty()) result += "\n";
    result += reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return result;
}

// The demo teams: leaves and the parent whose budget rolls them up.
inline const std::map<std::string, std::vector<std::string>>& DemoRollups() {
  static const auto* m = new std::map<std::string, std::vector<std::string>>{
      {"ml-research", {"ml-research"}},
      {"vision", {"vision"}},
      {"acme", {"acme", "ml-research", "vision"}}};
  return *m;
}

// For every demo team: spent + reserved <= budget (cost and carbon), nothing
// negative, and GetUsage equal to the ledger sums recomputed from the file.
// Call with the daemon idle (no writes in flight, time frozen).
inline void ExpectLedgerInvariants(rv1::Budgets::Stub* budgets, const std::string& db_path) {
  for (const auto& [team, members] : DemoRollups()) {
    SCOPED_TRACE("team " + team);
    rv1::Usage u;
    grpc::Status st = GetUsage(budgets, team, &u);
    ASSERT_TRUE(st.ok()) << st.error_message();
    if (u.cost_budget_micros() > 0) {
      EXPECT_LE(u.cost_spent_micros() + u.cost_reserved_micros(), u.cost_budget_micros());
    }
    if (u.carbon_budget_mg() > 0) {
      EXPECT_LE(u.carbon_spent_mg() + u.carbon_reserved_mg(), u.carbon_budget_mg());
    }
    EXPECT_GE(u.cost_reserved_micros(), 0);
    EXPECT_GE(u.carbon_reserved_mg(), 0);
    std::string period =
        absl::FormatTime("%Y-%m", FromProto(u.period_start()), absl::UTCTimeZone());
    LedgerSums sums;
    ASSERT_TRUE(ReadLedgerSums(db_path, members, period, &sums));
    EXPECT_EQ(sums.cost_spent, u.cost_spent_micros());
    EXPECT_EQ(sums.cost_reserved, u.cost_reserved_micros());
    EXPECT_EQ(sums.carbon_spent, u.carbon_spent_mg());
    EXPECT_EQ(sums.carbon_reserved, u.carbon_reserved_mg());
  }
}

}  // namespace greenlight::testing
