// BudgetLedger: reserve / accrue / release per team and UTC month, parent
// rollup, clipping at the budget, month-spanning accrual and replay.
#include "services/budget/ledger.h"

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/budget/period.h"

namespace greenlight::budget {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

constexpr int64_t kUsd = 1'000'000;  // micros
constexpr int64_t kKg = 1'000'000;   // mg

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, 0), absl::UTCTimeZone());
}
const absl::Time kMarch = Utc(2026, 3, 10, 8);

greenlight::v1::Team Team(const std::string& name, int64_t cost_micros, int64_t carbon_mg = 0,
                          const std::string& parent = "") {
  greenlight::v1::Team t;
  t.set_name(name);
  t.set_parent(parent);
  t.set_monthly_cost_budget_micros(cost_micros);
  t.set_monthly_carbon_budget_mg(carbon_mg);
  return t;
}

int64_t Used(const Totals& t) { return t.cost_spent_micros + t.cost_reserved_micros; }
int64_t UsedCarbon(const Totals& t) { return t.carbon_spent_mg + t.carbon_reserved_mg; }

TEST(BudgetLedgerReserve, AddsToReservedAndOpensTheJob) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd, 20 * kKg));
  auto rows = l.Reserve("j-1", "ml", kMarch, 60 * kUsd, 10 * kKg, "admission quote");
  ASSERT_TRUE(rows.ok()) << rows.status();
  ASSERT_THAT(*rows, SizeIs(1));
  const store::LedgerRow& r = (*rows)[0];
  EXPECT_EQ(r.kind, greenlight::v1::LEDGER_KIND_RESERVE);
  EXPECT_EQ(r.team, "ml");
  EXPECT_EQ(r.period, "2026-03");
  EXPECT_EQ(r.job_id, "j-1");
  EXPECT_EQ(r.time_us, absl::ToUnixMicros(kMarch));
  EXPECT_EQ(r.cost_reserved_micros, 60 * kUsd);
  EXPECT_EQ(r.carbon_reserved_mg, 10 * kKg);
  EXPECT_EQ(r.cost_spent_micros, 0);
  Totals t = l.TeamTotals("ml", "2026-03");
  EXPECT_EQ(t.cost_reserved_micros, 60 * kUsd);
  EXPECT_EQ(t.carbon_reserved_mg, 10 * kKg);
  EXPECT_EQ(l.CostHeadroom("ml", "2026-03"), 40 * kUsd);
  EXPECT_EQ(l.CarbonHeadroom("ml", "2026-03"), 10 * kKg);
  EXPECT_EQ(l.CostHeadroom("ml", "2026-04"), 100 * kUsd) << "another month is untouched";
  const JobAccount* a = l.FindJob("j-1");
  ASSERT_NE(a, nullptr);
  EXPECT_TRUE(a->open);
  EXPECT_EQ(a->reserve_period, "2026-03");
  EXPECT_EQ(a->cost_reserved_micros, 60 * kUsd);
}

TEST(BudgetLedgerReserve, ExactlyTheRemainingBudgetFits) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 60 * kUsd, 0, "").ok());
  ASSERT_TRUE(l.Reserve("j-2", "ml", kMarch, 40 * kUsd, 0, "").ok());
  EXPECT_EQ(l.CostHeadroom("ml", "2026-03"), 0);
  EXPECT_FALSE(l.Reserve("j-3", "ml", kMarch, 1, 0, "").ok());
}

