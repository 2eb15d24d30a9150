// The capacity calendar's interval arithmetic (capacity_calendar.h).
#include "services/placement/capacity_calendar.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/placement/test_util.h"

namespace greenlight::placement {
namespace {

using testing::T0;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

int64_t H(double hours) { return absl::ToUnixNanos(T0() + absl::Seconds(hours * 3600)); }

Booking Book(double from_h, double to_h, int nodes) {
  return Booking{T0() + absl::Seconds(from_h * 3600), T0() + absl::Seconds(to_h * 3600), nodes};
}

std::string Show(const std::vector<NsInterval>& v) {
  std::string out;
  for (const auto& iv : v) {
    auto h = [](int64_t ns) {
      if (ns == kMax) return std::string("+inf");
      if (ns == kMin) return std::string("-inf");
      return absl::StrCat((ns - H(0)) / 3'600'000'000'000);
    };
    absl::StrAppend(&out, "[", h(iv.start_ns), ",", h(iv.end_ns), ")");
  }
  return out;
}

TEST(BlockedIntervals, Table) {
  struct Case {
    std::string name;
    PoolBookings bookings;
    int free_nodes;
    int nodes;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"nothing booked", {}, 4, 4, ""},
      {"room beside the booking", {Book(5, 7, 2)}, 4, 2, ""},
      {"one node too many", {Book(5, 7, 2)}, 4, 3, "[5,7)"},
      {"overlaps add up", {Book(1, 4, 2), Book(3, 6, 2)}, 4, 1, "[3,4)"},
      {"back to back do not add up", {Book(1, 3, 4), Book(3, 5, 4)}, 4, 1, "[1,5)"},
      {"back to back, room for one", {Book(1, 3, 3), Book(3, 5, 3)}, 4, 1, ""},
      {"disjoint blocks stay apart", {Book(1, 2, 4), Book(6, 8, 4)}, 4, 1, "[1,2)[6,8)"},
      {"more than free now: always", {}, 2, 3, "[-inf,+inf)"},
      {"empty or zero bookings ignored", {Book(3, 3, 4), Book(1, 2, 0)}, 4, 1, ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(Show(BlockedIntervals(BookedProfile(c.bookings), c.free_nodes, c.nodes)), c.want)
        << c.name;
  }
}

TEST(BookedProfile, StepsMergeEqualLevels) {
  BookedProfile p(PoolBookings{Book(1, 3, 2), Book(3, 5, 2), Book(4, 6, 1)});
  ASSERT_EQ(p.steps().size(), 4u);  // 2 from 1 (no step at 3), 3 from 4, 1 from 5, 0 from 6
  EXPECT_EQ(p.steps()[0], std::make_pair(H(1), 2));
  EXPECT_EQ(p.steps()[1], std::make_pair(H(4), 3));
  EXPECT_EQ(p.steps()[2], std::make_pair(H(5), 1));
  EXPECT_EQ(p.steps()[3], std::make_pair(H(6), 0));
  EXPECT_TRUE(BookedProfile(PoolBookings{}).empty());
}

TEST(BookingDeltas, KeptBookingByBookingAgreeWithTheProfile) {
  BookingDeltas d;
  const PoolBookings all = {Book(1, 3, 2), Book(3, 5, 2), Book(4, 6, 1), Book(2, 4, 1)};
  for (const Booking& b : all) AddBooking(b, +1, &d);
  EXPECT_EQ(MaxBooked(d, H(0), H(1)), 0);
  EXPECT_EQ(MaxBooked(d, H(0), H(2)), 2);
  EXPECT_EQ(MaxBooked(d, H(2), H(3)), 3);
  EXPECT_EQ(MaxBooked(d, H(3), H(4)), 3);  // 2 + 1 (the 1-3 window has ended)
  EXPECT_EQ(MaxBooked(d, H(4), H(5)), 3);
  EXPECT_EQ(MaxBooked(d, H(5), H(9)), 1);
  EXPECT_EQ(MaxBooked(d, H(6), H(9)), 0);
  BookedProfile from_deltas(d), from_list(all);
  EXPECT_EQ(from_deltas.steps(), from_list.steps());
  // Taking every booking back leaves nothing.
  for (const Booking& b : all) AddBooking(b, -1, &d);
  EXPECT_TRUE(d.empty());
}

TEST(BookedProfile, BlockedIsCachedAndAgreesWithBlockedIntervals) {
  BookedProfile p(PoolBookings{Book(1, 3, 2), Book(2, 4, 2)});
  for (int free = 0; free <= 5; ++free) {
    for (int nodes = 1; nodes <= 3; ++nodes) {
      EXPECT_EQ(Show(p.Blocked(free, nodes)), Show(BlockedIntervals(p, free, nodes)))
          << free << " free, " << nodes << " nodes";
    }
  }
  EXPECT_EQ(&p.Blocked(4, 1), &p.Blocked(5, 2));  // same threshold, one cached answer
}

TEST(BlockedIntervals, OverlapsIsHalfOpen) {
  std::vector<NsInterval> b = {{H(2), H(4)}, {H(6), H(8)}};
  EXPECT_FALSE(Overlaps(b, H(0), H(2)));  // ends where the block starts
  EXPECT_TRUE(Overlaps(b, H(1), H(3)));
  EXPECT_TRUE(Overlaps(b, H(3), H(3.5)));
  EXPECT_FALSE(Overlaps(b, H(4), H(6)));  // between the blocks
  EXPECT_TRUE(Overlaps(b, H(5), H(9)));
  EXPECT_FALSE(Overlaps(b, H(8), H(100)));
  EXPECT_FALSE(Overlaps({}, H(0), H(100)));
}

TEST(BlockedIntervals, FirstClearStartSkipsBlocksTheRunDoesNotFitBetween) {
  std::vector<NsInterval> b = {{H(2), H(4)}, {H(5), H(8)}};
  EXPECT_EQ(FirstClearStart(b, H(0), H(2) - H(0)), H(0));  // [0,2) fits before
  EXPECT_EQ(FirstClearStart(b, H(0), H(3) - H(0)), H(8));  // 1 h gap at 4 is too short
  EXPECT_EQ(FirstClearStart(b, H(4), H(5) - H(4)), H(4));  // exactly the gap
  EXPECT_EQ(FirstClearStart(b, H(3), H(1) - H(0)), H(4));
  EXPECT_EQ(FirstClearStart({{H(2), kMax}}, H(0), H(3) - H(0)), kMax);
}

}  // namespace
}  // namespace greenlight::placement
