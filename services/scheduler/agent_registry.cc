// Node agents and their pools (see agent_registry.h).
#include "services/scheduler/agent_registry.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace greenlight::scheduler {
namespace v1 = greenlight::v1;

void AgentRegistry::Clear() {
  pools_.clear();
  pool_of_node_.clear();
  last_heartbeat_.clear();
  lease_from_.clear();
}

void AgentRegistry::PutPool(v1::NodePool pool) {
  if (pool.agent_nodes_size() == 0) {
    if (const v1::NodePool* old = FindPool(pool.id())) {
      *pool.mutable_agent_nodes() = old->agent_nodes();
    }
  }
  pool.set_nodes(pool.agent_nodes_size());
  pool.set_executor(v1::POOL_EXECUTOR_AGENT);
  for (const auto& n : pool.agent_nodes()) pool_of_node_[n.name()] = pool.id();
  pools_[pool.id()] = std::move(pool);
}

const v1::NodePool* AgentRegistry::FindPool(const std::string& pool_id) const {
  auto it = pools_.find(pool_id);
  return it == pools_.end() ? nullptr : &it->second;
}

absl::StatusOr<v1::NodePool> AgentRegistry::Register(const v1::RegisterNodeRequest& req,
                                                     const std::string& token_id, absl::Time now) {
  auto pit = pools_.find(req.pool_id());
  if (pit == pools_.end()) {
    return absl::NotFoundError(absl::StrCat("pool_id: no agent pool '", req.pool_id(),
                                            "' (create it with executor AGENT first)"));
  }
  NodeRef existing = FindNode(req.node());
  if (existing.node != nullptr) {
    if (existing.pool->id() != req.pool_id()) {
      return absl::PermissionDeniedError(absl::StrCat(
          "node: '", req.node(), "' is registered in pool '", existing.pool->id(), "'"));
    }
    if (existing.node->token_id() != token_id) {
      return absl::PermissionDeniedError(
          absl::StrCat("node: '", req.node(), "' is registered by another agent token (",
                       existing.node->token_id(), "); revoke it or pick another node name"));
    }
  }
  v1::NodePool& pool = pit->second;
  v1::AgentNode* node = nullptr;
  for (auto& n : *pool.mutable_agent_nodes()) {
    if (n.name() == req.node()) node = &n;
  }
  if (node == nullptr) {
    node = pool.add_agent_nodes();
    node->set_name(req.node());
    node->set_slot(pool.agent_nodes_size() - 1);
    *node->mutable_registered() = ToProto(now);
  }
  node->set_state(v1::NODE_STATE_READY);
  node->set_hostname(req.hostname());
  *node->mutable_gpus() = req.gpus();
  node->set_agent_version(req.agent_version());
  node->set_energy_measured(req.energy_measured());
  node->set_token_id(token_id);
  pool.set_nodes(pool.agent_nodes_size());
  pool_of_node_[req.node()] = pool.id();
  last_heartbeat_[req.node()] = now;
  return pool;
}

AgentRegistry::NodeRef AgentRegistry::FindNode(const std::string& name) const {
  auto it = pool_of_node_.find(name);
  if (it == pool_of_node_.end()) return {};
  const v1::NodePool* pool = FindPool(it->second);
  if (pool == nullptr) return {};
  for (const auto& n : pool->agent_nodes()) {
    if (n.name() == name) return {pool, &n};
  }
  return {};
}

const v1::AgentNode* AgentRegistry::NodeAt(const std::string& pool_id, int slot) const {
  const v1::NodePool* pool = FindPool(pool_id);
  if (pool == nullptr || slot < 0 || slot >= pool->agent_nodes_size()) return nullptr;
  return &pool->agent_nodes(slot);
}

void AgentRegistry::NoteHeartbeat(const std::string& node, absl::Time now) {
  last_heartbeat_[node] = now;
}

std::vector<std::string> AgentRegistry::LoseSilentNodes(absl::Time now, absl::Duration lease) {
  std::vector<std::string> lost;
  for (auto& [_, pool] : pools_) {
    for (auto& n : *pool.mutable_agent_nodes()) {
      if (n.state() != v1::NODE_STATE_READY) continue;
      absl::Time since = LastHeartbeat(n.name());
      if (since == absl::InfinitePast())
        since = lease_from_.try_emplace(n.name(), now).first->second;
      if (now - since <= lease) continue;
      n.set_state(v1::NODE_STATE_LOST);
      lost.push_back(n.name());
    }
  }
  return lost;
}

bool AgentRegistry::SetState(const std::string& node, v1::NodeState state) {
  auto it = pool_of_node_.find(node);
  if (it == pool_of_node_.end()) return false;
  auto pit = pools_.find(it->second);
  if (pit == pools_.end()) return false;
  for (auto& n : *pit->second.mutable_agent_nodes()) {
    if (n.name() != node) continue;
    if (n.state() == state) return false;
    n.set_state(state);
    return true;
  }
  return false;
}

absl::Time AgentRegistry::LastHeartbeat(const std::string& node) const {
  auto it = last_heartbeat_.find(node);
  return it == last_heartbeat_.end() ? absl::InfinitePast() : it->second;
}

std::vector<v1::NodePool> AgentRegistry::Pools() const {
  std::vector<v1::NodePool> out;
  for (const auto& [_, p] : pools_) {
    out.push_back(p);
    for (auto& n : *out.back().mutable_agent_nodes()) {
      absl::Time t = LastHeartbeat(n.name());
      if (t != absl::InfinitePast()) *n.mutable_last_heartbeat() = ToProto(t);
    }
  }
  return out;
}

}  // namespace greenlight::scheduler
