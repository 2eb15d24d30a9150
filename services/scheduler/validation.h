// Field-by-field validation of what callers send: job specs, teams, pools,
// carbon series and the fields of the API's requests. Every error is
// INVALID_ARGUMENT naming the field ("spec.gpus") and the rule ("must be
// between 1 and 4096").
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "greenlight/v1/admin.pb.h"
#include "greenlight/v1/budgets.pb.h"
#include "greenlight/v1/inventory.pb.h"
#include "greenlight/v1/scheduler.pb.h"
#include "greenlight/v1/types.pb.h"

namespace greenlight::scheduler {

struct ValidationContext {
  absl::Time now;
  // Canonical GPU type for a name or alias, "" when unknown.
  std::function<std::string(const std::string&)> canonical_gpu;
  std::function<bool(const std::string&)> region_known;
  std::function<bool(const std::string&)> team_exists;
};

inline constexpr int kMaxGpus = 4096;
inline constexpr int64_t kMaxCapMicros = 1'000'000'000'000'000;  // $1e9
inline constexpr int64_t kMaxCapMg = 1'000'000'000'000'000;      // 1,000 kt
inline constexpr double kMaxReferenceGpuHours = 10'000'000;
inline constexpr int kMaxLabels = 64;
// Team.alert_ratio when a team leaves it 0: the one default of the alert.
inline constexpr double kDefaultAlertRatio = 0.8;
inline double AlertRatioOf(const v1::Team& t) {
  return t.alert_ratio() > 0 ? t.alert_ratio() : kDefaultAlertRatio;
}
inline constexpr size_t kMaxPayloadBytes = 64 * 1024;

absl::Status ValidateJobSpec(const greenlight::v1::JobSpec& spec, const ValidationContext& ctx);
absl::Status ValidateTeam(const greenlight::v1::Team& team,
                          const std::function<bool(const std::string&)>& team_exists);

// --- Inventory. The checks of SchedulerCore::UpsertPools and
// SchedulerCore::SetCarbonSeries, whoever calls them (API, config, live data).
inline constexpr int kMaxCarbonPoints = 100'000;
inline constexpr double kMaxGPerKwh = 5000;  // gCO2e/kWh, above any real grid
// Each pool's fields, "pools[i].field: rule".
absl::Status ValidatePools(const std::vector<greenlight::v1::NodePool>& pools);
// A zone's series: its name, step, values (gCO2e/kWh) and annual average (0 = keep / derive).
absl::Status ValidateCarbonSeries(const std::string& zone, absl::Duration step,
                                  const std::vector<double>& values, double annual_average);
// --- Inventory requests (pools and the series' values: the two above).
// The step of a SetCarbonSeries request's points: 1 hour when unset.
absl::Duration CarbonSeriesStep(const greenlight::v1::SetCarbonSeriesRequest& req);
// At least one point, at ascending times CarbonSeriesStep(req) apart.
absl::Status ValidateSetCarbonSeriesRequest(const greenlight::v1::SetCarbonSeriesRequest& req);

// --- Scheduler requests (the spec itself: ValidateJobSpec).
absl::Status ValidateEstimateJobRequest(const greenlight::v1::EstimateJobRequest& req);
absl::Status ValidateGetJobRequest(const greenlight::v1::GetJobRequest& req);
absl::Status ValidateListJobsRequest(const greenlight::v1::ListJobsRequest& req);
absl::Status ValidateCancelJobRequest(const greenlight::v1::CancelJobRequest& req);
absl::Status ValidateWatchJobsRequest(const greenlight::v1::WatchJobsRequest& req);

// --- Budgets requests (the team itself: ValidateTeam).
absl::Status ValidateGetUsageRequest(const greenlight::v1::GetUsageRequest& req);

// --- Admin requests. A team token names an existing team; an admin token
// none; an agent token an AGENT pool and nothing else.
absl::Status ValidateCreateTokenRequest(
    const greenlight::v1::CreateTokenRequest& req,
    const std::function<bool(const std::string&)>& team_exists,
    const std::function<bool(const std::string&)>& pool_is_agent = nullptr);

}  // namespace greenlight::scheduler
