// SchedulerMetrics: names, labels, unit conversions and series lifecycle, as
// seen by a scraper (the registry serialized in the text format).
#include "services/metrics/scheduler_metrics.h"

#include <atomic>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/metrics/exposition.h"

namespace greenlight::metrics {
namespace {

using ::testing::DoubleNear;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;
using testing::Scrape;

TeamSample MlTeam() {
  TeamSample t;
  t.team = "ml";
  t.parent = "research";
  t.cost_budget_micros = 1'000'000'000;      // $1,000
  t.cost_spent_micros = 250'500'000;         // $250.50
  t.cost_reserved_micros = 100'000'000;      // $100
  t.carbon_budget_mg = 500'000'000;          // 500 kg
  t.carbon_spent_mg = 123'456'789;           // 123.456789 kg
  t.carbon_reserved_mg = 1'000'000;          // 1 kg
  t.cost_burn_micros_per_hour = 32'770'000;  // $32.77/h
  t.carbon_burn_mg_per_hour = 4'500'000;     // 4,500 g/h
  t.running_gpus = 8;
  t.gpu_quota = 16;
  t.pending_by_reason = {{"QUOTA", 3}, {"CAPACITY", 1}};
  return t;
}

constexpr char kMl[] = "{parent=\"research\",team=\"ml\"}";

TEST(SchedulerMetrics, ExportsTeamGaugesInUsdAndKgConvertedFromLedgerUnits) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  metrics.SetTeams({MlTeam()});
  const auto e = Scrape(registry);
  struct Case {
    std::string name;
    double want;
  };
  for (const Case& c : std::vector<Case>{
           {"greenlight_team_cost_budget_usd", 1000.0},
           {"greenlight_team_cost_spent_usd", 250.5},
           {"greenlight_team_cost_reserved_usd", 100.0},
           {"greenlight_team_cost_remaining_usd", 649.5},
           {"greenlight_team_carbon_budget_kg", 500.0},
           {"greenlight_team_carbon_emitted_kg", 123.456789},
           {"greenlight_team_carbon_reserved_kg", 1.0},
           {"greenlight_team_carbon_remaining_kg", 375.543211},
           {"greenlight_team_cost_burn_rate_usd_per_hour", 32.77},
           {"greenlight_team_carbon_burn_rate_grams_per_hour", 4500.0},
           {"greenlight_team_running_gpus", 8},
           {"greenlight_team_gpu_quota", 16},
       }) {
    EXPECT_THAT(e.Get(c.name + kMl), Optional(DoubleNear(c.want, 1e-9))) << c.name << "\n"
                                                                         << e.text;
  }
  EXPECT_THAT(
      e.Get("greenlight_team_pending_jobs{parent=\"research\",reason=\"QUOTA\",team=\"ml\"}"),
      Optional(3.0));
  EXPECT_THAT(
      e.Get("greenlight_team_pending_jobs{parent=\"research\",reason=\"CAPACITY\",team=\"ml\"}"),
      Optional(1.0));
}

TEST(SchedulerMetrics, UnlimitedBudgetsAndQuotaExportNoBudgetRemainingOrQuotaSeries) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  TeamSample t = MlTeam();
  t.cost_budget_micros = 0;
  t.carbon_budget_mg = 0;
  t.gpu_quota = 0;
  metrics.SetTeams({t});
  const auto e = Scrape(registry);
  for (const char* absent :
       {"greenlight_team_cost_budget_usd", "greenlight_team_cost_remaining_usd",
        "greenlight_team_carbon_budget_kg", "greenlight_team_carbon_remaining_kg",
        "greenlight_team_gpu_quota"}) {
    EXPECT_EQ(e.CountSeries(absent), 0) << absent << "\n" << e.text;
  }
  // Spend is still visible.
  EXPECT_THAT(e.Get(std::string("greenlight_team_cost_spent_usd") + kMl), Optional(250.5));
  EXPECT_THAT(e.Get(std::string("greenlight_team_carbon_emitted_kg") + kMl),
              Optional(DoubleNear(123.456789, 1e-9)));
}

