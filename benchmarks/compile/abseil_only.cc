// SPDX-License-Identifier: Apache-2.0
// The yardstick for facade_use.cc: a file that includes only Abseil's
// Status and Time headers, which profiler.h's API is made of.
#include "absl/status/statusor.h"
#include "absl/time/time.h"

int main() {
  absl::StatusOr<int> value = 1;
  return value.ok() && absl::Seconds(1) > absl::ZeroDuration() ? 0 : 1;
}
