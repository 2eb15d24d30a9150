// Tests of the Let's Wait Awhile reproduction: the deadline rule, the job
// generators, the policies on hand-made series, and a run on the shipped data.
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/sim/lwa_experiment.h"
#include "services/sim/lwa_numpy_rng.h"
#include "services/sim/lwa_policy.h"
#include "services/sim/lwa_report.h"
#include "services/sim/lwa_rng.h"
#include "services/sim/lwa_scenario.h"

namespace greenlight::sim::lwa {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::CivilMinute At(int y, int mo, int d, int h, int mi) {
  return absl::CivilMinute(y, mo, d, h, mi);
}

std::string RepoPath(const std::string& relative) {
  const char* root = std::getenv("GREENLIGHT_ROOT");
  return std::string(root != nullptr ? root : ".") + "/" + relative;
}

TEST(NextWorkdayDeadline, MovesEveningsNightsAndWeekendsToNineOnTheNextWorkday) {
  struct Case {
    std::string name;
    absl::CivilMinute finish;
    absl::CivilMinute stated;
    absl::CivilMinute compat;
  };
  // 2020-01-03 is a Friday.
  for (const Case& c : std::vector<Case>{
           {"Friday 18:00", At(2020, 1, 3, 18, 0), At(2020, 1, 6, 9, 0), At(2020, 1, 4, 9, 0)},
           {"Friday 17:30", At(2020, 1, 3, 17, 30), At(2020, 1, 6, 9, 0), At(2020, 1, 4, 9, 0)},
           {"Friday 23:30", At(2020, 1, 3, 23, 30), At(2020, 1, 6, 9, 0), At(2020, 1, 4, 9, 0)},
           {"Tuesday 12:00", At(2020, 1, 7, 12, 0), At(2020, 1, 7, 12, 0), At(2020, 1, 7, 12, 0)},
           {"Tuesday 07:00", At(2020, 1, 7, 7, 0), At(2020, 1, 7, 9, 0), At(2020, 1, 7, 9, 0)},
           {"Monday 00:00", At(2020, 1, 6, 0, 0), At(2020, 1, 6, 9, 0), At(2020, 1, 6, 9, 0)},
           {"Monday 09:00", At(2020, 1, 6, 9, 0), At(2020, 1, 6, 9, 0), At(2020, 1, 6, 9, 0)},
           {"Wednesday 17:00", At(2020, 1, 8, 17, 0), At(2020, 1, 8, 17, 0), At(2020, 1, 8, 17, 0)},
           {"Wednesday 17:30", At(2020, 1, 8, 17, 30), At(2020, 1, 9, 9, 0), At(2020, 1, 9, 9, 0)},
           {"Thursday 23:30", At(2020, 1, 9, 23, 30), At(2020, 1, 10, 9, 0), At(2020, 1, 10, 9, 0)},
           {"Friday 08:30", At(2020, 1, 10, 8, 30), At(2020, 1, 10, 9, 0), At(2020, 1, 10, 9, 0)},
           {"Friday 16:30", At(2020, 1, 10, 16, 30), At(2020, 1, 10, 16, 30),
            At(2020, 1, 10, 16, 30)},
           {"Saturday 10:00", At(2020, 1, 11, 10, 0), At(2020, 1, 13, 9, 0), At(2020, 1, 13, 9, 0)},
           {"Sunday 08:00", At(2020, 1, 12, 8, 0), At(2020, 1, 13, 9, 0), At(2020, 1, 13, 9, 0)},
           {"Sunday 23:30", At(2020, 1, 12, 23, 30), At(2020, 1, 13, 9, 0), At(2020, 1, 13, 9, 0)},
           // Holidays are ignored: New Year's Day 2021 is a workday here.
           {"Thursday 2020-12-31 18:00", At(2020, 12, 31, 18, 0), At(2021, 1, 1, 9, 0),
            At(2021, 1, 1, 9, 0)},
       }) {
    EXPECT_EQ(NextWorkdayDeadline(c.finish, /*friday_evening_to_saturday=*/false), c.stated)
        << c.name;
    EXPECT_EQ(NextWorkdayDeadline(c.finish, /*friday_evening_to_saturday=*/true), c.compat)
        << c.name;
  }
}

// Both generators must follow the paper's rules; only the draw differs.
void ExpectJobsFollowTheRules(const std::vector<LwaJob>& jobs, const std::string& name) {
  const JobRules rules;
  ASSERT_EQ(jobs.size(), static_cast<size_t>(rules.count)) << name;
  std::map<absl::CivilDay, int> per_day;
  std::map<int, int> per_start;
  std::set<int> durations;
  double duration_sum = 0;
  for (const LwaJob& job : jobs) {
    const absl::CivilDay day(job.submit);
    ASSERT_EQ(day.year(), 2020) << name;
    const absl::Weekday w = absl::GetWeekday(day);
    ASSERT_NE(w, absl::Weekday::saturday) << name;
    ASSERT_NE(w, absl::Weekday::sunday) << name;
    const int minute = job.submit.hour() * 60 + job.submit.minute();
    ASSERT_GE(minute, 9 * 60) << name;
    ASSERT_LE(minute, 16 * 60 + 30) << name;
    ASSERT_EQ(minute % 30, 0) << name;
    ASSERT_GE(job.duration_slots, 8) << name;    // 4 h
    ASSERT_LE(job.duration_slots, 179) << name;  // 89.5 h
    ++per_day[day];
    ++per_start[minute];
    durations.insert(job.duration_slots);
    duration_sum += job.duration_slots;
  }
  for (size_t i = 1; i < jobs.size(); ++i) {
    ASSERT_LE(jobs[i - 1].submit, jobs[i].submit) << name << ": sorted by submit time";
  }
  // All 16 start times and (nearly) all 172 durations occur, each about
  // equally often: 3387/16 = 211.7 per start time, sd 14.
  EXPECT_EQ(per_start.size(), 16u) << name;
  for (const auto& [minute, count] : per_start) {
    EXPECT_GT(count, 141) << name << " start " << minute;
    EXPECT_LT(count, 282) << name << " start " << minute;
  }
  EXPECT_GE(durations.size(), 165u) << name;
  EXPECT_TRUE(durations.count(8) && durations.count(179)) << name;
  EXPECT_NEAR(duration_sum / jobs.size(), 93.5, 2.0) << name;
  // Multinomial over the 262 workdays of 2020: mean 12.93 a day, variance
  // n p (1-p) = 12.88.
  double mean = 0, var = 0;
  const double days = 262;
  for (const auto& [day, count] : per_day) mean += count;
  mean /= days;
  for (const auto& [day, count] : per_day) var += (count - mean) * (count - mean);
  var += (days - per_day.size()) * mean * mean;  // workdays without jobs
  var /= days - 1;
  EXPECT_NEAR(mean, 3387.0 / 262, 1e-9) << name;
  EXPECT_GT(var, 8.0) << name;
  EXPECT_LT(var, 18.0) << name;
}

TEST(GenerateJobs, FollowsThePapersRules) {
  for (uint64_t seed : {0, 1, 2}) {
    ExpectJobsFollowTheRules(GenerateJobs(JobRules{}, seed), "ours, seed " + std::to_string(seed));
    ExpectJobsFollowTheRules(GenerateJobsLikeAuthors(JobRules{}, static_cast<uint32_t>(seed)),
                             "numpy, seed " + std::to_string(seed));
  }
}

TEST(GenerateJobs, IsDeterministicInTheSeed) {
  const std::vector<LwaJob> a = GenerateJobs(JobRules{}, 7);
  const std::vector<LwaJob> b = GenerateJobs(JobRules{}, 7);
  const std::vector<LwaJob> c = GenerateJobs(JobRules{}, 8);
  ASSERT_EQ(a.size(), b.size());
  bool same = true, differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    same &= a[i].submit == b[i].submit && a[i].duration_slots == b[i].duration_slots;
    differs |= a[i].submit != c[i].submit || a[i].duration_slots != c[i].duration_slots;
  }
  EXPECT_TRUE(same);
  EXPECT_TRUE(differs);
}

