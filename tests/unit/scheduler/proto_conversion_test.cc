// Proto conversions: the one rule for a pool's absent figures, the pool
// round trip, and the compute time a placement holds.
#include "services/scheduler/proto_conversion.h"

#include <string>

#include "absl/time/time.h"
#include "common/proto_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/providers/inventory.h"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;

providers::GpuTable Gpus() {
  providers::GpuTable t;
  t.Add({"H100", 700, 3.0, "test", "test"}, {"h100-sxm"});
  t.Add({"A100", 400, 1.0, "test", "test"}, {});
  return t;
}

v1::NodePool ApiPool() {
  v1::NodePool p;
  p.set_id("aws/us-east-1/p5.48xlarge");
  p.set_provider("aws");
  p.set_region("us-east-1");
  p.set_grid_zone("US-MIDA-PJM");
  p.set_instance_type("p5.48xlarge");
  p.set_gpu_type("H100");
  p.set_gpus_per_node(8);
  p.set_nodes(4);
  p.set_price_micros_per_node_hour(98'320'000);
  p.set_spot_price_micros_per_node_hour(39'000'000);
  p.set_gpu_power_w(650);
  p.set_pue(1.2);
  return p;
}

TEST(PoolFromProto, AbsentPueIsTheProvidersDefault) {
  struct Case {
    std::string provider;
    double pue;
  };
  for (const Case& c :
       {Case{"aws", 1.10}, Case{"gcp", 1.10}, Case{"azure", 1.10}, Case{"AWS", 1.10},
        Case{"lambda", 1.58}, Case{"coreweave", 1.58}, Case{"", 1.58}}) {
    v1::NodePool p = ApiPool();
    p.set_provider(c.provider);
    p.set_pue(0);
    EXPECT_DOUBLE_EQ(PoolFromProto(p, Gpus()).pue, c.pue) << "provider '" << c.provider << "'";
    EXPECT_DOUBLE_EQ(PoolFromProto(p, Gpus()).pue, providers::DefaultPue(c.provider));
  }
  // A given PUE is kept.
  EXPECT_DOUBLE_EQ(PoolFromProto(ApiPool(), Gpus()).pue, 1.2);
}

TEST(PoolFromProto, AbsentGpuPowerComesFromTheGpuTableOr300W) {
  v1::NodePool p = ApiPool();
  p.set_gpu_power_w(0);
  providers::Pool h100 = PoolFromProto(p, Gpus());
  EXPECT_DOUBLE_EQ(h100.gpu_power_w, 700);
  EXPECT_DOUBLE_EQ(h100.speed, 3.0);

  p.set_gpu_type("h100-sxm");  // an alias of the table
  EXPECT_DOUBLE_EQ(PoolFromProto(p, Gpus()).gpu_power_w, 700);

  p.set_gpu_type("X9000");  // unknown to the table
  providers::Pool unknown = PoolFromProto(p, Gpus());
  EXPECT_DOUBLE_EQ(unknown.gpu_power_w, 300);
  EXPECT_DOUBLE_EQ(unknown.speed, 1.0);

  // A given power wins over the table.
  EXPECT_DOUBLE_EQ(PoolFromProto(ApiPool(), Gpus()).gpu_power_w, 650);
}

TEST(PoolFromProto, EmptyGridZoneIsTheRegion) {
  v1::NodePool p = ApiPool();
  p.clear_grid_zone();
  EXPECT_EQ(PoolFromProto(p, Gpus()).zone, "us-east-1");
  EXPECT_EQ(PoolFromProto(ApiPool(), Gpus()).zone, "US-MIDA-PJM");
}

TEST(PoolFromProto, CopiesEveryGivenFigureAndStartsWithAllNodesFree) {
  providers::Pool pool = PoolFromProto(ApiPool(), Gpus());
  EXPECT_EQ(pool.id, "aws/us-east-1/p5.48xlarge");
  EXPECT_EQ(pool.provider, "aws");
  EXPECT_EQ(pool.region, "us-east-1");
  EXPECT_EQ(pool.instance_type, "p5.48xlarge");
  EXPECT_EQ(pool.gpu_type, "H100");
  EXPECT_EQ(pool.gpus_per_node, 8);
  EXPECT_EQ(pool.nodes, 4);
  EXPECT_EQ(pool.free_nodes, 4);
  EXPECT_EQ(pool.price_micros_per_node_hour, 98'320'000);
  EXPECT_EQ(pool.spot_price_micros_per_node_hour, 39'000'000);
  EXPECT_DOUBLE_EQ(pool.speed, 3.0);
}

