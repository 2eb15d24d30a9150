// greenlight.v1.Budgets over gRPC: teams (admin writes) and their usage.
#pragma once

#include "greenlight/v1/budgets.grpc.pb.h"
#include "services/scheduler/service_support.h"

namespace greenlight::scheduler {

class BudgetsService final : public greenlight::v1::Budgets::Service {
 public:
  explicit BudgetsService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status SetTeam(grpc::ServerContext*, const greenlight::v1::SetTeamRequest*,
                       greenlight::v1::SetTeamResponse*) override;
  grpc::Status GetTeam(grpc::ServerContext*, const greenlight::v1::GetTeamRequest*,
                       greenlight::v1::GetTeamResponse*) override;
  grpc::Status ListTeams(grpc::ServerContext*, const greenlight::v1::ListTeamsRequest*,
                         greenlight::v1::ListTeamsResponse*) override;
  grpc::Status GetUsage(grpc::ServerContext*, const greenlight::v1::GetUsageRequest*,
                        greenlight::v1::GetUsageResponse*) override;

 private:
  ServiceContext ctx_;
};

}  // namespace greenlight::scheduler