// Reference values printed by numpy 1.24 (numpy.random.default_rng).
TEST(NumpyRng, MatchesNumpysDefaultRng) {
  NumpyRng raw(0);
  EXPECT_EQ(raw.NextUint64(), 0xa30febcfd9c2825fULL);
  EXPECT_EQ(raw.NextUint64(), 0x4510bdf882d9d721ULL);
  EXPECT_EQ(raw.NextUint64(), 0x0a7d3da94ecde8b8ULL);

  NumpyRng doubles(0);  // default_rng(0).random(2)
  EXPECT_EQ(doubles.NextDouble(), 0.6369616873214543);
  EXPECT_EQ(doubles.NextDouble(), 0.2697867137638703);

  NumpyRng binomial(5);  // default_rng(5).binomial(20, 0.3, 8)
  std::vector<int64_t> draws;
  for (int i = 0; i < 8; ++i) draws.push_back(binomial.Binomial(20, 0.3));
  EXPECT_THAT(draws, ElementsAre(8, 8, 6, 5, 3, 5, 5, 3));
  NumpyRng binomial_high(5);  // default_rng(5).binomial(40, 0.9, 8): p > 0.5
  draws.clear();
  for (int i = 0; i < 8; ++i) draws.push_back(binomial_high.Binomial(40, 0.9));
  EXPECT_THAT(draws, ElementsAre(34, 34, 36, 37, 39, 37, 37, 39));

  NumpyRng multinomial(0);  // default_rng(0).multinomial(50, [0.2] * 5)
  EXPECT_THAT(multinomial.Multinomial(50, std::vector<double>(5, 0.2)),
              ElementsAre(11, 8, 6, 7, 18));

  // default_rng(3).integers(0, 16, size=9), then .integers(0, 172, size=5):
  // the second call starts on the high half buffered by the first.
  NumpyRng bounded(3);
  draws.clear();
  for (int i = 0; i < 9; ++i) draws.push_back(bounded.BoundedUint32(15));
  EXPECT_THAT(draws, ElementsAre(12, 1, 2, 3, 2, 12, 13, 9, 0));
  draws.clear();
  for (int i = 0; i < 5; ++i) draws.push_back(bounded.BoundedUint32(171));
  EXPECT_THAT(draws, ElementsAre(16, 57, 74, 106, 82));
}

