// A pool of interchangeable GPU nodes: one (provider, region, instance type)
// with its price, power and grid zone. Built from the real price catalogs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace greenlight::providers {

// A pool of interchangeable GPU nodes (provider, region, instance type).
struct Pool {
  std::string id;  // "aws/us-east-1/p4d.24xlarge"
  std::string provider;
  std::string region;
  std::string zone;  // grid zone of `region`
  std::string instance_type;
  std::string gpu_type;  // canonical SkyPilot name: "H100", "A100-80GB"
  int gpus_per_node = 0;
  int nodes = 0;
  int free_nodes = 0;
  // Largest free GPU count on one partially used node (for sub-node jobs);
  // free_nodes counts wholly free nodes.
  std::vector<int> free_gpus_on_partial_nodes;
  int64_t price_micros_per_node_hour = 0;
  int64_t spot_price_micros_per_node_hour = 0;  // 0 = no spot
  double gpu_power_w = 0;                       // per GPU, W
  double pue = 1.0;
  double speed = 1.0;  // training speed relative to the reference GPU (A100 = 1)
};

}  // namespace greenlight::providers
