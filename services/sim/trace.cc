#include "services/sim/trace.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/csv.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace greenlight::sim {
namespace {

absl::Status Bad(const CsvTable& t, size_t row, int col, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(t.Where(row, col), ": ", what));
}

// Blanks out '#' comment lines, keeping the line count so that CsvTable's
// line numbers stay those of the file.
std::string StripComments(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::StartsWith(absl::StripLeadingAsciiWhitespace(line), "#"))
      out.append(line.data(), line.size());
    out.push_back('\n');
  }
  if (!out.empty()) out.pop_back();
  return out;
}

// Seconds ("5400", "5400.5") or an absl duration ("1h30m", "90m").
absl::StatusOr<absl::Duration> ParseTime(const CsvTable& t, size_t row, int col) {
  absl::string_view s = absl::StripAsciiWhitespace(t.Cell(row, col));
  double seconds;
  if (absl::SimpleAtod(s, &seconds)) {
    if (!std::isfinite(seconds)) return Bad(t, row, col, "not a finite number");
    return absl::Seconds(seconds);
  }
  absl::Duration d;
  if (absl::ParseDuration(s, &d) && d != absl::InfiniteDuration() &&
      d != -absl::InfiniteDuration()) {
    return d;
  }
  return Bad(t, row, col,
             absl::StrCat("not seconds or a duration like \"4h30m\": \"", s.substr(0, 40), "\""));
}

absl::StatusOr<bool> ParseBool(const CsvTable& t, size_t row, int col, bool empty_value) {
  std::string s = absl::AsciiStrToLower(absl::StripAsciiWhitespace(t.Cell(row, col)));
  if (s.empty()) return empty_value;
  if (s == "true" || s == "1" || s == "yes") return true;
  if (s == "false" || s == "0" || s == "no") return false;
  return Bad(t, row, col, absl::StrCat("not true/false/1/0/yes/no: \"", s.substr(0, 40), "\""));
}

// An optional column's index, or -1.
int Optional(const CsvTable& t, absl::string_view name) {
  if (!t.HasColumn(name)) return -1;
  return *t.Column(name);
}

bool Empty(const CsvTable& t, size_t row, int col) {
  return col < 0 || absl::StripAsciiWhitespace(t.Cell(row, col)).empty();
}

void SortBySubmit(std::vector<TraceJob>& jobs) {
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const TraceJob& a, const TraceJob& b) { return a.submit < b.submit; });
}

}  // namespace

