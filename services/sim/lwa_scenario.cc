// Job generation, the next-workday deadline and the carbon file reader of the
// Let's Wait Awhile reproduction.
#include "services/sim/lwa_scenario.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <numeric>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/csv.h"
#include "common/status_macros.h"
#include "services/sim/lwa_numpy_rng.h"
#include "services/sim/lwa_rng.h"

namespace greenlight::sim::lwa {
namespace {

bool IsWeekend(absl::CivilDay day) {
  const absl::Weekday w = absl::GetWeekday(day);
  return w == absl::Weekday::saturday || w == absl::Weekday::sunday;
}

absl::CivilDay NextWorkday(absl::CivilDay day) {
  do {
    ++day;
  } while (IsWeekend(day));
  return day;
}

absl::CivilMinute NineOClock(absl::CivilDay day) {
  return absl::CivilMinute(day.year(), day.month(), day.day(), 9, 0);
}

// Parses "YYYY-MM-DD HH:MM:SS" (the LWA files' only format).
bool ParseTimestamp(const std::string& text, absl::CivilSecond* out) {
  int y, mo, d, h, mi, s;
  char tail;
  if (std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%d%c", &y, &mo, &d, &h, &mi, &s, &tail) != 6) {
    return false;
  }
  *out = absl::CivilSecond(y, mo, d, h, mi, s);
  // CivilSecond normalizes out-of-range fields; a round trip rejects them.
  return out->year() == y && out->month() == mo && out->day() == d && out->hour() == h &&
         out->minute() == mi && out->second() == s;
}

std::vector<absl::CivilDay> Workdays(int year) {
  std::vector<absl::CivilDay> workdays;
  for (absl::CivilDay day(year, 1, 1); day.year() == year; ++day) {
    if (!IsWeekend(day)) workdays.push_back(day);
  }
  return workdays;
}

}  // namespace

std::vector<LwaJob> GenerateJobs(const JobRules& rules, uint64_t seed) {
  const std::vector<absl::CivilDay> workdays = Workdays(rules.year);
  const uint64_t start_choices = static_cast<uint64_t>(
      (rules.last_start_minute - rules.first_start_minute) / kSlotMinutes + 1);
  const uint64_t duration_choices =
      static_cast<uint64_t>(rules.max_duration_slots - rules.min_duration_slots + 1);

  Rng rng(seed);
  std::vector<LwaJob> jobs;
  jobs.reserve(rules.count);
  for (int i = 0; i < rules.count; ++i) {
    // One categorical draw per job over the workdays is the multinomial.
    const absl::CivilDay day = workdays[rng.UniformInt(workdays.size())];
    const int start_minute =
        rules.first_start_minute + static_cast<int>(rng.UniformInt(start_choices)) * kSlotMinutes;
    const int duration =
        rules.min_duration_slots + static_cast<int>(rng.UniformInt(duration_choices));
    jobs.push_back({absl::CivilMinute(day) + start_minute, duration});
  }
  std::stable_sort(jobs.begin(), jobs.end(),
                   [](const LwaJob& a, const LwaJob& b) { return a.submit < b.submit; });
  return jobs;
}

std::vector<LwaJob> GenerateJobsLikeAuthors(const JobRules& rules, uint32_t seed) {
  const std::vector<absl::CivilDay> workdays = Workdays(rules.year);
  const uint32_t max_start =
      static_cast<uint32_t>((rules.last_start_minute - rules.first_start_minute) / kSlotMinutes);
  const uint32_t max_duration =
      static_cast<uint32_t>(rules.max_duration_slots - rules.min_duration_slots);

  NumpyRng rng(seed);
  // Equal probabilities as Python computes them: 1 / len(workdays).
  const std::vector<double> pvals(workdays.size(), 1.0 / static_cast<double>(workdays.size()));
  const std::vector<int64_t> counts = rng.Multinomial(rules.count, pvals);
  std::vector<LwaJob> jobs;
  jobs.reserve(rules.count);
  size_t next_workday = 0;
  for (absl::CivilDay day(rules.year, 1, 1); day.year() == rules.year; ++day) {
    // Weekends draw zero start times (and so consume no randomness).
    int64_t count = 0;
    if (next_workday < workdays.size() && workdays[next_workday] == day) {
      count = counts[next_workday++];
    }
    std::vector<int> starts;
    for (int64_t i = 0; i < count; ++i) {
      starts.push_back(rules.first_start_minute +
                       static_cast<int>(rng.BoundedUint32(max_start)) * kSlotMinutes);
    }
    std::sort(starts.begin(), starts.end());
    for (int start : starts) jobs.push_back({absl::CivilMinute(day) + start, 0});
  }
  for (LwaJob& job : jobs) {
    job.duration_slots =
        rules.min_duration_slots + static_cast<int>(rng.BoundedUint32(max_duration));
  }
  return jobs;
}

absl::Status WriteJobsCsv(const std::vector<LwaJob>& jobs, const std::string& path) {
  std::ofstream out(path);
  if (!out) return absl::NotFoundError(absl::StrCat(path, ": cannot open for writing"));
  out << "submit,duration_slots\n";
  for (const LwaJob& job : jobs) {
    out << absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromCivil(job.submit, absl::UTCTimeZone()),
                            absl::UTCTimeZone())
        << "," << job.duration_slots << "\n";
  }
  out.close();
  if (!out) return absl::DataLossError(absl::StrCat(path, ": write failed"));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<LwaJob>> LoadJobsCsv(const std::string& path) {
  ASSIGN_OR_RETURN(CsvTable table, CsvTable::ReadFile(path));
  ASSIGN_OR_RETURN(int submit_col, table.Column("submit"));
  ASSIGN_OR_RETURN(int duration_col, table.Column("duration_slots"));
  std::vector<LwaJob> jobs;
  for (size_t row = 0; row < table.rows(); ++row) {
    absl::CivilSecond t;
    if (!ParseTimestamp(table.Cell(row, submit_col), &t) || t.second() != 0 ||
        t.minute() % kSlotMinutes != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(table.Where(row, submit_col), ": expected a time on the 30-min grid like ",
                       "2020-01-01 09:30:00, got '", table.Cell(row, submit_col), "'"));
    }
    ASSIGN_OR_RETURN(int64_t duration, table.Int(row, duration_col));
    if (duration <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(table.Where(row, duration_col), ": must be > 0"));
    }
    jobs.push_back({absl::CivilMinute(t), static_cast<int>(duration)});
  }
  if (jobs.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no jobs"));
  return jobs;
}