// The job list numpy draws with the authors' procedure and seed 0 (first and
// last jobs, January's count, the duration total).
TEST(GenerateJobsLikeAuthors, DrawsTheAuthorsJobsForSeedZero) {
  const std::vector<LwaJob> jobs = GenerateJobsLikeAuthors(JobRules{}, 0);
  ASSERT_EQ(jobs.size(), 3387u);
  EXPECT_EQ(jobs[0].submit, At(2020, 1, 1, 9, 30));
  EXPECT_EQ(jobs[0].duration_slots, 106);
  EXPECT_EQ(jobs[1].submit, At(2020, 1, 1, 10, 30));
  EXPECT_EQ(jobs[1].duration_slots, 101);
  EXPECT_EQ(jobs[2].duration_slots, 69);
  EXPECT_EQ(jobs.back().submit, At(2020, 12, 31, 15, 30));
  EXPECT_EQ(jobs.back().duration_slots, 40);
  int january = 0;
  int64_t total = 0;
  for (const LwaJob& job : jobs) {
    january += job.submit.month() == 1;
    total += job.duration_slots;
  }
  EXPECT_EQ(january, 285);
  EXPECT_EQ(total, 311252);
}

TEST(LowestMeanStart, PicksTheCleanestContiguousWindowEarliestOnTies) {
  const std::vector<double> series = {5, 4, 1, 1, 9, 2, 2, 8};
  const PrefixSums sums(series);
  struct Case {
    std::string name;
    SlotWindow window;
    int duration;
    int64_t start;
  };
  for (const Case& c : std::vector<Case>{
           {"two slots anywhere", {0, 8}, 2, 2},
           {"three slots anywhere", {0, 8}, 3, 1},
           {"late window", {3, 6}, 2, 3},
           {"window exactly the job", {4, 7}, 3, 4},
           {"whole series", {0, 8}, 8, 0},
       }) {
    EXPECT_EQ(LowestMeanStart(sums, c.window, c.duration), c.start) << c.name;
  }
  const std::vector<double> flat(6, 1.0);
  EXPECT_EQ(LowestMeanStart(PrefixSums(flat), {1, 6}, 2), 1) << "ties go to the earliest";
}

