#include "services/scheduler/inventory_service.h"

#include "common/proto_time.h"
#include "services/scheduler/validation.h"

namespace greenlight::scheduler {

namespace v1 = greenlight::v1;

grpc::Status InventoryService::ListPools(grpc::ServerContext* context,
                                         const v1::ListPoolsRequest* req,
                                         v1::ListPoolsResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  for (auto& pool : ctx_.core->ListPools()) {
    if (!req->gpu_type().empty() && pool.gpu_type() != req->gpu_type()) continue;
    if (!req->region().empty() && pool.region() != req->region()) continue;
    *resp->add_pools() = std::move(pool);
  }
  return grpc::Status::OK;
}

grpc::Status InventoryService::UpsertPools(grpc::ServerContext* context,
                                           const v1::UpsertPoolsRequest* req,
                                           v1::UpsertPoolsResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  std::vector<v1::NodePool> pools(req->pools().begin(), req->pools().end());
  auto n = ctx_.core->UpsertPools(pools);
  if (!n.ok()) return ToGrpc(n.status());
  resp->set_upserted(*n);
  return grpc::Status::OK;
}

grpc::Status InventoryService::SetCarbonSeries(grpc::ServerContext* context,
                                               const v1::SetCarbonSeriesRequest* req,
                                               v1::SetCarbonSeriesResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  if (auto st = AdminOnly(p); !st.ok()) return ToGrpc(st);
  if (auto st = ValidateSetCarbonSeriesRequest(*req); !st.ok()) return ToGrpc(st);
  absl::Duration step = CarbonSeriesStep(*req);
  absl::Time start = FromProto(req->points(0).time());
  std::vector<double> values;
  values.reserve(req->points_size());
  for (const auto& point : req->points()) values.push_back(point.g_per_kwh());
  auto z = ctx_.core->SetCarbonSeries(req->zone(), start, step, std::move(values),
                                      req->annual_average_g_per_kwh());
  if (!z.ok()) return ToGrpc(z.status());
  *resp->mutable_zone() = std::move(*z);
  return grpc::Status::OK;
}

grpc::Status InventoryService::ListZones(grpc::ServerContext* context, const v1::ListZonesRequest*,
                                         v1::ListZonesResponse* resp) {
  GL_AUTH_OR_RETURN(p);
  for (auto& z : ctx_.core->ListZones()) *resp->add_zones() = std::move(z);
  return grpc::Status::OK;
}

}  // namespace greenlight::scheduler
