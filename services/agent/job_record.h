// The agent's own record of a job (state_dir/jobs/<id>/agent): where the job
// is in the agent's lifecycle, the next report sequence, whether STARTED was
// acknowledged, the energy last reported per GPU, and a start failure's
// reason. "key value" lines, so that an operator can read it; unknown keys
// and malformed values are skipped (the record is advisory: the supervisor's
// process and exit records say what really ran).
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/strings/string_view.h"

namespace greenlight::agent {

struct JobRecord {
  enum class Phase { kLaunching, kRunning, kFailed, kDone };
  Phase phase = Phase::kRunning;
  int64_t next_sequence = 1;
  bool started_acked = false;
  std::map<int, double> reported_wh;  // GPU index -> Wh since the run started
  std::string reason;                 // kFailed: why it did not start
};

std::string EncodeJobRecord(const JobRecord& record);
JobRecord DecodeJobRecord(absl::string_view text);

}  // namespace greenlight::agent
