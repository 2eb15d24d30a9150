#include "services/store/memory_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace greenlight::store {
namespace {

bool KnownLedgerKind(greenlight::v1::LedgerKind kind) { return *LedgerKindName(kind) != '\0'; }

}  // namespace

absl::Status MemoryStore::Commit(const Batch& b) {
  if (b.empty()) return absl::OkStatus();
  absl::MutexLock l(&mu_);
  // Check everything SQLite's constraints would check before changing
  // anything, so a refused batch leaves no trace.
  int64_t revision = last_revision_;
  for (const auto& e : b.events) {
    if (e.revision() <= revision) {
      return absl::AlreadyExistsError(
          absl::StrCat("store: event revision ", e.revision(), " is not after ", revision));
    }
    revision = e.revision();
  }
  for (const auto& r : b.ledger) {
    if (!KnownLedgerKind(r.kind)) {
      return absl::InvalidArgumentError(
          absl::StrCat("store: ledger row of unknown kind ", static_cast<int>(r.kind)));
    }
  }
  for (const auto& j : b.jobs) {
    if (j.id().empty()) return absl::InvalidArgumentError("store: job without an id");
  }

  for (const auto& j : b.jobs) {
    auto [it, inserted] = jobs_.try_emplace(j.id(), j);
    if (inserted) {
      by_sequence_.emplace(j.sequence(), j.id());
    } else {
      // Like the SQLite upsert: the row keeps its first sequence.
      int64_t sequence = it->second.sequence();
      it->second = j;
      it->second.set_sequence(sequence);
    }
  }
  last_revision_ = revision;
  if (options_.max_events != 0) {
    for (const auto& e : b.events) events_.push_back(e);
  } else if (!b.events.empty()) {
    dropped_through_ = revision;
  }
  if (options_.max_events > 0) {
    while (static_cast<int64_t>(events_.size()) > options_.max_events) {
      dropped_through_ = events_.front().revision();
      events_.pop_front();
    }
  }
  int64_t next_id = ledger_.empty() ? 1 : ledger_.back().id + 1;
  for (const auto& r : b.ledger) {
    ledger_.push_back(r);
    ledger_.back().id = next_id++;
  }
  for (const auto& t : b.teams) teams_[t.name()] = t;
  for (const auto& p : b.pools) pools_[p.id()] = p;
  for (const auto& z : b.zones) zones_[z.name] = z;
  for (const auto& t : b.tokens) tokens_[t.info.id()] = t;
  return absl::OkStatus();
}

absl::StatusOr<Snapshot> MemoryStore::Load() {
  absl::MutexLock l(&mu_);
  Snapshot snap;
  snap.jobs.reserve(jobs_.size());
  for (const auto& [sequence, id] : by_sequence_) snap.jobs.push_back(jobs_.at(id));
  snap.ledger = ledger_;
  for (const auto& [_, t] : teams_) snap.teams.push_back(t);
  for (const auto& [_, p] : pools_) snap.pools.push_back(p);
  for (const auto& [_, z] : zones_) snap.zones.push_back(z);
  for (const auto& [_, t] : tokens_) snap.tokens.push_back(t);
  snap.last_revision = last_revision_;
  return snap;
}

absl::StatusOr<std::vector<greenlight::v1::JobEvent>> MemoryStore::EventsAfter(int64_t after,
                                                                               int limit) {
  absl::MutexLock l(&mu_);
  if (after < dropped_through_) {
    return absl::OutOfRangeError(absl::StrCat(
        "store: events up to revision ", dropped_through_, " were dropped (in-memory store keeps ",
        options_.max_events, "); resume after ", dropped_through_));
  }
  std::vector<greenlight::v1::JobEvent> out;
  auto it = std::upper_bound(
      events_.begin(), events_.end(), after,
      [](int64_t r, const greenlight::v1::JobEvent& e) { return r < e.revision(); });
  for (; it != events_.end() && static_cast<int>(out.size()) < limit; ++it) out.push_back(*it);
  return out;
}

size_t MemoryStore::job_count() const {
  absl::MutexLock l(&mu_);
  return jobs_.size();
}

size_t MemoryStore::ledger_rows() const {
  absl::MutexLock l(&mu_);
  return ledger_.size();
}

int64_t MemoryStore::last_revision() const {
  absl::MutexLock l(&mu_);
  return last_revision_;
}

}  // namespace greenlight::store
