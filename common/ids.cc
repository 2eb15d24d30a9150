#include "common/ids.h"

#include <random>

#include "absl/synchronization/mutex.h"

namespace greenlight {

std::string NewId(std::string_view prefix, int hex_digits) {
  static absl::Mutex mu;
  static std::mt19937_64* rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd()};
    return new std::mt19937_64(seq);
  }();
  static const char kHex[] = "0123456789abcdef";
  std::string out(prefix);
  absl::MutexLock l(&mu);
  uint64_t bits = 0;
  for (int i = 0; i < hex_digits; ++i) {
    if (i % 16 == 0) bits = (*rng)();
    out.push_back(kHex[bits & 0xf]);
    bits >>= 4;
  }
  return out;
}

std::string NewJobId() { return NewId("j-", 16); }

bool IsValidName(std::string_view s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

}  // namespace greenlight