absl::CivilMinute NextWorkdayDeadline(absl::CivilMinute original_finish,
                                      bool friday_evening_to_saturday) {
  const absl::CivilDay day(original_finish);
  const int minute_of_day = original_finish.hour() * 60 + original_finish.minute();
  if (IsWeekend(day)) return NineOClock(NextWorkday(day));
  if (minute_of_day > 17 * 60) {
    if (friday_evening_to_saturday) return NineOClock(day + 1);
    return NineOClock(NextWorkday(day));
  }
  if (minute_of_day < 9 * 60) return NineOClock(day);
  return original_finish;
}

int64_t CarbonSlots::SlotOf(absl::CivilMinute t) const {
  const int64_t minutes = t - start;
  // Floor division: a time before `start` maps to a negative slot.
  return minutes >= 0 ? minutes / kSlotMinutes : -((-minutes + kSlotMinutes - 1) / kSlotMinutes);
}

double CarbonSlots::Mean() const {
  if (values.empty()) return 0.0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

absl::StatusOr<CarbonSlots> LoadLwaCarbon(const std::string& path, const std::string& region,
                                          absl::CivilMinute from) {
  ASSIGN_OR_RETURN(CsvTable table, CsvTable::ReadFile(path));
  ASSIGN_OR_RETURN(int time_col, table.Column("Time"));
  ASSIGN_OR_RETURN(int ci_col, table.Column("Carbon Intensity"));
  CarbonSlots slots;
  slots.region = region;
  for (size_t row = 0; row < table.rows(); ++row) {
    absl::CivilSecond t;
    if (!ParseTimestamp(table.Cell(row, time_col), &t)) {
      return absl::InvalidArgumentError(absl::StrCat(
          table.Where(row, time_col), ": expected a time like 2020-01-01 00:00:00, got '",
          table.Cell(row, time_col), "'"));
    }
    if (t.second() != 0 || t.minute() % kSlotMinutes != 0) continue;
    const absl::CivilMinute minute(t);
    if (minute < from) continue;
    ASSIGN_OR_RETURN(double ci, table.Double(row, ci_col));
    if (slots.values.empty()) {
      slots.start = minute;
    } else if (minute != slots.TimeOf(slots.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat(table.Where(row, time_col), ": expected the slot at ",
                       absl::FormatCivilTime(slots.TimeOf(slots.size())), ", got ",
                       absl::FormatCivilTime(minute), " (the series must be gap-free)"));
    }
    slots.values.push_back(ci);
  }
  if (slots.values.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": no 30-min rows at or after ", absl::FormatCivilTime(from)));
  }
  return slots;
}

}  // namespace greenlight::sim::lwa
