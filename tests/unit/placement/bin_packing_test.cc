// Best-fit node choice inside one pool.
#include "services/placement/bin_packing.h"

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace greenlight::placement {
namespace {

TEST(BestFitNodes, PicksTheTightestNodeOrWholeFreeNodes) {
  struct Case {
    std::string name;
    int gpus;
    std::vector<int> free;
    std::optional<std::vector<int>> want;
  };
  for (const Case& c : std::vector<Case>{
           {"tightest fit", 2, {8, 3, 5, 2}, std::vector<int>{3}},
           {"tightest of three", 3, {8, 3, 5, 2}, std::vector<int>{1}},
           {"skips too-small nodes", 4, {8, 3, 5, 2}, std::vector<int>{2}},
           {"whole node when nothing tighter", 6, {8, 3, 5, 2}, std::vector<int>{0}},
           {"lowest index on ties", 4, {4, 8, 4}, std::vector<int>{0}},
           {"gang takes whole free nodes", 12, {8, 7, 8, 8}, std::vector<int>{0, 2}},
           {"gang of exactly two nodes", 16, {8, 8, 8}, std::vector<int>{0, 1}},
           {"gang ignores partial nodes", 16, {8, 7, 7, 7}, std::nullopt},
           {"nothing fits", 5, {4, 4, 0}, std::nullopt},
           {"empty pool", 1, {}, std::nullopt},
           {"zero gpus", 0, {8}, std::nullopt},
       }) {
    std::optional<NodePick> pick = BestFitNodes(c.gpus, 8, c.free);
    ASSERT_EQ(pick.has_value(), c.want.has_value()) << c.name;
    if (pick) {
      EXPECT_EQ(pick->nodes, *c.want) << c.name;
    }
  }
}

// Two 4-GPU jobs then an 8-GPU job on two free 8-GPU nodes: best fit puts
// both small jobs on one node and the gang still fits; spreading them would
// starve it.
TEST(BestFitNodes, SmallJobsDoNotStarveAGang) {
  std::vector<int> free = {8, 8};
  for (int i = 0; i < 2; ++i) {
    std::optional<NodePick> pick = BestFitNodes(4, 8, free);
    ASSERT_TRUE(pick);
    free[pick->nodes[0]] -= 4;
  }
  EXPECT_EQ(free, (std::vector<int>{0, 8}));
  EXPECT_TRUE(BestFitNodes(8, 8, free).has_value());
}

TEST(SummarizeFreeCapacity, CountsFreeNodesAndListsPartials) {
  Pool pool;
  pool.gpus_per_node = 8;
  SummarizeFreeCapacity(8, {8, 0, 3, 8, 5}, &pool);
  EXPECT_EQ(pool.free_nodes, 2);
  EXPECT_EQ(pool.free_gpus_on_partial_nodes, (std::vector<int>{5, 3}));
}

}  // namespace
}  // namespace greenlight::placement
