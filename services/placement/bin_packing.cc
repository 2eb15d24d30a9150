// Best-fit node choice inside one pool (see bin_packing.h).
#include "services/placement/bin_packing.h"

#include <algorithm>
#include <functional>

namespace greenlight::placement {

std::optional<NodePick> BestFitNodes(int gpus, int gpus_per_node,
                                     const std::vector<int>& free_gpus) {
  if (gpus <= 0 || gpus_per_node <= 0) return std::nullopt;
  NodePick pick;
  if (gpus <= gpus_per_node) {
    int best = -1;
    for (int i = 0; i < static_cast<int>(free_gpus.size()); ++i) {
      int f = free_gpus[i];
      if (f >= gpus && (best < 0 || f < free_gpus[best])) best = i;
    }
    if (best < 0) return std::nullopt;
    pick.nodes.push_back(best);
    pick.gpus_per_node_used = gpus;
    return pick;
  }
  int needed = (gpus + gpus_per_node - 1) / gpus_per_node;
  for (int i = 0;
       i < static_cast<int>(free_gpus.size()) && static_cast<int>(pick.nodes.size()) < needed;
       ++i) {
    if (free_gpus[i] >= gpus_per_node) pick.nodes.push_back(i);
  }
  if (static_cast<int>(pick.nodes.size()) < needed) return std::nullopt;
  pick.gpus_per_node_used = gpus_per_node;
  return pick;
}

void SummarizeFreeCapacity(int gpus_per_node, const std::vector<int>& free_gpus, Pool* pool) {
  pool->free_nodes = 0;
  pool->free_gpus_on_partial_nodes.clear();
  for (int f : free_gpus) {
    if (f >= gpus_per_node && gpus_per_node > 0) {
      ++pool->free_nodes;
    } else if (f > 0) {
      pool->free_gpus_on_partial_nodes.push_back(f);
    }
  }
  std::sort(pool->free_gpus_on_partial_nodes.begin(), pool->free_gpus_on_partial_nodes.end(),
            std::greater<int>());
}

}  // namespace greenlight::placement
