// NodeAllocator: best-fit node choice, whole nodes for gangs, the team's
// running GPUs, pool changes under running jobs and the version counters.
#include "services/scheduler/node_allocator.h"

#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_testing.h"

namespace greenlight::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

providers::Pool MakePool(const std::string& id, int nodes, int gpus_per_node = 8,
                         const std::string& gpu_type = "H100",
                         const std::string& region = "us-east-1") {
  providers::Pool p;
  p.id = id;
  p.provider = "aws";
  p.region = region;
  p.zone = "US-MIDA-PJM";
  p.instance_type = "p5.48xlarge";
  p.gpu_type = gpu_type;
  p.gpus_per_node = gpus_per_node;
  p.nodes = nodes;
  p.price_micros_per_node_hour = 98'000'000;
  p.gpu_power_w = 700;
  p.pue = 1.1;
  return p;
}

// Finds and takes; fails the test when nothing fits.
Allocation MustTake(NodeAllocator& a, const std::string& pool, const std::string& job,
                    const std::string& team, int gpus) {
  std::optional<Allocation> found = a.Find(pool, gpus);
  EXPECT_TRUE(found.has_value()) << job << ": " << gpus << " GPUs do not fit " << pool;
  if (!found) return {};
  a.Take(job, team, gpus, *found);
  return *found;
}

TEST(NodeAllocator, ResetSortsPoolsAndFreesEveryNode) {
  NodeAllocator a;
  a.Reset({MakePool("b", 2), MakePool("a", 3, 4, "A100", "eu-north-1")});
  ASSERT_EQ(a.pools().size(), 2u);
  EXPECT_EQ(a.pools()[0].pool.id, "a");
  EXPECT_EQ(a.PoolIndex("a"), 0);
  EXPECT_EQ(a.PoolIndex("b"), 1);
  EXPECT_EQ(a.PoolIndex("c"), -1);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(4, 4, 4));
  EXPECT_THAT(a.pools()[1].free_gpus, ElementsAre(8, 8));
  EXPECT_TRUE(a.HasRegion("eu-north-1"));
  EXPECT_FALSE(a.HasRegion("ap-south-1"));
  EXPECT_TRUE(a.HasGpuType("A100"));
  EXPECT_FALSE(a.HasGpuType("V100"));
  EXPECT_EQ(a.FreeWholeNodes(0), 3);
  EXPECT_OK(a.Check());
}

// A lost agent node: nothing is placed on it, the GPUs of the jobs it held
// stay out when those jobs are released, and all come back with the node.
TEST(NodeAllocator, NodesOutOfServiceTakeNoJobsUntilTheyReturn) {
  NodeAllocator a;
  a.Reset({MakePool("p", 2, 4)});
  Allocation held = MustTake(a, "p", "j1", "nlp", 3);  // node 0, the fullest that fits
  ASSERT_EQ(held.nodes.size(), 1u);
  const int node = held.nodes[0].first;
  const uint64_t before = a.capacity_version();
  a.SetNodeOut(0, node, true);
  EXPECT_TRUE(a.NodeOut(0, node));
  EXPECT_GT(a.capacity_version(), before);
  EXPECT_EQ(a.pools()[0].free_gpus[node], 0);
  EXPECT_EQ(a.pools()[0].out_gpus[node], 1);
  EXPECT_EQ(a.FreeWholeNodes(0), 1);
  EXPECT_OK(a.Check());
  // 4 GPUs fit only on the other node; 5 do not fit at all now.
  std::optional<Allocation> four = a.Find("p", 4);
  ASSERT_TRUE(four.has_value());
  EXPECT_NE(four->nodes[0].first, node);
  EXPECT_FALSE(a.Find("p", 8).has_value());
  // The job's GPUs stay out of service when it is released.
  EXPECT_TRUE(a.Release("j1"));
  EXPECT_EQ(a.pools()[0].free_gpus[node], 0);
  EXPECT_EQ(a.pools()[0].out_gpus[node], 4);
  EXPECT_EQ(a.RunningGpus("nlp"), 0);
  EXPECT_OK(a.Check());
  a.SetNodeOut(0, node, true);  // already out: no change
  EXPECT_EQ(a.pools()[0].out_gpus[node], 4);
  a.SetNodeOut(0, node, false);
  EXPECT_FALSE(a.NodeOut(0, node));
  EXPECT_EQ(a.pools()[0].free_gpus[node], 4);
  EXPECT_EQ(a.FreeWholeNodes(0), 2);
  EXPECT_TRUE(a.Find("p", 8).has_value());
  a.SetNodeOut(7, 0, true);  // unknown pool or node: no-op
  a.SetNodeOut(0, 9, true);
  EXPECT_OK(a.Check());
}

