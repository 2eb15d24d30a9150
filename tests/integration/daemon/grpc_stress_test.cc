// Budget invariants against the real greenlightd over gRPC (issue 4): 16
// clients submit and cancel with random caps while budgets and quotas are
// raised and a zone's carbon series is replaced meanwhile; an observer checks
// usage at every point; at the end the ledger in the SQLite file is summed
// independently and compared with GetUsage.
#include <sqlite3.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/daemon.h"

namespace greenlight {
namespace {

using ::greenlight::testing::Daemon;
using ::greenlight::testing::TempDir;
namespace v1 = ::greenlight::v1;

const char* kTeams[] = {"ml-research", "vision"};

v1::GetUsageResponse Usage(v1::Budgets::Stub* b, const std::string& team) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::GetUsageRequest req;
  req.set_team(team);
  v1::GetUsageResponse resp;
  EXPECT_TRUE(b->GetUsage(&ctx, req, &resp).ok());
  return resp;
}

TEST(GrpcStress, SixteenClientsNeverBreakBudgetsQuotasOrTheLedger) {
  TempDir dir;
  const std::string db = dir.path() + "/gl.db";
  Daemon d(db);
  ASSERT_TRUE(d.Start());
  auto budgets = v1::Budgets::NewStub(d.channel());
  // Tight budgets so that admission is often refused for money or carbon.
  for (const char* t : kTeams) {
    grpc::ClientContext ctx;
    v1::SetTeamRequest req;
    req.mutable_team()->set_name(t);
    req.mutable_team()->set_parent("acme");
    req.mutable_team()->set_monthly_cost_budget_micros(3'000'000'000);  // $3,000
    req.mutable_team()->set_monthly_carbon_budget_mg(300'000'000);      // 300 kg
    req.mutable_team()->set_gpu_quota(16);
    v1::SetTeamResponse resp;
    ASSERT_TRUE(budgets->SetTeam(&ctx, req, &resp).ok());
  }
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, refused{0}, cancelled{0}, violations{0};
  std::mutex mu;
  std::string first_violation;
  auto violation = [&](const std::string& what) {
    std::lock_guard<std::mutex> l(mu);
    if (violations++ == 0) first_violation = what;
  };
  std::vector<std::thread> threads;
  for (int c = 0; c < 16; ++c) {
    threads.emplace_back([&, c] {
      std::mt19937 r(1000 + c);
      auto stub = v1::Scheduler::NewStub(d.channel());
      std::vector<std::string> mine;
      for (int i = 0; i < 150; ++i) {
        v1::SubmitJobRequest req;
        auto* s = req.mutable_spec();
        s->set_team(kTeams[r() % 2]);
        s->set_gpus(1 + r() % 8);
        s->set_reference_gpu_hours(1 + r() % 40);
        if (r() % 2) s->set_max_cost_micros(50'000'000 + (r() % 400) * 1'000'000);
        if (r() % 3 == 0) s->set_max_carbon_mg(1'000'000 + (r() % 50) * 1'000'000);
        s->set_request_id(absl::StrCat("stress-", c, "-", i));
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
        v1::SubmitJobResponse resp;
        grpc::Status st = stub->SubmitJob(&ctx, req, &resp);
        if (st.ok()) {
          ++ok;
          mine.push_back(resp.job().id());
        } else if (st.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
                   st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
          ++refused;
        } else {
          violation(
              absl::StrCat("unexpected submit status ", st.error_code(), ": ", st.error_message()));
        }
        if (!mine.empty() && r() % 3 == 0) {
          grpc::ClientContext cctx;
          v1::CancelJobRequest creq;
          creq.set_job_id(mine[r() % mine.size()]);
          v1::CancelJobResponse cresp;
          if (stub->CancelJob(&cctx, creq, &cresp).ok()) ++cancelled;
        }
      }
    });
  }
  // Budgets and quotas only go up here, so "spent + reserved <= budget" must
  // hold at every observation (a lowered budget may legitimately be exceeded).
  std::thread raiser([&] {
    std::mt19937 r(7);
    auto b = v1::Budgets::NewStub(d.channel());
    for (int i = 0; !stop && i < 40; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      grpc::ClientContext gctx;
      v1::GetTeamRequest greq;
      greq.set_name(kTeams[r() % 2]);
      v1::GetTeamResponse team;
      if (!b->GetTeam(&gctx, greq, &team).ok()) continue;
      v1::Team t = team.team();
      t.set_monthly_cost_budget_micros(t.monthly_cost_budget_micros() + 100'000'000);
      t.set_monthly_carbon_budget_mg(t.monthly_carbon_budget_mg() + 10'000'000);
      t.set_gpu_quota(t.gpu_quota() + 1);
      grpc::ClientContext sctx;
      v1::SetTeamRequest sreq;
      *sreq.mutable_team() = t;
      v1::SetTeamResponse sresp;
      if (!b->SetTeam(&sctx, sreq, &sresp).ok()) violation("SetTeam failed");
    }
  });
  std::thread carbon([&] {
    std::mt19937 r(9);
    auto inv = v1::Inventory::NewStub(d.channel());
    for (int i = 0; !stop && i < 20; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      v1::SetCarbonSeriesRequest req;
      req.set_zone("DE");
      int64_t start = absl::ToUnixSeconds(absl::Now()) / 3600 * 3600 - 24 * 3600;
      for (int h = 0; h < 24 * 30; ++h) {
        auto* p = req.add_points();
        p->mutable_time()->set_seconds(start + h * 3600);
        p->set_g_per_kwh(100 + r() % 400);
      }
      grpc::ClientContext ctx;
      v1::SetCarbonSeriesResponse resp;
      grpc::Status st = inv->SetCarbonSeries(&ctx, req, &resp);
      if (!st.ok()) violation(absl::StrCat("SetCarbonSeries: ", st.error_message()));
    }
  });
  std::thread observer([&] {
    auto b = v1::Budgets::NewStub(d.channel());
    while (!stop) {
      for (const char* t : {"ml-research", "vision", "acme"}) {
        v1::Usage u = Usage(b.get(), t).usage();
        if (u.cost_budget_micros() > 0 &&
            u.cost_spent_micros() + u.cost_reserved_micros() > u.cost_budget_micros())
          violation(absl::StrCat(t, ": cost spent + reserved > budget"));
        if (u.carbon_budget_mg() > 0 &&
            u.carbon_spent_mg() + u.carbon_reserved_mg() > u.carbon_budget_mg())
          violation(absl::StrCat(t, ": carbon spent + reserved > budget"));
        if (u.gpu_quota() > 0 && u.running_gpus() > u.gpu_quota())
          violation(absl::StrCat(t, ": running GPUs over quota"));
        if (u.cost_reserved_micros() < 0 || u.carbon_reserved_mg() < 0)
          violation(absl::StrCat(t, ": negative reservation"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (auto& t : threads) t.join();
  stop = true;
  raiser.join();
  carbon.join();
  observer.join();
  EXPECT_EQ(violations.load(), 0) << first_violation;
  EXPECT_GT(ok.load(), 100);
  EXPECT_GT(refused.load(), 0) << "budgets should have refused some submits";

  // The ledger in the file, summed independently, equals GetUsage.
  std::map<std::pair<std::string, std::string>, std::pair<int64_t, int64_t>> sums;
  int64_t jobs_with_two_reserves = 0;
  d.Terminate();  // drain, so the file is final
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(db.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  ASSERT_EQ(
      sqlite3_prepare_v2(raw,
                         "SELECT team, period, SUM(cost_spent_micros + cost_reserved_micros), "
                         "SUM(carbon_spent_mg + carbon_reserved_mg) FROM ledger GROUP BY 1, 2",
                         -1, &s, nullptr),
      SQLITE_OK);
  while (sqlite3_step(s) == SQLITE_ROW) {
    sums[{reinterpret_cast<const char*>(sqlite3_column_text(s, 0)),
          reinterpret_cast<const char*>(sqlite3_column_text(s, 1))}] = {sqlite3_column_int64(s, 2),
                                                                        sqlite3_column_int64(s, 3)};
  }
  sqlite3_finalize(s);
  ASSERT_EQ(
      sqlite3_prepare_v2(raw,
                         "SELECT COUNT(*) FROM (SELECT job_id FROM ledger WHERE kind = 'reserve' "
                         "GROUP BY job_id HAVING COUNT(*) > 1)",
                         -1, &s, nullptr),
      SQLITE_OK);
  ASSERT_EQ(sqlite3_step(s), SQLITE_ROW);
  jobs_with_two_reserves = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(raw);
  EXPECT_EQ(jobs_with_two_reserves, 0) << "a job was reserved twice";

  Daemon d2(db);
  ASSERT_TRUE(d2.Start());
  auto b2 = v1::Budgets::NewStub(d2.channel());
  for (const char* t : kTeams) {
    // The period GetUsage reports (the restarted server's clock) and the
    // file's sums for that same period.
    v1::Usage u = Usage(b2.get(), t).usage();
    absl::CivilSecond cs =
        absl::ToCivilSecond(absl::FromUnixSeconds(u.period_start().seconds()), absl::UTCTimeZone());
    std::string period = absl::StrFormat("%04d-%02d", cs.year(), cs.month());
    auto it = sums.find({t, period});
    int64_t cost = it == sums.end() ? 0 : it->second.first;
    int64_t carbon = it == sums.end() ? 0 : it->second.second;
    EXPECT_EQ(u.cost_spent_micros() + u.cost_reserved_micros(), cost) << t << " " << period;
    EXPECT_EQ(u.carbon_spent_mg() + u.carbon_reserved_mg(), carbon) << t << " " << period;
  }
}

}  // namespace
}  // namespace greenlight
