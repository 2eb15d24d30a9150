// The accountant: what a running job costs over an interval, split by budget
// period (UTC month) and cut at every hour, so that each hour pays its own
// grid intensity and each month its own part. Pure: no state, no ledger; the
// core applies the job's caps (CutAtJobCaps) and the team's budget (the
// ledger) to what this returns.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "greenlight/v1/types.pb.h"
#include "services/providers/pool.h"

namespace greenlight::scheduler {

// How fast a job spends on its pool.
struct RunRate {
  int64_t price_micros_per_node_hour = 0;  // spot price when it runs on spot
  double nodes_paid = 1;                   // a share of one node for sub-node jobs
  double watts = 0;                        // GPUs x power x PUE
};
RunRate RateOf(const greenlight::v1::Job& job, const providers::Pool& pool);

struct RunWindow {
  absl::Time start;
  absl::Time end;  // exclusive
};
// When the job may compute: its placement's slots followed by an open
// window for work the slots could not hold (a split job that started late),
// or all time for a contiguous run.
std::vector<RunWindow> RunWindowsOf(const greenlight::v1::Job& job);

// Amounts in double, rounded by the caller when they go to the ledger.
struct PeriodCharge {
  std::string period;  // "2026-11"
  absl::Time at;       // the last segment charged in the period
  double cost_micros = 0;
  double carbon_mg = 0;
  double energy_wh = 0;
};
struct Charges {
  std::vector<PeriodCharge> periods;  // in period order
  absl::Duration computed;            // work done, at most `remaining`
  absl::Time until;                   // charged up to here
};
// Grid intensity (g/kWh) at an instant of the job's zone.
using IntensityAt = std::function<double(absl::Time)>;

// The charges of [from, to) for a job with `remaining` work left.
Charges ChargesOver(const RunRate& rate, const std::vector<RunWindow>& windows, absl::Time from,
                    absl::Time to, absl::Duration remaining, const IntensityAt& intensity);

// The charges of [from, to) for a job on a node agent that measured
// `gpu_energy_wh` over it: cost on the wall time as ChargesOver, energy =
// the measured energy x `pue` spread evenly over the interval, carbon = each
// hour's share x that hour's intensity. An empty interval (to <= from) puts
// all the energy at `from` with no cost.
Charges MeasuredChargesOver(const RunRate& rate, absl::Time from, absl::Time to,
                            double gpu_energy_wh, double pue, const IntensityAt& intensity);

// How much of a charge the job's own caps let through: `fraction` in [0, 1],
// `stop` when a cap is reached, with the reason.
struct CapCut {
  double fraction = 1.0;
  bool stop = false;
  std::string reason;
};
CapCut CutAtJobCaps(const greenlight::v1::JobSpec& spec, int64_t accrued_cost_micros,
                    int64_t accrued_carbon_mg, int64_t cost_micros, int64_t carbon_mg);

}  // namespace greenlight::scheduler
