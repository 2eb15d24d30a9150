// numpy's Generator(PCG64(SeedSequence(seed))) stream for the draws of the
// Let's Wait Awhile job generator. Sources of the algorithms: O'Neill, "PCG:
// A family of simple fast space-efficient statistically good algorithms for
// random number generation" (2014); numpy's SeedSequence documentation
// (hash-mixing of the entropy into a 4-word pool, then into the state); Lemire,
// "Fast random integer generation in an interval" (2019); Kachitvichyanukul &
// Schmeiser, "Binomial random variate generation" (1988) for the inversion.
#include "services/sim/lwa_numpy_rng.h"

#include <algorithm>
#include <cmath>

namespace greenlight::sim::lwa {
namespace {

// SeedSequence constants (numpy.random.SeedSequence, pool size 4).
constexpr uint32_t kInitA = 0x43b0d7e5;
constexpr uint32_t kMultA = 0x931e8875;
constexpr uint32_t kInitB = 0x8b51f9dd;
constexpr uint32_t kMultB = 0x58f38ded;
constexpr uint32_t kMixMultL = 0xca01f9dd;
constexpr uint32_t kMixMultR = 0x4973f715;
constexpr int kXShift = 16;
constexpr int kPoolSize = 4;

uint32_t HashMix(uint32_t value, uint32_t& hash_const) {
  value ^= hash_const;
  hash_const *= kMultA;
  value *= hash_const;
  value ^= value >> kXShift;
  return value;
}

uint32_t Mix(uint32_t x, uint32_t y) {
  uint32_t result = kMixMultL * x - kMixMultR * y;
  result ^= result >> kXShift;
  return result;
}

// SeedSequence(entropy).generate_state(n_words) as 32-bit words.
std::vector<uint32_t> SeedSequenceState(uint32_t entropy, int n_words) {
  uint32_t pool[kPoolSize];
  uint32_t hash_const = kInitA;
  // The entropy is one word (an integer below 2^32); the rest of the pool
  // keeps running the hash on zeros.
  for (int i = 0; i < kPoolSize; ++i) pool[i] = HashMix(i == 0 ? entropy : 0, hash_const);
  for (int src = 0; src < kPoolSize; ++src) {
    for (int dst = 0; dst < kPoolSize; ++dst) {
      if (src != dst) pool[dst] = Mix(pool[dst], HashMix(pool[src], hash_const));
    }
  }
  std::vector<uint32_t> state(n_words);
  uint32_t hash_b = kInitB;
  for (int i = 0; i < n_words; ++i) {
    uint32_t value = pool[i % kPoolSize];
    value ^= hash_b;
    hash_b *= kMultB;
    value *= hash_b;
    value ^= value >> kXShift;
    state[i] = value;
  }
  return state;
}

constexpr unsigned __int128 kPcgMultiplier =
    (static_cast<unsigned __int128>(0x2360ed051fc65da4ULL) << 64) | 0x4385df649fccf645ULL;

}  // namespace

NumpyRng::NumpyRng(uint32_t seed) {
  // generate_state(4, uint64): eight 32-bit words read as little-endian pairs.
  const std::vector<uint32_t> words = SeedSequenceState(seed, 8);
  uint64_t w[4];
  for (int i = 0; i < 4; ++i) {
    w[i] = static_cast<uint64_t>(words[2 * i]) | (static_cast<uint64_t>(words[2 * i + 1]) << 32);
  }
  const unsigned __int128 init_state = (static_cast<unsigned __int128>(w[0]) << 64) | w[1];
  const unsigned __int128 init_seq = (static_cast<unsigned __int128>(w[2]) << 64) | w[3];
  // pcg_setseq_128_srandom_r.
  state_ = 0;
  increment_ = (init_seq << 1) | 1;
  state_ = state_ * kPcgMultiplier + increment_;
  state_ += init_state;
  state_ = state_ * kPcgMultiplier + increment_;
}

uint64_t NumpyRng::NextUint64() {
  state_ = state_ * kPcgMultiplier + increment_;
  const uint64_t folded = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
  const int rotation = static_cast<int>(state_ >> 122);
  return (folded >> rotation) | (folded << ((-rotation) & 63));
}

uint32_t NumpyRng::NextUint32() {
  if (has_uint32_) {
    has_uint32_ = false;
    return spare_uint32_;
  }
  const uint64_t next = NextUint64();
  has_uint32_ = true;
  spare_uint32_ = static_cast<uint32_t>(next >> 32);
  return static_cast<uint32_t>(next);
}

double NumpyRng::NextDouble() {
  return static_cast<double>(NextUint64() >> 11) * (1.0 / 9007199254740992.0);
}

uint32_t NumpyRng::BoundedUint32(uint32_t max) {
  const uint32_t range = max + 1;
  uint64_t m = static_cast<uint64_t>(NextUint32()) * range;
  uint32_t leftover = static_cast<uint32_t>(m);
  if (leftover < range) {
    const uint32_t threshold = (UINT32_MAX - max) % range;
    while (leftover < threshold) {
      m = static_cast<uint64_t>(NextUint32()) * range;
      leftover = static_cast<uint32_t>(m);
    }
  }
  return static_cast<uint32_t>(m >> 32);
}

int64_t NumpyRng::BinomialInversion(int64_t n, double p) {
  const double q = 1.0 - p;
  const double qn = std::exp(static_cast<double>(n) * std::log(q));
  const double np = static_cast<double>(n) * p;
  const int64_t bound =
      static_cast<int64_t>(std::min(static_cast<double>(n), np + 10.0 * std::sqrt(np * q + 1)));
  int64_t x = 0;
  double px = qn;
  double u = NextDouble();
  while (u > px) {
    ++x;
    if (x > bound) {
      x = 0;
      px = qn;
      u = NextDouble();
    } else {
      u -= px;
      px = (static_cast<double>(n - x + 1) * p * px) / (static_cast<double>(x) * q);
    }
  }
  return x;
}

int64_t NumpyRng::Binomial(int64_t n, double p) {
  if (n == 0 || p == 0.0) return 0;
  if (p <= 0.5) {
    if (p * static_cast<double>(n) <= 30.0) return BinomialInversion(n, p);
    return -1;
  }
  const double q = 1.0 - p;
  if (q * static_cast<double>(n) <= 30.0) return n - BinomialInversion(n, q);
  return -1;
}

std::vector<int64_t> NumpyRng::Multinomial(int64_t n, const std::vector<double>& pvals) {
  std::vector<int64_t> counts(pvals.size(), 0);
  if (pvals.empty()) return counts;
  double remaining_p = 1.0;
  int64_t left = n;
  for (size_t j = 0; j + 1 < pvals.size(); ++j) {
    counts[j] = Binomial(left, pvals[j] / remaining_p);
    left -= counts[j];
    if (left <= 0) break;
    remaining_p -= pvals[j];
  }
  if (left > 0) counts.back() = left;
  return counts;
}

}  // namespace greenlight::sim::lwa
