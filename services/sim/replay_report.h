// Output of a replay: the per-policy table (text, CSV, JSON), every job's
// outcome (jobs.csv) and the sample day's intensity curves (intensity.csv)
// that services/sim/plot_replay.py draws. Columns: docs/REPLAY.md.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "services/providers/inventory.h"
#include "services/sim/replay.h"
#include "services/sim/trace.h"

namespace greenlight::sim {

// Everything about the run that the outputs repeat.
struct RunInfo {
  std::string trace_source;
  std::string trace_format;
  TraceStats trace_stats;
  std::string config_source;
  absl::Time start;
  absl::Duration tick;
  absl::Duration slack;
  double slack_factor = 0;
  int threads = 1;
  double wall_seconds = 0;  // all policies, the replay only
  absl::CivilDay sample_day;
  std::vector<std::string> notes;  // series coverage, inventory notes
};

// The text table (one row per policy, then the changes against the first).
std::string FormatTable(const std::vector<PolicyResult>& results);

// The UTC day with the most jobs submitted (ties: the earliest).
absl::CivilDay BusiestDay(const Trace& trace, absl::Time start);

absl::Status WriteSummaryCsv(const std::string& path, const std::vector<PolicyResult>& results);
absl::Status WriteSummaryJson(const std::string& path, const std::vector<PolicyResult>& results,
                              const RunInfo& info);
// One row per (policy, trace job).
absl::Status WriteJobsCsv(const std::string& path, const Trace& trace,
                          const std::vector<PolicyResult>& results);
// Hourly intensity of every zone a job ran in on `day` (00:00 to 24:00 UTC),
// under any policy.
absl::Status WriteIntensityCsv(const std::string& path, const std::vector<PolicyResult>& results,
                               const providers::Inventory& inventory, absl::CivilDay day);

}  // namespace greenlight::sim