TEST(BudgetLedgerReserve, ShortBudgetIsResourceExhaustedNamingTeamBudgetAndShortfall) {
  struct Case {
    std::string name;
    int64_t cost, carbon;
    std::vector<std::string> want;
  };
  for (const Case& c : std::vector<Case>{
           {"cost",
            50 * kUsd,
            0,
            {"team 'ml'", "monthly cost budget $100.00", "2026-03", "spent $0.00",
             "reserved $60.00", "this job $50.00", "exceeds it by $10.00"}},
           {"carbon",
            0,
            6 * kKg,
            {"team 'ml'", "monthly carbon budget 20.000 kgCO2e", "reserved 15.000 kgCO2e",
             "exceeds it by 1.000 kgCO2e"}},
       }) {
    BudgetLedger l;
    l.SetTeam(Team("ml", 100 * kUsd, 20 * kKg));
    ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 60 * kUsd, 15 * kKg, "").ok());
    Totals before = l.TeamTotals("ml", "2026-03");
    auto rows = l.Reserve("j-2", "ml", kMarch, c.cost, c.carbon, "");
    ASSERT_FALSE(rows.ok()) << c.name;
    EXPECT_EQ(rows.status().code(), absl::StatusCode::kResourceExhausted) << c.name;
    for (const auto& w : c.want)
      EXPECT_THAT(std::string(rows.status().message()), HasSubstr(w)) << c.name;
    EXPECT_EQ(l.FindJob("j-2"), nullptr) << c.name << ": nothing recorded";
    EXPECT_EQ(Used(l.TeamTotals("ml", "2026-03")), Used(before)) << c.name;
    absl::Status check = l.CheckHeadroom("ml", "2026-03", c.cost, c.carbon);
    EXPECT_EQ(check, rows.status()) << c.name << ": Reserve reports what CheckHeadroom says";
  }
}

TEST(BudgetLedgerReserve, ZeroBudgetMeansUnlimited) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 0, 0));
  EXPECT_EQ(l.CostHeadroom("ml", "2026-03"), -1);
  EXPECT_EQ(l.CarbonHeadroom("ml", "2026-03"), -1);
  EXPECT_TRUE(l.Reserve("j-1", "ml", kMarch, 1'000'000'000 * kUsd, 1'000'000 * kKg, "").ok());
}

TEST(BudgetLedgerRollup, ChildSpendCountsAgainstTheParent) {
  BudgetLedger l;
  l.SetTeam(Team("acme", 100 * kUsd));
  l.SetTeam(Team("ml", 80 * kUsd, 0, "acme"));
  l.SetTeam(Team("cv", 0, 0, "acme"));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 70 * kUsd, 0, "").ok());
  EXPECT_EQ(l.RollupTotals("acme", "2026-03").cost_reserved_micros, 70 * kUsd);
  EXPECT_EQ(l.TeamTotals("acme", "2026-03").cost_reserved_micros, 0) << "own rows only";
  EXPECT_EQ(l.CostHeadroom("ml", "2026-03"), 10 * kUsd);  // its own budget binds
  EXPECT_EQ(l.CostHeadroom("cv", "2026-03"), 30 * kUsd);  // the parent's binds

  AccrueResult r = l.Accrue("j-1", kMarch, kMarch, 70 * kUsd, 0, 0, "running");
  EXPECT_EQ(r.fraction, 1.0);
  EXPECT_EQ(l.RollupTotals("acme", "2026-03").cost_spent_micros, 70 * kUsd);
  EXPECT_EQ(l.RollupTotals("acme", "2026-03").cost_reserved_micros, 0);
}

TEST(BudgetLedgerRollup, ParentBudgetBlocksAChildWithRoomLeft) {
  BudgetLedger l;
  l.SetTeam(Team("acme", 100 * kUsd));
  l.SetTeam(Team("ml", 80 * kUsd, 0, "acme"));
  l.SetTeam(Team("cv", 0, 0, "acme"));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 70 * kUsd, 0, "").ok());
  auto rows = l.Reserve("j-2", "cv", kMarch, 40 * kUsd, 0, "");
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(rows.status().message()), HasSubstr("parent 'acme'"));
  EXPECT_THAT(std::string(rows.status().message()), HasSubstr("exceeds it by $10.00"));
  EXPECT_TRUE(l.Reserve("j-2", "cv", kMarch, 30 * kUsd, 0, "").ok());
  EXPECT_EQ(Used(l.RollupTotals("acme", "2026-03")), 100 * kUsd);
}

