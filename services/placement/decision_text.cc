// The words of a placement decision (see decision_text.h): summary, why-not
// text and the rejection tally. The strings are pinned by the golden tests.
#include "services/placement/decision_text.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace greenlight::placement {

std::string UsdText(int64_t micros) {
  if (micros != 0 && micros > -10'000 && micros < 10'000) {
    return absl::StrFormat("$%.4f", micros / 1e6);
  }
  return absl::StrFormat("$%.2f", micros / 1e6);
}

std::string KgText(int64_t mg) { return absl::StrFormat("%.2f kg", mg / 1e6); }

std::string UtcText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M UTC", t, absl::UTCTimeZone());
}

namespace {

// "$1.00 more" / "$1.00 less" for a signed difference.
std::string SignedUsd(int64_t micros) {
  return micros >= 0 ? absl::StrCat(UsdText(micros), " more")
                     : absl::StrCat(UsdText(-micros), " less");
}

std::string SignedKg(int64_t mg) {
  return mg >= 0 ? absl::StrCat(KgText(mg), " more") : absl::StrCat(KgText(-mg), " less");
}

// The mode's first key that `alt` loses on, with the others that differ;
// "" when it only loses on the tie-breaks.
std::string LosingMargin(Mode mode, int64_t dc, int64_t dg, int64_t dobj) {
  std::string why;
  switch (mode) {
    case Mode::kCheapest:
      if (dc > 0) {
        why = absl::StrCat("costs ", UsdText(dc), " more");
        if (dg < 0) absl::StrAppend(&why, ", emits ", KgText(-dg), " less");
      } else if (dg > 0) {
        why = absl::StrCat("same cost, emits ", KgText(dg), " more");
      }
      break;
    case Mode::kGreenest:
      if (dg > 0) {
        why = absl::StrCat("emits ", KgText(dg), " more");
        if (dc < 0) absl::StrAppend(&why, ", costs ", UsdText(-dc), " less");
      } else if (dc > 0) {
        why = absl::StrCat("same carbon, costs ", UsdText(dc), " more");
      }
      break;
    case Mode::kBalanced:
      if (dobj > 0) {
        std::vector<std::string> parts;
        if (dc != 0) parts.push_back(absl::StrCat("costs ", SignedUsd(dc)));
        if (dg != 0) parts.push_back(absl::StrCat("emits ", SignedKg(dg)));
        why = absl::StrCat("objective +", UsdText(dobj), parts.empty() ? "" : ": ",
                           absl::StrJoin(parts, ", "));
      } else if (dg > 0) {
        why = absl::StrCat("same objective, emits ", KgText(dg), " more");
      } else if (dc > 0) {
        why = absl::StrCat("same objective and carbon, costs ", UsdText(dc), " more");
      }
      break;
  }
  return why;
}

std::string FeasibleSummary(const Decision& d, const std::string& rejections) {
  const Option& c = d.chosen;
  std::string s = absl::StrFormat(
      "%s: %d node%s%s, start %s for %.1f h%s: %s, %s CO2e (%.0f g/kWh%s)", c.pool_id, c.nodes,
      c.nodes == 1 ? "" : "s", c.spot ? " spot" : "", UtcText(c.start),
      absl::ToDoubleHours(c.runtime),
      c.split ? absl::StrFormat(" in %d runs", static_cast<int>(c.slots.size())) : "",
      UsdText(c.cost_micros), KgText(c.carbon_mg), c.mean_intensity,
      c.unknown_grid ? absl::StrCat(", ", c.carbon_basis)
                     : (c.carbon_estimated ? ", estimated" : ""));
  if (d.has_baseline) {
    absl::StrAppend(&s, "; carbon-blind baseline ", d.baseline.pool_id,
                    " at once: ", UsdText(d.baseline.cost_micros), ", ",
                    KgText(d.baseline.carbon_mg), " (avoids ", KgText(d.carbon_avoided_mg),
                    ", costs ", SignedUsd(-d.cost_saved_micros), ")");
  }
  if (!rejections.empty()) absl::StrAppend(&s, "; ", rejections);
  return s;
}

// Which of the job's caps rules out the options that fail only the caps.
void AppendCapsText(const JobRequest& job, const Shortfall& shortfall, std::string* s) {
  const Shortfall::OverCaps& over = *shortfall.over_caps;
  const bool cost_binding = CostCapBinds(job, shortfall);
  const bool carbon_binding = CarbonCapBinds(job, shortfall);
  if (cost_binding) {
    absl::StrAppend(s, "; cheapest feasible: ", UsdText(over.cheapest.cost_micros), " > cap ",
                    UsdText(job.max_cost_micros));
  }
  if (carbon_binding) {
    absl::StrAppend(s, "; lowest-carbon feasible: ", KgText(over.greenest.carbon_mg), " > cap ",
                    KgText(job.max_carbon_mg));
  }
  if (!cost_binding && !carbon_binding) {
    absl::StrAppend(s, "; no option meets both caps (", UsdText(job.max_cost_micros), ", ",
                    KgText(job.max_carbon_mg), "): cheapest ", UsdText(over.cheapest.cost_micros),
                    " / ", KgText(over.cheapest.carbon_mg), ", lowest-carbon ",
                    UsdText(over.greenest.cost_micros), " / ", KgText(over.greenest.carbon_mg));
  }
}

// Which of the team's budgets rules out the cheapest option that fails only it.
void AppendTeamText(const TeamView& team, const QuotedCost& over_team, std::string* s) {
  if (team.cost_headroom_micros >= 0 && over_team.cost_micros > team.cost_headroom_micros) {
    absl::StrAppend(s, "; team budget: cheapest needs ", UsdText(over_team.cost_micros), ", ",
                    UsdText(team.cost_headroom_micros), " left");
  } else {
    absl::StrAppend(s, "; team carbon budget: needs ", KgText(over_team.carbon_mg), ", ",
                    KgText(team.carbon_headroom_mg), " left");
  }
}

std::string InfeasibleSummary(const Decision& d, const std::string& rejections,
                              const JobRequest& job, const TeamView& team,
                              const Shortfall& shortfall) {
  std::string s = d.not_now ? "no placement now" : "no feasible placement";
  if (!rejections.empty()) absl::StrAppend(&s, ": ", rejections);
  if (shortfall.over_caps) AppendCapsText(job, shortfall, &s);
  if (shortfall.over_team) AppendTeamText(team, *shortfall.over_team, &s);
  if (d.not_now) absl::StrAppend(&s, "; waits: capacity or quota may free up");
  return s;
}

}  // namespace

