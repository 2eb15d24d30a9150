// A small seeded random number generator for the Let's Wait Awhile
// reproduction: the same seed gives the same jobs and forecasts on every
// platform (std:: distributions are implementation-defined, so we avoid them).
#pragma once

#include <cstdint>

namespace greenlight::sim::lwa {

// xoshiro256** (Blackman & Vigna, 2018), seeded through SplitMix64 as its
// authors recommend; both are public-domain reference algorithms.
class Rng {
 public:
  explicit Rng(uint64_t seed);

  uint64_t Next();
  // Uniform integer in [0, n), n > 0, without modulo bias (Lemire 2019).
  uint64_t UniformInt(uint64_t n);
  // Uniform double in [0, 1) with 53 random bits.
  double UniformDouble();
  // Standard normal (Marsaglia polar method; the spare value is cached).
  double Normal();

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace greenlight::sim::lwa
