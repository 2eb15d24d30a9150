#include "common/config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace greenlight {
namespace {

using ::testing::HasSubstr;

TEST(ParseConfig, RejectsUnknownKeysWithTheirPath) {
  struct Case { std::string yaml; std::string want; };
  for (const Case& c : std::vector<Case>{
           {"serverr: {}\n", "serverr: unknown key"},
           {"server:\n  grpc_adress: x\n", "server.grpc_adress: unknown key"},
           {"data:\n  catalogs:\n    - provider: aws\n      file: a.csv\n      zone: x\n", "data.catalogs[0].zone: unknown key"},
           {"clock:\n  time_scale: -1\n", "clock.time_scale"},
           {"store:\n  synchronous: off\n", "store.synchronous"},
           {"server:\n  max_message_bytes: abc\n", "server.max_message_bytes: wrong type"},
           {"teams:\n  - gpu_quota: 3\n", "teams[0].name: required"},
           {"auth:\n  mode: maybe\n", "auth.mode"},
       }) {
    auto cfg = ParseConfig(c.yaml, "/etc/gl/c.yaml");
    ASSERT_FALSE(cfg.ok()) << c.yaml;
    EXPECT_THAT(std::string(cfg.status().message()), HasSubstr(c.want)) << c.yaml;
  }
}

TEST(ParseConfig, ResolvesRelativePathsAgainstTheConfigDirectory) {
  auto cfg = ParseConfig("data:\n  gpu_power: ../data/g.csv\n  carbon_series:\n    - {zone: DE, file: /abs/de.csv}\n", "/etc/gl/c.yaml");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->gpu_power_file, "/etc/data/g.csv");
  EXPECT_EQ(cfg->carbon_series[0].file, "/abs/de.csv");
}

}  // namespace
}  // namespace greenlight
