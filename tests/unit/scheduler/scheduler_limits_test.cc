// Limits and alerts: the GPU quota check, the use noted above a lowered
// budget or quota, team alerts when a charge crosses the alert ratio, and the
// one-time job alert.
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/scheduler/limits.h"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

constexpr char kPeriod[] = "2026-03";

v1::Team MakeTeam(const std::string& name, int quota = 0, int64_t cost_budget = 0,
                  int64_t carbon_budget = 0, const std::string& parent = "") {
  v1::Team t;
  t.set_name(name);
  t.set_gpu_quota(quota);
  t.set_monthly_cost_budget_micros(cost_budget);
  t.set_monthly_carbon_budget_mg(carbon_budget);
  t.set_parent(parent);
  return t;
}

providers::Pool MakePool(const std::string& id, const std::string& gpu_type) {
  providers::Pool p;
  p.id = id;
  p.region = "us-east-1";
  p.gpu_type = gpu_type;
  p.gpus_per_node = 8;
  p.nodes = 8;
  return p;
}

NodeAllocator TwoPools() {
  NodeAllocator a;
  a.Reset({MakePool("h100", "H100"), MakePool("a100", "A100")});
  return a;
}

void StartJob(NodeAllocator& a, const std::string& pool, const std::string& job,
              const std::string& team, int gpus) {
  std::optional<Allocation> found = a.Find(pool, gpus);
  ASSERT_TRUE(found.has_value());
  a.Take(job, team, gpus, *found);
}

v1::Job JobOn(const std::string& team, const std::string& gpu_type, int gpus) {
  v1::Job j;
  j.mutable_spec()->set_team(team);
  j.mutable_spec()->set_gpus(gpus);
  j.mutable_placement()->set_gpu_type(gpu_type);
  return j;
}

// Spend (cost micros, carbon mg) of a team in kPeriod.
void Spend(budget::BudgetLedger& ledger, const std::string& team, int64_t cost, int64_t carbon,
           const std::string& period = kPeriod) {
  store::LedgerRow r;
  r.team = team;
  r.period = period;
  r.job_id = "j-" + team;
  r.kind = greenlight::v1::LEDGER_KIND_ACCRUE;
  r.cost_spent_micros = cost;
  r.carbon_spent_mg = carbon;
  ledger.Apply(r);
}

TEST(QuotaAllows, ChecksTheTotalAndTheJobsGpuTypeQuota) {
  budget::BudgetLedger ledger;
  v1::Team ml = MakeTeam("ml", 16);
  (*ml.mutable_gpu_quota_by_type())["H100"] = 8;
  ledger.SetTeam(ml);
  NodeAllocator nodes = TwoPools();

  EXPECT_TRUE(QuotaAllows(ledger, nodes, JobOn("ml", "H100", 8)));
  EXPECT_FALSE(QuotaAllows(ledger, nodes, JobOn("ml", "H100", 9)));  // over the H100 quota
  EXPECT_TRUE(QuotaAllows(ledger, nodes, JobOn("ml", "A100", 16)));
  EXPECT_FALSE(QuotaAllows(ledger, nodes, JobOn("ml", "A100", 17)));  // over the total

  StartJob(nodes, "h100", "j1", "ml", 8);
  EXPECT_FALSE(QuotaAllows(ledger, nodes, JobOn("ml", "H100", 1)));
  EXPECT_TRUE(QuotaAllows(ledger, nodes, JobOn("ml", "A100", 8)));  // A100 has no own quota
  StartJob(nodes, "a100", "j2", "ml", 8);
  EXPECT_FALSE(QuotaAllows(ledger, nodes, JobOn("ml", "A100", 1)));  // total 16 reached

  // Other teams' GPUs do not count; an unknown team has no quota at all.
  ledger.SetTeam(MakeTeam("vision", 8));
  EXPECT_TRUE(QuotaAllows(ledger, nodes, JobOn("vision", "H100", 8)));
  EXPECT_FALSE(QuotaAllows(ledger, nodes, JobOn("nobody", "H100", 1)));
}

