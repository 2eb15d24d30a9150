// Early-return helpers for absl::Status / absl::StatusOr (Abseil 20220623 has none).
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GL_STATUS_CONCAT_INNER_(a, b) a##b
#define GL_STATUS_CONCAT_(a, b) GL_STATUS_CONCAT_INNER_(a, b)

// Returns the status from the enclosing function if `expr` is not OK.
#define RETURN_IF_ERROR(expr)                                  \
  do {                                                         \
    ::absl::Status gl_status_ = ::greenlight::ToStatus(expr);  \
    if (!gl_status_.ok()) return gl_status_;                   \
  } while (false)

// ASSIGN_OR_RETURN(T var, StatusOr<T> expr): declares/assigns or returns the error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  GL_ASSIGN_OR_RETURN_IMPL_(GL_STATUS_CONCAT_(gl_statusor_, __LINE__), lhs, expr)

#define GL_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                              \
  if (!statusor.ok()) return statusor.status();        \
  lhs = std::move(statusor).value()

namespace greenlight {

inline const absl::Status& ToStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& ToStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

}  // namespace greenlight
