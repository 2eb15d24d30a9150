#include "services/scheduler/accountant.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"
#include "common/units.h"
#include "services/budget/period.h"

namespace greenlight::scheduler {

RunRate RateOf(const greenlight::v1::Job& job, const providers::Pool& pool) {
  RunRate r;
  r.price_micros_per_node_hour = job.placement().spot() && pool.spot_price_micros_per_node_hour > 0
                                     ? pool.spot_price_micros_per_node_hour
                                     : pool.price_micros_per_node_hour;
  // Sub-node jobs pay for their share of the node.
  r.nodes_paid = job.spec().gpus() < pool.gpus_per_node
                     ? static_cast<double>(job.spec().gpus()) / pool.gpus_per_node
                     : std::max(1, job.placement().nodes());
  r.watts = job.spec().gpus() * pool.gpu_power_w * pool.pue;
  return r;
}

std::vector<RunWindow> RunWindowsOf(const greenlight::v1::Job& job) {
  std::vector<RunWindow> windows;
  if (job.placement().slots_size() > 1) {
    for (const auto& sl : job.placement().slots())
      windows.push_back({FromProto(sl.start()), FromProto(sl.end())});
    // Work the slots could not hold (the job started after its first slot,
    // e.g. it waited for capacity) runs right after the last one: without
    // this the job would never finish and would hold its nodes forever.
    windows.push_back({windows.back().end, absl::InfiniteFuture()});
  } else {
    windows.push_back({absl::InfinitePast(), absl::InfiniteFuture()});
  }
  return windows;
}

namespace {

absl::Time NextHour(absl::Time t) {
  return absl::FromUnixSeconds((absl::ToUnixSeconds(t) / 3600 + 1) * 3600);
}

// The end of the segment that starts at t (hour, month or window boundary),
// and whether t is inside a run window.
absl::Time SegmentEnd(absl::Time t, absl::Time to, const std::vector<RunWindow>& windows,
                      bool* inside) {
  absl::Time next = std::min({to, NextHour(t), budget::PeriodEnd(t)});
  *inside = false;
  for (const auto& w : windows) {
    if (t >= w.start && t < w.end) {
      *inside = true;
      return std::min(next, w.end);
    }
    if (w.start > t) next = std::min(next, w.start);
  }
  return next;
}

}  // namespace

Charges ChargesOver(const RunRate& rate, const std::vector<RunWindow>& windows, absl::Time from,
                    absl::Time to, absl::Duration remaining, const IntensityAt& intensity) {
  Charges out;
  out.computed = absl::ZeroDuration();
  absl::Time t = from;
  while (t < to && out.computed < remaining) {
    bool inside = false;
    absl::Time next = SegmentEnd(t, to, windows, &inside);
    if (inside) {
      absl::Duration seg = std::min(next - t, remaining - out.computed);
      next = t + seg;
      double h = absl::ToDoubleHours(seg);
      double energy = rate.watts * h;
      std::string period = budget::PeriodOf(t);
      if (out.periods.empty() || out.periods.back().period != period) {
        out.periods.emplace_back();
        out.periods.back().period = std::move(period);
      }
      PeriodCharge& c = out.periods.back();
      c.at = t;
      c.cost_micros += static_cast<double>(rate.price_micros_per_node_hour) * rate.nodes_paid * h;
      c.energy_wh += energy;
      c.carbon_mg += MgFromWhAndIntensity(energy, intensity(t));
      out.computed += seg;
    }
    if (next <= t) break;
    t = next;
  }
  out.until = t;
  return out;
}

Charges MeasuredChargesOver(const RunRate& rate, absl::Time from, absl::Time to,
                            double gpu_energy_wh, double pue, const IntensityAt& intensity) {
  RunRate timed = rate;
  timed.watts = 0;  // energy is what was measured, not modelled
  const std::vector<RunWindow> always = {{absl::InfinitePast(), absl::InfiniteFuture()}};
  Charges out =
      ChargesOver(timed, always, from, std::max(from, to), absl::InfiniteDuration(), intensity);
  const double energy = gpu_energy_wh * pue;
  if (to <= from) {
    PeriodCharge c;
    c.period = budget::PeriodOf(from);
    c.at = from;
    c.energy_wh = energy;
    c.carbon_mg = MgFromWhAndIntensity(energy, intensity(from));
    out.periods = {c};
    out.until = from;
    return out;
  }
  // Walk the same hour and month cuts again, spreading the energy by time.
  const double total_s = absl::ToDoubleSeconds(to - from);
  size_t period = 0;
  for (absl::Time t = from; t < to;) {
    bool inside = false;
    absl::Time next = SegmentEnd(t, to, always, &inside);
    while (period + 1 < out.periods.size() && out.periods[period].period != budget::PeriodOf(t))
      ++period;
    const double share = energy * absl::ToDoubleSeconds(next - t) / total_s;
    out.periods[period].energy_wh += share;
    out.periods[period].carbon_mg += MgFromWhAndIntensity(share, intensity(t));
    t = next;
  }
  return out;
}

CapCut CutAtJobCaps(const greenlight::v1::JobSpec& spec, int64_t accrued_cost_micros,
                    int64_t accrued_carbon_mg, int64_t cost_micros, int64_t carbon_mg) {
  CapCut cut;
  if (spec.max_cost_micros() > 0 && cost_micros > 0 &&
      accrued_cost_micros + cost_micros >= spec.max_cost_micros()) {
    cut.fraction =
        std::min(cut.fraction,
                 static_cast<double>(spec.max_cost_micros() - accrued_cost_micros) / cost_micros);
    cut.stop = true;
    cut.reason = absl::StrCat("accrued cost reached the job cap ",
                              Money::FromMicros(spec.max_cost_micros()).ToString());
  }
  if (spec.max_carbon_mg() > 0 && carbon_mg > 0 &&
      accrued_carbon_mg + carbon_mg >= spec.max_carbon_mg()) {
    double fc = static_cast<double>(spec.max_carbon_mg() - accrued_carbon_mg) / carbon_mg;
    if (fc < cut.fraction || !cut.stop)
      cut.reason = absl::StrCat("accrued carbon reached the job cap ",
                                Carbon::FromMg(spec.max_carbon_mg()).ToString());
    cut.fraction = std::min(cut.fraction, fc);
    cut.stop = true;
  }
  cut.fraction = std::clamp(cut.fraction, 0.0, 1.0);
  return cut;
}

}  // namespace greenlight::scheduler