TEST(SchedulerMetrics, BudgetTurningLimitedAndBackAddsAndRemovesItsSeries) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  TeamSample t = MlTeam();
  t.cost_budget_micros = 0;
  metrics.SetTeams({t});
  EXPECT_EQ(Scrape(registry).CountSeries("greenlight_team_cost_remaining_usd"), 0);
  t.cost_budget_micros = 300'000'000;
  metrics.SetTeams({t});
  // 300 - 250.5 - 100: overspent teams show a negative remaining.
  EXPECT_THAT(Scrape(registry).Get(std::string("greenlight_team_cost_remaining_usd") + kMl),
              Optional(DoubleNear(-50.5, 1e-9)));
  t.cost_budget_micros = 0;
  metrics.SetTeams({t});
  EXPECT_EQ(Scrape(registry).CountSeries("greenlight_team_cost_remaining_usd"), 0);
}

TEST(SchedulerMetrics, SetTeamsRemovesSeriesOfTeamsNoLongerPresent) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  TeamSample other = MlTeam();
  other.team = "vision";
  metrics.SetTeams({MlTeam(), other});
  auto e = Scrape(registry);
  EXPECT_EQ(e.CountSeries("greenlight_team_cost_spent_usd"), 2);
  EXPECT_EQ(e.CountSeries("greenlight_team_pending_jobs"), 4);

  metrics.SetTeams({other});
  e = Scrape(registry);
  EXPECT_THAT(e.text, Not(HasSubstr("team=\"ml\""))) << e.text;
  EXPECT_EQ(e.CountSeries("greenlight_team_cost_spent_usd"), 1);
  EXPECT_EQ(e.CountSeries("greenlight_team_pending_jobs"), 2);
  EXPECT_TRUE(e.Has("greenlight_team_cost_spent_usd{parent=\"research\",team=\"vision\"}"));

  metrics.SetTeams({});
  e = Scrape(registry);
  EXPECT_THAT(e.text, Not(HasSubstr("team=\"")));
}

TEST(SchedulerMetrics, ParentChangeReplacesTheTeamsSeries) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  TeamSample t = MlTeam();
  metrics.SetTeams({t});
  t.parent = "platform";
  metrics.SetTeams({t});
  const auto e = Scrape(registry);
  EXPECT_THAT(e.text, Not(HasSubstr("parent=\"research\""))) << e.text;
  EXPECT_THAT(e.Get("greenlight_team_cost_spent_usd{parent=\"platform\",team=\"ml\"}"),
              Optional(250.5));
  EXPECT_EQ(e.CountSeries("greenlight_team_pending_jobs"), 2);
}

TEST(SchedulerMetrics, PendingReasonThatDisappearsIsExportedAsZero) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  TeamSample t = MlTeam();
  metrics.SetTeams({t});
  t.pending_by_reason = {{"CAPACITY", 2}};
  metrics.SetTeams({t});
  const auto e = Scrape(registry);
  EXPECT_THAT(
      e.Get("greenlight_team_pending_jobs{parent=\"research\",reason=\"QUOTA\",team=\"ml\"}"),
      Optional(0.0));
  EXPECT_THAT(
      e.Get("greenlight_team_pending_jobs{parent=\"research\",reason=\"CAPACITY\",team=\"ml\"}"),
      Optional(2.0));
}

