// greenlight.v1.Inventory over gRPC: node pools and grid-zone carbon series.
#pragma once

#include "greenlight/v1/inventory.grpc.pb.h"
#include "services/scheduler/service_support.h"

namespace greenlight::scheduler {

class InventoryService final : public greenlight::v1::Inventory::Service {
 public:
  explicit InventoryService(ServiceContext ctx) : ctx_(ctx) {}
  grpc::Status ListPools(grpc::ServerContext*, const greenlight::v1::ListPoolsRequest*,
                         greenlight::v1::ListPoolsResponse*) override;
  grpc::Status UpsertPools(grpc::ServerContext*, const greenlight::v1::UpsertPoolsRequest*,
                           greenlight::v1::UpsertPoolsResponse*) override;
  grpc::Status SetCarbonSeries(grpc::ServerContext*, const greenlight::v1::SetCarbonSeriesRequest*,
                               greenlight::v1::SetCarbonSeriesResponse*) override;
  grpc::Status ListZones(grpc::ServerContext*, const greenlight::v1::ListZonesRequest*,
                         greenlight::v1::ListZonesResponse*) override;

 private:
  ServiceContext ctx_;
};

}  // namespace greenlight::scheduler