TEST(LowestSlots, PicksTheCleanestSlotsAndOptionallyAllTies) {
  const std::vector<double> series = {5, 4, 1, 1, 9, 2, 2, 8};
  EXPECT_THAT(LowestSlots(series, {0, 8}, 3, false), ElementsAre(2, 3, 5));
  EXPECT_THAT(LowestSlots(series, {0, 8}, 3, true), ElementsAre(2, 3, 5, 6));
  EXPECT_THAT(LowestSlots(series, {4, 8}, 2, false), ElementsAre(5, 6));
  EXPECT_THAT(LowestSlots(series, {0, 2}, 2, false), ElementsAre(0, 1));
  EXPECT_THAT(LowestSlots(series, {0, 8}, 1, true), ElementsAre(2, 3));
}

// A year of slots at one value from 2020-01-01.
CarbonSlots Constant(double value) {
  CarbonSlots carbon;
  carbon.region = "flat";
  carbon.start = At(2020, 1, 1, 0, 0);
  carbon.values.assign(48 * 380, value);
  return carbon;
}

TEST(RunExperiment, SavesNothingOnAConstantSeries) {
  const CarbonSlots carbon = Constant(300);
  const std::vector<LwaJob> jobs = GenerateJobs(JobRules{}, 0);
  for (double error : {0.0, 0.05}) {
    ExperimentOptions options;
    options.forecast_error = error;
    options.noise_seeds = 2;
    Quirks no_ties = Quirks::Compat();
    no_ties.interruptible_takes_ties = false;
    for (const Quirks& quirks : {Quirks::Stated(), no_ties}) {
      options.quirks = quirks;
      absl::StatusOr<ExperimentResult> r = RunExperiment(carbon, jobs, options);
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_GT(r->baseline_kg, 0);
      EXPECT_EQ(r->SavingsNonInterruptible(), 0.0) << "error " << error;
      EXPECT_EQ(r->SavingsInterruptible(), 0.0) << "error " << error;
      EXPECT_EQ(r->interruptible_extra_slots, 0.0);
    }
  }
}

TEST(RunExperiment, TakingTiesRunsJobsLongerOnAFlatPerfectForecast) {
  ExperimentOptions options;
  options.forecast_error = 0;
  options.quirks.interruptible_takes_ties = true;
  absl::StatusOr<ExperimentResult> r =
      RunExperiment(Constant(300), GenerateJobs(JobRules{}, 0), options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->interruptible_extra_slots, 0);
  EXPECT_LT(r->SavingsInterruptible(), 0.0);
}

// One job on Tuesday 2020-01-07 from 09:00 for 1 h: its deadline is its own
// finish (10:00), so only the authors' extra slot lets it move.
TEST(RunExperiment, OnlyTheExtraSlotLetsAJobFinishAfterItsDeadline) {
  CarbonSlots carbon = Constant(100);
  const int64_t nine = carbon.SlotOf(At(2020, 1, 7, 9, 0));
  carbon.values[nine] = 400;     // 09:00-09:30 is dirty
  carbon.values[nine + 2] = 10;  // 10:00-10:30 is clean
  const std::vector<LwaJob> jobs = {{At(2020, 1, 7, 9, 0), 2}};
  ExperimentOptions options;
  options.forecast_error = 0;
  absl::StatusOr<ExperimentResult> stated = RunExperiment(carbon, jobs, options);
  ASSERT_TRUE(stated.ok()) << stated.status();
  EXPECT_EQ(stated->SavingsNonInterruptible(), 0.0);
  EXPECT_EQ(stated->SavingsInterruptible(), 0.0);

  options.quirks.one_slot_past_deadline = true;
  absl::StatusOr<ExperimentResult> late = RunExperiment(carbon, jobs, options);
  ASSERT_TRUE(late.ok()) << late.status();
  // Run-at-once 400 + 100; one slot later 100 + 10.
  EXPECT_NEAR(late->SavingsNonInterruptible(), 1.0 - 110.0 / 500.0, 1e-12);
  EXPECT_NEAR(late->SavingsInterruptible(), 1.0 - 110.0 / 500.0, 1e-12);

  // The authors' baseline may take the same half-hour delay, which cancels it.
  options.quirks.baseline_may_wait_one_slot = true;
  absl::StatusOr<ExperimentResult> both = RunExperiment(carbon, jobs, options);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_NEAR(both->SavingsNonInterruptible(), 0.0, 1e-12);
}

