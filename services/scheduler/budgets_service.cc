#include "services/scheduler/budgets_service.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

grpc::Status BudgetsService::SetTeam(grpc::ServerContext* context, const v1::SetTeamRequest* req,
                                     v1::SetTeamResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  auto t = ctx_.core->SetTeam(req->team());
  if (!t.ok()) return ToGrpc(t.status());
  *resp->mutable_team() = std::move(*t);
  return grpc::Status::OK;
}

grpc::Status BudgetsService::GetTeam(grpc::ServerContext* context, const v1::GetTeamRequest* req,
                                     v1::GetTeamResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (!p.CanAccess(req->name()))
    return ToGrpc(absl::NotFoundError(absl::StrCat("name: no team '", req->name(), "'")));
  auto t = ctx_.core->GetTeam(req->name());
  if (!t.ok()) return ToGrpc(t.status());
  *resp->mutable_team() = std::move(*t);
  return grpc::Status::OK;
}

grpc::Status BudgetsService::ListTeams(grpc::ServerContext* context, const v1::ListTeamsRequest*,
                                       v1::ListTeamsResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  for (auto& t : ctx_.core->ListTeams()) {
    if (p.CanAccess(t.name())) *resp->add_teams() = std::move(t);
  }
  return grpc::Status::OK;
}

grpc::Status BudgetsService::GetUsage(grpc::ServerContext* context, const v1::GetUsageRequest* req,
                                      v1::GetUsageResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = ValidateGetUsageRequest(*req); !st.ok()) return ToGrpc(st);
  if (!p.CanAccess(req->team()))
    return ToGrpc(absl::NotFoundError(absl::StrCat("team: no team '", req->team(), "'")));
  absl::Time at = req->has_at() ? FromProto(req->at()) : ctx_.core->clock()->Now();
  auto u = ctx_.core->GetUsage(req->team(), at);
  if (!u.ok()) return ToGrpc(u.status());
  *resp->mutable_usage() = std::move(*u);
  return grpc::Status::OK;
}

}  // namespace greenlight::scheduler
