// SPDX-License-Identifier: Apache-2.0
// Renders the golden cases and compares them with testdata/golden/. On a
// mismatch, look at the diff the failure prints; if the change is intended,
// run tools/update_goldens.sh and commit the new files.

#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <string>

#include "flamekit/render/golden_cases.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

std::string ReadGolden(const std::string& name) {
  std::string path = std::string(getenv("TEST_SRCDIR")) + "/flamekit/testdata/golden/" + name;
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first differing line, for a readable failure.
std::string FirstDifference(const std::string& want, const std::string& got) {
  std::istringstream a(want), b(got);
  std::string la, lb;
  for (int line = 1;; ++line) {
    bool ea = !std::getline(a, la), eb = !std::getline(b, lb);
    if (ea && eb) return "identical";
    if (ea != eb || la != lb) {
      return "line " + std::to_string(line) + ":\n  golden: " + la.substr(0, 300) +
             "\n  now:    " + lb.substr(0, 300);
    }
  }
}

TEST(GoldenTest, OutputsMatchTheGoldenFiles) {
  for (const render_testing::GoldenCase& c : render_testing::GoldenCases()) {
    absl::StatusOr<std::string> got = render_testing::RenderGoldenCase(c);
    ASSERT_TRUE(got.ok()) << got.status();
    std::string want = ReadGolden(c.file_name);
    ASSERT_FALSE(want.empty()) << "testdata/golden/" << c.file_name
                               << " missing: run tools/update_goldens.sh";
    EXPECT_TRUE(want == *got) << c.file_name << " differs from its golden file at "
                              << FirstDifference(want, *got)
                              << "\nIf intended, run tools/update_goldens.sh.";
  }
}

}  // namespace
}  // namespace flamekit
