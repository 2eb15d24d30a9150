// Field-by-field validation of a JobSpec. Every error is INVALID_ARGUMENT
// naming the field ("spec.gpus") and the rule ("must be between 1 and 4096").
#pragma once

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
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

}  // namespace greenlight::scheduler
