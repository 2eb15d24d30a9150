#include "services/budget/period.h"

#include "absl/strings/str_format.h"

namespace greenlight::budget {

std::string PeriodOf(absl::Time t) {
  absl::CivilSecond cs = absl::ToCivilSecond(t, absl::UTCTimeZone());
  return absl::StrFormat("%04d-%02d", cs.year(), cs.month());
}

absl::Time PeriodStart(absl::Time t) {
  absl::CivilMonth m(absl::ToCivilSecond(t, absl::UTCTimeZone()));
  return absl::FromCivil(m, absl::UTCTimeZone());
}

absl::Time PeriodEnd(absl::Time t) {
  absl::CivilMonth m(absl::ToCivilSecond(t, absl::UTCTimeZone()));
  return absl::FromCivil(m + 1, absl::UTCTimeZone());
}

}  // namespace greenlight::budget
