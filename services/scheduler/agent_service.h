// greenlight.v1.AgentService over gRPC: node agents register and heartbeat
// (proto/greenlight/v1/executor.proto). Agent tokens only; the core does the work.
#pragma once

#include "greenlight/v1/executor.grpc.pb.h"
#include "services/scheduler/service_support.h"

namespace greenlight::scheduler {

class AgentService final : public greenlight::v1::AgentService::Service {
 public:
  explicit AgentService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status RegisterNode(grpc::ServerContext*, const greenlight::v1::RegisterNodeRequest*,
                            greenlight::v1::RegisterNodeResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const greenlight::v1::HeartbeatRequest*,
                         greenlight::v1::HeartbeatResponse*) override;

 private:
  ServiceContext ctx_;
};

}  // namespace greenlight::scheduler