TEST(NodeAllocator, SubNodeJobsTakeTheFullestNodeThatFits) {
  NodeAllocator a;
  a.Reset({MakePool("p", 3)});
  // All nodes equal: the lowest index.
  Allocation first = MustTake(a, "p", "j1", "ml", 6);
  EXPECT_THAT(first.nodes, ElementsAre(Pair(0, 6)));
  // 4 do not fit node 0 (2 free): the next fullest is node 1.
  Allocation second = MustTake(a, "p", "j2", "ml", 4);
  EXPECT_THAT(second.nodes, ElementsAre(Pair(1, 4)));
  ASSERT_THAT(a.pools()[0].free_gpus, ElementsAre(2, 4, 8));

  // Find changes nothing and picks the node with the fewest free GPUs that fit.
  const uint64_t cap = a.capacity_version();
  auto two = a.Find("p", 2);
  ASSERT_TRUE(two.has_value());
  EXPECT_THAT(two->nodes, ElementsAre(Pair(0, 2)));
  auto three = a.Find("p", 3);
  ASSERT_TRUE(three.has_value());
  EXPECT_THAT(three->nodes, ElementsAre(Pair(1, 3)));
  auto five = a.Find("p", 5);
  ASSERT_TRUE(five.has_value());
  EXPECT_THAT(five->nodes, ElementsAre(Pair(2, 5)));
  EXPECT_EQ(a.WholeNodesTaken(*five), 1);
  EXPECT_EQ(a.WholeNodesTaken(*two), 0);
  EXPECT_EQ(a.capacity_version(), cap);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(2, 4, 8));
  EXPECT_FALSE(a.Find("p", 0).has_value());
  EXPECT_FALSE(a.Find("nope", 1).has_value());
  EXPECT_OK(a.Check());
}

TEST(NodeAllocator, MultiNodeJobsTakeWholeFreeNodes) {
  NodeAllocator a;
  a.Reset({MakePool("p", 4)});
  MustTake(a, "p", "small", "ml", 1);  // node 0 is no longer whole
  Allocation gang = MustTake(a, "p", "gang", "ml", 12);
  // ceil(12 / 8) = 2 whole nodes, all their GPUs (a gang takes whole nodes).
  EXPECT_THAT(gang.nodes, ElementsAre(Pair(1, 8), Pair(2, 8)));
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(7, 0, 0, 8));
  EXPECT_EQ(a.FreeWholeNodes(0), 1);
  // Quota counts the GPUs the job asked for.
  EXPECT_EQ(a.RunningGpus("ml"), 13);
  // Two whole nodes no longer exist, although 15 GPUs are free.
  EXPECT_FALSE(a.Find("p", 9).has_value());
  EXPECT_TRUE(a.Find("p", 8).has_value());
  EXPECT_OK(a.Check());

  ASSERT_TRUE(a.Release("gang"));
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(7, 8, 8, 8));
  EXPECT_EQ(a.RunningGpus("ml"), 1);
  EXPECT_OK(a.Check());
}

