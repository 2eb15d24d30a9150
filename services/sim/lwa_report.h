// The reproduction report of Let's Wait Awhile: our savings in the stated and
// compatibility modes beside the published figures, what each difference
// between the modes is worth, and the spread over job draws.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "services/sim/lwa_scenario.h"

namespace greenlight::sim::lwa {

// A region of the paper and its file: DE -> lwa2020_ger_ci.csv.
struct Region {
  std::string code;
  std::string file_stem;
};
const std::vector<Region>& PaperRegions();

// Published savings in percent (non-interruptible, interruptible).
struct Published {
  double noninterruptible = 0;
  double interruptible = 0;
  // True when derived from the authors' notebook output, not printed in the paper.
  bool derived = false;
};
// The figure for a region and forecast error, if one exists.
std::optional<Published> PublishedFigure(const std::string& region, double forecast_error);

struct ReportOptions {
  std::string data_dir = "data/carbon";
  std::vector<std::string> regions = {"DE", "GB", "FR"};
  double forecast_error = 0.05;
  int noise_seeds = 10;
  uint64_t noise_seed_base = 0;
  uint64_t job_seed = 0;
  // When set, the jobs come from this CSV instead of the generator.
  std::string jobs_csv;
  // When set, the jobs of the chosen mode are written here as CSV.
  std::string dump_jobs;
  // What to print.
  enum class Kind { kStated, kCompat, kFull } kind = Kind::kFull;
  // With kFull: job seeds 0..n-1 to measure the spread over job draws (0: skip).
  int job_seed_spread = 0;
};

// Loads "<data_dir>/lwa2020_<stem>_ci.csv" from 2020-01-01 00:00.
absl::StatusOr<CarbonSlots> LoadRegion(const std::string& data_dir, const std::string& code);

// Runs the experiments and prints the tables.
absl::Status PrintReport(const ReportOptions& options, std::ostream& out);

}  // namespace greenlight::sim::lwa
