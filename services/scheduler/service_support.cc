#include "services/scheduler/service_support.h"

#include "absl/strings/str_cat.h"
#include "common/error_details.h"
#include "common/status_macros.h"
#include "google/rpc/status.pb.h"

namespace greenlight::scheduler {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const absl::Status s = WithFieldViolation(status);
  auto code = static_cast<grpc::StatusCode>(static_cast<int>(s.code()));
  std::string msg(s.message());
  google::rpc::Status details;
  bool any = false;
  s.ForEachPayload([&](absl::string_view url, const absl::Cord& payload) {
    auto* a = details.add_details();
    a->set_type_url(std::string(url));
    a->set_value(std::string(payload));
    any = true;
  });
  if (!any) return grpc::Status(code, msg);
  details.set_code(static_cast<int>(s.code()));
  details.set_message(msg);
  return grpc::Status(code, msg, details.SerializeAsString());
}

absl::StatusOr<Principal> Who(const ServiceContext& ctx, grpc::ServerContext* sc) {
  std::string header;
  auto it = sc->client_metadata().find("authorization");
  if (it != sc->client_metadata().end()) header.assign(it->second.data(), it->second.size());
  ASSIGN_OR_RETURN(Principal p, ctx.auth->Authenticate(header));
  if (!p.agent_pool.empty()) {
    return absl::PermissionDeniedError(
        "an agent token can only register and heartbeat nodes (greenlight.v1.AgentService)");
  }
  return p;
}

absl::StatusOr<Principal> WhoAgent(const ServiceContext& ctx, grpc::ServerContext* sc) {
  std::string header;
  auto it = sc->client_metadata().find("authorization");
  if (it != sc->client_metadata().end()) header.assign(it->second.data(), it->second.size());
  ASSIGN_OR_RETURN(Principal p, ctx.auth->Authenticate(header));
  if (p.agent_pool.empty() && !p.admin) {
    return absl::PermissionDeniedError(
        "AgentService needs an agent token (Admin.CreateToken with agent_pool); a team token "
        "cannot act as a node agent");
  }
  return p;
}

absl::Status AdminOnly(const Principal& p) {
  if (p.admin) return absl::OkStatus();
  return absl::PermissionDeniedError("this call needs an admin token");
}

absl::Status NotFoundJob(const std::string& id) {
  return absl::NotFoundError(absl::StrCat("job_id: no job '", id, "'"));
}

}  // namespace greenlight::scheduler
