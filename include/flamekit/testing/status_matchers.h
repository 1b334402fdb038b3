// SPDX-License-Identifier: Apache-2.0
// File: status_matchers.h
//
// GoogleMock matchers for absl::Status and absl::StatusOr, which Debian's
// Abseil 20220623 lacks. Test-only; not thread-safety relevant.
//
// Example:
//
//   EXPECT_THAT(ParseLine("a;b 3"), IsOk());
//   EXPECT_THAT(Open("/nope"), StatusIs(absl::StatusCode::kNotFound));
//   EXPECT_THAT(Open("/nope"), StatusIs(absl::StatusCode::kNotFound,
//                                       HasSubstr("no such file")));
//   EXPECT_THAT(Count("a;b 3"), IsOkAndHolds(3));
//   FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile profile, Load("x.txt"));

#ifndef FLAMEKIT_TESTING_STATUS_MATCHERS_H_
#define FLAMEKIT_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace testing {

// Implementation details follow (the matchers are defined by macros).

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& status = GetStatus(arg);
  if (!status.ok()) *result_listener << "status is " << status.ToString();
  return status.ok();
}

MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status().ToString();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + ::testing::PrintToString(code) +
               " and a matching message") {
  const absl::Status& status = GetStatus(arg);
  *result_listener << "status is " << status.ToString();
  return status.code() == code &&
         ::testing::Matches(message_matcher)(std::string(status.message()));
}

#define FLAMEKIT_ASSERT_OK_AND_ASSIGN(lhs, rexpr)                            \
  FLAMEKIT_ASSERT_OK_AND_ASSIGN_IMPL_(                                       \
      FLAMEKIT_MATCHERS_CONCAT_(flamekit_statusor_, __LINE__), lhs, rexpr)
#define FLAMEKIT_MATCHERS_CONCAT_INNER_(a, b) a##b
#define FLAMEKIT_MATCHERS_CONCAT_(a, b) FLAMEKIT_MATCHERS_CONCAT_INNER_(a, b)
#define FLAMEKIT_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                        \
  ASSERT_TRUE(statusor.ok()) << statusor.status().ToString();     \
  lhs = std::move(statusor).value()

}  // namespace testing
}  // namespace flamekit

#endif  // FLAMEKIT_TESTING_STATUS_MATCHERS_H_
