// Admission limits of the gRPC adapters: per-team submit rate and concurrency,
// a cap on placements in progress, and bounds on WatchJobs streams.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/server_context.h"

namespace greenlight::scheduler {

// Per-team limits on submits: a token bucket (rate) and a cap on submits in
// flight at once (concurrency), so that one team's burst cannot fill the
// command queue that every team shares.
class TeamLimiter {
 public:
  // rate_per_second <= 0: no rate limit; max_inflight <= 0: no concurrency limit.
  TeamLimiter(double rate_per_second, int burst, int max_inflight = 0)
      : rate_(rate_per_second), burst_(burst), max_inflight_(max_inflight) {}
  // False when the team is over its rate (RESOURCE_EXHAUSTED for the caller).
  bool Allow(const std::string& team);
  // Takes one of the team's in-flight slots; false when all are taken
  // (RESOURCE_EXHAUSTED for the caller). Every true is paired with Release.
  bool Acquire(const std::string& team);
  void Release(const std::string& team);
  int max_inflight() const { return max_inflight_; }

 private:
  struct Bucket {
    double tokens;
    absl::Time last;
  };
  double rate_;
  int burst_;
  int max_inflight_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, int> inflight_ ABSL_GUARDED_BY(mu_);
};

// At most `max` calls at once through a gate (0 = unlimited). SubmitJob and
// EstimateJob pass one: each holds a placement snapshot and decision (MiBs
// with a large inventory) while it runs, and the core has one writer, so
// more concurrency than that buys latency and memory, not throughput. Calls
// beyond are refused at once with RESOURCE_EXHAUSTED.
class InflightGate {
 public:
  explicit InflightGate(int max) : max_(max) {}
  bool Enter() {
    if (max_ <= 0) return true;
    if (count_.fetch_add(1) >= max_) {
      count_.fetch_sub(1);
      return false;
    }
    return true;
  }
  void Leave() {
    if (max_ > 0) count_.fetch_sub(1);
  }
  int max() const { return max_; }

 private:
  const int max_;
  std::atomic<int> count_{0};
};

// Bounds on WatchJobs streams. Watchers pull committed events at their own
// pace (no per-watcher buffer), but a client that stops reading blocks its
// stream's Write and holds a server thread: such a stream is cancelled after
// `stall_timeout` and the client resumes from the last revision it received
// (WatchJobs is gapless from any from_revision). At most `max_watchers`
// streams are open at once; more get RESOURCE_EXHAUSTED.
class WatchLimiter {
 public:
  WatchLimiter(int max_watchers, absl::Duration stall_timeout);
  ~WatchLimiter();
  WatchLimiter(const WatchLimiter&) = delete;
  WatchLimiter& operator=(const WatchLimiter&) = delete;

  bool Enter(grpc::ServerContext* stream);
  void Leave(grpc::ServerContext* stream);
  // Brackets each Write to `stream`.
  void BeginWrite(grpc::ServerContext* stream);
  void EndWrite(grpc::ServerContext* stream);
  // Streams cancelled for stalling so far.
  int64_t dropped() const;
  int open() const;

 private:
  void ReapLoop();

  const int max_watchers_;
  const absl::Duration stall_timeout_;
  mutable absl::Mutex mu_;
  // Open streams -> since when the current Write blocks (InfiniteFuture: not writing).
  absl::flat_hash_map<grpc::ServerContext*, absl::Time> streams_ ABSL_GUARDED_BY(mu_);
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

}  // namespace greenlight::scheduler
