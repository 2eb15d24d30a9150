// The random stream of numpy's default_rng(seed) (Generator over PCG64 seeded
// by SeedSequence), for the draws the Let's Wait Awhile authors made with it:
// multinomial counts and uniform choices. Reimplemented from the published
// algorithms so that the compatibility mode draws the authors' very jobs.
#pragma once

#include <cstdint>
#include <vector>

namespace greenlight::sim::lwa {

class NumpyRng {
 public:
  // As numpy.random.default_rng(seed) for 0 <= seed < 2^32.
  explicit NumpyRng(uint32_t seed);

  // PCG64 (XSL-RR 128/64, O'Neill 2014): step, then output.
  uint64_t NextUint64();
  // Halves of one 64-bit output, low half first (numpy buffers the high half).
  uint32_t NextUint32();
  // 53 random bits in [0, 1).
  double NextDouble();
  // Uniform in [0, max] for max < 2^32 - 1 (Lemire's method on 32-bit draws),
  // as Generator.integers(0, max + 1) and Generator.choice draw.
  uint32_t BoundedUint32(uint32_t max);
  // Binomial(n, p) by numpy's rule: the inversion algorithm when
  // min(p, 1-p) x n <= 30. Larger means (BTPE) are not needed here and
  // are refused (returns -1).
  int64_t Binomial(int64_t n, double p);
  // Generator.multinomial(n, pvals) for one experiment: sequential
  // conditional binomials.
  std::vector<int64_t> Multinomial(int64_t n, const std::vector<double>& pvals);

 private:
  int64_t BinomialInversion(int64_t n, double p);

  unsigned __int128 state_ = 0;
  unsigned __int128 increment_ = 0;
  bool has_uint32_ = false;
  uint32_t spare_uint32_ = 0;
};

}  // namespace greenlight::sim::lwa
