// Pools whose grid is unknown: each team policy (pessimistic, default,
// exclude) prices or rejects them, and quotes say what was assumed.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/placement/engine.h"
#include "tests/unit/placement/test_util.h"

namespace greenlight::placement {
namespace {

using ::testing::HasSubstr;
using testing::MakeJob;
using testing::MakePool;
using testing::MakeSnapshot;

// Zone "U": nothing published; its pessimistic figure is 700 g/kWh.
Snapshot WithUnknownZone(std::vector<Pool> pools, UnknownGrid policy) {
  Snapshot s = MakeSnapshot(std::move(pools));
  auto unknown = std::make_shared<providers::CarbonSeries>("U", testing::T0(), absl::Hours(1),
                                                           std::vector<double>{}, 700.0);
  unknown->set_unknown_grid("highest known in Japan");
  s.zones["U"] = unknown;
  s.zones["K"] = testing::Series("K", testing::T0(), {}, 300.0);
  s.team.unknown_grid = policy;
  return s;
}

int Rejected(const Decision& d, const std::string& reason) {
  for (const auto& [r, n] : d.rejections)
    if (r == reason) return n;
  return 0;
}

TEST(UnknownGrid, EachPolicyPricesThePoolAsItSays) {
  struct Case {
    UnknownGrid policy;
    double g_per_kwh;
    std::string basis;
  };
  for (const Case& c : std::vector<Case>{
           {UnknownGrid::kPessimistic, 700, "pessimistic 700 g/kWh, highest known in Japan"},
           {UnknownGrid::kDefault, 400, "default 400 g/kWh"},
       }) {
    Decision d =
        PlacementEngine().Place(MakeJob(), WithUnknownZone({MakePool("u", "U")}, c.policy));
    ASSERT_TRUE(d.feasible) << d.summary;
    // 8 GPUs x 700 W x 10 h = 56 kWh.
    EXPECT_EQ(d.chosen.carbon_mg, static_cast<int64_t>(56'000 * c.g_per_kwh)) << c.basis;
    EXPECT_TRUE(d.chosen.unknown_grid);
    EXPECT_THAT(d.chosen.carbon_basis, HasSubstr("unknown grid: " + c.basis));
    EXPECT_THAT(d.summary, HasSubstr("unknown grid"));
    EXPECT_THAT(d.summary, ::testing::Not(HasSubstr("estimated")));
  }
}

TEST(UnknownGrid, ExcludeRejectsThePoolNamingTheReasonAndKeepsKnownOnes) {
  Pool unknown = MakePool("u", "U", 5'000'000);  // cheaper, but its grid is unknown
  Pool known = MakePool("k", "K", 10'000'000);
  Decision d =
      PlacementEngine().Place(MakeJob(), WithUnknownZone({unknown, known}, UnknownGrid::kExclude));
  ASSERT_TRUE(d.feasible) << d.summary;
  EXPECT_EQ(d.chosen.pool_id, "k");
  EXPECT_FALSE(d.chosen.unknown_grid);
  EXPECT_EQ(Rejected(d, kReasonUnknownGrid), 1);
  for (const Option& o : d.alternatives) EXPECT_NE(o.pool_id, "u");

  Decision only =
      PlacementEngine().Place(MakeJob(), WithUnknownZone({unknown}, UnknownGrid::kExclude));
  EXPECT_FALSE(only.feasible);
  EXPECT_FALSE(only.not_now) << "an excluded grid never becomes known by waiting";
  EXPECT_THAT(only.summary, HasSubstr("unknown_grid"));
}

TEST(UnknownGrid, PessimisticPrefersAKnownCleanerGridTheDefaultPolicyMightNot) {
  // Same price; U is unknown (700 pessimistic, 400 default), K is known at 450.
  Pool unknown = MakePool("a-unknown", "U");
  Pool known = MakePool("b-known", "K");
  Snapshot s = WithUnknownZone({unknown, known}, UnknownGrid::kPessimistic);
  s.zones["K"] = testing::Series("K", testing::T0(), {}, 450.0);
  JobRequest job = MakeJob();
  job.mode = Mode::kGreenest;
  EXPECT_EQ(PlacementEngine().Place(job, s).chosen.pool_id, "b-known");
  s.team.unknown_grid = UnknownGrid::kDefault;
  EXPECT_EQ(PlacementEngine().Place(job, s).chosen.pool_id, "a-unknown");
}

TEST(UnknownGrid, KnownZonesSayWhatTheirFigureRestsOn) {
  bool unknown = true;
  Snapshot s = WithUnknownZone({MakePool("k", "K")}, UnknownGrid::kPessimistic);
  EXPECT_EQ(CarbonBasis(s, "K", true, &unknown), "annual average");
  EXPECT_FALSE(unknown);
  s.zones["H"] = testing::Series("H", testing::T0(), std::vector<double>(48, 100.0), 300.0);
  EXPECT_EQ(CarbonBasis(s, "H", false, &unknown), "hourly series");
  EXPECT_EQ(CarbonBasis(s, "H", true, &unknown), "hourly series, annual average outside it");
}

TEST(UnknownGrid, PolicyNamesRoundTrip) {
  for (UnknownGrid p : {UnknownGrid::kPessimistic, UnknownGrid::kDefault, UnknownGrid::kExclude})
    EXPECT_EQ(UnknownGridFromName(UnknownGridName(p)), p);
  EXPECT_EQ(UnknownGridFromName(""), UnknownGrid::kPessimistic);
}

}  // namespace
}  // namespace greenlight::placement