TEST(NodeAllocator, TakeAndReleaseKeepRunningGpusPerTeamAndType) {
  NodeAllocator a;
  a.Reset({MakePool("h100", 4, 8, "H100"), MakePool("a100", 4, 8, "A100")});
  MustTake(a, "h100", "j1", "ml", 8);
  MustTake(a, "a100", "j2", "ml", 4);
  MustTake(a, "h100", "j3", "vision", 2);
  EXPECT_TRUE(a.Holds("j1"));
  EXPECT_FALSE(a.Holds("j9"));
  EXPECT_EQ(a.RunningGpus("ml"), 12);
  EXPECT_EQ(a.RunningGpus("ml", "H100"), 8);
  EXPECT_EQ(a.RunningGpus("ml", "A100"), 4);
  EXPECT_EQ(a.RunningGpus("vision"), 2);
  EXPECT_EQ(a.RunningGpus("vision", "A100"), 0);
  EXPECT_EQ(a.RunningGpus("audio"), 0);
  EXPECT_EQ(a.RunningGpus("audio", "H100"), 0);

  ASSERT_TRUE(a.Release("j1"));
  EXPECT_FALSE(a.Holds("j1"));
  EXPECT_EQ(a.RunningGpus("ml"), 4);
  EXPECT_EQ(a.RunningGpus("ml", "H100"), 0);
  EXPECT_EQ(a.RunningGpus("ml", "A100"), 4);
  EXPECT_FALSE(a.Release("j1"));  // held nothing any more
  EXPECT_FALSE(a.Release("never"));
  EXPECT_EQ(a.RunningGpus("ml"), 4);
  EXPECT_OK(a.Check());
}

TEST(NodeAllocator, UpsertGrowsAndShrinksOnlyTheFreeTail) {
  NodeAllocator a;
  a.Reset({MakePool("p", 2)});
  ASSERT_OK(a.Upsert(MakePool("p", 4)));
  EXPECT_EQ(a.pools()[0].pool.nodes, 4);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(8, 8, 8, 8));

  // A job on node 1 (node 0 full, node 1 partly used).
  MustTake(a, "p", "full", "ml", 8);
  MustTake(a, "p", "part", "ml", 3);
  ASSERT_THAT(a.pools()[0].free_gpus, ElementsAre(0, 5, 8, 8));

  // Shrinking to 1 node stops at the last node in use.
  ASSERT_OK(a.Upsert(MakePool("p", 1)));
  EXPECT_EQ(a.pools()[0].pool.nodes, 2);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(0, 5));
  EXPECT_OK(a.Check());

  // Once node 1 is free again the pool can shrink past it.
  ASSERT_TRUE(a.Release("part"));
  ASSERT_OK(a.Upsert(MakePool("p", 1)));
  EXPECT_EQ(a.pools()[0].pool.nodes, 1);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(0));
  EXPECT_OK(a.Check());

  ASSERT_TRUE(a.Release("full"));
  ASSERT_OK(a.Upsert(MakePool("p", 0)));
  EXPECT_EQ(a.pools()[0].pool.nodes, 0);
  EXPECT_OK(a.Check());
}

TEST(NodeAllocator, UpsertAddsANewPool) {
  NodeAllocator a;
  a.Reset({MakePool("a", 1)});
  ASSERT_OK(a.Upsert(MakePool("b", 2, 4, "L4", "ap-south-1")));
  ASSERT_EQ(a.PoolIndex("b"), 1);
  EXPECT_THAT(a.pools()[1].free_gpus, ElementsAre(4, 4));
  EXPECT_TRUE(a.HasRegion("ap-south-1"));
  EXPECT_TRUE(a.HasGpuType("L4"));
  MustTake(a, "b", "j", "ml", 4);
  EXPECT_EQ(a.RunningGpus("ml", "L4"), 4);
  EXPECT_OK(a.Check());
}

