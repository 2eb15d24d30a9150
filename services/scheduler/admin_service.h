// greenlight.v1.Admin over gRPC: API tokens (created, revoked, listed by admins).
#pragma once

#include "greenlight/v1/admin.grpc.pb.h"
#include "services/scheduler/service_support.h"

namespace greenlight::scheduler {

class AdminService final : public greenlight::v1::Admin::Service {
 public:
  explicit AdminService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status CreateToken(grpc::ServerContext*, const greenlight::v1::CreateTokenRequest*,
                           greenlight::v1::CreateTokenResponse*) override;
  grpc::Status RevokeToken(grpc::ServerContext*, const greenlight::v1::RevokeTokenRequest*,
                           greenlight::v1::RevokeTokenResponse*) override;
  grpc::Status ListTokens(grpc::ServerContext*, const greenlight::v1::ListTokensRequest*,
                          greenlight::v1::ListTokensResponse*) override;

 private:
  ServiceContext ctx_;
};

}  // namespace greenlight::scheduler