// A job finishing Friday 18:00 may wait until Monday 09:00 under the stated
// rule, but only until Saturday 09:00 in the authors' code.
TEST(RunExperiment, FridayEveningJobsWaitForMondayOnlyUnderTheStatedRule) {
  CarbonSlots carbon = Constant(100);
  // Friday 2020-01-03 14:00 for 4 h; Sunday 12:00-14:00 is clean.
  const int64_t sunday = carbon.SlotOf(At(2020, 1, 5, 12, 0));
  for (int i = 0; i < 8; ++i) carbon.values[sunday + i] = 10;
  const std::vector<LwaJob> jobs = {{At(2020, 1, 3, 14, 0), 8}};
  ExperimentOptions options;
  options.forecast_error = 0;
  absl::StatusOr<ExperimentResult> stated = RunExperiment(carbon, jobs, options);
  ASSERT_TRUE(stated.ok()) << stated.status();
  EXPECT_NEAR(stated->SavingsNonInterruptible(), 0.9, 1e-12);
  options.quirks.friday_evening_to_saturday = true;
  absl::StatusOr<ExperimentResult> compat = RunExperiment(carbon, jobs, options);
  ASSERT_TRUE(compat.ok()) << compat.status();
  EXPECT_EQ(compat->SavingsNonInterruptible(), 0.0);
}

TEST(RunExperiment, RejectsJobsOutsideTheSeriesAndBadOptions) {
  const CarbonSlots carbon = Constant(100);
  ExperimentOptions options;
  absl::StatusOr<ExperimentResult> r =
      RunExperiment(carbon, {{At(2019, 12, 31, 9, 0), 8}}, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("does not fit"));
  r = RunExperiment(carbon, {{At(2021, 1, 14, 9, 0), 179}}, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = RunExperiment(carbon, {}, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  options.forecast_error = -0.1;
  r = RunExperiment(carbon, {{At(2020, 1, 7, 9, 0), 8}}, options);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("forecast_error"));
}

TEST(NoisyForecast, HasTheRequestedSpreadAndDependsOnTheSeed) {
  const std::vector<double> actual(20000, 200.0);
  const std::vector<double> a = NoisyForecast(actual, 10.0, 0);
  const std::vector<double> b = NoisyForecast(actual, 10.0, 1);
  double mean = 0, var = 0;
  for (double v : a) mean += v;
  mean /= a.size();
  for (double v : a) var += (v - mean) * (v - mean);
  var /= a.size() - 1;
  EXPECT_NEAR(mean, 200.0, 0.3);           // se 0.07
  EXPECT_NEAR(std::sqrt(var), 10.0, 0.2);  // se 0.05
  EXPECT_NE(a, b);
  EXPECT_EQ(a, NoisyForecast(actual, 10.0, 0));
}

class LoadLwaCarbonTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& text) {
    const std::string path = ::testing::TempDir() + "/lwa_carbon_test.csv";
    std::ofstream(path) << text;
    return path;
  }
};

