#include "services/scheduler/agent_service.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

grpc::Status AgentService::RegisterNode(grpc::ServerContext* context,
                                        const v1::RegisterNodeRequest* req,
                                        v1::RegisterNodeResponse* resp) {
  auto p = WhoAgent(ctx_, context);
  if (!p.ok()) return ToGrpc(p.status());
  auto r = ctx_.core->RegisterNode(*req, p->token_id, p->agent_pool);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

grpc::Status AgentService::Heartbeat(grpc::ServerContext* context, const v1::HeartbeatRequest* req,
                                     v1::HeartbeatResponse* resp) {
  auto p = WhoAgent(ctx_, context);
  if (!p.ok()) return ToGrpc(p.status());
  auto r = ctx_.core->Heartbeat(*req, p->token_id, p->agent_pool);
  if (!r.ok()) return ToGrpc(r.status());
  *resp = *std::move(r);
  return grpc::Status::OK;
}

}  // namespace greenlight::scheduler