TEST(QuotaAllows, ZeroQuotasAreUnlimited) {
  budget::BudgetLedger ledger;
  v1::Team ml = MakeTeam("ml", 0);
  (*ml.mutable_gpu_quota_by_type())["H100"] = 0;
  ledger.SetTeam(ml);
  NodeAllocator nodes = TwoPools();
  StartJob(nodes, "h100", "j1", "ml", 64);
  EXPECT_TRUE(QuotaAllows(ledger, nodes, JobOn("ml", "H100", 1000)));
}

TEST(OverLimits, QuotaLimitIsRaisedToNotedUseAndOnlyShrinks) {
  budget::BudgetLedger ledger;
  v1::Team ml = MakeTeam("ml", 8);
  (*ml.mutable_gpu_quota_by_type())["H100"] = 4;
  ledger.SetTeam(ml);
  NodeAllocator nodes = TwoPools();
  StartJob(nodes, "h100", "a", "ml", 8);
  StartJob(nodes, "h100", "b", "ml", 8);
  StartJob(nodes, "a100", "c", "ml", 8);  // 24 running, 16 of them H100: quota lowered under them

  OverLimits over;
  EXPECT_EQ(over.QuotaLimit("ml", "", 8), 8);  // nothing noted yet
  over.Note(ledger, nodes);
  EXPECT_EQ(over.QuotaLimit("ml", "", 8), 24);
  EXPECT_EQ(over.QuotaLimit("ml", "H100", 4), 16);
  EXPECT_EQ(over.QuotaLimit("ml", "A100", 0), 0);
  EXPECT_EQ(over.QuotaLimit("vision", "", 8), 8);
  // A higher quota than the noted use wins.
  EXPECT_EQ(over.QuotaLimit("ml", "", 32), 32);

  // Use shrank: the smaller figure is kept.
  ASSERT_TRUE(nodes.Release("b"));
  over.Note(ledger, nodes);
  EXPECT_EQ(over.QuotaLimit("ml", "", 8), 16);
  EXPECT_EQ(over.QuotaLimit("ml", "H100", 4), 8);

  // Use grew again: a later Note cannot raise the limit back.
  StartJob(nodes, "h100", "d", "ml", 8);
  over.Note(ledger, nodes);
  EXPECT_EQ(over.QuotaLimit("ml", "", 8), 16);
  EXPECT_EQ(over.QuotaLimit("ml", "H100", 4), 8);

  // Back within the quota: nothing is noted any more.
  ASSERT_TRUE(nodes.Release("a"));
  ASSERT_TRUE(nodes.Release("c"));
  ASSERT_TRUE(nodes.Release("d"));
  over.Note(ledger, nodes);
  EXPECT_EQ(over.QuotaLimit("ml", "", 8), 8);
  EXPECT_EQ(over.QuotaLimit("ml", "H100", 4), 4);
}

