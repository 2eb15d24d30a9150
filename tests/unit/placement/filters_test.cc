// One table per filter: each row a job/pool pair and the verdict expected.
#include "services/placement/filters.h"

#include <functional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/placement/test_util.h"

namespace greenlight::placement {
namespace {

using testing::MakeJob;
using testing::MakePool;
using testing::MakeSnapshot;
using testing::T0;

struct PoolCase {
  std::string name;
  std::function<void(JobRequest&, Pool&, Snapshot&)> mutate;
  Fit want;
};

void RunPoolCases(const PoolFilter& filter, const std::vector<PoolCase>& cases) {
  for (const PoolCase& c : cases) {
    JobRequest job = MakeJob();
    Snapshot snap = MakeSnapshot({MakePool("p")});
    Pool pool = snap.pools[0];
    c.mutate(job, pool, snap);
    JobContext ctx = JobContext::Make(job, snap);
    FilterResult r = filter.Check(ctx, pool);
    EXPECT_EQ(r.fit, c.want) << filter.name() << ": " << c.name;
    if (r.fit != Fit::kFits) {
      EXPECT_EQ(std::string(r.reason), filter.name()) << c.name;
    }
  }
}

TEST(GpuTypeFilter, MatchesAnyListedTypeCaseInsensitively) {
  RunPoolCases(
      GpuTypeFilter(),
      {
          {"no types = any", [](JobRequest& j, Pool&, Snapshot&) { j.gpu_types = {}; }, Fit::kFits},
          {"listed",
           [](JobRequest& j, Pool&, Snapshot&) {
             j.gpu_types = {"A100", "H100"};
           },
           Fit::kFits},
          {"other case", [](JobRequest& j, Pool&, Snapshot&) { j.gpu_types = {"h100"}; },
           Fit::kFits},
          {"absent", [](JobRequest& j, Pool&, Snapshot&) { j.gpu_types = {"A100-80GB"}; },
           Fit::kNever},
          {"prefix is not a match", [](JobRequest& j, Pool&, Snapshot&) { j.gpu_types = {"H10"}; },
           Fit::kNever},
      });
}

TEST(RegionFilter, MatchesRegionProviderRegionAndPrefix) {
  RunPoolCases(
      RegionFilter(),
      {
          {"empty = any", [](JobRequest& j, Pool&, Snapshot&) {}, Fit::kFits},
          {"region", [](JobRequest& j, Pool&, Snapshot&) { j.regions = {"us-east-1"}; },
           Fit::kFits},
          {"provider/region",
           [](JobRequest& j, Pool&, Snapshot&) { j.regions = {"aws/us-east-1"}; }, Fit::kFits},
          {"prefix",
           [](JobRequest& j, Pool&, Snapshot&) {
             j.regions = {"eu-*", "us-*"};
           },
           Fit::kFits},
          {"provider prefix", [](JobRequest& j, Pool&, Snapshot&) { j.regions = {"aws/*"}; },
           Fit::kFits},
          {"other provider", [](JobRequest& j, Pool&, Snapshot&) { j.regions = {"gcp/us-east-1"}; },
           Fit::kNever},
          {"other region", [](JobRequest& j, Pool&, Snapshot&) { j.regions = {"us-east-2"}; },
           Fit::kNever},
          {"prefix mismatch", [](JobRequest& j, Pool&, Snapshot&) { j.regions = {"eu-*"}; },
           Fit::kNever},
      });
}

TEST(GangShapeFilter, OneNodeUpToItsSizeElseWholeNodesOfThePool) {
  RunPoolCases(
      GangShapeFilter(),
      {
          {"fits one node", [](JobRequest& j, Pool&, Snapshot&) { j.gpus = 8; }, Fit::kFits},
          {"sub-node", [](JobRequest& j, Pool&, Snapshot&) { j.gpus = 3; }, Fit::kFits},
          {"4 nodes of 8", [](JobRequest& j, Pool&, Snapshot&) { j.gpus = 32; }, Fit::kFits},
          {"needs 5 nodes of 4", [](JobRequest& j, Pool&, Snapshot&) { j.gpus = 33; }, Fit::kNever},
          {"busy pool still fits in shape",
           [](JobRequest& j, Pool& p, Snapshot&) {
             j.gpus = 32;
             p.free_nodes = 0;
           },
           Fit::kFits},
          {"no gpus per node", [](JobRequest&, Pool& p, Snapshot&) { p.gpus_per_node = 0; },
           Fit::kNever},
      });
}

TEST(CapacityFilter, FreeNodesOrAPartialNodeWithEnoughGpus) {
  RunPoolCases(
      CapacityFilter(),
      {
          {"free node", [](JobRequest&, Pool&, Snapshot&) {}, Fit::kFits},
          {"no free node", [](JobRequest&, Pool& p, Snapshot&) { p.free_nodes = 0; }, Fit::kNotNow},
          {"partial node fits sub-node job",
           [](JobRequest& j, Pool& p, Snapshot&) {
             j.gpus = 4;
             p.free_nodes = 0;
             p.free_gpus_on_partial_nodes = {2, 4};
           },
           Fit::kFits},
          {"partial nodes too small",
           [](JobRequest& j, Pool& p, Snapshot&) {
             j.gpus = 5;
             p.free_nodes = 0;
             p.free_gpus_on_partial_nodes = {4, 4};
           },
           Fit::kNotNow},
          {"gang needs whole nodes, partials do not add up",
           [](JobRequest& j, Pool& p, Snapshot&) {
             j.gpus = 16;
             p.free_nodes = 1;
             p.free_gpus_on_partial_nodes = {7, 7, 7};
           },
           Fit::kNotNow},
          {"gang on two free nodes",
           [](JobRequest& j, Pool& p, Snapshot&) {
             j.gpus = 12;
             p.free_nodes = 2;
           },
           Fit::kFits},
      });
}

TEST(QuotaFilter, AboveTotalNeverAboveFreeNotNow) {
  RunPoolCases(QuotaFilter(),
               {
                   {"unlimited", [](JobRequest&, Pool&, Snapshot&) {}, Fit::kFits},
                   {"within",
                    [](JobRequest&, Pool&, Snapshot& s) {
                      s.team.gpu_quota_total = 16;
                      s.team.gpu_quota_free = 8;
                    },
                    Fit::kFits},
                   {"above free",
                    [](JobRequest&, Pool&, Snapshot& s) {
                      s.team.gpu_quota_total = 16;
                      s.team.gpu_quota_free = 4;
                    },
                    Fit::kNotNow},
                   {"above total",
                    [](JobRequest&, Pool&, Snapshot& s) {
                      s.team.gpu_quota_total = 4;
                      s.team.gpu_quota_free = 4;
                    },
                    Fit::kNever},
                   {"zero free", [](JobRequest&, Pool&, Snapshot& s) { s.team.gpu_quota_free = 0; },
                    Fit::kNotNow},
               });
}

struct EstimateCase {
  std::string name;
  std::function<void(JobRequest&, Snapshot&, Estimate&)> mutate;
  Fit want;
};

void RunEstimateCases(const EstimateFilter& filter, const std::vector<EstimateCase>& cases) {
  for (const EstimateCase& c : cases) {
    JobRequest job = MakeJob();
    Snapshot snap = MakeSnapshot({MakePool("p")});
    Estimate e;
    e.pool = 0;
    e.start = T0();
    e.end = T0() + absl::Hours(10);
    e.cost_micros = testing::Usd(100);
    e.carbon_mg = testing::Kg(20);
    c.mutate(job, snap, e);
    JobContext ctx = JobContext::Make(job, snap);
    FilterResult r = filter.Check(ctx, snap.pools[0], e);
    EXPECT_EQ(r.fit, c.want) << filter.name() << ": " << c.name;
    if (r.fit != Fit::kFits) {
      EXPECT_EQ(std::string(r.reason), filter.name()) << c.name;
    }
  }
}

TEST(DeadlineFilter, RunMustEndByTheDeadline) {
  RunEstimateCases(
      DeadlineFilter(),
      {
          {"no deadline", [](JobRequest&, Snapshot&, Estimate&) {}, Fit::kFits},
          {"ends exactly at deadline",
           [](JobRequest& j, Snapshot&, Estimate&) { j.deadline = T0() + absl::Hours(10); },
           Fit::kFits},
          {"one second late",
           [](JobRequest& j, Snapshot&, Estimate&) {
             j.deadline = T0() + absl::Hours(10) - absl::Seconds(1);
           },
           Fit::kNever},
      });
}

TEST(JobCaps, CostAndCarbonCapsAreInclusiveAndZeroMeansNone) {
  RunEstimateCases(
      JobCostCapFilter(),
      {
          {"no cap", [](JobRequest&, Snapshot&, Estimate&) {}, Fit::kFits},
          {"at cap",
           [](JobRequest& j, Snapshot&, Estimate&) { j.max_cost_micros = testing::Usd(100); },
           Fit::kFits},
          {"over cap",
           [](JobRequest& j, Snapshot&, Estimate&) { j.max_cost_micros = testing::Usd(99.99); },
           Fit::kNever},
      });
  RunEstimateCases(
      JobCarbonCapFilter(),
      {
          {"no cap", [](JobRequest&, Snapshot&, Estimate&) {}, Fit::kFits},
          {"at cap", [](JobRequest& j, Snapshot&, Estimate&) { j.max_carbon_mg = testing::Kg(20); },
           Fit::kFits},
          {"over cap",
           [](JobRequest& j, Snapshot&, Estimate&) { j.max_carbon_mg = testing::Kg(19.9); },
           Fit::kNever},
      });
}

TEST(TeamHeadroomFilter, CostOrCarbonBeyondTheTeamsRemainingBudget) {
  RunEstimateCases(
      TeamHeadroomFilter(),
      {
          {"unlimited", [](JobRequest&, Snapshot&, Estimate&) {}, Fit::kFits},
          {"cost within",
           [](JobRequest&, Snapshot& s, Estimate&) {
             s.team.cost_headroom_micros = testing::Usd(100);
           },
           Fit::kFits},
          {"cost beyond",
           [](JobRequest&, Snapshot& s, Estimate&) {
             s.team.cost_headroom_micros = testing::Usd(50);
           },
           Fit::kNever},
          {"budget spent",
           [](JobRequest&, Snapshot& s, Estimate&) { s.team.cost_headroom_micros = 0; },
           Fit::kNever},
          {"carbon beyond",
           [](JobRequest&, Snapshot& s, Estimate&) { s.team.carbon_headroom_mg = testing::Kg(10); },
           Fit::kNever},
      });
}

TEST(JobContext, CarbonPriceFromJobElseTeamElseSnapshotDefault) {
  Snapshot snap = MakeSnapshot({});
  JobRequest job = MakeJob();
  snap.team.carbon_price_micros_per_tonne = 50'000'000;
  job.carbon_price_micros_per_tonne = 200'000'000;
  EXPECT_EQ(JobContext::Make(job, snap).carbon_price_micros_per_tonne, 200'000'000);
  job.carbon_price_micros_per_tonne = 0;
  EXPECT_EQ(JobContext::Make(job, snap).carbon_price_micros_per_tonne, 50'000'000);
  snap.team.carbon_price_micros_per_tonne = 0;
  EXPECT_EQ(JobContext::Make(job, snap).carbon_price_micros_per_tonne, 100'000'000);
}

TEST(JobContext, EarliestIsNotBeforeClampedToNow) {
  Snapshot snap = MakeSnapshot({});
  JobRequest job = MakeJob();
  EXPECT_EQ(JobContext::Make(job, snap).earliest, T0());
  job.not_before = T0() - absl::Hours(5);
  EXPECT_EQ(JobContext::Make(job, snap).earliest, T0());
  job.not_before = T0() + absl::Hours(5);
  EXPECT_EQ(JobContext::Make(job, snap).earliest, T0() + absl::Hours(5));
}

TEST(GangShape, NodesNeededAndBilledShare) {
  struct Case {
    int gpus, per_node, nodes;
    double share;
  };
  for (const Case& c : std::vector<Case>{{1, 8, 1, 0.125},
                                         {8, 8, 1, 1.0},
                                         {9, 8, 2, 2.0},
                                         {16, 8, 2, 2.0},
                                         {17, 8, 3, 3.0},
                                         {3, 1, 3, 3.0},
                                         {4, 0, 0, 0.0}}) {
    EXPECT_EQ(NodesNeeded(c.gpus, c.per_node), c.nodes) << c.gpus << "/" << c.per_node;
    EXPECT_DOUBLE_EQ(BilledNodeShare(c.gpus, c.per_node), c.share) << c.gpus << "/" << c.per_node;
  }
}

TEST(SpotModel, OverheadIsRateTimesLostWork) {
  SpotModel m;
  // 0.05/h x (0.5 h + 0.25 h) = 3.75 %.
  EXPECT_DOUBLE_EQ(m.OverheadFactor(), 1.0375);
  m.preemptions_per_hour = 0;
  EXPECT_DOUBLE_EQ(m.OverheadFactor(), 1.0);
  m.preemptions_per_hour = 0.2;
  m.checkpoint_interval = absl::Hours(2);
  m.restart = absl::ZeroDuration();
  EXPECT_DOUBLE_EQ(m.OverheadFactor(), 1.2);
}

}  // namespace
}  // namespace greenlight::placement
