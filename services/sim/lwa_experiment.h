// Runs the Let's Wait Awhile ML-training experiment on one region: every job
// is scheduled run-at-once (baseline), non-interruptible and interruptible,
// on a noisy forecast, and charged the actual intensity.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "services/sim/lwa_scenario.h"

namespace greenlight::sim::lwa {

struct ExperimentOptions {
  Quirks quirks = Quirks::Stated();
  // Forecast noise: sigma = forecast_error x the series mean, drawn per slot.
  // 0 is the perfect forecast (one run, no seeds).
  double forecast_error = 0.05;
  // Noise realisations averaged (seeds base .. base + noise_seeds - 1).
  int noise_seeds = 10;
  uint64_t noise_seed_base = 0;
  // Power of every job (W); the savings do not depend on it.
  double job_power_w = 2036.6;
};

struct ExperimentResult {
  int jobs = 0;
  int runs = 0;  // forecast realisations averaged
  // Emissions in kg CO2e; the policies' are means over the runs.
  double baseline_kg = 0;
  double noninterruptible_kg = 0;
  double interruptible_kg = 0;
  // Slots run by interruptible jobs beyond their durations (ties), per run.
  double interruptible_extra_slots = 0;

  // 1 - policy / baseline, as a fraction.
  double SavingsNonInterruptible() const { return 1.0 - noninterruptible_kg / baseline_kg; }
  double SavingsInterruptible() const { return 1.0 - interruptible_kg / baseline_kg; }
};

// INVALID_ARGUMENT if a job does not fit in the series (it would start before
// the first slot or run past the last).
absl::StatusOr<ExperimentResult> RunExperiment(const CarbonSlots& carbon,
                                               const std::vector<LwaJob>& jobs,
                                               const ExperimentOptions& options);

// The noisy forecast of realisation `seed`: actual + N(0, sigma) per slot.
std::vector<double> NoisyForecast(const std::vector<double>& actual, double sigma, uint64_t seed);

}  // namespace greenlight::sim::lwa
