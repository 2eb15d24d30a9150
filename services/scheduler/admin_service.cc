#include "services/scheduler/admin_service.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

grpc::Status AdminService::CreateToken(grpc::ServerContext* context,
                                       const v1::CreateTokenRequest* req,
                                       v1::CreateTokenResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  auto team_exists = [this](const std::string& team) { return ctx_.core->GetTeam(team).ok(); };
  auto pool_is_agent = [this](const std::string& pool) {
    for (const auto& p : ctx_.core->ListPools())
      if (p.id() == pool) return p.executor() == v1::POOL_EXECUTOR_AGENT;
    return false;
  };
  if (auto st = ValidateCreateTokenRequest(*req, team_exists, pool_is_agent); !st.ok())
    return ToGrpc(st);
  store::TokenRow row;
  row.info.set_id(NewId("t-", 8));
  row.info.set_team(req->team());
  row.info.set_admin(req->admin());
  row.info.set_description(req->description());
  row.info.set_agent_pool(req->agent_pool());
  *row.info.mutable_created() = ToProto(absl::Now());
  std::string secret = Authenticator::NewSecret();
  row.secret_sha256_hex = Authenticator::Sha256Hex(secret);
  if (auto st = ctx_.core->PutToken(row); !st.ok()) return ToGrpc(st);
  ctx_.auth->Put(row);
  *resp->mutable_token() = row.info;
  resp->set_secret(secret);
  GL_LOG_INFO("token created", F("id", row.info.id()), F("team", row.info.team()),
              F("admin", row.info.admin() ? "true" : "false"),
              F("agent_pool", row.info.agent_pool()));
  return grpc::Status::OK;
}

grpc::Status AdminService::RevokeToken(grpc::ServerContext* context,
                                       const v1::RevokeTokenRequest* req,
                                       v1::RevokeTokenResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  for (auto t : ctx_.core->Tokens()) {
    if (t.info.id() != req->id()) continue;
    t.info.set_revoked(true);
    if (auto st = ctx_.core->PutToken(t); !st.ok()) return ToGrpc(st);
    ctx_.auth->Put(t);
    *resp->mutable_token() = t.info;
    GL_LOG_INFO("token revoked", F("id", t.info.id()));
    return grpc::Status::OK;
  }
  return ToGrpc(absl::NotFoundError(absl::StrCat("id: no token '", req->id(), "'")));
}

grpc::Status AdminService::ListTokens(grpc::ServerContext* context, const v1::ListTokensRequest*,
                                      v1::ListTokensResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  auto tokens = ctx_.core->Tokens();
  std::sort(tokens.begin(), tokens.end(),
            [](const auto& a, const auto& b) { return a.info.id() < b.info.id(); });
  for (const auto& t : tokens) *resp->add_tokens() = t.info;
  return grpc::Status::OK;
}

}  // namespace greenlight::scheduler