std::string WhyNotText(Mode mode, const Option& alt, const Option& chosen, absl::Time earliest) {
  // Name the variant when the alternative is the chosen pool run otherwise.
  std::string prefix;
  if (alt.pool == chosen.pool && alt.spot == chosen.spot) {
    prefix = alt.split ? "split: " : (alt.start == earliest ? "at once: " : "contiguous: ");
  }
  std::string why =
      LosingMargin(mode, alt.cost_micros - chosen.cost_micros, alt.carbon_mg - chosen.carbon_mg,
                   alt.objective_micros - chosen.objective_micros);
  if (why.empty()) why = "tie: loses on pool id, on-demand before spot, earlier start";
  return prefix + why;
}

std::string RejectionText(const std::vector<std::pair<std::string, int>>& rejections) {
  int total = 0;
  for (const auto& [reason, n] : rejections) total += n;
  if (total == 0) return "";
  std::vector<std::string> parts;
  for (const auto& [reason, n] : rejections) parts.push_back(absl::StrCat(n, " ", reason));
  return absl::StrCat(total, " pool", total == 1 ? "" : "s",
                      " rejected: ", absl::StrJoin(parts, ", "));
}

bool CostCapBinds(const JobRequest& job, const Shortfall& shortfall) {
  return shortfall.over_caps && job.max_cost_micros > 0 &&
         shortfall.over_caps->cheapest.cost_micros > job.max_cost_micros;
}

bool CarbonCapBinds(const JobRequest& job, const Shortfall& shortfall) {
  return shortfall.over_caps && job.max_carbon_mg > 0 &&
         shortfall.over_caps->greenest.carbon_mg > job.max_carbon_mg;
}

std::string SummaryText(const Decision& d, const JobRequest& job, const TeamView& team,
                        const Shortfall& shortfall) {
  const std::string rejections = RejectionText(d.rejections);
  if (d.feasible) return FeasibleSummary(d, rejections);
  return InfeasibleSummary(d, rejections, job, team, shortfall);
}

}  // namespace greenlight::placement
