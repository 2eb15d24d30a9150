// The words of a placement decision: its one-line summary, why each
// alternative lost and the tally of rejected pools. Pure functions of what the
// search (engine.cc) found; they decide nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "services/placement/engine.h"
#include "services/placement/snapshot.h"

namespace greenlight::placement {

// Dollars with cents ("$12.50"); sub-cent amounts keep four decimals
// ("$0.0042") so that a real difference never prints as "$0.00".
std::string UsdText(int64_t micros);
// Kilograms of CO2e with two decimals ("25.20 kg").
std::string KgText(int64_t mg);
// "2025-06-01 05:00 UTC".
std::string UtcText(absl::Time t);

// Why `alt` lost to `chosen` under `mode`: "costs $1.00 more, emits 2.00 kg
// less", "objective +$15.20: costs $10.00 less, emits 25.20 kg more", or the
// tie-break. When `alt` is the chosen pool and variant run another way, a
// prefix names that way: "split: ", "at once: " (it starts at `earliest`) or
// "contiguous: ".
std::string WhyNotText(Mode mode, const Option& alt, const Option& chosen, absl::Time earliest);

// "6 pools rejected: 3 gpu_type, 2 region, 1 capacity" in the order given;
// "" when no pool was rejected.
std::string RejectionText(const std::vector<std::pair<std::string, int>>& rejections);

// The cost and carbon of an option a failure's summary quotes.
struct QuotedCost {
  int64_t cost_micros = 0;
  int64_t carbon_mg = 0;
};

// Options that only failed limits, found by the search: what a summary of
// "no feasible placement" cites.
struct Shortfall {
  struct OverCaps {
    QuotedCost cheapest;  // the cheapest option failing only the job's caps
    QuotedCost greenest;  // the lowest-carbon one
  };
  std::optional<OverCaps> over_caps;
  std::optional<QuotedCost> over_team;  // the cheapest failing only the team's budget
};

// Even the cheapest option that only fails the caps is over the job's cost cap.
bool CostCapBinds(const JobRequest& job, const Shortfall& shortfall);
// Even the lowest-carbon one is over the job's carbon cap.
bool CarbonCapBinds(const JobRequest& job, const Shortfall& shortfall);

// The decision in one line. Feasible: the chosen option, the carbon-blind
// baseline it is measured against and the rejections. Not: the rejections,
// which cap or budget binds (from `job`, `team` and `shortfall`) and whether
// it may wait. Reads the decision's feasible, not_now, chosen, baseline,
// saving and rejection fields.
std::string SummaryText(const Decision& d, const JobRequest& job, const TeamView& team,
                        const Shortfall& shortfall);

}  // namespace greenlight::placement
