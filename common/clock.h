// Time source for everything that schedules: the daemon uses wall time, tests
// and the replay simulator use a ManualClock they advance themselves.
#pragma once

#include <atomic>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace greenlight {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// Wall time, optionally sped up: Now() = origin + (real elapsed) x scale. The
// demo runs at scale 3600 so that an hour-long job finishes in a second.
class RealClock final : public Clock {
 public:
  explicit RealClock(double scale = 1.0)
      : scale_(scale), origin_(absl::Now()) {}
  absl::Time Now() const override {
    if (scale_ == 1.0) return absl::Now();
    return origin_ + (absl::Now() - origin_) * scale_;
  }
  double scale() const { return scale_; }

 private:
  double scale_;
  absl::Time origin_;
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start) : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock l(&mu_);
    return now_;
  }
  void Set(absl::Time t) {
    absl::MutexLock l(&mu_);
    now_ = t;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_;
};

}  // namespace greenlight
