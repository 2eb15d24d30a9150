// Budget periods are UTC calendar months named "YYYY-MM".
#include "services/budget/period.h"

#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "gtest/gtest.h"

namespace greenlight::budget {
namespace {

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

TEST(Period, NamesTheUtcMonthAtEveryBoundary) {
  struct Case {
    absl::Time t;
    std::string period;
    absl::Time start;
    absl::Time end;
  };
  for (const Case& c : std::vector<Case>{
           {Utc(2026, 3, 10, 8), "2026-03", Utc(2026, 3, 1), Utc(2026, 4, 1)},
           {Utc(2026, 3, 1), "2026-03", Utc(2026, 3, 1), Utc(2026, 4, 1)},
           {Utc(2026, 4, 1) - absl::Microseconds(1), "2026-03", Utc(2026, 3, 1), Utc(2026, 4, 1)},
           {Utc(2026, 4, 1), "2026-04", Utc(2026, 4, 1), Utc(2026, 5, 1)},
           // December rolls into January of the next year.
           {Utc(2025, 12, 31, 23, 59, 59), "2025-12", Utc(2025, 12, 1), Utc(2026, 1, 1)},
           {Utc(2026, 1, 1), "2026-01", Utc(2026, 1, 1), Utc(2026, 2, 1)},
           // February, leap and common years.
           {Utc(2028, 2, 29, 12), "2028-02", Utc(2028, 2, 1), Utc(2028, 3, 1)},
           {Utc(2027, 2, 28, 23, 59, 59), "2027-02", Utc(2027, 2, 1), Utc(2027, 3, 1)},
           // 30- and 31-day months.
           {Utc(2026, 4, 30, 23), "2026-04", Utc(2026, 4, 1), Utc(2026, 5, 1)},
           {Utc(2026, 7, 31, 23), "2026-07", Utc(2026, 7, 1), Utc(2026, 8, 1)},
           // Before the Unix epoch.
           {Utc(1969, 12, 31, 23, 59, 59), "1969-12", Utc(1969, 12, 1), Utc(1970, 1, 1)},
       }) {
    EXPECT_EQ(PeriodOf(c.t), c.period) << absl::FormatTime(c.t);
    EXPECT_EQ(PeriodStart(c.t), c.start) << absl::FormatTime(c.t);
    EXPECT_EQ(PeriodEnd(c.t), c.end) << absl::FormatTime(c.t);
  }
}

TEST(Period, EndOfOnePeriodIsStartOfTheNext) {
  absl::Time t = Utc(2025, 1, 15);
  for (int i = 0; i < 24; ++i) {
    absl::Time end = PeriodEnd(t);
    EXPECT_EQ(PeriodStart(end), end);
    EXPECT_NE(PeriodOf(end), PeriodOf(t));
    EXPECT_EQ(PeriodOf(end - absl::Nanoseconds(1)), PeriodOf(t));
    t = end;
  }
  EXPECT_EQ(PeriodOf(t), "2027-01");
}

}  // namespace
}  // namespace greenlight::budget
