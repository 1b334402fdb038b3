// SPDX-License-Identifier: Apache-2.0
// File: status_macros.h
//
// Early-return helpers for absl::Status and absl::StatusOr, which Debian's
// Abseil 20220623 does not ship. Not for signal handlers (Status allocates).
//
// Example:
//
//   absl::StatusOr<Profile> Load(absl::string_view path) {
//     FLAMEKIT_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
//     FLAMEKIT_RETURN_IF_ERROR(Validate(text));
//     return Parse(text);
//   }

#ifndef FLAMEKIT_BASE_STATUS_MACROS_H_
#define FLAMEKIT_BASE_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// FLAMEKIT_RETURN_IF_ERROR()
//
// Evaluates `expr` (an absl::Status) once and returns it from the enclosing
// function when it is not OK.
#define FLAMEKIT_RETURN_IF_ERROR(expr)                 \
  do {                                                 \
    ::absl::Status flamekit_status_ = (expr);          \
    if (!flamekit_status_.ok()) return flamekit_status_; \
  } while (0)

// FLAMEKIT_ASSIGN_OR_RETURN()
//
// Evaluates `rexpr` (an absl::StatusOr<T>) once; returns its status from the
// enclosing function when it is not OK, otherwise moves the value into
// `lhs`, which may be a declaration (`std::string text`).
#define FLAMEKIT_ASSIGN_OR_RETURN(lhs, rexpr)                             \
  FLAMEKIT_STATUS_MACROS_IMPL_(                                           \
      FLAMEKIT_STATUS_MACROS_CONCAT_(flamekit_statusor_, __LINE__), lhs, \
      rexpr)

// Implementation details follow.

#define FLAMEKIT_STATUS_MACROS_CONCAT_INNER_(a, b) a##b
#define FLAMEKIT_STATUS_MACROS_CONCAT_(a, b) \
  FLAMEKIT_STATUS_MACROS_CONCAT_INNER_(a, b)
#define FLAMEKIT_STATUS_MACROS_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // FLAMEKIT_BASE_STATUS_MACROS_H_
