// greenlight-lwa: reproduces the ML-training scenario of Let's Wait Awhile
// (Wiesner et al., Middleware 2021) on the shipped 2020 carbon series.
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "services/sim/lwa_report.h"

namespace {

constexpr char kUsage[] = R"(usage: greenlight-lwa [flags]
  (no mode flag)      the stated rules of the paper
  --compat            follow the authors' code (dos-group/lets-wait-awhile)
  --report            both modes beside the published figures, and what each
                      difference between the modes is worth
  --data_dir=DIR      carbon files lwa2020_{ger,gb,fr}_ci.csv (default data/carbon)
  --regions=DE,GB,FR  regions to run (default all three)
  --error=0.05        forecast noise sigma as a fraction of the series mean
  --seeds=10          noise realisations averaged
  --noise_seed_base=0 first noise seed (seeds base .. base+seeds-1)
  --job_seed=0        seed of the job draw
  --jobs_csv=FILE     jobs from a CSV (submit,duration_slots) instead of the draw
  --dump_jobs=FILE    write the jobs of the mode (stated, or --compat) as CSV
  --job_seed_spread=N with --report: also the spread over job seeds 0..N-1
)";

int Fail(absl::string_view message) {
  std::cerr << "greenlight-lwa: " << message << "\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using greenlight::sim::lwa::ReportOptions;
  ReportOptions options;
  options.kind = ReportOptions::Kind::kStated;
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    const std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(arg, absl::MaxSplits('=', 1));
    const absl::string_view key = kv.first, value = kv.second;
    const bool has_value = absl::StrContains(arg, '=');
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--compat") {
      options.kind = ReportOptions::Kind::kCompat;
    } else if (arg == "--report") {
      options.kind = ReportOptions::Kind::kFull;
    } else if (key == "--data_dir" && has_value) {
      options.data_dir = std::string(value);
    } else if (key == "--regions" && has_value) {
      options.regions = absl::StrSplit(value, ',', absl::SkipEmpty());
    } else if (key == "--error" && has_value) {
      if (!absl::SimpleAtod(value, &options.forecast_error)) return Fail("--error: not a number");
    } else if (key == "--seeds" && has_value) {
      if (!absl::SimpleAtoi(value, &options.noise_seeds)) return Fail("--seeds: not an integer");
    } else if (key == "--noise_seed_base" && has_value) {
      if (!absl::SimpleAtoi(value, &options.noise_seed_base)) {
        return Fail("--noise_seed_base: not an integer");
      }
    } else if (key == "--job_seed" && has_value) {
      if (!absl::SimpleAtoi(value, &options.job_seed)) return Fail("--job_seed: not an integer");
    } else if (key == "--dump_jobs" && has_value) {
      options.dump_jobs = std::string(value);
    } else if (key == "--jobs_csv" && has_value) {
      options.jobs_csv = std::string(value);
    } else if (key == "--job_seed_spread" && has_value) {
      if (!absl::SimpleAtoi(value, &options.job_seed_spread)) {
        return Fail("--job_seed_spread: not an integer");
      }
    } else {
      return Fail(std::string("unknown flag ") + std::string(arg));
    }
  }
  const absl::Status status = greenlight::sim::lwa::PrintReport(options, std::cout);
  if (!status.ok()) {
    std::cerr << "greenlight-lwa: " << status.message() << "\n";
    return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  return 0;
}
