// CapacityBook: bookings of planned jobs, the most nodes booked over a
// window, rebooking, the shared view (rebuilt only on request) and Check.
#include "services/scheduler/capacity_book.h"

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_testing.h"

namespace greenlight::scheduler {
namespace {

using placement::Booking;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

const absl::Time kT0 = absl::FromUnixSeconds(1773100800);  // 2026-03-10 00:00 UTC

absl::Time At(int hours) { return kT0 + absl::Hours(hours); }
Booking Window(int from_hour, int to_hour, int nodes) {
  return {At(from_hour), At(to_hour), nodes};
}

TEST(CapacityBook, MaxBookedIsTheMostNodesAtAnyInstantOfTheWindow) {
  CapacityBook book;
  book.Book(1, 0, {Window(0, 2, 2)});
  book.Book(2, 0, {Window(1, 3, 3)});
  EXPECT_TRUE(book.Holds(1));
  EXPECT_EQ(book.size(), 2u);

  EXPECT_EQ(book.MaxBooked(0, At(-1), At(0)), 0);  // ends where the booking starts
  EXPECT_EQ(book.MaxBooked(0, At(0), At(1)), 2);
  EXPECT_EQ(book.MaxBooked(0, At(0), At(3)), 5);  // both during [1h, 2h)
  EXPECT_EQ(book.MaxBooked(0, At(2), At(3)), 3);  // the first ended at 2h
  EXPECT_EQ(book.MaxBooked(0, At(3), At(10)), 0);
  EXPECT_EQ(book.MaxBooked(0, At(-5), At(10)), 5);
  // Other pools are untouched.
  EXPECT_TRUE(book.HasBookings(0));
  EXPECT_FALSE(book.HasBookings(1));
  EXPECT_EQ(book.MaxBooked(1, At(0), At(3)), 0);
}

TEST(CapacityBook, BackToBackWindowsDoNotAddUp) {
  CapacityBook book;
  book.Book(1, 0, {Window(0, 1, 2)});
  book.Book(2, 0, {Window(1, 2, 2)});
  EXPECT_EQ(book.MaxBooked(0, At(0), At(2)), 2);
}

TEST(CapacityBook, SplitRunsBookEachSlot) {
  CapacityBook book;
  book.Book(7, 0, {Window(0, 1, 1), Window(5, 6, 1)});
  EXPECT_EQ(book.MaxBooked(0, At(0), At(1)), 1);
  EXPECT_EQ(book.MaxBooked(0, At(1), At(5)), 0);  // between the slots
  EXPECT_EQ(book.MaxBooked(0, At(5), At(6)), 1);
}

TEST(CapacityBook, UnbookDropsTheJobsBooking) {
  CapacityBook book;
  book.Book(1, 0, {Window(0, 2, 2)});
  book.Book(2, 0, {Window(0, 2, 1)});
  book.Unbook(1);
  EXPECT_FALSE(book.Holds(1));
  EXPECT_TRUE(book.Holds(2));
  EXPECT_EQ(book.MaxBooked(0, At(0), At(2)), 1);
  book.Unbook(1);  // no booking: no-op
  book.Unbook(99);
  EXPECT_EQ(book.MaxBooked(0, At(0), At(2)), 1);
  book.Unbook(2);
  EXPECT_EQ(book.size(), 0u);
  EXPECT_FALSE(book.HasBookings(0));
  EXPECT_EQ(book.MaxBooked(0, At(0), At(2)), 0);
  EXPECT_OK(book.Check([](int64_t) { return true; }));
}

TEST(CapacityBook, RebookReplacesTheJobsBooking) {
  CapacityBook book;
  book.Book(1, 0, {Window(0, 2, 3)});
  book.Book(1, 0, {Window(4, 5, 1)});
  EXPECT_EQ(book.size(), 1u);
  EXPECT_EQ(book.MaxBooked(0, At(0), At(2)), 0);
  EXPECT_EQ(book.MaxBooked(0, At(4), At(5)), 1);

  // Into another pool: the first pool is free again.
  book.Book(1, 3, {Window(4, 5, 2)});
  EXPECT_FALSE(book.HasBookings(0));
  EXPECT_TRUE(book.HasBookings(3));
  EXPECT_EQ(book.MaxBooked(3, At(4), At(5)), 2);
  EXPECT_OK(book.Check([](int64_t) { return true; }));
}

TEST(CapacityBook, TheViewChangesOnlyWhenRebuilt) {
  CapacityBook book;
  EXPECT_EQ(book.view(), nullptr);
  EXPECT_FALSE(book.view_stale());

  book.Book(1, 0, {Window(0, 2, 2)});
  EXPECT_TRUE(book.view_stale());
  EXPECT_EQ(book.view(), nullptr);  // not rebuilt yet

  book.RebuildView();
  EXPECT_FALSE(book.view_stale());
  std::shared_ptr<const placement::BookingTable> first = book.view();
  ASSERT_NE(first, nullptr);
  ASSERT_EQ(first->size(), 1u);
  ASSERT_TRUE(first->contains(0));
  EXPECT_THAT(first->at(0)->steps(),
              ElementsAre(Pair(absl::ToUnixNanos(At(0)), 2), Pair(absl::ToUnixNanos(At(2)), 0)));

  // A new booking leaves the published view alone until the next rebuild.
  book.Book(2, 1, {Window(1, 3, 1)});
  EXPECT_TRUE(book.view_stale());
  EXPECT_EQ(book.view(), first);
  EXPECT_EQ(first->size(), 1u);
  book.RebuildView();
  std::shared_ptr<const placement::BookingTable> second = book.view();
  ASSERT_NE(second, nullptr);
  EXPECT_NE(second, first);
  EXPECT_EQ(second->size(), 2u);
  // Only the changed pool was re-profiled; pool 0's profile is shared.
  EXPECT_EQ(second->at(0), first->at(0));

  // Rebuilding with nothing changed keeps the same view.
  book.RebuildView();
  EXPECT_EQ(book.view(), second);

  // Without bookings the view is empty again.
  book.Unbook(1);
  book.Unbook(2);
  EXPECT_TRUE(book.view_stale());
  book.RebuildView();
  EXPECT_EQ(book.view(), nullptr);
  EXPECT_FALSE(book.view_stale());
}

TEST(CapacityBook, CheckNamesABookedJobThatIsNotPlanned) {
  CapacityBook book;
  book.Book(1, 0, {Window(0, 2, 2)});
  book.Book(2, 0, {Window(1, 3, 1)});
  book.Book(3, 1, {Window(0, 1, 1), Window(2, 3, 1)});
  EXPECT_OK(book.Check([](int64_t) { return true; }));
  absl::Status st = book.Check([](int64_t seq) { return seq != 2; });
  EXPECT_EQ(st.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(st.message()), HasSubstr("#2"));
}

TEST(CapacityBook, ClearForgetsEverything) {
  CapacityBook book;
  book.Book(1, 0, {Window(0, 2, 2)});
  book.RebuildView();
  book.Clear();
  EXPECT_EQ(book.size(), 0u);
  EXPECT_FALSE(book.HasBookings(0));
  EXPECT_EQ(book.view(), nullptr);
  EXPECT_FALSE(book.view_stale());
  EXPECT_OK(book.Check([](int64_t) { return false; }));
}

}  // namespace
}  // namespace greenlight::scheduler