TEST(NodeAllocator, GpusPerNodeCannotChangeUnderRunningJobs) {
  NodeAllocator a;
  a.Reset({MakePool("p", 2, 8)});
  MustTake(a, "p", "j", "ml", 2);
  const uint64_t cap = a.capacity_version(), layout = a.layout_version();

  providers::Pool four = MakePool("p", 6, 4);
  absl::Status can = a.CanUpsert(four);
  EXPECT_EQ(can.code(), absl::StatusCode::kFailedPrecondition) << can;
  EXPECT_THAT(std::string(can.message()), HasSubstr("gpus_per_node"));
  absl::Status did = a.Upsert(four);
  EXPECT_EQ(did.code(), absl::StatusCode::kFailedPrecondition) << did;
  EXPECT_EQ(did.message(), can.message());
  // Nothing changed.
  EXPECT_EQ(a.pools()[0].pool.gpus_per_node, 8);
  EXPECT_EQ(a.pools()[0].pool.nodes, 2);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(6, 8));
  EXPECT_EQ(a.capacity_version(), cap);
  EXPECT_EQ(a.layout_version(), layout);
  // A change that keeps gpus_per_node is fine.
  EXPECT_OK(a.CanUpsert(MakePool("p", 6, 8)));
  // So is any change to an unknown pool.
  EXPECT_OK(a.CanUpsert(MakePool("q", 1, 2)));

  // With nothing running the nodes are rebuilt at the new size.
  ASSERT_TRUE(a.Release("j"));
  EXPECT_OK(a.CanUpsert(four));
  ASSERT_OK(a.Upsert(four));
  EXPECT_EQ(a.pools()[0].pool.gpus_per_node, 4);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(4, 4, 4, 4, 4, 4));
  EXPECT_OK(a.Check());
}

TEST(NodeAllocator, VersionsBumpOnCapacityAndLayoutChanges) {
  NodeAllocator a;
  const uint64_t cap0 = a.capacity_version(), layout0 = a.layout_version();
  a.Reset({MakePool("p", 2)});
  const uint64_t cap1 = a.capacity_version(), layout1 = a.layout_version();
  EXPECT_GT(cap1, cap0);
  EXPECT_GT(layout1, layout0);

  // Reads change nothing.
  (void)a.Find("p", 1);
  (void)a.CanUpsert(MakePool("p", 5));
  EXPECT_EQ(a.capacity_version(), cap1);
  EXPECT_EQ(a.layout_version(), layout1);

  // Take and Release change free capacity, not the layout.
  MustTake(a, "p", "j", "ml", 1);
  const uint64_t cap2 = a.capacity_version();
  EXPECT_GT(cap2, cap1);
  EXPECT_EQ(a.layout_version(), layout1);
  ASSERT_TRUE(a.Release("j"));
  const uint64_t cap3 = a.capacity_version();
  EXPECT_GT(cap3, cap2);
  EXPECT_EQ(a.layout_version(), layout1);
  EXPECT_FALSE(a.Release("j"));
  EXPECT_EQ(a.capacity_version(), cap3);

  // Upsert changes both.
  ASSERT_OK(a.Upsert(MakePool("p", 3)));
  EXPECT_GT(a.capacity_version(), cap3);
  EXPECT_GT(a.layout_version(), layout1);
}

TEST(NodeAllocator, CheckHoldsThroughMixedUseAndResetForgetsAllocations) {
  NodeAllocator a;
  a.Reset({MakePool("a", 4, 8, "H100"), MakePool("b", 2, 4, "A100")});
  MustTake(a, "a", "j1", "ml", 3);
  MustTake(a, "a", "j2", "vision", 16);
  MustTake(a, "b", "j3", "ml", 4);
  MustTake(a, "a", "j4", "ml", 5);
  ASSERT_OK(a.Check());
  ASSERT_TRUE(a.Release("j2"));
  MustTake(a, "a", "j5", "vision", 24);
  ASSERT_OK(a.Check());
  ASSERT_OK(a.Upsert(MakePool("a", 8, 8, "H100")));
  EXPECT_OK(a.Check());

  a.Reset({MakePool("a", 4)});
  EXPECT_FALSE(a.Holds("j1"));
  EXPECT_EQ(a.RunningGpus("ml"), 0);
  EXPECT_THAT(a.pools()[0].free_gpus, ElementsAre(8, 8, 8, 8));
  EXPECT_OK(a.Check());
}

}  // namespace
}  // namespace greenlight::scheduler
