// The registry of node agents: the AGENT pools, their registered nodes (a
// node's slot is its node index in the pool, stable across re-registrations),
// who registered each node, and when each was last heard from. The pools it
// holds are stored whole (with their nodes); heartbeat times stay in memory.
//
// Single-threaded: the core's writer changes it under the core's state lock.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "greenlight/v1/executor.pb.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::scheduler {

class AgentRegistry {
 public:
  // What the nodes' reports came to since this process started (metrics).
  struct Counters {
    double energy_measured_wh = 0;  // facility Wh charged on GPU counters
    double energy_modelled_wh = 0;  // ... on the GPU table's power
    int64_t starts = 0;
    std::map<std::string, int64_t> failures;  // by reason
  };
  Counters& counters() { return counters_; }
  const Counters& counters() const { return counters_; }

  void Clear();
  // An AGENT pool from the store or the API (its agent_nodes as stored, or
  // kept from the registry when the caller sent none).
  void PutPool(greenlight::v1::NodePool pool);
  bool IsAgentPool(const std::string& pool_id) const { return pools_.contains(pool_id); }
  // The pool as stored (with its nodes), or nullptr.
  const greenlight::v1::NodePool* FindPool(const std::string& pool_id) const;

  // Registers (or re-registers) a node of an AGENT pool for the token
  // `token_id`. Refused: an unknown or non-agent pool (NOT_FOUND), a node
  // registered by another token or into another pool (PERMISSION_DENIED).
  // Returns the pool after the change (to store and to size the allocator).
  absl::StatusOr<greenlight::v1::NodePool> Register(const greenlight::v1::RegisterNodeRequest& req,
                                                    const std::string& token_id, absl::Time now);

  struct NodeRef {
    const greenlight::v1::NodePool* pool = nullptr;
    const greenlight::v1::AgentNode* node = nullptr;
  };
  // A registered node by name; pool and node are nullptr when unknown.
  NodeRef FindNode(const std::string& name) const;
  // The node at a slot (node index) of a pool, or nullptr.
  const greenlight::v1::AgentNode* NodeAt(const std::string& pool_id, int slot) const;

  void NoteHeartbeat(const std::string& node, absl::Time now);
  // Marks LOST every READY node not heard from for longer than `lease` and
  // returns their names. A node not heard from since this process started
  // (after a restart) gets a full lease from its first check.
  std::vector<std::string> LoseSilentNodes(absl::Time now, absl::Duration lease);
  // Sets a node's state; false when the node is unknown or already so.
  bool SetState(const std::string& node, greenlight::v1::NodeState state);
  absl::Time LastHeartbeat(const std::string& node) const;
  // The pools as ListPools shows them (last heartbeats filled in).
  std::vector<greenlight::v1::NodePool> Pools() const;

 private:
  absl::flat_hash_map<std::string, greenlight::v1::NodePool> pools_;
  absl::flat_hash_map<std::string, std::string> pool_of_node_;  // node -> pool id
  absl::flat_hash_map<std::string, absl::Time> last_heartbeat_;
  // Nodes not heard from since this process started: their lease runs from
  // the first check (not shown as a heartbeat).
  absl::flat_hash_map<std::string, absl::Time> lease_from_;
  Counters counters_;
};

}  // namespace greenlight::scheduler
