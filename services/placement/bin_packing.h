// Best-fit node choice inside one pool. The engine scores pools from their
// aggregate free capacity; the scheduler calls BestFitNodes to pick the actual
// nodes, so that sub-node jobs fill partly used nodes first and whole free
// nodes stay available for multi-node gangs (no starvation by fragmentation).
#pragma once

#include <optional>
#include <vector>

#include "services/placement/snapshot.h"

namespace greenlight::placement {

struct NodePick {
  std::vector<int> nodes;      // indices into the free_gpus vector, ascending
  int gpus_per_node_used = 0;  // GPUs taken on each picked node (the last may take fewer)
};

// `free_gpus[i]` = free GPUs on node i of a pool of `gpus_per_node` GPU nodes.
// g <= gpus_per_node: the node whose free count is the smallest that still
// fits g (best fit; lowest index on ties). g > gpus_per_node: the
// ceil(g / gpus_per_node) wholly free nodes with the lowest indices (a gang
// takes whole nodes). nullopt when nothing fits. O(nodes), called once per
// admitted job, never per decision.
std::optional<NodePick> BestFitNodes(int gpus, int gpus_per_node,
                                     const std::vector<int>& free_gpus);

// Aggregates per-node free GPUs into the Pool fields the engine reads
// (free_nodes and free_gpus_on_partial_nodes, the latter sorted descending and
// without zeros).
void SummarizeFreeCapacity(int gpus_per_node, const std::vector<int>& free_gpus, Pool* pool);

}  // namespace greenlight::placement
