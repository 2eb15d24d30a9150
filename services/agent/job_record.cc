#include "services/agent/job_record.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace greenlight::agent {
namespace {

const char* PhaseName(JobRecord::Phase phase) {
  switch (phase) {
    case JobRecord::Phase::kLaunching:
      return "launching";
    case JobRecord::Phase::kRunning:
      return "running";
    case JobRecord::Phase::kFailed:
      return "failed";
    case JobRecord::Phase::kDone:
      return "done";
  }
  return "running";
}

JobRecord::Phase ParsePhase(absl::string_view name) {
  if (name == "launching") return JobRecord::Phase::kLaunching;
  if (name == "failed") return JobRecord::Phase::kFailed;
  if (name == "done") return JobRecord::Phase::kDone;
  return JobRecord::Phase::kRunning;  // what a process record then confirms or refutes
}

}  // namespace

std::string EncodeJobRecord(const JobRecord& r) {
  std::string text = absl::StrCat("phase ", PhaseName(r.phase), "\nnext_sequence ", r.next_sequence,
                                  "\nstarted_acked ", r.started_acked ? 1 : 0, "\n");
  for (const auto& [index, wh] : r.reported_wh) {
    absl::StrAppend(&text, absl::StrFormat("energy_wh %d %.17g\n", index, wh));
  }
  if (r.phase == JobRecord::Phase::kFailed) {
    std::string reason = r.reason;
    std::replace(reason.begin(), reason.end(), '\n', ' ');
    absl::StrAppend(&text, "reason ", reason, "\n");
  }
  return text;
}

JobRecord DecodeJobRecord(absl::string_view text) {
  JobRecord r;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(line, absl::MaxSplits(' ', 1));
    if (kv.first == "phase") {
      r.phase = ParsePhase(kv.second);
    } else if (kv.first == "next_sequence") {
      if (!absl::SimpleAtoi(kv.second, &r.next_sequence) || r.next_sequence < 1) {
        r.next_sequence = 1;
      }
    } else if (kv.first == "started_acked") {
      r.started_acked = kv.second == "1";
    } else if (kv.first == "energy_wh") {
      std::pair<absl::string_view, absl::string_view> iv =
          absl::StrSplit(kv.second, absl::MaxSplits(' ', 1));
      int index = 0;
      double wh = 0;
      if (absl::SimpleAtoi(iv.first, &index) && absl::SimpleAtod(iv.second, &wh) &&
          std::isfinite(wh) && wh >= 0 && index >= 0) {
        r.reported_wh[index] = wh;
      }
    } else if (kv.first == "reason") {
      r.reason = std::string(kv.second);
    }
  }
  return r;
}

}  // namespace greenlight::agent