TEST(SchedulerMetrics, AgentNodesByStateHeartbeatAgesAndCountersFromTotals) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  AgentSample a;
  a.nodes = {{"box", "n1", "READY", 0.4}, {"box", "n2", "READY", 1.5}, {"box", "n3", "LOST", -1}};
  a.energy_measured_wh = 120.5;
  a.energy_modelled_wh = 3;
  a.starts = 4;
  a.failures = {{"exit_code", 1}};
  metrics.SetAgents(a);
  auto e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_agent_nodes{pool=\"box\",state=\"READY\"}"), Optional(2.0));
  EXPECT_THAT(e.Get("greenlight_agent_nodes{pool=\"box\",state=\"LOST\"}"), Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_agent_heartbeat_age_seconds{node=\"n2\",pool=\"box\"}"),
              Optional(1.5));
  EXPECT_EQ(e.CountSeries("greenlight_agent_heartbeat_age_seconds"), 2) << "none for n3 yet";
  EXPECT_THAT(e.Get("greenlight_agent_energy_wh_total{basis=\"measured\"}"), Optional(120.5));
  EXPECT_THAT(e.Get("greenlight_agent_energy_wh_total{basis=\"modelled\"}"), Optional(3.0));
  EXPECT_THAT(e.Get("greenlight_agent_job_starts_total"), Optional(4.0));
  EXPECT_THAT(e.Get("greenlight_agent_job_failures_total{reason=\"exit_code\"}"), Optional(1.0));

  // n1 is lost, n2 gone: its age series goes, the READY count stays at 0;
  // the counters advance by the growth of the totals.
  a.nodes = {{"box", "n1", "LOST", 20}};
  a.energy_measured_wh = 200;
  a.starts = 5;
  a.failures = {{"exit_code", 1}, {"node_lost", 2}};
  metrics.SetAgents(a);
  e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_agent_nodes{pool=\"box\",state=\"READY\"}"), Optional(0.0));
  EXPECT_THAT(e.Get("greenlight_agent_nodes{pool=\"box\",state=\"LOST\"}"), Optional(1.0));
  EXPECT_EQ(e.CountSeries("greenlight_agent_heartbeat_age_seconds"), 1);
  EXPECT_THAT(e.Get("greenlight_agent_heartbeat_age_seconds{node=\"n1\",pool=\"box\"}"),
              Optional(20.0));
  EXPECT_THAT(e.Get("greenlight_agent_energy_wh_total{basis=\"measured\"}"), Optional(200.0));
  EXPECT_THAT(e.Get("greenlight_agent_job_starts_total"), Optional(5.0));
  EXPECT_THAT(e.Get("greenlight_agent_job_failures_total{reason=\"exit_code\"}"), Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_agent_job_failures_total{reason=\"node_lost\"}"), Optional(2.0));
}

TEST(SchedulerMetrics, ZonesAndPricesAreReplacedWholesale) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  metrics.SetZones({{"DE", 412.5, 1800, false}, {"FR", 55.0, 90000, true}});
  metrics.SetPrices({{"eu-west-1", "H100", 4.1}, {"us-east-1", "A100", 2.5}});
  auto e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_zone_carbon_intensity_grams_per_kwh{zone=\"DE\"}"),
              Optional(412.5));
  EXPECT_THAT(e.Get("greenlight_zone_carbon_data_age_seconds{zone=\"FR\"}"), Optional(90000.0));
  EXPECT_THAT(e.Get("greenlight_zone_carbon_data_stale{zone=\"FR\"}"), Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_zone_carbon_data_stale{zone=\"DE\"}"), Optional(0.0));
  EXPECT_THAT(e.Get("greenlight_region_gpu_price_usd_per_gpu_hour{gpu_type=\"H100\",region=\"eu-"
                    "west-1\"}"),
              Optional(4.1));

  metrics.SetZones({{"FR", 60.0, 10, false}});
  metrics.SetPrices({{"us-east-1", "A100", 2.25}, {"us-east-1", "H100", 5.0}});
  e = Scrape(registry);
  EXPECT_EQ(e.CountSeries("greenlight_zone_carbon_intensity_grams_per_kwh"), 1);
  EXPECT_EQ(e.CountSeries("greenlight_zone_carbon_data_age_seconds"), 1);
  EXPECT_EQ(e.CountSeries("greenlight_zone_carbon_data_stale"), 1);
  EXPECT_THAT(e.Get("greenlight_zone_carbon_data_stale{zone=\"FR\"}"), Optional(0.0));
  EXPECT_EQ(e.CountSeries("greenlight_region_gpu_price_usd_per_gpu_hour"), 2);
  EXPECT_FALSE(e.Has(
      "greenlight_region_gpu_price_usd_per_gpu_hour{gpu_type=\"H100\",region=\"eu-west-1\"}"));
  EXPECT_THAT(e.Get("greenlight_region_gpu_price_usd_per_gpu_hour{gpu_type=\"A100\",region=\"us-"
                    "east-1\"}"),
              Optional(2.25));
}

