// Conversions between the API's protos and the domain types of placement
// and providers, in one place (pools, placements, quotes, job requests).
#pragma once

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"
#include "services/placement/engine.h"
#include "services/providers/gpu_table.h"
#include "services/providers/pool.h"

namespace greenlight::scheduler {

placement::Mode ModeOf(greenlight::v1::PlacementMode m, placement::Mode default_mode);

greenlight::v1::NodePool PoolToProto(const providers::Pool& p, int free_nodes);
// A pool from the API or the store. The one rule for absent figures: a GPU
// power of 0 takes the GPU table's (300 W for a GPU the table lacks), a PUE
// of 0 takes providers::DefaultPue of the provider (as the catalog does), an
// empty grid zone is the region.
providers::Pool PoolFromProto(const greenlight::v1::NodePool& p, const providers::GpuTable& gpus);

greenlight::v1::Placement ToPlacement(const placement::Option& o, const placement::Snapshot& s);
greenlight::v1::Quote ToQuote(const placement::Decision& d, const placement::Snapshot& s);

// The placement request of a validated spec at `now`; `canonical_gpu` maps a
// requested GPU name to the inventory's ("" when unknown).
placement::JobRequest ToRequest(
    const greenlight::v1::JobSpec& spec, absl::Time now, placement::Mode default_mode,
    const std::function<std::string(const std::string&)>& canonical_gpu);

// The compute time a placement holds: the sum of its slots, or end - start.
absl::Duration PlannedRuntime(const greenlight::v1::Placement& p);

}  // namespace greenlight::scheduler
