#include "services/scheduler/limiters.h"

#include <algorithm>

#include "common/log.h"

namespace greenlight::scheduler {

bool TeamLimiter::Allow(const std::string& team) {
  if (rate_ <= 0) return true;
  absl::MutexLock l(&mu_);
  absl::Time now = absl::Now();
  auto [it, fresh] = buckets_.try_emplace(team, Bucket{static_cast<double>(burst_), now});
  Bucket& b = it->second;
  b.tokens = std::min<double>(burst_, b.tokens + absl::ToDoubleSeconds(now - b.last) * rate_);
  b.last = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

bool TeamLimiter::Acquire(const std::string& team) {
  if (max_inflight_ <= 0) return true;
  absl::MutexLock l(&mu_);
  int& n = inflight_[team];
  if (n >= max_inflight_) return false;
  ++n;
  return true;
}

void TeamLimiter::Release(const std::string& team) {
  if (max_inflight_ <= 0) return;
  absl::MutexLock l(&mu_);
  auto it = inflight_.find(team);
  if (it == inflight_.end()) return;
  if (--it->second <= 0) inflight_.erase(it);
}

WatchLimiter::WatchLimiter(int max_watchers, absl::Duration stall_timeout)
    : max_watchers_(max_watchers), stall_timeout_(stall_timeout) {
  if (stall_timeout_ > absl::ZeroDuration() && stall_timeout_ != absl::InfiniteDuration())
    reaper_ = std::thread([this] { ReapLoop(); });
}

WatchLimiter::~WatchLimiter() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  if (reaper_.joinable()) reaper_.join();
}

bool WatchLimiter::Enter(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  if (max_watchers_ > 0 && static_cast<int>(streams_.size()) >= max_watchers_) return false;
  streams_[stream] = absl::InfiniteFuture();
  return true;
}

void WatchLimiter::Leave(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  streams_.erase(stream);
}

void WatchLimiter::BeginWrite(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  auto it = streams_.find(stream);
  if (it != streams_.end()) it->second = absl::Now();
}

void WatchLimiter::EndWrite(grpc::ServerContext* stream) {
  absl::MutexLock l(&mu_);
  auto it = streams_.find(stream);
  if (it != streams_.end()) it->second = absl::InfiniteFuture();
}

int64_t WatchLimiter::dropped() const {
  absl::MutexLock l(&mu_);
  return dropped_;
}

int WatchLimiter::open() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(streams_.size());
}

void WatchLimiter::ReapLoop() {
  absl::Duration period = std::min(absl::Seconds(1), stall_timeout_ / 4);
  absl::MutexLock l(&mu_);
  auto stopped = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
  while (!mu_.AwaitWithTimeout(absl::Condition(&stopped), period)) {
    absl::Time now = absl::Now();
    for (auto& [stream, since] : streams_) {
      if (now - since < stall_timeout_) continue;
      // Under mu_: the handler cannot Leave (and free the context) meanwhile.
      stream->TryCancel();
      since = absl::InfiniteFuture();
      ++dropped_;
      GL_LOG_WARN(
          "watcher dropped: it read nothing for too long; it resumes from its last revision",
          F("stall_s", absl::ToDoubleSeconds(stall_timeout_)), F("peer", stream->peer()));
    }
  }
}

}  // namespace greenlight::scheduler
