// Node allocation: the free GPUs of every node of every pool, the nodes each
// running job holds, and the GPUs each team runs (its quota use). Nodes are
// chosen by placement::BestFitNodes, the one best-fit rule of greenlight.
//
// Single-threaded: the core's writer changes it under the core's state lock.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "services/providers/pool.h"

namespace greenlight::scheduler {

// The nodes a job holds: (node index, GPUs taken) in one pool.
struct Allocation {
  int pool = -1;
  std::vector<std::pair<int, int>> nodes;
};

class NodeAllocator {
 public:
  struct PoolState {
    providers::Pool pool;
    std::vector<int> free_gpus;  // per node
    // GPUs of nodes out of service (an agent node lost), per node: taken
    // from free_gpus, so nothing is placed there, and given back when the
    // node returns. A job still held on such a node keeps its GPUs.
    std::vector<int> out_gpus;
  };

  // Replaces every pool (sorted by id), all nodes free, nothing allocated.
  void Reset(std::vector<providers::Pool> pools);
  // Adds a pool or changes one. Nodes in use are kept: a pool shrinks only
  // down to its last used node, and gpus_per_node cannot change under
  // running jobs (FAILED_PRECONDITION).
  absl::Status Upsert(providers::Pool pool);
  // Whether Upsert(pool) would succeed (no change).
  absl::Status CanUpsert(const providers::Pool& pool) const;

  const std::vector<PoolState>& pools() const { return pools_; }
  // Index into pools(), or -1.
  int PoolIndex(const std::string& id) const;
  bool HasRegion(const std::string& region) const { return regions_.contains(region); }
  bool HasGpuType(const std::string& gpu_type) const;

  // Best-fit nodes for `gpus` GPUs in the pool now, if free (no change).
  std::optional<Allocation> Find(const std::string& pool_id, int gpus) const;
  // Wholly free nodes the allocation would take.
  int WholeNodesTaken(const Allocation& a) const;
  int FreeWholeNodes(int pool) const;
  void Take(const std::string& job_id, const std::string& team, int gpus, Allocation a);
  // Gives the job's nodes back; false when it held none.
  bool Release(const std::string& job_id);
  bool Holds(const std::string& job_id) const { return held_.contains(job_id); }
  // The nodes the job holds, or nullptr.
  const Allocation* AllocationOf(const std::string& job_id) const {
    auto it = held_.find(job_id);
    return it == held_.end() ? nullptr : &it->second.allocation;
  }

  // Takes a node out of service (out = true) or puts it back. No-op for an
  // unknown pool or node, or when the node is already so.
  void SetNodeOut(int pool, int node, bool out);
  bool NodeOut(int pool, int node) const;

  int RunningGpus(const std::string& team) const;
  int RunningGpus(const std::string& team, const std::string& gpu_type) const;
  const absl::flat_hash_map<std::string, int>& running_gpus() const { return running_gpus_; }
  const absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, int>>&
  running_gpus_by_type() const {
    return running_gpus_by_type_;
  }

  // Bumped by every change of free capacity / of the pools themselves, so
  // views built from this table know when they are stale.
  uint64_t capacity_version() const { return capacity_version_; }
  uint64_t layout_version() const { return layout_version_; }

  // Free GPUs within [0, gpus_per_node] everywhere; held GPUs add up.
  absl::Status Check() const;

 private:
  struct Held {
    Allocation allocation;
    std::string team;
    std::string gpu_type;
    int gpus = 0;
  };
  // Appends a new pool, all nodes free.
  void AddPool(providers::Pool pool);

  std::vector<PoolState> pools_;
  absl::flat_hash_map<std::string, int> pool_index_;
  absl::flat_hash_set<std::string> regions_;
  absl::flat_hash_map<std::string, Held> held_;         // by job id
  absl::flat_hash_set<std::pair<int, int>> node_out_;   // (pool, node) out of service
  absl::flat_hash_map<std::string, int> running_gpus_;  // team -> gpus
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, int>> running_gpus_by_type_;
  uint64_t capacity_version_ = 0;
  uint64_t layout_version_ = 0;
};

}  // namespace greenlight::scheduler