// A zone with only an annual average (no series, no live source) exports its
// intensity but no stale flag or age, so GreenlightCarbonDataStale does not
// fire for a configuration that is as intended; if it later gets a series,
// both appear.
TEST(SchedulerMetrics, AnnualOnlyZonesHaveNoStaleFlagOrAge) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  ZoneSample annual{"IN-WE", 708.0, 0, false};
  annual.annual_only = true;
  metrics.SetZones({annual, {"DE", 412.5, 1800, true}});
  auto e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_zone_carbon_intensity_grams_per_kwh{zone=\"IN-WE\"}"),
              Optional(708.0));
  EXPECT_FALSE(e.Has("greenlight_zone_carbon_data_stale{zone=\"IN-WE\"}"));
  EXPECT_FALSE(e.Has("greenlight_zone_carbon_data_age_seconds{zone=\"IN-WE\"}"));
  EXPECT_THAT(e.Get("greenlight_zone_carbon_data_stale{zone=\"DE\"}"), Optional(1.0));

  metrics.SetZones({{"IN-WE", 700.0, 60, false}});
  e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_zone_carbon_data_stale{zone=\"IN-WE\"}"), Optional(0.0));
  EXPECT_THAT(e.Get("greenlight_zone_carbon_data_age_seconds{zone=\"IN-WE\"}"), Optional(60.0));
}

TEST(SchedulerMetrics, JobsByStateKeepsStatesSeenBeforeAtZero) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  metrics.SetJobsByState({{"RUNNING", 4}, {"PENDING", 2}});
  metrics.SetJobsByState({{"RUNNING", 1}, {"SUCCEEDED", 5}});
  const auto e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_jobs{state=\"RUNNING\"}"), Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_jobs{state=\"PENDING\"}"), Optional(0.0));
  EXPECT_THAT(e.Get("greenlight_jobs{state=\"SUCCEEDED\"}"), Optional(5.0));
}

TEST(SchedulerMetrics, CountersCountPerLabelAndSurviveTeamRemoval) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  metrics.SetTeams({MlTeam()});
  metrics.RecordAdmission("ml");
  metrics.RecordAdmission("ml");
  metrics.RecordAdmission("vision");
  metrics.RecordRejection("budget");
  metrics.RecordRejection("max_cost");
  metrics.RecordRejection("budget");
  metrics.SetTeams({});
  const auto e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_admissions_total{team=\"ml\"}"), Optional(2.0));
  EXPECT_THAT(e.Get("greenlight_admissions_total{team=\"vision\"}"), Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_rejections_total{reason=\"budget\"}"), Optional(2.0));
  EXPECT_THAT(e.Get("greenlight_rejections_total{reason=\"max_cost\"}"), Optional(1.0));
}

TEST(SchedulerMetrics, DecisionsAccumulateChosenAndBaselineSoAvoidedIsTheirDifference) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  // A greener but pricier placement, then one equal to its baseline.
  metrics.RecordDecision({"ml", 120'000'000, 30'000'000, 100'000'000, 50'000'000});
  metrics.RecordDecision({"ml", 10'000'000, 2'000'000, 10'000'000, 2'000'000});
  const auto e = Scrape(registry);
  const auto placed_cost = e.Get("greenlight_placed_cost_usd_total{team=\"ml\"}");
  const auto base_cost = e.Get("greenlight_baseline_cost_usd_total{team=\"ml\"}");
  const auto placed_carbon = e.Get("greenlight_placed_carbon_kg_total{team=\"ml\"}");
  const auto base_carbon = e.Get("greenlight_baseline_carbon_kg_total{team=\"ml\"}");
  ASSERT_TRUE(placed_cost && base_cost && placed_carbon && base_carbon) << e.text;
  EXPECT_DOUBLE_EQ(*placed_cost, 130.0);
  EXPECT_DOUBLE_EQ(*base_cost, 110.0);
  EXPECT_DOUBLE_EQ(*placed_carbon, 32.0);
  EXPECT_DOUBLE_EQ(*base_carbon, 52.0);
  EXPECT_DOUBLE_EQ(*base_carbon - *placed_carbon, 20.0);  // 20 kg avoided
  EXPECT_DOUBLE_EQ(*base_cost - *placed_cost, -20.0);     // paid $20 for it
}

