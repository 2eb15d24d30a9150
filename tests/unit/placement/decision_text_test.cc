// The words of a decision on hand-made options: amounts, why-not per mode,
// the rejection tally and both kinds of summary.
#include "services/placement/decision_text.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/placement/test_util.h"

namespace greenlight::placement {
namespace {

using testing::Kg;
using testing::T0;
using testing::Usd;

TEST(DecisionText, AmountsKeepSubCentDifferencesVisible) {
  EXPECT_EQ(UsdText(0), "$0.00");
  EXPECT_EQ(UsdText(4'200), "$0.0042");
  EXPECT_EQ(UsdText(-4'200), "$-0.0042");
  EXPECT_EQ(UsdText(10'000), "$0.01");
  EXPECT_EQ(UsdText(Usd(12.5)), "$12.50");
  EXPECT_EQ(KgText(Kg(25.2)), "25.20 kg");
  EXPECT_EQ(UtcText(T0() + absl::Hours(5)), "2025-06-01 05:00 UTC");
}

// The chosen option the alternatives below are compared with: pool 0,
// $100.00, 10.00 kg, objective $101.00, starting 5 h after `earliest`.
Option Chosen() {
  Option o;
  o.pool = 0;
  o.pool_id = "p";
  o.cost_micros = Usd(100);
  o.carbon_mg = Kg(10);
  o.objective_micros = Usd(101);
  o.start = T0() + absl::Hours(5);
  return o;
}

TEST(DecisionText, WhyNotNamesTheModesFirstLosingKey) {
  struct Case {
    std::string name;
    Mode mode;
    std::function<void(Option&)> mutate;  // of a copy of Chosen() in another pool
    std::string why;
  };
  for (const Case& c : std::vector<Case>{
           {"cheapest: dearer, cleaner", Mode::kCheapest,
            [](Option& o) {
              o.cost_micros = Usd(110);
              o.carbon_mg = Kg(8);
            },
            "costs $10.00 more, emits 2.00 kg less"},
           {"cheapest: same cost, dirtier", Mode::kCheapest,
            [](Option& o) { o.carbon_mg = Kg(12); }, "same cost, emits 2.00 kg more"},
           {"greenest: dirtier, cheaper", Mode::kGreenest,
            [](Option& o) {
              o.carbon_mg = Kg(12);
              o.cost_micros = Usd(90);
            },
            "emits 2.00 kg more, costs $10.00 less"},
           {"greenest: same carbon, dearer", Mode::kGreenest,
            [](Option& o) { o.cost_micros = Usd(110); }, "same carbon, costs $10.00 more"},
           {"balanced: objective with both parts", Mode::kBalanced,
            [](Option& o) {
              o.objective_micros = Usd(102.5);
              o.cost_micros = Usd(99);
              o.carbon_mg = Kg(12.5);
            },
            "objective +$1.50: costs $1.00 less, emits 2.50 kg more"},
           {"balanced: sub-cent objective alone", Mode::kBalanced,
            [](Option& o) { o.objective_micros += 4'200; }, "objective +$0.0042"},
           {"balanced: same objective, dirtier", Mode::kBalanced,
            [](Option& o) { o.carbon_mg = Kg(12); }, "same objective, emits 2.00 kg more"},
           {"balanced: same objective and carbon, dearer", Mode::kBalanced,
            [](Option& o) { o.cost_micros = Usd(101); },
            "same objective and carbon, costs $1.00 more"},
           {"identical keys", Mode::kBalanced, [](Option&) {},
            "tie: loses on pool id, on-demand before spot, earlier start"},
       }) {
    Option alt = Chosen();
    alt.pool = 1;
    c.mutate(alt);
    EXPECT_EQ(WhyNotText(c.mode, alt, Chosen(), T0()), c.why) << c.name;
  }
}

TEST(DecisionText, WhyNotNamesTheWayTheChosenPoolRunsOtherwise) {
  struct Case {
    std::string name;
    std::function<void(Option&)> mutate;  // of a copy of Chosen(), a little dirtier
    std::string prefix;
  };
  for (const Case& c : std::vector<Case>{
           {"split", [](Option& o) { o.split = true; }, "split: "},
           {"at once", [](Option& o) { o.start = T0(); }, "at once: "},
           {"another start", [](Option& o) { o.start = T0() + absl::Hours(1); }, "contiguous: "},
           {"the other variant", [](Option& o) { o.spot = true; }, ""},
           {"another pool", [](Option& o) { o.pool = 1; }, ""},
       }) {
    Option alt = Chosen();
    alt.carbon_mg = Kg(12);
    c.mutate(alt);
    EXPECT_EQ(WhyNotText(Mode::kGreenest, alt, Chosen(), T0()), c.prefix + "emits 2.00 kg more")
        << c.name;
  }
}

TEST(DecisionText, RejectionTextCountsPoolsInTheOrderGiven) {
  EXPECT_EQ(RejectionText({}), "");
  EXPECT_EQ(RejectionText({{"capacity", 1}}), "1 pool rejected: 1 capacity");
  EXPECT_EQ(RejectionText({{"gpu_type", 3}, {"region", 2}, {"capacity", 1}}),
            "6 pools rejected: 3 gpu_type, 2 region, 1 capacity");
}

TEST(DecisionText, FeasibleSummaryQuotesChoiceBaselineAndRejections) {
  Decision d;
  d.feasible = true;
  d.chosen = Chosen();
  d.chosen.nodes = 1;
  d.chosen.runtime = absl::Hours(10);
  d.chosen.mean_intensity = 50;
  d.rejections = {{"gpu_type", 2}, {"capacity", 1}};
  EXPECT_EQ(SummaryText(d, JobRequest(), TeamView(), Shortfall()),
            "p: 1 node, start 2025-06-01 05:00 UTC for 10.0 h: $100.00, 10.00 kg CO2e (50 g/kWh); "
            "3 pools rejected: 2 gpu_type, 1 capacity");

  d.has_baseline = true;
  d.baseline.pool_id = "q";
  d.baseline.cost_micros = Usd(90);
  d.baseline.carbon_mg = Kg(35.2);
  d.carbon_avoided_mg = Kg(25.2);
  d.cost_saved_micros = -Usd(10);
  d.rejections.clear();
  EXPECT_EQ(SummaryText(d, JobRequest(), TeamView(), Shortfall()),
            "p: 1 node, start 2025-06-01 05:00 UTC for 10.0 h: $100.00, 10.00 kg CO2e (50 g/kWh); "
            "carbon-blind baseline q at once: $90.00, 35.20 kg (avoids 25.20 kg, costs $10.00 "
            "more)");
}

TEST(DecisionText, FeasibleSummaryNamesSpotSplitAndCarbonBasis) {
  Decision d;
  d.feasible = true;
  d.chosen = Chosen();
  d.chosen.nodes = 2;
  d.chosen.spot = true;
  d.chosen.split = true;
  d.chosen.slots.resize(3);
  d.chosen.runtime = absl::Minutes(90);
  d.chosen.mean_intensity = 123.4;
  d.chosen.carbon_estimated = true;
  EXPECT_EQ(SummaryText(d, JobRequest(), TeamView(), Shortfall()),
            "p: 2 nodes spot, start 2025-06-01 05:00 UTC for 1.5 h in 3 runs: $100.00, 10.00 kg "
            "CO2e (123 g/kWh, estimated)");
  // An unknown grid says what was assumed instead of "estimated".
  d.chosen.unknown_grid = true;
  d.chosen.carbon_basis = "unknown grid: default 400 g/kWh (team policy unknown_grid=default)";
  EXPECT_EQ(SummaryText(d, JobRequest(), TeamView(), Shortfall()),
            "p: 2 nodes spot, start 2025-06-01 05:00 UTC for 1.5 h in 3 runs: $100.00, 10.00 kg "
            "CO2e (123 g/kWh, unknown grid: default 400 g/kWh (team policy unknown_grid=default))");
}

// Over the caps: the cheapest at $100.00 / 20.00 kg, the lowest-carbon at
// $110.00 / 10.00 kg.
Shortfall OverCaps() {
  Shortfall s;
  s.over_caps = Shortfall::OverCaps{{Usd(100), Kg(20)}, {Usd(110), Kg(10)}};
  return s;
}

TEST(DecisionText, InfeasibleSummaryNamesTheCapThatBinds) {
  struct Case {
    std::string name;
    int64_t max_cost, max_carbon;
    bool cost_binds, carbon_binds;
    std::string tail;
  };
  for (const Case& c : std::vector<Case>{
           {"cost cap", Usd(90), 0, true, false, "; cheapest feasible: $100.00 > cap $90.00"},
           {"carbon cap", 0, Kg(5), false, true,
            "; lowest-carbon feasible: 10.00 kg > cap 5.00 kg"},
           {"both caps", Usd(90), Kg(5), true, true,
            "; cheapest feasible: $100.00 > cap $90.00; lowest-carbon feasible: 10.00 kg > cap "
            "5.00 kg"},
           {"neither alone", Usd(105), Kg(15), false, false,
            "; no option meets both caps ($105.00, 15.00 kg): cheapest $100.00 / 20.00 kg, "
            "lowest-carbon $110.00 / 10.00 kg"},
       }) {
    JobRequest job;
    job.max_cost_micros = c.max_cost;
    job.max_carbon_mg = c.max_carbon;
    EXPECT_EQ(CostCapBinds(job, OverCaps()), c.cost_binds) << c.name;
    EXPECT_EQ(CarbonCapBinds(job, OverCaps()), c.carbon_binds) << c.name;
    Decision d;
    d.rejections = {{"max_cost", 1}};
    EXPECT_EQ(SummaryText(d, job, TeamView(), OverCaps()),
              "no feasible placement: 1 pool rejected: 1 max_cost" + c.tail)
        << c.name;
  }
  JobRequest capped;
  capped.max_cost_micros = Usd(1);
  EXPECT_FALSE(CostCapBinds(capped, Shortfall())) << "nothing over the caps";
}

TEST(DecisionText, InfeasibleSummaryNamesTheTeamBudgetThatBinds) {
  Shortfall s;
  s.over_team = QuotedCost{Usd(100), Kg(3)};
  TeamView money;
  money.cost_headroom_micros = Usd(50);
  EXPECT_EQ(SummaryText(Decision(), JobRequest(), money, s),
            "no feasible placement; team budget: cheapest needs $100.00, $50.00 left");
  TeamView carbon;
  carbon.carbon_headroom_mg = Kg(2);
  EXPECT_EQ(SummaryText(Decision(), JobRequest(), carbon, s),
            "no feasible placement; team carbon budget: needs 3.00 kg, 2.00 kg left");
}

TEST(DecisionText, NotNowSummarySaysItWaits) {
  Decision d;
  d.not_now = true;
  d.rejections = {{"quota", 1}};
  EXPECT_EQ(SummaryText(d, JobRequest(), TeamView(), Shortfall()),
            "no placement now: 1 pool rejected: 1 quota; waits: capacity or quota may free up");
}

}  // namespace
}  // namespace greenlight::placement
