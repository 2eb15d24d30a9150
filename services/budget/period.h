// Budget periods: UTC calendar months, named "YYYY-MM".
#pragma once

#include <string>

#include "absl/time/time.h"

namespace greenlight::budget {

std::string PeriodOf(absl::Time t);
absl::Time PeriodStart(absl::Time t);
// Exclusive end: the first instant of the next month.
absl::Time PeriodEnd(absl::Time t);

}  // namespace greenlight::budget