TEST(SchedulerMetrics, HistogramsUseTheDocumentedBucketsAndCountObservations) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  metrics.ObservePlacementSeconds(0.0003);
  metrics.ObservePlacementSeconds(0.002);
  metrics.ObserveCommitSeconds(0.004);
  metrics.ObserveBatchSize(17);
  metrics.SetQueueDepth(42);
  const auto e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_placement_duration_seconds_count"), Optional(2.0));
  EXPECT_THAT(e.Get("greenlight_placement_duration_seconds_sum"),
              Optional(DoubleNear(0.0023, 1e-12)));
  EXPECT_THAT(e.Get("greenlight_placement_duration_seconds_bucket{le=\"0.0005\"}"), Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_placement_duration_seconds_bucket{le=\"+Inf\"}"), Optional(2.0));
  EXPECT_EQ(e.CountSeries("greenlight_placement_duration_seconds_bucket"),
            static_cast<int>(PlacementSecondsBuckets().size()) + 1);
  EXPECT_THAT(e.Get("greenlight_store_commit_duration_seconds_bucket{le=\"0.005\"}"),
              Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_store_commit_duration_seconds_bucket{le=\"0.0025\"}"),
              Optional(0.0));
  EXPECT_THAT(e.Get("greenlight_group_commit_batch_size_bucket{le=\"16\"}"), Optional(0.0));
  EXPECT_THAT(e.Get("greenlight_group_commit_batch_size_bucket{le=\"32\"}"), Optional(1.0));
  EXPECT_THAT(e.Get("greenlight_scheduler_queue_depth"), Optional(42.0));
}

TEST(SchedulerMetrics, ExportsBuildInfoAndHelpAndTypeLines) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry, "1.2.3");
  metrics.SetTeams({MlTeam()});
  metrics.RecordAdmission("ml");
  const auto e = Scrape(registry);
  EXPECT_THAT(e.Get("greenlight_build_info{version=\"1.2.3\"}"), Optional(1.0));
  EXPECT_THAT(e.text, HasSubstr("# TYPE greenlight_admissions_total counter"));
  EXPECT_THAT(e.text, HasSubstr("# TYPE greenlight_team_cost_remaining_usd gauge"));
  EXPECT_THAT(e.text, HasSubstr("# TYPE greenlight_placement_duration_seconds histogram"));
  EXPECT_THAT(e.text, HasSubstr("# HELP greenlight_team_carbon_emitted_kg"));
}

TEST(SchedulerMetrics, EveryExportedNameHasTheGreenlightPrefix) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  metrics.SetTeams({MlTeam()});
  metrics.SetZones({{"DE", 1, 1, false}});
  metrics.SetPrices({{"r", "g", 1}});
  metrics.SetJobsByState({{"RUNNING", 1}});
  metrics.RecordAdmission("ml");
  metrics.RecordRejection("budget");
  metrics.RecordDecision({"ml", 1, 1, 1, 1});
  const auto e = Scrape(registry);
  for (const auto& [series, value] : e.samples) {
    EXPECT_EQ(series.rfind("greenlight_", 0), 0u) << series;
    EXPECT_THAT(series, Not(HasSubstr("job_id"))) << series;
  }
}

TEST(SchedulerMetrics, ConcurrentUpdatesAndScrapesAreSafe) {
  prometheus::Registry registry;
  SchedulerMetrics metrics(registry);
  std::atomic<bool> stop{false};
  std::thread scraper([&] {
    while (!stop.load()) Scrape(registry);
  });
  for (int i = 0; i < 2000; ++i) {
    TeamSample t = MlTeam();
    t.team = "t" + std::to_string(i % 7);
    t.cost_budget_micros = (i % 2) * 1'000'000;
    metrics.SetTeams({t});
    metrics.RecordAdmission(t.team);
    metrics.ObservePlacementSeconds(1e-4);
  }
  stop = true;
  scraper.join();
  const auto e = Scrape(registry);
  EXPECT_EQ(e.CountSeries("greenlight_team_cost_spent_usd"), 1);
  double admissions = 0;
  for (const auto& [series, value] : e.samples) {
    if (series.rfind("greenlight_admissions_total{", 0) == 0) admissions += value;
  }
  EXPECT_EQ(admissions, 2000);
}

}  // namespace
}  // namespace greenlight::metrics
