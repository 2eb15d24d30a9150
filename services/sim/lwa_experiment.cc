// The Let's Wait Awhile experiment loop: plan each job's window once, then
// schedule every job on each forecast realisation.
#include "services/sim/lwa_experiment.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "services/sim/lwa_policy.h"
#include "services/sim/lwa_rng.h"

namespace greenlight::sim::lwa {
namespace {

// Noise realisations use their own seed space, apart from the job seeds.
constexpr uint64_t kNoiseStream = uint64_t{0x6e6f697365} << 24;

struct PlannedJob {
  int64_t submit_slot;
  int duration;
  SlotWindow window;  // where the carbon-aware policies may run it
};

absl::StatusOr<std::vector<PlannedJob>> PlanJobs(const CarbonSlots& carbon,
                                                 const std::vector<LwaJob>& jobs,
                                                 const Quirks& quirks) {
  std::vector<PlannedJob> planned;
  planned.reserve(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    const LwaJob& job = jobs[i];
    const int64_t submit = carbon.SlotOf(job.submit);
    const absl::CivilMinute finish = job.submit + job.duration_slots * kSlotMinutes;
    int64_t end = carbon.SlotOf(NextWorkdayDeadline(finish, quirks.friday_evening_to_saturday));
    if (quirks.one_slot_past_deadline) ++end;
    // Past the data the deadline is cut to the series' end (both modes: the
    // authors' slice is cut there too). Never reached with the 2020 files.
    end = std::min(end, carbon.size());
    if (submit < 0 || submit + job.duration_slots > end) {
      return absl::InvalidArgumentError(
          absl::StrCat("job ", i, " (submitted ", absl::FormatCivilTime(job.submit), ", ",
                       job.duration_slots, " slots) does not fit in the ", carbon.region,
                       " series ", absl::FormatCivilTime(carbon.start), " .. ",
                       absl::FormatCivilTime(carbon.TimeOf(carbon.size()))));
    }
    planned.push_back({submit, job.duration_slots, {submit, end}});
  }
  return planned;
}

}  // namespace

std::vector<double> NoisyForecast(const std::vector<double>& actual, double sigma, uint64_t seed) {
  Rng rng(kNoiseStream | seed);
  std::vector<double> forecast(actual.size());
  for (size_t i = 0; i < actual.size(); ++i) forecast[i] = actual[i] + sigma * rng.Normal();
  return forecast;
}

absl::StatusOr<ExperimentResult> RunExperiment(const CarbonSlots& carbon,
                                               const std::vector<LwaJob>& jobs,
                                               const ExperimentOptions& options) {
  if (jobs.empty()) return absl::InvalidArgumentError("jobs: none to schedule");
  if (options.forecast_error < 0) {
    return absl::InvalidArgumentError("forecast_error: must be >= 0");
  }
  if (options.forecast_error > 0 && options.noise_seeds < 1) {
    return absl::InvalidArgumentError("noise_seeds: must be >= 1 with a forecast error");
  }
  ASSIGN_OR_RETURN(const std::vector<PlannedJob> planned, PlanJobs(carbon, jobs, options.quirks));

  const PrefixSums actual(carbon.values);
  // g/kWh x kW x h per slot -> g; /1000 -> kg.
  const double kg_per_intensity_slot =
      options.job_power_w / 1000.0 * (kSlotMinutes / 60.0) / 1000.0;

  ExperimentResult result;
  result.jobs = static_cast<int>(jobs.size());
  double baseline = 0;
  for (const PlannedJob& job : planned) {
    int64_t start = job.submit_slot;
    if (options.quirks.baseline_may_wait_one_slot) {
      const SlotWindow one_late{job.submit_slot,
                                std::min(job.submit_slot + job.duration + 1, carbon.size())};
      start = LowestMeanStart(actual, one_late, job.duration);
    }
    baseline += actual.Sum(start, start + job.duration);
  }

  const bool perfect = options.forecast_error == 0;
  result.runs = perfect ? 1 : options.noise_seeds;
  const double sigma = options.forecast_error * carbon.Mean();
  double noninterruptible = 0, interruptible = 0, extra_slots = 0;
  for (int run = 0; run < result.runs; ++run) {
    const std::vector<double> forecast =
        perfect ? carbon.values
                : NoisyForecast(carbon.values, sigma,
                                options.noise_seed_base + static_cast<uint64_t>(run));
    const PrefixSums forecast_sums(forecast);
    for (const PlannedJob& job : planned) {
      const int64_t start = LowestMeanStart(forecast_sums, job.window, job.duration);
      noninterruptible += actual.Sum(start, start + job.duration);
      const std::vector<int64_t> slots =
          LowestSlots(forecast, job.window, job.duration, options.quirks.interruptible_takes_ties);
      for (int64_t s : slots) interruptible += carbon.values[s];
      extra_slots += static_cast<double>(slots.size()) - job.duration;
    }
  }
  result.baseline_kg = baseline * kg_per_intensity_slot;
  result.noninterruptible_kg = noninterruptible / result.runs * kg_per_intensity_slot;
  result.interruptible_kg = interruptible / result.runs * kg_per_intensity_slot;
  result.interruptible_extra_slots = extra_slots / result.runs;
  return result;
}

}  // namespace greenlight::sim::lwa