absl::StatusOr<Trace> ParseAlibabaTrace(absl::string_view text, const std::string& source,
                                        const AlibabaOptions& options) {
  ASSIGN_OR_RETURN(CsvTable t, CsvTable::Parse(text, source));
  ASSIGN_OR_RETURN(int c_gpu, t.Column("num_gpu"));
  ASSIGN_OR_RETURN(int c_milli, t.Column("gpu_milli"));
  ASSIGN_OR_RETURN(int c_create, t.Column("creation_time"));
  ASSIGN_OR_RETURN(int c_delete, t.Column("deletion_time"));
  ASSIGN_OR_RETURN(int c_sched, t.Column("scheduled_time"));
  const int c_name = Optional(t, "name");
  const int c_spec = Optional(t, "gpu_spec");

  Trace trace;
  trace.source = source;
  trace.format = "alibaba";
  trace.stats.rows = static_cast<int64_t>(t.rows());
  std::vector<int64_t> deletion;  // per kept job, to find the censored ones
  int64_t trace_end = 0;
  for (size_t r = 0; r < t.rows(); ++r) {
    ASSIGN_OR_RETURN(int64_t gpus, t.Int(r, c_gpu));
    ASSIGN_OR_RETURN(int64_t milli, t.Int(r, c_milli));
    ASSIGN_OR_RETURN(int64_t created, t.Int(r, c_create));
    ASSIGN_OR_RETURN(int64_t deleted, t.Int(r, c_delete));
    if (gpus < 0 || gpus > 4096) return Bad(t, r, c_gpu, "must be between 0 and 4096");
    if (milli < 0 || milli > 1000) return Bad(t, r, c_milli, "must be between 0 and 1000");
    if (created < 0) return Bad(t, r, c_create, "must be >= 0 (seconds from the trace start)");
    if (deleted < created) return Bad(t, r, c_delete, "is before creation_time");
    trace_end = std::max(trace_end, deleted);
    if (gpus == 0) {
      ++trace.stats.skipped_cpu_only;
      continue;
    }
    if (Empty(t, r, c_sched)) {
      // Pending pods: deleted before they ever ran, so there is no GPU work to replay.
      ++trace.stats.skipped_never_scheduled;
      continue;
    }
    ASSIGN_OR_RETURN(int64_t scheduled, t.Int(r, c_sched));
    if (scheduled < created) return Bad(t, r, c_sched, "is before creation_time");
    if (scheduled > deleted) return Bad(t, r, c_sched, "is after deletion_time");
    TraceJob job;
    job.name = c_name >= 0 ? t.Cell(r, c_name) : absl::StrCat("row-", t.Line(r));
    job.submit = absl::Seconds(created);
    job.gpus = static_cast<int>(gpus);
    if (gpus == 1 && milli > 0 && milli < 1000) ++trace.stats.fractional_gpu;
    job.duration = absl::Seconds(deleted - scheduled);
    if (job.duration < kMinJobDuration) {
      job.duration = kMinJobDuration;
      ++trace.stats.raised_to_min_duration;
    }
    job.team = options.team;
    job.checkpointable = true;
    job.line = t.Line(r);
    if (c_spec >= 0 && options.gpu_type && !Empty(t, r, c_spec)) {
      for (absl::string_view g : absl::StrSplit(t.Cell(r, c_spec), '|', absl::SkipWhitespace())) {
        std::string canonical = options.gpu_type(absl::StripAsciiWhitespace(g));
        if (!canonical.empty() && std::find(job.gpu_types.begin(), job.gpu_types.end(),
                                            canonical) == job.gpu_types.end()) {
          job.gpu_types.push_back(std::move(canonical));
        }
      }
      if (job.gpu_types.empty()) ++trace.stats.gpu_spec_unavailable;
    }
    trace.jobs.push_back(std::move(job));
    deletion.push_back(deleted);
  }
  for (int64_t d : deletion) trace.stats.censored += d == trace_end;
  trace.stats.jobs = static_cast<int64_t>(trace.jobs.size());
  SortBySubmit(trace.jobs);
  return trace;
}