TEST(BudgetLedgerAccrue, WithinTheReservationMovesReservedToSpent) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 50 * kUsd, 5 * kKg, "").ok());
  AccrueResult r = l.Accrue("j-1", kMarch, kMarch, 40 * kUsd, 4 * kKg, 1234, "running");
  EXPECT_EQ(r.fraction, 1.0);
  EXPECT_TRUE(r.limit.empty());
  ASSERT_THAT(r.rows, SizeIs(1));
  EXPECT_EQ(r.rows[0].kind, greenlight::v1::LEDGER_KIND_ACCRUE);
  EXPECT_EQ(r.rows[0].cost_spent_micros, 40 * kUsd);
  EXPECT_EQ(r.rows[0].cost_reserved_micros, -40 * kUsd);
  EXPECT_EQ(r.rows[0].carbon_spent_mg, 4 * kKg);
  EXPECT_EQ(r.rows[0].carbon_reserved_mg, -4 * kKg);
  EXPECT_EQ(r.rows[0].energy_spent_mwh, 1234);
  Totals t = l.TeamTotals("ml", "2026-03");
  EXPECT_EQ(t.cost_spent_micros, 40 * kUsd);
  EXPECT_EQ(t.cost_reserved_micros, 10 * kUsd);
  EXPECT_EQ(t.energy_spent_mwh, 1234);
  const JobAccount* a = l.FindJob("j-1");
  EXPECT_EQ(a->cost_accrued_micros, 40 * kUsd);
  EXPECT_EQ(a->cost_reserved_micros, 10 * kUsd);
  // Beyond the reservation but within the budget: charged in full.
  r = l.Accrue("j-1", kMarch, kMarch, 30 * kUsd, 0, 0, "running");
  EXPECT_EQ(r.fraction, 1.0);
  t = l.TeamTotals("ml", "2026-03");
  EXPECT_EQ(t.cost_spent_micros, 70 * kUsd);
  EXPECT_EQ(t.cost_reserved_micros, 0);
  EXPECT_EQ(a->cost_reserved_micros, 0);
}

TEST(BudgetLedgerAccrue, ClipsAtTheHeadroomAndNeverOvershoots) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 50 * kUsd, 0, "").ok());
  ASSERT_TRUE(l.Reserve("j-2", "ml", kMarch, 30 * kUsd, 0, "").ok());
  ASSERT_EQ(l.Accrue("j-1", kMarch, kMarch, 40 * kUsd, 0, 0, "").fraction, 1.0);
  // used = 40 spent + 10 + 30 reserved = 80: room for the 10 still reserved
  // plus 20 more, i.e. 30 of the 80 asked.
  AccrueResult r = l.Accrue("j-1", kMarch, kMarch, 80 * kUsd, 8000, 1600, "");
  EXPECT_DOUBLE_EQ(r.fraction, 30.0 / 80.0);
  EXPECT_EQ(r.limit, "team cost budget");
  int64_t cost = 0, carbon = 0, energy = 0;
  for (const auto& row : r.rows) {
    cost += row.cost_spent_micros;
    carbon += row.carbon_spent_mg;
    energy += row.energy_spent_mwh;
  }
  EXPECT_EQ(cost, 30 * kUsd);
  EXPECT_EQ(carbon, 3000) << "carbon and energy are cut by the same fraction";
  EXPECT_EQ(energy, 600);
  EXPECT_EQ(Used(l.TeamTotals("ml", "2026-03")), 100 * kUsd);
  // Nothing left: the next charge is refused entirely.
  r = l.Accrue("j-1", kMarch, kMarch, 5 * kUsd, 0, 0, "");
  EXPECT_EQ(r.fraction, 0.0);
  EXPECT_EQ(Used(l.TeamTotals("ml", "2026-03")), 100 * kUsd);
  EXPECT_LE(l.FindJob("j-1")->cost_accrued_micros, 70 * kUsd);
}

