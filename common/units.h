// Money, carbon and energy as types. Ledger amounts are integers: money in
// micro-USD, carbon in milligrams CO2e. Energy is a double (Wh) inside
// estimates and is rounded once when it becomes carbon.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/str_format.h"

namespace greenlight {

// Saturating add so that adversarial inputs cannot wrap a budget check.
inline int64_t SatAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

// Rounds half away from zero to int64 (as std::llround, without the libm call:
// the placement engine rounds on its hot path), saturating at the int64 range;
// NaN is 0.
inline int64_t RoundToInt64(double v) {
  if (!(v == v)) return 0;  // NaN
  if (v >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (v <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return v >= 0 ? static_cast<int64_t>(v + 0.5) : -static_cast<int64_t>(-v + 0.5);
}

class Money {
 public:
  constexpr Money() = default;
  static constexpr Money FromMicros(int64_t micros) { return Money(micros); }
  static Money FromUsd(double usd) { return Money(RoundToInt64(usd * 1e6)); }
  constexpr int64_t micros() const { return micros_; }
  double usd() const { return static_cast<double>(micros_) / 1e6; }
  Money operator+(Money o) const { return Money(SatAdd(micros_, o.micros_)); }
  Money operator-(Money o) const { return Money(SatAdd(micros_, -o.micros_)); }
  Money& operator+=(Money o) { return *this = *this + o; }
  Money& operator-=(Money o) { return *this = *this - o; }
  auto operator<=>(const Money&) const = default;
  // "$1,234.56" style for messages (two decimals, no grouping).
  std::string ToString() const { return absl::StrFormat("$%.2f", usd()); }

 private:
  constexpr explicit Money(int64_t m) : micros_(m) {}
  int64_t micros_ = 0;
};

class Carbon {
 public:
  constexpr Carbon() = default;
  static constexpr Carbon FromMg(int64_t mg) { return Carbon(mg); }
  static Carbon FromGrams(double g) { return Carbon(RoundToInt64(g * 1e3)); }
  static Carbon FromKg(double kg) { return Carbon(RoundToInt64(kg * 1e6)); }
  constexpr int64_t mg() const { return mg_; }
  double grams() const { return static_cast<double>(mg_) / 1e3; }
  double kg() const { return static_cast<double>(mg_) / 1e6; }
  Carbon operator+(Carbon o) const { return Carbon(SatAdd(mg_, o.mg_)); }
  Carbon operator-(Carbon o) const { return Carbon(SatAdd(mg_, -o.mg_)); }
  Carbon& operator+=(Carbon o) { return *this = *this + o; }
  Carbon& operator-=(Carbon o) { return *this = *this - o; }
  auto operator<=>(const Carbon&) const = default;
  std::string ToString() const { return absl::StrFormat("%.3f kgCO2e", kg()); }

 private:
  constexpr explicit Carbon(int64_t mg) : mg_(mg) {}
  int64_t mg_ = 0;
};

// Wh x gCO2e/kWh = mgCO2e (1 Wh = 1e-3 kWh, 1 g = 1e3 mg): the factors cancel.
inline double MgFromWhAndIntensity(double wh, double g_per_kwh) { return wh * g_per_kwh; }

// Carbon price in micro-USD per tonne: cost of `carbon` in micro-USD.
// 1 t = 1e9 mg, so micros = mg * price / 1e9.
inline double CarbonCostMicros(int64_t carbon_mg, int64_t price_micros_per_tonne) {
  return static_cast<double>(carbon_mg) * static_cast<double>(price_micros_per_tonne) / 1e9;
}

}  // namespace greenlight
