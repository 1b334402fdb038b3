// SPDX-License-Identifier: Apache-2.0
// Tests of the SVG flame graph: well-formed XML (xmllint), pruning, hostile
// names, inverted layout.

#include "flamekit/render/svg.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "flamekit/render/render_test_util.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

// Runs xmllint --noout on `svg`; returns its exit status (or -1 if absent).
int XmlLint(const std::string& svg, std::string* output) {
  if (access("/usr/bin/xmllint", X_OK) != 0) return -1;
  const char* tmpdir = getenv("TEST_TMPDIR");
  std::string path = std::string(tmpdir ? tmpdir : "/tmp") + "/fk_svg_test.svg";
  std::ofstream(path, std::ios::binary) << svg;
  std::string command = "/usr/bin/xmllint --noout --nonet " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

TEST(SvgTest, SmallProfileIsWellFormed) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string svg,
                                RenderFlameGraphSvg(render_testing::SmallProfile()));
  std::string lint;
  int rc = XmlLint(svg, &lint);
  if (rc < 0) GTEST_SKIP() << "/usr/bin/xmllint not installed (Debian libxml2-utils)";
  EXPECT_EQ(rc, 0) << lint;
  EXPECT_THAT(svg, HasSubstr("<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(svg, HasSubstr(">checkout-service cpu</text>"));
  EXPECT_THAT(svg, HasSubstr("<title>JsonParser::Parse(std::basic_string_view&lt;char&gt;) "
                             "(700 samples, 35.00%)</title>"));
  // One <g> per frame: 21 distinct tree nodes + "all".
  EXPECT_EQ(Count(svg, "<g fk-d="), 22u);
}

TEST(SvgTest, HostileNamesAreWellFormedText) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string svg,
                                RenderFlameGraphSvg(render_testing::HostileProfile()));
  std::string lint;
  int rc = XmlLint(svg, &lint);
  if (rc < 0) GTEST_SKIP() << "/usr/bin/xmllint not installed (Debian libxml2-utils)";
  EXPECT_EQ(rc, 0) << lint.substr(0, 2000);
  EXPECT_EQ(Count(svg, "<script"), 1u);
  EXPECT_EQ(Count(svg, "<img"), 0u);
  // The one CDATA section is the script's.
  EXPECT_EQ(Count(svg, "]]>"), 1u);
}

TEST(SvgTest, NarrowFramesArePruned) {
  Profile p;
  render_testing::Add(&p, {{"main"}, {"hot"}}, 1000000);
  render_testing::Add(&p, {{"main"}, {"tiny"}, {"deeper"}}, 1);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string svg, RenderFlameGraphSvg(p));
  EXPECT_THAT(svg, HasSubstr("hot ("));
  EXPECT_THAT(svg, Not(HasSubstr("<title>tiny")));  // 0.0012 px wide: not drawn
  EXPECT_THAT(svg, Not(HasSubstr("<title>deeper")));
  // The embedded stacks keep them (convert/diff read the SVG back exactly).
  EXPECT_THAT(svg, HasSubstr("\nf 0 tiny\n"));
  RenderOptions options;
  options.minwidth = 50;
  render_testing::Add(&p, {{"main"}, {"warm"}}, 100000);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(svg, RenderFlameGraphSvg(p, options));
  EXPECT_THAT(svg, Not(HasSubstr("warm (")));  // 9 % < 50 %
}

TEST(SvgTest, InvertedPutsTheRootAtTheTop) {
  RenderOptions options;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string normal,
                                RenderFlameGraphSvg(render_testing::SmallProfile(), options));
  options.inverted = true;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string inverted,
                                RenderFlameGraphSvg(render_testing::SmallProfile(), options));
  // The "all" frame: first row under the header when inverted, last row otherwise.
  const std::string all_on_top =
      "<title>all (2,000 samples, 100%)</title><rect x=\"10.00\" y=\"72\"";
  EXPECT_THAT(inverted, HasSubstr(all_on_top));
  EXPECT_THAT(normal, Not(HasSubstr(all_on_top)));
}

TEST(SvgTest, EmptyProfileIsWellFormed) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string svg, RenderFlameGraphSvg(Profile()));
  std::string lint;
  int rc = XmlLint(svg, &lint);
  if (rc < 0) GTEST_SKIP() << "/usr/bin/xmllint not installed";
  EXPECT_EQ(rc, 0) << lint;
}

}  // namespace
}  // namespace flamekit