TEST(BudgetLedgerAccrue, CarbonBudgetClipsCostToo) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 0, 10 * kKg));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 0, 4 * kKg, "").ok());
  AccrueResult r = l.Accrue("j-1", kMarch, kMarch, 500, 12 * kKg, 100, "");
  EXPECT_NEAR(r.fraction, 10.0 / 12.0, 1e-12);
  EXPECT_EQ(r.limit, "team carbon budget");
  Totals t = l.TeamTotals("ml", "2026-03");
  EXPECT_LE(UsedCarbon(t), 10 * kKg);
  EXPECT_GE(UsedCarbon(t), 10 * kKg - 1);
  EXPECT_LE(t.cost_spent_micros, 417);
  EXPECT_GE(t.cost_spent_micros, 416);
}

TEST(BudgetLedgerAccrue, ParentBudgetClipsAChild) {
  BudgetLedger l;
  l.SetTeam(Team("acme", 100 * kUsd));
  l.SetTeam(Team("ml", 0, 0, "acme"));
  l.SetTeam(Team("cv", 0, 0, "acme"));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 50 * kUsd, 0, "").ok());
  ASSERT_TRUE(l.Reserve("j-2", "cv", kMarch, 40 * kUsd, 0, "").ok());
  AccrueResult r = l.Accrue("j-1", kMarch, kMarch, 80 * kUsd, 0, 0, "");
  EXPECT_LT(r.fraction, 1.0);
  EXPECT_EQ(l.TeamTotals("ml", "2026-03").cost_spent_micros, 60 * kUsd);
  EXPECT_EQ(Used(l.RollupTotals("acme", "2026-03")), 100 * kUsd);
}

TEST(BudgetLedgerAccrue, NegativeOrUnknownChargesWriteNothing) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 50 * kUsd, 0, "").ok());
  EXPECT_TRUE(l.Accrue("j-1", kMarch, kMarch, -5, 0, 0, "").rows.empty());
  EXPECT_TRUE(l.Accrue("j-1", kMarch, kMarch, 0, -5, 0, "").rows.empty());
  EXPECT_TRUE(l.Accrue("j-nope", kMarch, kMarch, 5, 5, 5, "").rows.empty());
  EXPECT_EQ(l.TeamTotals("ml", "2026-03").cost_spent_micros, 0);
}

TEST(BudgetLedgerAccrue, EachMonthIsChargedForItsOwnPartAndTheReservationShrinks) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  const absl::Time reserve_at = Utc(2026, 3, 31, 22);
  ASSERT_TRUE(l.Reserve("j-1", "ml", reserve_at, 50 * kUsd, 0, "").ok());
  const absl::Time now = Utc(2026, 4, 1, 0, 30);
  // March's hour.
  AccrueResult r = l.Accrue("j-1", Utc(2026, 3, 31, 23), now, 20 * kUsd, 0, 0, "");
  EXPECT_EQ(r.fraction, 1.0);
  // April's hour: spent in April, the March reservation shrinks by as much.
  r = l.Accrue("j-1", Utc(2026, 4, 1, 0), now, 20 * kUsd, 0, 0, "");
  EXPECT_EQ(r.fraction, 1.0);
  ASSERT_THAT(r.rows, SizeIs(2));
  EXPECT_EQ(r.rows[0].period, "2026-04");
  EXPECT_EQ(r.rows[0].cost_spent_micros, 20 * kUsd);
  EXPECT_EQ(r.rows[0].cost_reserved_micros, 0);
  EXPECT_EQ(r.rows[1].period, "2026-03");
  EXPECT_EQ(r.rows[1].cost_spent_micros, 0);
  EXPECT_EQ(r.rows[1].cost_reserved_micros, -20 * kUsd);
  EXPECT_THAT(r.rows[1].reason, HasSubstr("charged in 2026-04"));

  Totals march = l.TeamTotals("ml", "2026-03");
  Totals april = l.TeamTotals("ml", "2026-04");
  EXPECT_EQ(march.cost_spent_micros, 20 * kUsd);
  EXPECT_EQ(march.cost_reserved_micros, 10 * kUsd);
  EXPECT_EQ(april.cost_spent_micros, 20 * kUsd);
  EXPECT_EQ(april.cost_reserved_micros, 0);
  EXPECT_EQ(l.FindJob("j-1")->cost_accrued_micros, 40 * kUsd);
  EXPECT_EQ(l.FindJob("j-1")->cost_reserved_micros, 10 * kUsd);

  auto rel = l.Release("j-1", now, greenlight::v1::LEDGER_KIND_SETTLE, "completed");
  ASSERT_THAT(rel, SizeIs(1));
  EXPECT_EQ(rel[0].period, "2026-03") << "the rest is given back where it was reserved";
  EXPECT_EQ(rel[0].cost_reserved_micros, -10 * kUsd);
  EXPECT_EQ(l.TeamTotals("ml", "2026-03").cost_reserved_micros, 0);
  EXPECT_EQ(l.TeamTotals("ml", "2026-04").cost_reserved_micros, 0);
}

