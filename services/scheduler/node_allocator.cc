#include "services/scheduler/node_allocator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "services/placement/bin_packing.h"

namespace greenlight::scheduler {

void NodeAllocator::AddPool(providers::Pool pool) {
  PoolState ps;
  ps.pool = std::move(pool);
  ps.free_gpus.assign(ps.pool.nodes, ps.pool.gpus_per_node);
  ps.out_gpus.assign(ps.pool.nodes, 0);
  pool_index_[ps.pool.id] = static_cast<int>(pools_.size());
  regions_.insert(ps.pool.region);
  pools_.push_back(std::move(ps));
}

void NodeAllocator::Reset(std::vector<providers::Pool> pools) {
  std::sort(pools.begin(), pools.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  pools_.clear();
  pool_index_.clear();
  regions_.clear();
  held_.clear();
  node_out_.clear();
  running_gpus_.clear();
  running_gpus_by_type_.clear();
  for (auto& p : pools) {
    p.free_nodes = p.nodes;
    AddPool(std::move(p));
  }
  ++capacity_version_;
  ++layout_version_;
}

namespace {
// Nodes up to the last one in use.
int UsedNodes(const NodeAllocator::PoolState& ps) {
  int used_nodes = 0;
  for (int i = 0; i < static_cast<int>(ps.free_gpus.size()); ++i)
    if (ps.free_gpus[i] != ps.pool.gpus_per_node || ps.out_gpus[i] > 0) used_nodes = i + 1;
  return used_nodes;
}
}  // namespace

absl::Status NodeAllocator::CanUpsert(const providers::Pool& pool) const {
  auto it = pool_index_.find(pool.id);
  if (it == pool_index_.end()) return absl::OkStatus();
  const PoolState& ps = pools_[it->second];
  if (pool.gpus_per_node != ps.pool.gpus_per_node && UsedNodes(ps) > 0)
    return absl::FailedPreconditionError(
        absl::StrCat("pools: ", pool.id, " has running jobs; cannot change gpus_per_node"));
  return absl::OkStatus();
}

absl::Status NodeAllocator::Upsert(providers::Pool pool) {
  if (absl::Status st = CanUpsert(pool); !st.ok()) return st;
  auto it = pool_index_.find(pool.id);
  if (it != pool_index_.end()) {
    PoolState& ps = pools_[it->second];
    // Keep allocations: grow or shrink only the free tail.
    const int used_nodes = UsedNodes(ps);
    pool.nodes = std::max(pool.nodes, used_nodes);
    if (pool.gpus_per_node != ps.pool.gpus_per_node) {
      ps.free_gpus.assign(pool.nodes, pool.gpus_per_node);  // nothing runs there
      ps.out_gpus.assign(pool.nodes, 0);
    } else {
      ps.free_gpus.resize(pool.nodes, pool.gpus_per_node);
      ps.out_gpus.resize(pool.nodes, 0);
    }
    ps.pool = std::move(pool);
    regions_.insert(ps.pool.region);
  } else {
    AddPool(std::move(pool));
  }
  ++capacity_version_;
  ++layout_version_;
  return absl::OkStatus();
}

int NodeAllocator::PoolIndex(const std::string& id) const {
  auto it = pool_index_.find(id);
  return it == pool_index_.end() ? -1 : it->second;
}

bool NodeAllocator::HasGpuType(const std::string& gpu_type) const {
  for (const auto& ps : pools_)
    if (ps.pool.gpu_type == gpu_type) return true;
  return false;
}

std::optional<Allocation> NodeAllocator::Find(const std::string& pool_id, int gpus) const {
  int pool = PoolIndex(pool_id);
  if (pool < 0) return std::nullopt;
  const PoolState& ps = pools_[pool];
  std::optional<placement::NodePick> pick =
      placement::BestFitNodes(gpus, ps.pool.gpus_per_node, ps.free_gpus);
  if (!pick) return std::nullopt;
  Allocation a;
  a.pool = pool;
  for (int n : pick->nodes) a.nodes.push_back({n, pick->gpus_per_node_used});
  return a;
}

int NodeAllocator::WholeNodesTaken(const Allocation& a) const {
  const PoolState& ps = pools_[a.pool];
  int whole = 0;
  for (const auto& [n, k] : a.nodes) whole += ps.free_gpus[n] == ps.pool.gpus_per_node;
  return whole;
}

int NodeAllocator::FreeWholeNodes(int pool) const {
  const PoolState& ps = pools_[pool];
  int n = 0;
  for (int f : ps.free_gpus) n += f == ps.pool.gpus_per_node;
  return n;
}

void NodeAllocator::Take(const std::string& job_id, const std::string& team, int gpus,
                         Allocation a) {
  PoolState& ps = pools_[a.pool];
  for (const auto& [n, k] : a.nodes) ps.free_gpus[n] -= k;
  running_gpus_[team] += gpus;
  running_gpus_by_type_[team][ps.pool.gpu_type] += gpus;
  held_[job_id] = Held{std::move(a), team, ps.pool.gpu_type, gpus};
  ++capacity_version_;
}

bool NodeAllocator::Release(const std::string& job_id) {
  auto it = held_.find(job_id);
  if (it == held_.end()) return false;
  const Held& h = it->second;
  PoolState& ps = pools_[h.allocation.pool];
  for (const auto& [n, k] : h.allocation.nodes) {
    (NodeOut(h.allocation.pool, n) ? ps.out_gpus[n] : ps.free_gpus[n]) += k;
  }
  running_gpus_[h.team] -= h.gpus;
  running_gpus_by_type_[h.team][h.gpu_type] -= h.gpus;
  held_.erase(it);
  ++capacity_version_;
  return true;
}

void NodeAllocator::SetNodeOut(int pool, int node, bool out) {
  if (pool < 0 || pool >= static_cast<int>(pools_.size())) return;
  PoolState& ps = pools_[pool];
  if (node < 0 || node >= static_cast<int>(ps.free_gpus.size())) return;
  if (out == NodeOut(pool, node)) return;
  if (out) {
    node_out_.insert({pool, node});
    ps.out_gpus[node] += ps.free_gpus[node];
    ps.free_gpus[node] = 0;
  } else {
    node_out_.erase({pool, node});
    ps.free_gpus[node] += ps.out_gpus[node];
    ps.out_gpus[node] = 0;
  }
  ++capacity_version_;
}

bool NodeAllocator::NodeOut(int pool, int node) const { return node_out_.contains({pool, node}); }

int NodeAllocator::RunningGpus(const std::string& team) const {
  auto it = running_gpus_.find(team);
  return it == running_gpus_.end() ? 0 : it->second;
}

int NodeAllocator::RunningGpus(const std::string& team, const std::string& gpu_type) const {
  auto it = running_gpus_by_type_.find(team);
  if (it == running_gpus_by_type_.end()) return 0;
  auto k = it->second.find(gpu_type);
  return k == it->second.end() ? 0 : k->second;
}

absl::Status NodeAllocator::Check() const {
  std::vector<std::vector<int>> held(pools_.size());
  for (size_t p = 0; p < pools_.size(); ++p) held[p].assign(pools_[p].free_gpus.size(), 0);
  absl::flat_hash_map<std::string, int> by_team;
  for (const auto& [id, h] : held_) {
    for (const auto& [n, k] : h.allocation.nodes) held[h.allocation.pool][n] += k;
    by_team[h.team] += h.gpus;
  }
  for (size_t p = 0; p < pools_.size(); ++p) {
    const PoolState& ps = pools_[p];
    for (size_t n = 0; n < ps.free_gpus.size(); ++n) {
      int f = ps.free_gpus[n];
      if (f < 0 || f > ps.pool.gpus_per_node ||
          f + held[p][n] + ps.out_gpus[n] != ps.pool.gpus_per_node ||
          (ps.out_gpus[n] > 0 && !NodeOut(static_cast<int>(p), static_cast<int>(n))) ||
          (NodeOut(static_cast<int>(p), static_cast<int>(n)) && f != 0))
        return absl::InternalError(absl::StrCat("capacity broken: ", ps.pool.id, " node ", n));
    }
  }
  for (const auto& [team, gpus] : running_gpus_) {
    if (gpus < 0) return absl::InternalError(absl::StrCat("negative running gpus: team ", team));
    auto it = by_team.find(team);
    if (gpus != (it == by_team.end() ? 0 : it->second))
      return absl::InternalError(absl::StrCat("running gpus out of step: team ", team));
  }
  return absl::OkStatus();
}

}  // namespace greenlight::scheduler