TEST(OverLimits, BudgetLimitsAreRaisedToNotedUseAndOnlyShrink) {
  budget::BudgetLedger ledger;
  const v1::Team ml = MakeTeam("ml", 0, 10'000'000, 1'000'000);
  ledger.SetTeam(ml);
  NodeAllocator nodes = TwoPools();
  Spend(ledger, "ml", 15'000'000, 500'000);  // over the cost budget only

  OverLimits over;
  EXPECT_THAT(over.BudgetLimits(ml, kPeriod), Pair(10'000'000, 1'000'000));
  over.Note(ledger, nodes);
  EXPECT_THAT(over.BudgetLimits(ml, kPeriod), Pair(15'000'000, 1'000'000));
  EXPECT_THAT(over.BudgetLimits(ml, "2026-04"), Pair(10'000'000, 1'000'000));

  // More spend in the period does not raise the limit.
  Spend(ledger, "ml", 5'000'000, 1'000'000);  // now 20 USD, 1.5 kg
  over.Note(ledger, nodes);
  EXPECT_THAT(over.BudgetLimits(ml, kPeriod), Pair(15'000'000, 1'500'000));
  Spend(ledger, "ml", 1'000'000, 1'000'000);
  over.Note(ledger, nodes);
  EXPECT_THAT(over.BudgetLimits(ml, kPeriod), Pair(15'000'000, 1'500'000));

  // A budget raised above the use needs no noted figure.
  const v1::Team raised = MakeTeam("ml", 0, 100'000'000, 100'000'000);
  ledger.SetTeam(raised);
  over.Note(ledger, nodes);
  EXPECT_THAT(over.BudgetLimits(raised, kPeriod), Pair(100'000'000, 100'000'000));
}

TEST(OverLimits, NotesTheParentsOvershootFromItsChildren) {
  budget::BudgetLedger ledger;
  const v1::Team org = MakeTeam("org", 0, 10'000'000, 0);
  ledger.SetTeam(org);
  ledger.SetTeam(MakeTeam("ml", 0, 0, 0, "org"));
  ledger.SetTeam(MakeTeam("vision", 0, 0, 0, "org"));
  Spend(ledger, "ml", 7'000'000, 0);
  Spend(ledger, "vision", 6'000'000, 0);
  OverLimits over;
  over.Note(ledger, TwoPools());
  EXPECT_THAT(over.BudgetLimits(org, kPeriod), Pair(13'000'000, 0));
}

struct AlertCase {
  budget::BudgetLedger ledger;
  AlertCase() {
    ledger.SetTeam(MakeTeam("org", 0, 100'000'000, 0));
    v1::Team ml = MakeTeam("ml", 0, 10'000'000, 2'000'000, "org");
    ml.set_alert_ratio(0);  // default 0.8
    ledger.SetTeam(ml);
  }
  std::vector<TeamAlert> Charge(const std::string& team, int64_t cost, int64_t carbon) {
    AlertBaseline b = BaselineForAlerts(ledger, team, kPeriod);
    Spend(ledger, team, cost, carbon);
    return CrossedTeamAlerts(ledger, b, kPeriod);
  }
};

std::vector<std::string> Teams(const std::vector<TeamAlert>& alerts) {
  std::vector<std::string> out;
  for (const auto& a : alerts) out.push_back(a.team);
  return out;
}

TEST(CrossedTeamAlerts, AChargeThatCrossesTheRatioAlertsOnce) {
  AlertCase c;
  EXPECT_THAT(c.Charge("ml", 7'000'000, 0), IsEmpty());           // 70 %
  EXPECT_THAT(c.Charge("ml", 500'000, 0), IsEmpty());             // 75 %
  std::vector<TeamAlert> crossed = c.Charge("ml", 1'000'000, 0);  // 85 %
  ASSERT_THAT(Teams(crossed), ElementsAre("ml"));
  EXPECT_THAT(crossed[0].message, HasSubstr("'ml'"));
  EXPECT_THAT(crossed[0].message, HasSubstr("80%"));
  EXPECT_THAT(crossed[0].message, HasSubstr("cost"));
  EXPECT_THAT(c.Charge("ml", 500'000, 0), IsEmpty());  // already above
}

TEST(CrossedTeamAlerts, ReachingTheRatioExactlyCounts) {
  AlertCase c;
  EXPECT_THAT(Teams(c.Charge("ml", 8'000'000, 0)), ElementsAre("ml"));
}

TEST(CrossedTeamAlerts, CarbonCrossingNamesCarbon) {
  AlertCase c;
  std::vector<TeamAlert> crossed = c.Charge("ml", 0, 1'700'000);  // 85 % of 2 kg
  ASSERT_THAT(Teams(crossed), ElementsAre("ml"));
  EXPECT_THAT(crossed[0].message, HasSubstr("carbon"));
}

TEST(CrossedTeamAlerts, TheParentAlertsWhenItsOwnRatioIsCrossed) {
  AlertCase c;
  v1::Team org = MakeTeam("org", 0, 20'000'000, 0);
  org.set_alert_ratio(0.5);
  c.ledger.SetTeam(org);
  c.ledger.SetTeam(MakeTeam("vision", 0, 0, 0, "org"));
  EXPECT_THAT(c.Charge("vision", 9'000'000, 0), IsEmpty());  // org at 45 %
  // ml: 5 of 10 (below its 80 %); org: 14 of 20 (crosses its 50 %).
  std::vector<TeamAlert> crossed = c.Charge("ml", 5'000'000, 0);
  ASSERT_THAT(Teams(crossed), ElementsAre("org"));
  EXPECT_THAT(crossed[0].message, HasSubstr("50%"));
  // ml crosses its own 80 % now; org was already above its 50 %.
  EXPECT_THAT(Teams(c.Charge("ml", 4'000'000, 0)), ElementsAre("ml"));
}

TEST(CrossedTeamAlerts, TeamAndParentCanCrossTogether) {
  AlertCase c;
  c.ledger.SetTeam(MakeTeam("org", 0, 10'000'000, 0));
  EXPECT_THAT(Teams(c.Charge("ml", 9'000'000, 0)), ElementsAre("ml", "org"));
}

TEST(CrossedTeamAlerts, TeamsWithoutBudgetsNeverAlert) {
  budget::BudgetLedger ledger;
  ledger.SetTeam(MakeTeam("free"));
  AlertBaseline b = BaselineForAlerts(ledger, "free", kPeriod);
  Spend(ledger, "free", 1'000'000'000, 1'000'000'000);
  EXPECT_THAT(CrossedTeamAlerts(ledger, b, kPeriod), IsEmpty());
}

v1::Job CappedJob(int64_t max_cost, int64_t accrued_cost, int64_t max_carbon = 0,
                  int64_t accrued_carbon = 0) {
  v1::Job j;
  j.mutable_spec()->set_team("ml");
  j.mutable_spec()->set_max_cost_micros(max_cost);
  j.mutable_spec()->set_max_carbon_mg(max_carbon);
  j.set_accrued_cost_micros(accrued_cost);
  j.set_accrued_carbon_mg(accrued_carbon);
  return j;
}

TEST(JobAlert, RaisedOnceWhenTheJobReachesTheRatioOfACap) {
  budget::BudgetLedger ledger;
  ledger.SetTeam(MakeTeam("ml"));
  EXPECT_EQ(JobAlert(ledger, CappedJob(10'000'000, 7'999'999)), std::nullopt);
  std::optional<std::string> at = JobAlert(ledger, CappedJob(10'000'000, 8'000'000));
  ASSERT_TRUE(at.has_value());
  EXPECT_THAT(*at, HasSubstr("80%"));
  EXPECT_TRUE(JobAlert(ledger, CappedJob(0, 0, 1'000'000, 900'000)).has_value());
  EXPECT_EQ(JobAlert(ledger, CappedJob(0, 999'999'999)), std::nullopt);  // no cap

  v1::Job alerted = CappedJob(10'000'000, 9'000'000);
  alerted.set_alerted(true);
  EXPECT_EQ(JobAlert(ledger, alerted), std::nullopt);
}

TEST(JobAlert, UsesTheTeamsAlertRatio) {
  budget::BudgetLedger ledger;
  v1::Team ml = MakeTeam("ml");
  ml.set_alert_ratio(0.5);
  ledger.SetTeam(ml);
  std::optional<std::string> half = JobAlert(ledger, CappedJob(10'000'000, 5'000'000));
  ASSERT_TRUE(half.has_value());
  EXPECT_THAT(*half, HasSubstr("50%"));
  EXPECT_EQ(JobAlert(ledger, CappedJob(10'000'000, 4'000'000)), std::nullopt);
}

}  // namespace
}  // namespace greenlight::scheduler
