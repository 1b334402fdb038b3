// SPDX-License-Identifier: Apache-2.0
#include "flamekit/base/human_units.h"

#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;

TEST(HumanUnitsTest, Durations) {
  EXPECT_EQ(*ParseHumanDuration("30"), absl::Seconds(30));
  EXPECT_EQ(*ParseHumanDuration("1.5"), absl::Milliseconds(1500));
  EXPECT_EQ(*ParseHumanDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseHumanDuration("2m"), absl::Minutes(2));
  EXPECT_EQ(*ParseHumanDuration("250us"), absl::Microseconds(250));
  EXPECT_EQ(*ParseHumanDuration("-1s"), absl::Seconds(-1));  // range is the caller's
  for (const char* bad : {"", "soon", "inf", "nan", "-inf", "1e300", "5 parsecs"}) {
    EXPECT_THAT(ParseHumanDuration(bad).status(),
                StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("not a duration")))
        << bad;
  }
}

TEST(HumanUnitsTest, SizesAndBytes) {
  EXPECT_EQ(*ParseHumanSize("1048576"), 1048576);
  EXPECT_EQ(*ParseHumanSize("64k"), 64 * 1024);
  EXPECT_EQ(*ParseHumanSize("1m"), 1 << 20);
  EXPECT_EQ(*ParseHumanSize("2GiB"), int64_t{2} << 30);
  EXPECT_EQ(*ParseHumanSize("1.5G"), int64_t{3} << 29);
  for (const char* bad : {"", "M", "-1", "1X", "1e30", "nan"}) {
    EXPECT_THAT(ParseHumanSize(bad).status(), StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(64 * 1024), "64 KiB");
  EXPECT_EQ(HumanBytes(uint64_t{37} << 20), "37 MiB");
}

}  // namespace
}  // namespace flamekit