TEST(BudgetLedgerAccrue, TheNewMonthsBudgetClipsTheNewMonthsPart) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  ASSERT_TRUE(l.Reserve("j-1", "ml", Utc(2026, 3, 31, 22), 50 * kUsd, 0, "").ok());
  ASSERT_TRUE(l.Reserve("j-2", "ml", Utc(2026, 4, 1, 0), 90 * kUsd, 0, "").ok());
  AccrueResult r = l.Accrue("j-1", Utc(2026, 4, 1, 0), Utc(2026, 4, 1, 1), 20 * kUsd, 0, 0, "");
  EXPECT_DOUBLE_EQ(r.fraction, 0.5);
  EXPECT_EQ(Used(l.TeamTotals("ml", "2026-04")), 100 * kUsd);
  EXPECT_EQ(l.TeamTotals("ml", "2026-03").cost_reserved_micros, 40 * kUsd);
}

TEST(BudgetLedgerRelease, GivesBackTheRestOnceAndIsIdempotent) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd, 10 * kKg));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 50 * kUsd, 5 * kKg, "").ok());
  l.Accrue("j-1", kMarch, kMarch, 20 * kUsd, 1 * kKg, 0, "");
  auto rows = l.Release("j-1", kMarch, greenlight::v1::LEDGER_KIND_RELEASE, "cancelled");
  ASSERT_THAT(rows, SizeIs(1));
  EXPECT_EQ(rows[0].kind, greenlight::v1::LEDGER_KIND_RELEASE);
  EXPECT_EQ(rows[0].cost_reserved_micros, -30 * kUsd);
  EXPECT_EQ(rows[0].carbon_reserved_mg, -4 * kKg);
  EXPECT_EQ(rows[0].cost_spent_micros, 0);
  Totals after = l.TeamTotals("ml", "2026-03");
  EXPECT_EQ(after.cost_reserved_micros, 0);
  EXPECT_EQ(after.cost_spent_micros, 20 * kUsd);
  EXPECT_FALSE(l.FindJob("j-1")->open);

  EXPECT_TRUE(l.Release("j-1", kMarch, greenlight::v1::LEDGER_KIND_RELEASE, "again").empty());
  EXPECT_TRUE(l.Release("j-1", kMarch, greenlight::v1::LEDGER_KIND_SETTLE, "again").empty());
  EXPECT_TRUE(l.Release("j-unknown", kMarch, greenlight::v1::LEDGER_KIND_RELEASE, "").empty());
  Totals again = l.TeamTotals("ml", "2026-03");
  EXPECT_EQ(again.cost_reserved_micros, 0);
  EXPECT_EQ(again.cost_spent_micros, 20 * kUsd);
}

