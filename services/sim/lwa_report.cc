// Runs the Let's Wait Awhile experiments for the report and prints them.
#include "services/sim/lwa_report.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "services/sim/lwa_experiment.h"

namespace greenlight::sim::lwa {
namespace {

// The reproduction target: compat within 0.1 percentage points of the paper.
constexpr double kTolerancePoints = 0.1;

struct Variant {
  std::string name;
  double forecast_error;
};

struct Pair {
  double noninterruptible = 0;  // percent
  double interruptible = 0;
};

Pair Percent(const ExperimentResult& r) {
  return {100.0 * r.SavingsNonInterruptible(), 100.0 * r.SavingsInterruptible()};
}

std::string Fmt(Pair p) {
  return absl::StrFormat("%5.2f / %5.2f", p.noninterruptible, p.interruptible);
}
std::string FmtDelta(Pair p) {
  return absl::StrFormat("%+5.2f / %+5.2f", p.noninterruptible, p.interruptible);
}
Pair Minus(Pair a, Pair b) {
  return {a.noninterruptible - b.noninterruptible, a.interruptible - b.interruptible};
}

std::vector<Variant> Variants(const ReportOptions& options) {
  std::vector<Variant> variants;
  if (options.forecast_error > 0) {
    variants.push_back(
        {absl::StrFormat("%g%% error", 100 * options.forecast_error), options.forecast_error});
  }
  variants.push_back({"perfect", 0.0});
  return variants;
}

// The two draws of the same rules: ours (stated) and numpy's (compat).
struct JobSets {
  std::vector<LwaJob> ours;
  std::vector<LwaJob> numpy;
  const std::vector<LwaJob>& For(const Quirks& quirks) const {
    return quirks.numpy_job_draw ? numpy : ours;
  }
};

absl::StatusOr<JobSets> MakeJobs(const ReportOptions& options, uint64_t seed) {
  JobSets sets;
  if (!options.jobs_csv.empty()) {
    ASSIGN_OR_RETURN(sets.ours, LoadJobsCsv(options.jobs_csv));
    sets.numpy = sets.ours;
    return sets;
  }
  if (seed > UINT32_MAX) return absl::InvalidArgumentError("job_seed: must be < 2^32");
  sets.ours = GenerateJobs(JobRules{}, seed);
  sets.numpy = GenerateJobsLikeAuthors(JobRules{}, static_cast<uint32_t>(seed));
  return sets;
}

absl::StatusOr<Pair> Savings(const CarbonSlots& carbon, const JobSets& job_sets,
                             const ReportOptions& options, const Quirks& quirks, double error) {
  const std::vector<LwaJob>& jobs = job_sets.For(quirks);
  ExperimentOptions experiment;
  experiment.quirks = quirks;
  experiment.forecast_error = error;
  experiment.noise_seeds = options.noise_seeds;
  experiment.noise_seed_base = options.noise_seed_base;
  ASSIGN_OR_RETURN(ExperimentResult result, RunExperiment(carbon, jobs, experiment));
  return Percent(result);
}

// The switches of Quirks, one at a time.
struct NamedQuirk {
  const char* name;
  bool Quirks::*field;
  // The stated mode with only this switch on.
  Quirks OnAlone() const {
    Quirks q = Quirks::Stated();
    q.*field = true;
    return q;
  }
  // The compat mode with only this switch off.
  Quirks OffAlone() const {
    Quirks q = Quirks::Compat();
    q.*field = false;
    return q;
  }
};
const std::vector<NamedQuirk>& SingleQuirks() {
  static const std::vector<NamedQuirk>* quirks = new std::vector<NamedQuirk>{
      {"fri->sat", &Quirks::friday_evening_to_saturday},
      {"+1 slot", &Quirks::one_slot_past_deadline},
      {"baseline+1", &Quirks::baseline_may_wait_one_slot},
      {"ties", &Quirks::interruptible_takes_ties},
      {"job draw", &Quirks::numpy_job_draw},
  };
  return *quirks;
}

absl::Status PrintModeOnly(const ReportOptions& options, const std::vector<CarbonSlots>& regions,
                           const JobSets& jobs, std::ostream& out) {
  const bool compat = options.kind == ReportOptions::Kind::kCompat;
  const Quirks quirks = compat ? Quirks::Compat() : Quirks::Stated();
  out << absl::StrFormat(
      "mode: %s; savings vs run-at-once in %%, non-interruptible / interruptible\n",
      compat ? "compat (the authors' code)" : "stated (the paper's rules)");
  out << absl::StrFormat("%-6s  %-10s  %-15s  %s\n", "region", "forecast", "ours", "published");
  for (const CarbonSlots& carbon : regions) {
    for (const Variant& v : Variants(options)) {
      ASSIGN_OR_RETURN(Pair ours, Savings(carbon, jobs, options, quirks, v.forecast_error));
      const std::optional<Published> pub = PublishedFigure(carbon.region, v.forecast_error);
      out << absl::StrFormat("%-6s  %-10s  %-15s  %s\n", carbon.region, v.name, Fmt(ours),
                             pub ? Fmt({pub->noninterruptible, pub->interruptible}) : "-");
    }
  }
  return absl::OkStatus();
}

absl::Status PrintFull(const ReportOptions& options, const std::vector<CarbonSlots>& regions,
                       const JobSets& jobs, std::ostream& out) {
  const std::vector<Variant> variants = Variants(options);
  out << "Savings vs run-at-once in %, non-interruptible / interruptible\n";
  out << absl::StrFormat("%-6s  %-10s  %-15s  %-15s  %-17s  %s\n", "region", "forecast", "stated",
                         "compat", "published", "compat - published");
  bool any_derived = false;
  struct Row {
    Pair stated, compat;
  };
  std::vector<std::vector<Row>> rows(regions.size());
  for (size_t r = 0; r < regions.size(); ++r) {
    for (const Variant& v : variants) {
      ASSIGN_OR_RETURN(Pair stated,
                       Savings(regions[r], jobs, options, Quirks::Stated(), v.forecast_error));
      ASSIGN_OR_RETURN(Pair compat,
                       Savings(regions[r], jobs, options, Quirks::Compat(), v.forecast_error));
      rows[r].push_back({stated, compat});
      const std::optional<Published> pub = PublishedFigure(regions[r].region, v.forecast_error);
      std::string pub_text = "-", diff_text = "-";
      if (pub) {
        const Pair published{pub->noninterruptible, pub->interruptible};
        pub_text = Fmt(published) + (pub->derived ? " *" : "");
        any_derived |= pub->derived;
        const Pair diff = Minus(compat, published);
        const bool within = std::fabs(diff.noninterruptible) <= kTolerancePoints &&
                            std::fabs(diff.interruptible) <= kTolerancePoints;
        diff_text = FmtDelta(diff) + (within ? "  within 0.1" : "  OFF");
      }
      out << absl::StrFormat("%-6s  %-10s  %-15s  %-15s  %-17s  %s\n", regions[r].region, v.name,
                             Fmt(stated), Fmt(compat), pub_text, diff_text);
    }
  }
  if (any_derived) {
    out << "* derived from the authors' evaluation notebook (its ratio of perfect-forecast to\n"
           "  5%-error savings times the paper's figure); the paper prints the 5% figures only.\n";
  }

  out << "\nWhat each difference between the modes is worth, in percentage points\n"
         "(non-interruptible / interruptible; each switch on alone, over the stated mode):\n";
  const std::vector<NamedQuirk>& singles = SingleQuirks();
  out << absl::StrFormat("%-6s  %-10s", "region", "forecast");
  for (const NamedQuirk& q : singles) out << absl::StrFormat("  %-15s", q.name);
  out << absl::StrFormat("  %-15s  %s\n", "sum of parts", "compat - stated");
  for (size_t r = 0; r < regions.size(); ++r) {
    for (size_t vi = 0; vi < variants.size(); ++vi) {
      out << absl::StrFormat("%-6s  %-10s", regions[r].region, variants[vi].name);
      Pair sum;
      for (const NamedQuirk& q : singles) {
        ASSIGN_OR_RETURN(Pair with, Savings(regions[r], jobs, options, q.OnAlone(),
                                            variants[vi].forecast_error));
        const Pair delta = Minus(with, rows[r][vi].stated);
        sum.noninterruptible += delta.noninterruptible;
        sum.interruptible += delta.interruptible;
        out << absl::StrFormat("  %-15s", FmtDelta(delta));
      }
      out << absl::StrFormat("  %-15s  %s\n", FmtDelta(sum),
                             FmtDelta(Minus(rows[r][vi].compat, rows[r][vi].stated)));
    }
  }

  out << "\nThe same, each switch off alone, under the compat mode (compat - compat without it):\n";
  out << absl::StrFormat("%-6s  %-10s", "region", "forecast");
  for (size_t i = 0; i < singles.size(); ++i) {
    // StrFormat needs a constant format string (clang checks it).
    out << (i + 1 < singles.size() ? absl::StrFormat("  %-15s", singles[i].name)
                                   : absl::StrFormat("  %s", singles[i].name));
  }
  out << "\n";
  for (size_t r = 0; r < regions.size(); ++r) {
    for (size_t vi = 0; vi < variants.size(); ++vi) {
      std::string line = absl::StrFormat("%-6s  %-10s", regions[r].region, variants[vi].name);
      for (const NamedQuirk& q : singles) {
        ASSIGN_OR_RETURN(
            Pair p, Savings(regions[r], jobs, options, q.OffAlone(), variants[vi].forecast_error));
        absl::StrAppend(&line, absl::StrFormat("  %-15s", FmtDelta(Minus(rows[r][vi].compat, p))));
      }
      out << absl::StripTrailingAsciiWhitespace(line) << "\n";
    }
  }

  if (options.job_seed_spread > 0) {
    out << absl::StrFormat(
        "\nSpread over job draws (job seeds 0..%d), mean +- sd of the savings in %%:\n",
        options.job_seed_spread - 1);
    out << absl::StrFormat("%-6s  %-10s  %-27s  %s\n", "region", "forecast", "stated", "compat");
    for (const CarbonSlots& carbon : regions) {
      for (const Variant& v : variants) {
        std::string cells[2];
        for (int m = 0; m < 2; ++m) {
          const Quirks quirks = m == 0 ? Quirks::Stated() : Quirks::Compat();
          double sum[2] = {0, 0}, sum_sq[2] = {0, 0};
          for (int seed = 0; seed < options.job_seed_spread; ++seed) {
            ASSIGN_OR_RETURN(const JobSets draw, MakeJobs(options, static_cast<uint64_t>(seed)));
            ASSIGN_OR_RETURN(Pair p, Savings(carbon, draw, options, quirks, v.forecast_error));
            sum[0] += p.noninterruptible;
            sum_sq[0] += p.noninterruptible * p.noninterruptible;
            sum[1] += p.interruptible;
            sum_sq[1] += p.interruptible * p.interruptible;
          }
          const double n = options.job_seed_spread;
          double mean[2], sd[2];
          for (int k = 0; k < 2; ++k) {
            mean[k] = sum[k] / n;
            sd[k] = n > 1 ? std::sqrt(std::max(0.0, (sum_sq[k] - n * mean[k] * mean[k]) / (n - 1)))
                          : 0.0;
          }
          cells[m] = absl::StrFormat("%5.2f+-%.2f / %5.2f+-%.2f", mean[0], sd[0], mean[1], sd[1]);
        }
        out << absl::StrFormat("%-6s  %-10s  %-27s  %s\n", carbon.region, v.name, cells[0],
                               cells[1]);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<Region>& PaperRegions() {
  static const std::vector<Region>* regions =
      new std::vector<Region>{{"DE", "ger"}, {"GB", "gb"}, {"FR", "fr"}};
  return *regions;
}

std::optional<Published> PublishedFigure(const std::string& region, double forecast_error) {
  // Wiesner et al., "Let's Wait Awhile", Middleware 2021, ML-training
  // scenario with the next-workday deadline and 5% forecast error.
  if (forecast_error == 0.05) {
    if (region == "DE") return Published{5.91, 7.93, false};
    if (region == "GB") return Published{6.56, 9.03, false};
  }
  // Perfect forecast: the authors' evaluation.ipynb prints
  // (perfect / 5%-error - 1) x 100 for next-workday: DE 0.2328 (non-int.),
  // 2.8929 (int.); GB 0.2218, 2.1849. Applied to the paper's 5% figures.
  if (forecast_error == 0) {
    if (region == "DE") return Published{5.91 * 1.0023276, 7.93 * 1.0289294, true};
    if (region == "GB") return Published{6.56 * 1.0022181, 9.03 * 1.0218494, true};
  }
  return std::nullopt;
}

absl::StatusOr<CarbonSlots> LoadRegion(const std::string& data_dir, const std::string& code) {
  for (const Region& region : PaperRegions()) {
    if (region.code == code) {
      return LoadLwaCarbon(absl::StrCat(data_dir, "/lwa2020_", region.file_stem, "_ci.csv"), code,
                           absl::CivilMinute(2020, 1, 1, 0, 0));
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("regions: unknown region '", code, "' (use DE, GB or FR)"));
}

absl::Status PrintReport(const ReportOptions& options, std::ostream& out) {
  if (options.noise_seeds < 1) return absl::InvalidArgumentError("seeds: must be >= 1");
  if (options.forecast_error < 0) return absl::InvalidArgumentError("error: must be >= 0");
  const absl::Time begin = absl::Now();
  std::vector<CarbonSlots> regions;
  for (const std::string& code : options.regions) {
    absl::StatusOr<CarbonSlots> carbon = LoadRegion(options.data_dir, code);
    if (absl::IsNotFound(carbon.status())) {
      return absl::NotFoundError(absl::StrCat(
          carbon.status().message(), " (run from the repository root or pass --data_dir)"));
    }
    if (!carbon.ok()) return carbon.status();
    regions.push_back(*std::move(carbon));
  }
  const absl::Time loaded = absl::Now();
  const JobRules rules;
  ASSIGN_OR_RETURN(const JobSets jobs, MakeJobs(options, options.job_seed));
  if (!options.dump_jobs.empty()) {
    RETURN_IF_ERROR(
        WriteJobsCsv(jobs.For(options.kind == ReportOptions::Kind::kCompat ? Quirks::Compat()
                                                                           : Quirks::Stated()),
                     options.dump_jobs));
  }

  out << "Let's Wait Awhile (Wiesner et al., Middleware 2021), ML-training scenario\n";
  if (options.jobs_csv.empty()) {
    out << absl::StrFormat(
        "jobs: %d on %d Mon-Fri (job seed %d; stated: our generator, compat: numpy's stream),\n"
        "      start 09:00-16:30, 4-89.5 h, 2036.6 W each\n",
        rules.count, rules.year, options.job_seed);
  } else {
    out << absl::StrFormat("jobs: %d from %s, 2036.6 W each\n", jobs.ours.size(), options.jobs_csv);
  }
  out << absl::StrFormat(
      "forecast: actual + N(0, %g%% of the series mean) per 30-min slot, noise seeds %d..%d "
      "averaged; and perfect\n",
      100 * options.forecast_error, options.noise_seed_base,
      options.noise_seed_base + options.noise_seeds - 1);
  for (const CarbonSlots& carbon : regions) {
    out << absl::StrFormat("carbon %s: %s .. %s, %d slots, mean %.1f gCO2e/kWh\n", carbon.region,
                           absl::FormatCivilTime(carbon.start),
                           absl::FormatCivilTime(carbon.TimeOf(carbon.size() - 1)), carbon.size(),
                           carbon.Mean());
  }
  out << "\n";
  if (options.kind == ReportOptions::Kind::kFull) {
    RETURN_IF_ERROR(PrintFull(options, regions, jobs, out));
  } else {
    RETURN_IF_ERROR(PrintModeOnly(options, regions, jobs, out));
  }
  const absl::Time end = absl::Now();
  out << absl::StrFormat("\nrun time: %.2f s (loading %.2f s, experiments %.2f s)\n",
                         absl::ToDoubleSeconds(end - begin), absl::ToDoubleSeconds(loaded - begin),
                         absl::ToDoubleSeconds(end - loaded));
  return absl::OkStatus();
}

}  // namespace greenlight::sim::lwa
