// SPDX-License-Identifier: Apache-2.0
#include "flamekit/base/status_macros.h"

#include <string>

#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOkAndHolds;
using ::flamekit::testing::StatusIs;

absl::StatusOr<int> Half(int x) {
  if (x % 2 != 0) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x, int* calls) {
  ++*calls;
  FLAMEKIT_ASSIGN_OR_RETURN(int half, Half(x));
  FLAMEKIT_ASSIGN_OR_RETURN(int quarter, Half(half));
  return quarter;
}

absl::Status CheckEven(int x) {
  FLAMEKIT_RETURN_IF_ERROR(Half(x).status());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, AssignOrReturnPassesValuesAndErrors) {
  int calls = 0;
  EXPECT_THAT(Quarter(8, &calls), IsOkAndHolds(2));
  EXPECT_THAT(Quarter(6, &calls), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Quarter(5, &calls), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(calls, 3);
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsFirstError) {
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_THAT(CheckEven(3), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace flamekit
