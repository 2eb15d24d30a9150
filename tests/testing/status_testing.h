// gtest helpers for absl::Status and absl::StatusOr (Abseil 20220623 ships
// no status matchers).
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace greenlight::testing {

inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

template <typename T>
::testing::AssertionResult AssertOk(const char* text, const T& value) {
  const absl::Status& s = ToStatus(value);
  if (s.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << text << ": " << s;
}

}  // namespace greenlight::testing

#define GL_STATUS_CONCAT_INNER(a, b) a##b
#define GL_STATUS_CONCAT(a, b) GL_STATUS_CONCAT_INNER(a, b)

// Both evaluate `expr` once and accept a streamed message.
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::greenlight::testing::AssertOk, expr)
#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::greenlight::testing::AssertOk, expr)

#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  GL_ASSERT_OK_AND_ASSIGN_IMPL(GL_STATUS_CONCAT(gl_sor_, __LINE__), lhs, rexpr)
#define GL_ASSERT_OK_AND_ASSIGN_IMPL(sor, lhs, rexpr)      \
  auto sor = (rexpr);                                      \
  ASSERT_TRUE(sor.ok()) << #rexpr << ": " << sor.status(); \
  lhs = std::move(*sor)
