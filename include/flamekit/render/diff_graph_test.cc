// SPDX-License-Identifier: Apache-2.0
// Tests of the diff renderers: the merged before/after tree, the HTML page's
// data, SVG colours, difffolded text and WriteDiff().

#include "flamekit/render/diff_graph.h"

#include <stdlib.h>

#include <string>
#include <vector>

#include "flamekit/profile/diff.h"
#include "flamekit/render/render_test_util.h"
#include "flamekit/render/write_profile.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

DiffProfile SmallDiff() {
  return ComputeDiff(render_testing::SmallProfile(), render_testing::SmallProfileAfter());
}

std::string DataIsland(const std::string& html) {
  const std::string open = "<script id=\"fk-data\" type=\"application/json\">";
  size_t at = html.find(open) + open.size();
  return html.substr(at, html.find("</script>", at) - at);
}

const FlameTree::Node* Find(const FlameTree& tree, const std::string& name) {
  for (const FlameTree::Node& node : tree.nodes) {
    if (tree.names[node.name] == name) return &node;
  }
  return nullptr;
}

TEST(DiffGraphTest, TreeCarriesBeforeAndAfter) {
  FlameTree tree = BuildDiffTree(SmallDiff(), {});
  EXPECT_EQ(tree.total, 2040u);
  EXPECT_EQ(tree.total_before, 2000u);
  const FlameTree::Node* json = Find(tree, "JsonParser::Parse(std::basic_string_view<char>)");
  ASSERT_NE(json, nullptr);
  EXPECT_EQ(json->total, 200u);
  EXPECT_EQ(json->before, 700u);
  const FlameTree::Node* gone = Find(tree, "(anonymous namespace)::Flush()");
  ASSERT_NE(gone, nullptr);
  EXPECT_EQ(gone->total, 0u);
  EXPECT_EQ(gone->before, 120u);
  const FlameTree::Node* added = Find(tree, "Validate(Order const&)");
  ASSERT_NE(added, nullptr);
  EXPECT_EQ(added->before, 0u);
  EXPECT_EQ(added->total, 180u);
}

TEST(DiffGraphTest, HtmlPageIsInDiffMode) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderDiffGraphHtml(SmallDiff()));
  EXPECT_THAT(html, HasSubstr("<title>Diff: checkout-service cpu \xE2\x86\x92 "
                              "checkout-service cpu, after</title>"));
  EXPECT_THAT(html, HasSubstr("id=\"normalize\""));
  EXPECT_THAT(html, HasSubstr("id=\"base-meta\""));
  EXPECT_THAT(html, HasSubstr("2026-01-02 04:04:05 UTC"));  // new
  EXPECT_THAT(html, HasSubstr("2026-01-02 03:04:05 UTC"));  // base
  nlohmann::json data = nlohmann::json::parse(DataIsland(html));
  EXPECT_EQ(data["diff"], true);
  EXPECT_EQ(data["total"], 2040);
  EXPECT_EQ(data["total_before"], 2000);
  EXPECT_EQ(data["normalize"], true);
  RenderOptions raw;
  raw.normalize = false;
  raw.title = "t";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(html, RenderDiffGraphHtml(SmallDiff(), raw));
  EXPECT_EQ(nlohmann::json::parse(DataIsland(html))["normalize"], false);
}

TEST(DiffGraphTest, SvgIsRedWhereItGrewAndBlueWhereItShrank) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string svg, RenderDiffGraphSvg(SmallDiff()));
  auto fill_of = [&](const std::string& title_start) {
    size_t at = svg.find("<title>" + title_start);
    EXPECT_NE(at, std::string::npos) << title_start;
    size_t fill = svg.find("fill=\"", at) + 6;
    return svg.substr(fill, svg.find('"', fill) - fill);
  };
  EXPECT_THAT(fill_of("Compress(Buffer*) (before"), ::testing::StartsWith("rgb(255,"));
  EXPECT_THAT(fill_of("JsonParser::Parse"), ::testing::EndsWith(",255)"));
  // 150 -> 150 (153 normalized): a faint blue, JsonParser (700 -> 200) a strong one.
  auto weak_of = [](const std::string& fill) { return std::stoi(fill.substr(4)); };
  EXPECT_GE(weak_of(fill_of("memcpy")), 200);
  EXPECT_LT(weak_of(fill_of("JsonParser::Parse")), 120);
  // Unchanged: grey.
  EXPECT_EQ(fill_of("main (before"), "rgb(225,225,225)");
}

TEST(DiffGraphTest, DiffFoldedHasBeforeThenAfter) {
  std::string text = RenderDiffCollapsed(SmallDiff());
  EXPECT_THAT(text, HasSubstr("main;Server::Run();(anonymous namespace)::Flush();write;"
                              "entry_SYSCALL_64_[k];ksys_write_[k] 120 0\n"));
  EXPECT_THAT(text, HasSubstr("main;Server::Run();Server::HandleRequest(Request const&);"
                              "Validate(Order const&) 0 180\n"));
  EXPECT_THAT(text, ::testing::StartsWith("main 10 10\n"));
}

TEST(DiffGraphTest, WriteDiffByExtension) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string dir = tmp ? tmp : "/tmp";
  DiffProfile diff = SmallDiff();
  EXPECT_THAT(WriteDiff(diff, dir + "/d.html"), testing::IsOk());
  EXPECT_THAT(WriteDiff(diff, dir + "/d.svg"), testing::IsOk());
  EXPECT_THAT(WriteDiff(diff, dir + "/d.collapsed"), testing::IsOk());
  EXPECT_THAT(WriteDiff(diff, dir + "/d.pb.gz"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("-diff_base")));
  EXPECT_THAT(WriteDiff(diff, dir + "/d.jpeg"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(DiffGraphTest, HostileNamesStayTextInADiff) {
  DiffProfile diff =
      ComputeDiff(render_testing::SmallProfile(), render_testing::HostileProfile());
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderDiffGraphHtml(diff));
  std::string island = DataIsland(html);
  EXPECT_EQ(island.find('<'), std::string::npos);
  nlohmann::json data = nlohmann::json::parse(island);
  std::vector<std::string> names = data["tree"]["names"];
  EXPECT_THAT(names, ::testing::Contains("</script><script>window.fkPwned=1</script>"));
}

TEST(DiffGraphTest, EmptyDiffRenders) {
  DiffProfile diff = ComputeDiff(Profile(), Profile());
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderDiffGraphHtml(diff));
  EXPECT_THAT(html, HasSubstr("<title>Diff graph</title>"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string svg, RenderDiffGraphSvg(diff));
  EXPECT_THAT(svg, HasSubstr("</svg>"));
}

}  // namespace
}  // namespace flamekit