absl::StatusOr<Trace> ParseSimpleTrace(
    absl::string_view text, const std::string& source, const std::string& default_team,
    const std::function<std::string(absl::string_view)>& canonical_gpu) {
  ASSIGN_OR_RETURN(CsvTable t, CsvTable::Parse(StripComments(text), source));
  ASSIGN_OR_RETURN(int c_submit, t.Column("submit"));
  ASSIGN_OR_RETURN(int c_gpus, t.Column("gpus"));
  ASSIGN_OR_RETURN(int c_duration, t.Column("duration"));
  const int c_type = Optional(t, "gpu_type");
  const int c_team = Optional(t, "team");
  const int c_deadline = Optional(t, "deadline");
  const int c_ckpt = Optional(t, "checkpointable");
  const int c_name = Optional(t, "name");
  const int c_cost = Optional(t, "max_cost_usd");
  const int c_carbon = Optional(t, "max_carbon_kg");

  Trace trace;
  trace.source = source;
  trace.format = "simple";
  trace.stats.rows = static_cast<int64_t>(t.rows());
  for (size_t r = 0; r < t.rows(); ++r) {
    TraceJob job;
    job.line = t.Line(r);
    ASSIGN_OR_RETURN(job.submit, ParseTime(t, r, c_submit));
    if (job.submit < absl::ZeroDuration()) return Bad(t, r, c_submit, "must be >= 0");
    ASSIGN_OR_RETURN(int64_t gpus, t.Int(r, c_gpus));
    if (gpus < 1 || gpus > 4096) return Bad(t, r, c_gpus, "must be between 1 and 4096");
    job.gpus = static_cast<int>(gpus);
    ASSIGN_OR_RETURN(job.duration, ParseTime(t, r, c_duration));
    // Whole seconds, as the API stores them (a run-now deadline is submit + duration).
    job.duration = absl::Ceil(job.duration, absl::Seconds(1));
    if (job.duration < kMinJobDuration) return Bad(t, r, c_duration, "must be at least 1 minute");
    if (job.duration > absl::Hours(24 * 365)) {
      return Bad(t, r, c_duration, "must be at most 365 days");
    }
    if (!Empty(t, r, c_type)) {
      std::string g(absl::StripAsciiWhitespace(t.Cell(r, c_type)));
      std::string canonical = canonical_gpu ? canonical_gpu(g) : g;
      if (canonical.empty()) {
        return Bad(t, r, c_type, absl::StrCat("unknown GPU type \"", g.substr(0, 40), "\""));
      }
      job.gpu_types.push_back(std::move(canonical));
    }
    job.team = Empty(t, r, c_team) ? default_team
                                   : std::string(absl::StripAsciiWhitespace(t.Cell(r, c_team)));
    if (!Empty(t, r, c_deadline)) {
      ASSIGN_OR_RETURN(job.deadline, ParseTime(t, r, c_deadline));
      if (job.deadline < job.submit + job.duration) {
        return Bad(t, r, c_deadline, "is before submit + duration: the job cannot meet it");
      }
      job.has_deadline = true;
    }
    if (c_ckpt >= 0) {
      ASSIGN_OR_RETURN(job.checkpointable, ParseBool(t, r, c_ckpt, true));
    }
    job.name = Empty(t, r, c_name) ? absl::StrCat("line-", job.line) : t.Cell(r, c_name);
    if (!Empty(t, r, c_cost)) {
      ASSIGN_OR_RETURN(double usd, t.Double(r, c_cost));
      if (usd < 0) return Bad(t, r, c_cost, "must be >= 0 (0 = no cap)");
      job.max_cost_micros = Money::FromUsd(usd).micros();
    }
    if (!Empty(t, r, c_carbon)) {
      ASSIGN_OR_RETURN(double kg, t.Double(r, c_carbon));
      if (kg < 0) return Bad(t, r, c_carbon, "must be >= 0 (0 = no cap)");
      job.max_carbon_mg = Carbon::FromKg(kg).mg();
    }
    trace.jobs.push_back(std::move(job));
  }
  trace.stats.jobs = static_cast<int64_t>(trace.jobs.size());
  SortBySubmit(trace.jobs);
  return trace;
}

absl::StatusOr<Trace> LoadTrace(
    const std::string& path, const std::string& format, const AlibabaOptions& alibaba,
    const std::string& default_team,
    const std::function<std::string(absl::string_view)>& canonical_gpu) {
  ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  std::string f = format;
  if (f == "auto") {
    absl::string_view head = text;
    // The first non-comment line is the header.
    while (!head.empty() && absl::StartsWith(absl::StripLeadingAsciiWhitespace(head), "#")) {
      size_t nl = head.find('\n');
      head = nl == absl::string_view::npos ? absl::string_view() : head.substr(nl + 1);
    }
    head = head.substr(0, head.find('\n'));
    f = absl::StrContains(head, "creation_time") && absl::StrContains(head, "num_gpu") ? "alibaba"
                                                                                       : "simple";
  }
  if (f == "alibaba") return ParseAlibabaTrace(text, path, alibaba);
  if (f == "simple") return ParseSimpleTrace(text, path, default_team, canonical_gpu);
  return absl::InvalidArgumentError(
      absl::StrCat("--trace_format: '", format, "' is not alibaba, simple or auto"));
}

}  // namespace greenlight::sim