TEST(BudgetLedgerBudget, ChangeRowCarriesNoAmounts) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  store::LedgerRow r = l.BudgetChange("ml", kMarch, "cost budget $100.00 -> $50.00");
  EXPECT_EQ(r.kind, greenlight::v1::LEDGER_KIND_BUDGET);
  EXPECT_EQ(r.team, "ml");
  EXPECT_EQ(r.period, "2026-03");
  EXPECT_TRUE(r.job_id.empty());
  EXPECT_EQ(r.cost_spent_micros + r.cost_reserved_micros + r.carbon_spent_mg +
                r.carbon_reserved_mg + r.energy_spent_mwh,
            0);
  EXPECT_EQ(r.reason, "cost budget $100.00 -> $50.00");
  EXPECT_EQ(Used(l.TeamTotals("ml", "2026-03")), 0);
}

TEST(BudgetLedgerBudget, LoweredBelowUseAdmitsNothingAndChargesOnlyTheReservation) {
  BudgetLedger l;
  l.SetTeam(Team("ml", 100 * kUsd));
  ASSERT_TRUE(l.Reserve("j-1", "ml", kMarch, 60 * kUsd, 0, "").ok());
  l.SetTeam(Team("ml", 50 * kUsd));
  EXPECT_EQ(l.CostHeadroom("ml", "2026-03"), 0) << "headroom never goes negative";
  EXPECT_EQ(l.CheckHeadroom("ml", "2026-03", 0, 0).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(l.Reserve("j-2", "ml", kMarch, 1, 0, "").ok());
  // The running job may still use what it reserved, and nothing beyond.
  AccrueResult r = l.Accrue("j-1", kMarch, kMarch, 70 * kUsd, 0, 0, "");
  EXPECT_DOUBLE_EQ(r.fraction, 60.0 / 70.0);
  EXPECT_EQ(Used(l.TeamTotals("ml", "2026-03")), 60 * kUsd);
}

// Random reserve / accrue / release sequences over three months, a parent
// and two children: every step keeps spent + reserved <= budget, and folding
// the returned rows into a fresh ledger gives the same totals (replay = live).
TEST(BudgetLedgerReplay, ApplyingTheRowsRebuildsIdenticalTotals) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    BudgetLedger live;
    std::vector<greenlight::v1::Team> teams = {
        Team("acme", 1000 * kUsd, 500 * kKg), Team("ml", 600 * kUsd, 0, "acme"),
        Team("cv", 0, 300 * kKg, "acme"), Team("solo", 200 * kUsd, 100 * kKg)};
    for (const auto& t : teams) live.SetTeam(t);
    std::vector<store::LedgerRow> rows;
    std::vector<std::string> jobs;
    const char* names[] = {"ml", "cv", "solo", "acme"};
    absl::Time now = Utc(2026, 2, 20);
    for (int step = 0; step < 400; ++step) {
      now += absl::Minutes(std::uniform_int_distribution<int>(0, 600)(rng));
      int op = std::uniform_int_distribution<int>(0, 9)(rng);
      if (op < 4 || jobs.empty()) {
        std::string id = absl::StrCat("j-", step);
        auto r = live.Reserve(id, names[rng() % 4], now,
                              std::uniform_int_distribution<int64_t>(0, 150 * kUsd)(rng),
                              std::uniform_int_distribution<int64_t>(0, 80 * kKg)(rng), "q");
        if (r.ok()) {
          rows.insert(rows.end(), r->begin(), r->end());
          jobs.push_back(id);
        }
      } else if (op < 8) {
        const std::string& id = jobs[rng() % jobs.size()];
        absl::Time at = now - absl::Hours(std::uniform_int_distribution<int>(0, 48)(rng));
        AccrueResult r =
            live.Accrue(id, at, now, std::uniform_int_distribution<int64_t>(0, 60 * kUsd)(rng),
                        std::uniform_int_distribution<int64_t>(0, 40 * kKg)(rng),
                        std::uniform_int_distribution<int64_t>(0, 9999)(rng), "run");
        EXPECT_GE(r.fraction, 0.0);
        EXPECT_LE(r.fraction, 1.0);
        for (const auto& row : r.rows) {
          EXPECT_GE(row.cost_spent_micros, 0);
          EXPECT_GE(row.carbon_spent_mg, 0);
        }
        rows.insert(rows.end(), r.rows.begin(), r.rows.end());
      } else {
        const std::string& id = jobs[rng() % jobs.size()];
        auto r = live.Release(
            id, now,
            op == 8 ? greenlight::v1::LEDGER_KIND_RELEASE : greenlight::v1::LEDGER_KIND_SETTLE,
            "done");
        rows.insert(rows.end(), r.begin(), r.end());
      }
      for (const auto& [team, period] : live.TeamPeriods()) {
        for (const std::string& who : {team, std::string("acme")}) {
          const auto* t = live.FindTeam(who);
          Totals r = live.RollupTotals(who, period);
          if (t->monthly_cost_budget_micros() > 0) {
            ASSERT_LE(Used(r), t->monthly_cost_budget_micros())
                << "seed " << seed << " step " << step << " " << who << " " << period;
          }
          if (t->monthly_carbon_budget_mg() > 0) {
            ASSERT_LE(UsedCarbon(r), t->monthly_carbon_budget_mg())
                << "seed " << seed << " step " << step << " " << who << " " << period;
          }
          ASSERT_GE(r.cost_reserved_micros, 0);
          ASSERT_GE(r.carbon_reserved_mg, 0);
        }
      }
    }
    BudgetLedger replay;
    for (const auto& t : teams) replay.SetTeam(t);
    for (const auto& r : rows) replay.Apply(r);
    auto live_periods = live.TeamPeriods();
    auto replay_periods = replay.TeamPeriods();
    std::sort(live_periods.begin(), live_periods.end());
    std::sort(replay_periods.begin(), replay_periods.end());
    ASSERT_EQ(live_periods, replay_periods) << "seed " << seed;
    EXPECT_GE(live_periods.size(), 3u) << "the sequence spans several months";
    for (const auto& [team, period] : live_periods) {
      for (bool rollup : {false, true}) {
        Totals a = rollup ? live.RollupTotals(team, period) : live.TeamTotals(team, period);
        Totals b = rollup ? replay.RollupTotals(team, period) : replay.TeamTotals(team, period);
        EXPECT_EQ(a.cost_spent_micros, b.cost_spent_micros) << team << " " << period;
        EXPECT_EQ(a.cost_reserved_micros, b.cost_reserved_micros) << team << " " << period;
        EXPECT_EQ(a.carbon_spent_mg, b.carbon_spent_mg) << team << " " << period;
        EXPECT_EQ(a.carbon_reserved_mg, b.carbon_reserved_mg) << team << " " << period;
        EXPECT_EQ(a.energy_spent_mwh, b.energy_spent_mwh) << team << " " << period;
      }
    }
    for (const auto& id : jobs) {
      const JobAccount* a = live.FindJob(id);
      const JobAccount* b = replay.FindJob(id);
      ASSERT_NE(b, nullptr) << id;
      EXPECT_EQ(a->team, b->team);
      EXPECT_EQ(a->reserve_period, b->reserve_period);
      EXPECT_EQ(a->open, b->open);
      EXPECT_EQ(a->cost_reserved_micros, b->cost_reserved_micros);
      EXPECT_EQ(a->carbon_reserved_mg, b->carbon_reserved_mg);
      EXPECT_EQ(a->cost_accrued_micros, b->cost_accrued_micros);
      EXPECT_EQ(a->carbon_accrued_mg, b->carbon_accrued_mg);
      EXPECT_EQ(a->energy_accrued_mwh, b->energy_accrued_mwh);
      EXPECT_GE(a->cost_reserved_micros, 0) << id;
      if (!a->open) {
        EXPECT_EQ(a->cost_reserved_micros, 0) << id;
      }
    }
  }
}

}  // namespace
}  // namespace greenlight::budget
