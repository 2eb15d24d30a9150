// Job traces for the replay simulator: the Alibaba GPU cluster trace v2023
// (Weng et al., "Beware of Fragmentation", USENIX ATC'23) and a simple CSV of
// our own. Both become TraceJobs: times are offsets from the trace start, so
// one trace can be replayed against any date the carbon series cover.
// Formats and mapping rules: docs/REPLAY.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace greenlight::sim {

struct TraceJob {
  std::string name;
  absl::Duration submit;  // from the trace start
  int gpus = 1;
  absl::Duration duration;             // wall-clock compute time on any allowed GPU
  std::vector<std::string> gpu_types;  // canonical names; empty = any
  std::string team;
  // Latest finish, from the trace start; unset = the replay's slack rule.
  bool has_deadline = false;
  absl::Duration deadline;
  // The job may be stopped and resumed (it is, under interruptible policies).
  bool checkpointable = true;
  int64_t max_cost_micros = 0;  // 0 = no job cap
  int64_t max_carbon_mg = 0;
  int64_t line = 0;  // source line, for messages
};

// What a parser kept, dropped and adjusted (all counts of trace rows).
struct TraceStats {
  int64_t rows = 0;
  int64_t jobs = 0;
  int64_t skipped_cpu_only = 0;         // Alibaba: num_gpu = 0
  int64_t skipped_never_scheduled = 0;  // Alibaba: no scheduled_time (Pending pods)
  int64_t fractional_gpu = 0;           // Alibaba: gpu_milli < 1000, counted as whole GPUs
  int64_t raised_to_min_duration = 0;   // shorter than the API's 1 minute
  int64_t censored = 0;                 // Alibaba: still running at the trace end
  int64_t gpu_spec_unavailable = 0;     // Alibaba: gpu_spec names no GPU of the inventory
};

struct Trace {
  std::string source;
  std::string format;          // "alibaba" or "simple"
  std::vector<TraceJob> jobs;  // by submit time, then source order
  TraceStats stats;
};

// The shortest job the scheduler API accepts (JobSpec.duration >= 1 minute).
inline constexpr absl::Duration kMinJobDuration = absl::Minutes(1);

struct AlibabaOptions {
  std::string team = "alibaba";
  // Canonical GPU name of a trace's gpu_spec entry when the inventory has
  // pools of it, else "" (the entry is ignored). Unset = gpu_spec ignored.
  std::function<std::string(absl::string_view)> gpu_type;
};

// Alibaba pod list (openb_pod_list_*.csv). Mapping: submit = creation_time;
// duration = deletion_time - scheduled_time (raised to 1 minute); gpus =
// num_gpu, a fractional share (gpu_milli < 1000) counted as one whole GPU;
// CPU-only pods and pods never scheduled are skipped; every job is
// checkpointable (the trace does not say; policies decide).
absl::StatusOr<Trace> ParseAlibabaTrace(absl::string_view text, const std::string& source,
                                        const AlibabaOptions& options = {});

// Simple CSV, one job per row; '#' lines are comments. Columns by name:
//   submit     required, seconds from the trace start, or a duration "26h30m"
//   gpus       required, integer >= 1
//   duration   required, seconds or a duration "4h"; at least 1 minute
//   gpu_type   optional, canonical or alias name; empty = any
//   team       optional, default `default_team`
//   deadline   optional, latest finish from the trace start (like submit); empty = slack rule
//   checkpointable optional, true/false/1/0/yes/no; empty = true
//   name, max_cost_usd, max_carbon_kg optional
// Errors name file:line:column.
absl::StatusOr<Trace> ParseSimpleTrace(
    absl::string_view text, const std::string& source, const std::string& default_team = "trace",
    const std::function<std::string(absl::string_view)>& canonical_gpu = nullptr);

// Reads `path`; format "alibaba", "simple" or "auto" (by the header: an
// Alibaba pod list has creation_time and num_gpu columns).
absl::StatusOr<Trace> LoadTrace(const std::string& path, const std::string& format,
                                const AlibabaOptions& alibaba, const std::string& default_team,
                                const std::function<std::string(absl::string_view)>& canonical_gpu);

}  // namespace greenlight::sim
