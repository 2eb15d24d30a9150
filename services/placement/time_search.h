// Start-time search over the slots of [earliest, deadline - runtime] with the
// zone's prefix sums (O(1) per slot), and the interruptible plan of a
// checkpointable job over the lowest-carbon slots before its deadline
// (Wiesner et al., "Let's Wait Awhile", Middleware 2021).
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "services/placement/capacity_calendar.h"
#include "services/placement/engine.h"
#include "services/placement/snapshot.h"
#include "services/providers/carbon_series.h"

namespace greenlight::placement {

// The carbon intensity a pool sees: its zone's series, or a constant (the
// series' annual average when stale or empty, the snapshot default when the
// zone has no series). Constants are flagged as estimated.
class ZoneCarbon {
 public:
  static ZoneCarbon For(const Snapshot& snapshot, const std::string& zone);
  static ZoneCarbon Constant(double g_per_kwh) { return ZoneCarbon(nullptr, g_per_kwh); }

  // Integral of intensity over [from, to) in (gCO2e/kWh) x hours.
  double IntegralGkwhHours(absl::Time from, absl::Time to) const;
  // True when [from, to) uses an average rather than measured/forecast values.
  bool Estimated(absl::Time from, absl::Time to) const;
  const providers::CarbonSeries* series() const { return series_; }
  double constant() const { return constant_; }

 private:
  ZoneCarbon(const providers::CarbonSeries* series, double constant)
      : series_(series), constant_(constant) {}
  const providers::CarbonSeries* series_;
  double constant_;
};

// The job-level time frame of a search.
struct TimeFrame {
  absl::Time earliest;      // max(not_before, now)
  absl::Time latest_start;  // max(earliest, now + horizon)
  absl::Time deadline;
  absl::Duration slot = absl::Hours(1);
};

// A run of the job in time with the integral of intensity over it.
struct RunWindow {
  absl::Time start;
  absl::Time end;
  double gkwh_hours = 0;
  bool estimated = false;
  int runs = 1;             // contiguous pieces (1 = not split)
  std::vector<Slot> slots;  // split plans only, when asked for; contiguous runs leave it empty
};

// Per-decision search over one zone with a series. Built once per (job,
// zone), it keeps cumulative integrals over the job's time frame as plain
// doubles (prefix sums over the series steps, O(horizon + run) to build) and
// the slots ranked by mean intensity, so each query for a run length is
// O(slots) arithmetic: the engine asks once per distinct runtime, whatever the
// number of pools in the zone.
class ZonePlanner {
 public:
  // `zone.series()` must be non-null (constant zones need no search).
  ZonePlanner(const ZoneCarbon& zone, const TimeFrame& frame);

  // `blocked` (capacity_calendar.h): windows meeting it are skipped, except
  // the one starting at `earliest` when `earliest_exempt` (a sub-node job
  // packed onto a partly used node now needs no whole node).
  bool BestContiguous(absl::Duration run, RunWindow* out,
                      const std::vector<NsInterval>* blocked = nullptr,
                      bool earliest_exempt = false);
  RunWindow Asap(absl::Duration run);
  // `with_slots`: fill out->slots (only needed for the options returned).
  // Slots meeting `blocked` are not used.
  bool LowestCarbonSlots(absl::Duration run, bool with_slots, RunWindow* out,
                         const std::vector<NsInterval>* blocked = nullptr);
  // Integral of intensity over [a, b) (ns since the Unix epoch).
  double Integral(int64_t a_ns, int64_t b_ns);

 private:
  double Value(int64_t k) const;
  int64_t StepIndex(int64_t t_ns) const;
  double Cum(int64_t t_ns);  // integral from the frame's first step to t
  void CoverSteps(int64_t k);
  int64_t Boundary(int64_t i) const;  // slot grid: earliest, then epoch-aligned
  void BuildSegments(int64_t end_ns);
  // The steps of LowestCarbonSlots: fill taken_ (ns used of each segment of
  // [earliest, window_end), lowest mean first, skipping those meeting
  // `blocked`) until run_ns is covered; false when it cannot be. *full: the
  // whole segments in the window (taken_[full] is the partial last one);
  // *total: the integral over what was taken.
  bool TakeLowestSegments(int64_t run_ns, int64_t window_end,
                          const std::vector<NsInterval>* blocked, int64_t* full, double* total);
  // Merges the taken segments into runs of adjacent ones: out's start, end,
  // runs, estimated and (with `with_slots`) slots.
  void MergeTakenRuns(int64_t full, bool with_slots, RunWindow* out) const;
  bool Estimated(int64_t a_ns, int64_t b_ns) const;
  // Integral of every start candidate's window for a run length (index i =
  // Boundary(i), up to last_start), computed once per run length.
  const std::vector<double>& Windows(int64_t run_ns, int64_t last_start);

  const providers::CarbonSeries* series_;
  double average_;
  int64_t series_start_ns_, series_end_ns_, step_ns_;
  int64_t earliest_ns_, latest_start_ns_, deadline_ns_, slot_ns_, first_boundary_ns_;
  int64_t k_lo_;
  std::vector<double> cum_;  // cum_[i] = integral from step k_lo_ to step k_lo_ + i
  // Whole slot segments [Boundary(i), Boundary(i + 1)) up to segments_end_ns_,
  // ranked by mean intensity (then time).
  int64_t segments_end_ns_ = 0;
  std::vector<double> seg_integral_;
  std::vector<int> seg_order_;
  std::vector<int64_t> taken_;                                 // scratch: ns used of each segment
  absl::flat_hash_map<int64_t, std::vector<double>> windows_;  // run_ns -> Windows()
};

// Start candidates: `earliest`, then each slot boundary (aligned to the Unix
// epoch) up to min(latest_start, deadline - run).
// Returns false when no start meets the deadline.
// Best contiguous window: the lowest integral, the earliest start among equal
// ones (relative tolerance 1e-9 so constant zones start at once).
bool BestContiguousWindow(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run,
                          RunWindow* out);
// The window starting at `earliest` (carbon-blind baseline).
RunWindow AsapWindow(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run);
// Interruptible plan: the lowest-carbon slots of [earliest, min(deadline,
// latest_start + run)) adding up to `run` (the last one used in part), merged
// into runs of adjacent slots. Returns false when the window is too short.
bool LowestCarbonSlots(const ZoneCarbon& zone, const TimeFrame& frame, absl::Duration run,
                       RunWindow* out);

// Smallest slot boundary (multiple of `slot` since the Unix epoch) > t.
absl::Time NextSlotBoundary(absl::Time t, absl::Duration slot);

}  // namespace greenlight::placement
