// EventLog: published events with filters, limits and the resume cursor;
// events older than the ring read back from the store; WaitFor.
#include "services/scheduler/event_log.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/store/memory_store.h"
#include "tests/testing/status_testing.h"

namespace greenlight::scheduler {
namespace {

namespace v1 = greenlight::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::JobEvent Event(int64_t revision, const std::string& team, const std::string& job_id) {
  v1::JobEvent e;
  e.set_revision(revision);
  e.set_team(team);
  e.set_job_id(job_id);
  e.set_event_type(greenlight::v1::JOB_EVENT_TYPE_STATE);
  e.set_message("event " + std::to_string(revision));
  return e;
}

// Events first..last: odd revisions are team "ml" (job j-odd), even "vision" (j-even).
std::vector<v1::JobEvent> Events(int64_t first, int64_t last) {
  std::vector<v1::JobEvent> out;
  for (int64_t r = first; r <= last; ++r)
    out.push_back(r % 2 ? Event(r, "ml", "j-odd") : Event(r, "vision", "j-even"));
  return out;
}

// Commits the events to the store, then publishes them (as the writer does).
void CommitAndPublish(store::MemoryStore& store, EventLog& log, std::vector<v1::JobEvent> events) {
  store::Batch b;
  b.events = events;
  ASSERT_OK(store.Commit(b));
  log.Publish(std::move(events));
}

std::vector<int64_t> Revisions(const std::vector<v1::JobEvent>& events) {
  std::vector<int64_t> out;
  for (const auto& e : events) out.push_back(e.revision());
  return out;
}

struct Read {
  std::vector<int64_t> revisions;
  int64_t scanned_to = -1;
};
Read After(const EventLog& log, int64_t after, int limit, const std::string& team = "",
           const std::string& job_id = "") {
  Read r;
  absl::StatusOr<std::vector<v1::JobEvent>> events =
      log.After(after, limit, team, job_id, &r.scanned_to);
  EXPECT_OK(events);
  if (events.ok()) r.revisions = Revisions(*events);
  return r;
}

TEST(EventLog, AfterReturnsPublishedEventsPastTheCursor) {
  store::MemoryStore store;
  EventLog log(&store, 100);
  EXPECT_EQ(log.revision(), 0);
  CommitAndPublish(store, log, Events(1, 5));
  EXPECT_EQ(log.revision(), 5);

  Read all = After(log, 0, 100);
  EXPECT_THAT(all.revisions, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(all.scanned_to, 5);

  Read tail = After(log, 2, 100);
  EXPECT_THAT(tail.revisions, ElementsAre(3, 4, 5));
  EXPECT_EQ(tail.scanned_to, 5);

  Read caught_up = After(log, 5, 100);
  EXPECT_THAT(caught_up.revisions, IsEmpty());
  EXPECT_EQ(caught_up.scanned_to, 5);

  // The whole event comes back, not only its revision.
  int64_t scanned = 0;
  auto events = log.After(3, 1, "", "", &scanned);
  ASSERT_OK(events);
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].message(), "event 4");
  EXPECT_EQ((*events)[0].team(), "vision");
}

TEST(EventLog, FiltersAndLimitSetWhereTheScanStopped) {
  store::MemoryStore store;
  EventLog log(&store, 100);
  CommitAndPublish(store, log, Events(1, 8));

  EXPECT_THAT(After(log, 0, 100, "ml").revisions, ElementsAre(1, 3, 5, 7));
  EXPECT_THAT(After(log, 0, 100, "", "j-even").revisions, ElementsAre(2, 4, 6, 8));
  EXPECT_THAT(After(log, 0, 100, "ml", "j-even").revisions, IsEmpty());

  // The limit counts matches; the cursor is the last revision looked at.
  Read two = After(log, 0, 2, "vision");
  EXPECT_THAT(two.revisions, ElementsAre(2, 4));
  EXPECT_EQ(two.scanned_to, 4);
  Read next = After(log, two.scanned_to, 2, "vision");
  EXPECT_THAT(next.revisions, ElementsAre(6, 8));
  EXPECT_EQ(next.scanned_to, 8);

  // Nothing matches: everything was scanned, resume from the head.
  Read nobody = After(log, 0, 10, "audio");
  EXPECT_THAT(nobody.revisions, IsEmpty());
  EXPECT_EQ(nobody.scanned_to, 8);
}

TEST(EventLog, EventsOlderThanTheRingComeFromTheStore) {
  store::MemoryStore store;
  EventLog log(&store, 3);  // keeps revisions 8..10 only
  CommitAndPublish(store, log, Events(1, 6));
  CommitAndPublish(store, log, Events(7, 10));

  Read all = After(log, 0, 100);
  EXPECT_THAT(all.revisions, ElementsAre(1, 2, 3, 4, 5, 6, 7, 8, 9, 10));
  EXPECT_EQ(all.scanned_to, 10);

  Read limited = After(log, 2, 3);
  EXPECT_THAT(limited.revisions, ElementsAre(3, 4, 5));
  EXPECT_EQ(limited.scanned_to, 5);

  Read filtered = After(log, 0, 2, "vision");
  EXPECT_THAT(filtered.revisions, ElementsAre(2, 4));
  EXPECT_EQ(filtered.scanned_to, 4);

  // From the ring alone.
  Read recent = After(log, 7, 100);
  EXPECT_THAT(recent.revisions, ElementsAre(8, 9, 10));
  EXPECT_EQ(recent.scanned_to, 10);
}

TEST(EventLog, StoreReadsStopAtThePublishedRevision) {
  store::MemoryStore store;
  EventLog log(&store, 2);
  CommitAndPublish(store, log, Events(1, 5));
  // Committed but not yet published: watchers must not see these yet.
  store::Batch pending;
  pending.events = Events(6, 7);
  ASSERT_OK(store.Commit(pending));

  Read r = After(log, 0, 100);
  EXPECT_THAT(r.revisions, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(r.scanned_to, 5);
}

TEST(EventLog, LongStoreReadsPageThroughTheStore) {
  store::MemoryStore store;
  EventLog log(&store, 10);
  CommitAndPublish(store, log, Events(1, 2500));
  Read r = After(log, 0, 5000, "ml");
  ASSERT_EQ(r.revisions.size(), 1250u);
  EXPECT_EQ(r.revisions.front(), 1);
  EXPECT_EQ(r.revisions.back(), 2499);
  EXPECT_EQ(r.scanned_to, 2500);
}

TEST(EventLog, ResetForgetsTheRingAndReadsFromTheStore) {
  store::MemoryStore store;
  store::Batch b;
  b.events = Events(1, 7);
  ASSERT_OK(store.Commit(b));
  EventLog log(&store, 100);
  log.Reset(7);  // as after a restart: the store has 1..7
  EXPECT_EQ(log.revision(), 7);
  EXPECT_THAT(After(log, 4, 100).revisions, ElementsAre(5, 6, 7));
  CommitAndPublish(store, log, Events(8, 9));
  EXPECT_EQ(log.revision(), 9);
  EXPECT_THAT(After(log, 4, 100).revisions, ElementsAre(5, 6, 7, 8, 9));
  EXPECT_THAT(After(log, 7, 100).revisions, ElementsAre(8, 9));
}

TEST(EventLog, PublishingNothingChangesNothing) {
  store::MemoryStore store;
  EventLog log(&store, 10);
  CommitAndPublish(store, log, Events(1, 3));
  log.Publish({});
  EXPECT_EQ(log.revision(), 3);
}

TEST(EventLog, WaitForReturnsWhenANewerEventIsPublished) {
  store::MemoryStore store;
  EventLog log(&store, 10);
  CommitAndPublish(store, log, Events(1, 2));
  int64_t woke_at = -1;
  // No deadline: only a publish can end the wait.
  std::thread watcher([&] { woke_at = log.WaitFor(2, absl::InfiniteFuture()); });
  CommitAndPublish(store, log, Events(3, 3));
  watcher.join();
  EXPECT_EQ(woke_at, 3);
}

TEST(EventLog, WaitForReturnsAtTheDeadlineWithTheCurrentRevision) {
  store::MemoryStore store;
  EventLog log(&store, 10);
  CommitAndPublish(store, log, Events(1, 2));
  EXPECT_EQ(log.WaitFor(2, absl::Now() + absl::Milliseconds(20)), 2);
  EXPECT_EQ(log.WaitFor(2, absl::Now() - absl::Seconds(1)), 2);
  // Already past `after`: no wait at all, even without a deadline.
  EXPECT_EQ(log.WaitFor(1, absl::InfiniteFuture()), 2);
}

}  // namespace
}  // namespace greenlight::scheduler