TEST(PoolToProto, RoundTripsThroughPoolFromProto) {
  providers::Pool pool = PoolFromProto(ApiPool(), Gpus());
  v1::NodePool proto = PoolToProto(pool, 3);
  EXPECT_EQ(proto.free_nodes(), 3);
  EXPECT_EQ(proto.grid_zone(), "US-MIDA-PJM");
  EXPECT_DOUBLE_EQ(proto.pue(), 1.2);
  EXPECT_DOUBLE_EQ(proto.gpu_power_w(), 650);

  providers::Pool back = PoolFromProto(proto, Gpus());
  EXPECT_EQ(back.id, pool.id);
  EXPECT_EQ(back.provider, pool.provider);
  EXPECT_EQ(back.region, pool.region);
  EXPECT_EQ(back.zone, pool.zone);
  EXPECT_EQ(back.instance_type, pool.instance_type);
  EXPECT_EQ(back.gpu_type, pool.gpu_type);
  EXPECT_EQ(back.gpus_per_node, pool.gpus_per_node);
  EXPECT_EQ(back.nodes, pool.nodes);
  EXPECT_EQ(back.price_micros_per_node_hour, pool.price_micros_per_node_hour);
  EXPECT_EQ(back.spot_price_micros_per_node_hour, pool.spot_price_micros_per_node_hour);
  EXPECT_DOUBLE_EQ(back.gpu_power_w, pool.gpu_power_w);
  EXPECT_DOUBLE_EQ(back.pue, pool.pue);
  EXPECT_DOUBLE_EQ(back.speed, pool.speed);

  // Defaults filled in once stay put: the stored pool reads back the same.
  v1::NodePool bare = ApiPool();
  bare.set_pue(0);
  bare.set_gpu_power_w(0);
  bare.clear_grid_zone();
  providers::Pool filled = PoolFromProto(bare, Gpus());
  providers::Pool again = PoolFromProto(PoolToProto(filled, filled.nodes), Gpus());
  EXPECT_DOUBLE_EQ(again.pue, 1.10);
  EXPECT_DOUBLE_EQ(again.gpu_power_w, 700);
  EXPECT_EQ(again.zone, "us-east-1");
}

v1::Placement Between(absl::Time start, absl::Time end) {
  v1::Placement p;
  *p.mutable_start() = ToProto(start);
  *p.mutable_end() = ToProto(end);
  return p;
}

TEST(PlannedRuntime, ContiguousIsEndMinusStartSplitIsTheSumOfSlots) {
  const absl::Time t0 = absl::FromUnixSeconds(1773100800);
  EXPECT_EQ(PlannedRuntime(Between(t0, t0 + absl::Hours(5))), absl::Hours(5));

  v1::Placement split = Between(t0, t0 + absl::Hours(5));
  for (auto [from, to] : {std::pair{0, 1}, std::pair{3, 5}}) {
    auto* s = split.add_slots();
    *s->mutable_start() = ToProto(t0 + absl::Hours(from));
    *s->mutable_end() = ToProto(t0 + absl::Hours(to));
  }
  EXPECT_EQ(PlannedRuntime(split), absl::Hours(3));  // not the 5 h span

  v1::Placement one = Between(t0, t0 + absl::Minutes(90));
  auto* s = one.add_slots();
  *s->mutable_start() = ToProto(t0);
  *s->mutable_end() = ToProto(t0 + absl::Minutes(90));
  EXPECT_EQ(PlannedRuntime(one), absl::Minutes(90));
}

TEST(ModeOf, UnspecifiedTakesTheDefault) {
  EXPECT_EQ(ModeOf(v1::PLACEMENT_MODE_CHEAPEST, placement::Mode::kBalanced),
            placement::Mode::kCheapest);
  EXPECT_EQ(ModeOf(v1::PLACEMENT_MODE_GREENEST, placement::Mode::kBalanced),
            placement::Mode::kGreenest);
  EXPECT_EQ(ModeOf(v1::PLACEMENT_MODE_BALANCED, placement::Mode::kGreenest),
            placement::Mode::kBalanced);
  EXPECT_EQ(ModeOf(v1::PLACEMENT_MODE_UNSPECIFIED, placement::Mode::kGreenest),
            placement::Mode::kGreenest);
}

}  // namespace
}  // namespace greenlight::scheduler