TEST_F(LoadLwaCarbonTest, KeepsHalfHourRowsFromTheStart) {
  const std::string path = Write(
      "Time,Carbon Intensity\n"
      "2019-12-31 23:30:00,1\n"
      "2020-01-01 00:00:00,10\n"
      "2020-01-01 00:15:00,11\n"
      "2020-01-01 00:30:00,20\n"
      "2020-01-01 00:45:00,21\n"
      "2020-01-01 01:00:00,30\n");
  absl::StatusOr<CarbonSlots> carbon = LoadLwaCarbon(path, "XX", At(2020, 1, 1, 0, 0));
  ASSERT_TRUE(carbon.ok()) << carbon.status();
  EXPECT_EQ(carbon->start, At(2020, 1, 1, 0, 0));
  EXPECT_THAT(carbon->values, ElementsAre(10, 20, 30));
  EXPECT_EQ(carbon->SlotOf(At(2020, 1, 1, 0, 59)), 1);
  EXPECT_EQ(carbon->SlotOf(At(2019, 12, 31, 23, 45)), -1);
  EXPECT_DOUBLE_EQ(carbon->Mean(), 20.0);
}

TEST_F(LoadLwaCarbonTest, RejectsGapsAndBadTimesWithTheLine) {
  absl::StatusOr<CarbonSlots> gap = LoadLwaCarbon(Write("Time,Carbon Intensity\n"
                                                        "2020-01-01 00:00:00,10\n"
                                                        "2020-01-01 01:00:00,30\n"),
                                                  "XX", At(2020, 1, 1, 0, 0));
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(gap.status().message()), HasSubstr(":3:"));
  EXPECT_THAT(std::string(gap.status().message()), HasSubstr("gap"));
  absl::StatusOr<CarbonSlots> bad = LoadLwaCarbon(
      Write("Time,Carbon Intensity\n2020-13-01 00:00:00,10\n"), "XX", At(2020, 1, 1, 0, 0));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("expected a time"));
}

TEST(JobsCsv, RoundTrips) {
  const std::string path = ::testing::TempDir() + "/lwa_jobs_test.csv";
  const std::vector<LwaJob> jobs = {{At(2020, 3, 2, 9, 30), 8}, {At(2020, 3, 3, 16, 30), 179}};
  ASSERT_TRUE(WriteJobsCsv(jobs, path).ok());
  absl::StatusOr<std::vector<LwaJob>> back = LoadJobsCsv(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[1].submit, jobs[1].submit);
  EXPECT_EQ((*back)[1].duration_slots, 179);
}

// The shipped 2020 German series: one region, one noise seed for the stated
// mode; the compatibility mode against the published figures (10 seeds).
TEST(ShippedData, StatedSavingsAreSaneAndCompatReproducesThePaperForGermany) {
  absl::StatusOr<CarbonSlots> de = LoadRegion(RepoPath("data/carbon"), "DE");
  ASSERT_TRUE(de.ok()) << de.status();
  ExperimentOptions options;
  options.noise_seeds = 1;
  absl::StatusOr<ExperimentResult> stated =
      RunExperiment(*de, GenerateJobs(JobRules{}, 0), options);
  ASSERT_TRUE(stated.ok()) << stated.status();
  EXPECT_GT(stated->SavingsNonInterruptible(), 0.03);
  EXPECT_LT(stated->SavingsNonInterruptible(), 0.12);
  EXPECT_GT(stated->SavingsInterruptible(), stated->SavingsNonInterruptible());
  EXPECT_LT(stated->SavingsInterruptible(), 0.15);

  options.noise_seeds = 10;
  options.quirks = Quirks::Compat();
  absl::StatusOr<ExperimentResult> compat =
      RunExperiment(*de, GenerateJobsLikeAuthors(JobRules{}, 0), options);
  ASSERT_TRUE(compat.ok()) << compat.status();
  const std::optional<Published> paper = PublishedFigure("DE", 0.05);
  ASSERT_TRUE(paper.has_value());
  EXPECT_NEAR(100 * compat->SavingsNonInterruptible(), paper->noninterruptible, 0.1);
  EXPECT_NEAR(100 * compat->SavingsInterruptible(), paper->interruptible, 0.1);
}

}  // namespace
}  // namespace greenlight::sim::lwa
