// SPDX-License-Identifier: Apache-2.0
// Tests of FlameTree building (merge, order, reverse, pruning) and of the
// escapers the renderers share.

#include "flamekit/render/flame_tree.h"

#include <string>
#include <vector>

#include "flamekit/render/render_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using render_testing::Add;
using render_testing::F;

// "name@depth=total" for every node, in preorder.
std::vector<std::string> Describe(const FlameTree& tree) {
  std::vector<std::string> out;
  for (const FlameTree::Node& n : tree.nodes) {
    out.push_back(tree.names[n.name] + "@" + std::to_string(n.depth) + "=" +
                  std::to_string(n.total));
  }
  return out;
}

TEST(FlameTreeTest, MergesPrefixesAndSortsChildrenByName) {
  Profile p;
  Add(&p, {{"main"}, {"b"}, {"x"}}, 3);
  Add(&p, {{"main"}, {"a"}}, 2);
  Add(&p, {{"main"}, {"b"}, {"y"}}, 4);
  Add(&p, {{"main"}, {"b"}}, 1);
  Add(&p, {{"other"}}, 5);
  FlameTree tree = BuildFlameTree(p, RenderOptions{});
  EXPECT_THAT(Describe(tree),
              ::testing::ElementsAre("main@0=10", "a@1=2", "b@1=8", "x@2=3", "y@2=4",
                                     "other@0=5"));
  EXPECT_EQ(tree.total, 15u);
  EXPECT_EQ(tree.max_depth, 3u);
  EXPECT_EQ(SubtreeEnd(tree, 0), 5u);
  EXPECT_EQ(SubtreeEnd(tree, 2), 5u);
  EXPECT_EQ(SubtreeEnd(tree, 5), 6u);
}

TEST(FlameTreeTest, SameNameDifferentKindStaysApart) {
  Profile p;
  Add(&p, {{"main"}, {"write", FrameKind::kLibrary}}, 1);
  Add(&p, {{"main"}, {"write", FrameKind::kKernel}}, 2);
  FlameTree tree = BuildFlameTree(p, RenderOptions{});
  ASSERT_EQ(tree.nodes.size(), 3u);
  EXPECT_EQ(tree.kinds[tree.nodes[1].name], FrameKind::kLibrary);
  EXPECT_EQ(tree.kinds[tree.nodes[2].name], FrameKind::kKernel);
}

TEST(FlameTreeTest, ReverseMergesCallersOfTheSameLeaf) {
  Profile p;
  Add(&p, {{"main"}, {"a"}, {"leaf"}}, 3);
  Add(&p, {{"main"}, {"b"}, {"leaf"}}, 4);
  RenderOptions options;
  options.reverse = true;
  FlameTree tree = BuildFlameTree(p, options);
  EXPECT_THAT(Describe(tree), ::testing::ElementsAre("leaf@0=7", "a@1=3", "main@2=3",
                                                     "b@1=4", "main@2=4"));
}

TEST(FlameTreeTest, MinwidthPrunesNarrowSubtrees) {
  Profile p;
  Add(&p, {{"main"}, {"hot"}, {"deep"}}, 990);
  Add(&p, {{"main"}, {"cold"}, {"deeper"}}, 10);
  RenderOptions options;
  options.minwidth = 2.0;  // percent
  FlameTree tree = BuildFlameTree(p, options);
  EXPECT_THAT(Describe(tree), ::testing::ElementsAre("main@0=1000", "hot@1=990", "deep@2=990"));
  EXPECT_EQ(tree.pruned_nodes, 2u);
  // Pruned names are not in the table.
  EXPECT_THAT(tree.names, ::testing::ElementsAre("main", "hot", "deep"));
}

TEST(FlameTreeTest, DiffTreeKeepsBothCounts) {
  Profile frames;
  FrameId m = frames.InternFrame("main");
  FrameId a = frames.InternFrame("a");
  std::vector<FrameId> s1 = {m, a};
  std::vector<FrameId> s2 = {m};
  FlameTree tree = BuildFlameTree(
      frames, {FlameStackRef{s1, 5, 9}, FlameStackRef{s2, 1, 0}}, false, 0, true);
  ASSERT_EQ(tree.nodes.size(), 2u);
  EXPECT_EQ(tree.nodes[0].total, 6u);
  EXPECT_EQ(tree.nodes[0].before, 9u);
  EXPECT_EQ(tree.nodes[1].before, 9u);
  EXPECT_EQ(tree.total_before, 9u);
}

TEST(FlameTreeTest, CompactJsonEncodesDepthAsPops) {
  Profile p;
  Add(&p, {{"main"}, {"a"}}, 2);
  Add(&p, {{"main"}, {"b"}}, 1);
  Add(&p, {{"z"}}, 4);
  std::string json;
  render_internal::AppendFlameTreeJson(BuildFlameTree(p, RenderOptions{}), &json);
  // main(depth 0), a(1), b(1: pop 1), z(0: pop 2)
  EXPECT_EQ(json,
            R"({"names":["main","a","b","z"],"kinds":[0,0,0,0],"nodes":[0,0,3,0,1,2,1,2,1,2,3,4]})");
}

void ExpectJson(const std::string& in, const std::string& want) {
  std::string out;
  render_internal::AppendJsonString(&out, in);
  EXPECT_EQ(out, want) << "input: " << in;
}

TEST(JsonStringTest, EscapesEverythingThatCouldEndAScript) {
  ExpectJson("plain", "\"plain\"");
  ExpectJson("</script>", "\"\\u003c/script\\u003e\"");
  ExpectJson("a&b\"c\\d", "\"a\\u0026b\\\"c\\\\d\"");
  ExpectJson("\n\t\x01", "\"\\n\\t\\u0001\"");
  ExpectJson("\xE2\x80\xA8\xE2\x80\xA9", "\"\\u2028\\u2029\"");
  ExpectJson("caf\xC3\xA9 \xF0\x9F\x94\xA5", "\"caf\xC3\xA9 \xF0\x9F\x94\xA5\"");
  ExpectJson("bad\xFF\xC3(", "\"bad\\ufffd\\ufffd(\"");
  ExpectJson("\xED\xA0\x80", "\"\\ufffd\\ufffd\\ufffd\"");  // a UTF-16 surrogate
}

TEST(XmlEscapeTest, EscapesMarkupAndDropsWhatXmlForbids) {
  std::string out;
  render_internal::AppendXmlEscaped(&out, "<a href='x'>&\"\x01\xFF\xC3\xA9");
  EXPECT_EQ(out, "&lt;a href=&apos;x&apos;&gt;&amp;&quot;\xEF\xBF\xBD\xEF\xBF\xBD\xC3\xA9");
}

TEST(FlameTreeTest, LargeProfileBuildsConsistentTotals) {
  Profile p = render_testing::LargeProfile(100000, 2000);
  FlameTree tree = BuildFlameTree(p, RenderOptions{});
  uint64_t roots = 0;
  for (size_t i = 0; i < tree.nodes.size(); ++i) {
    if (tree.nodes[i].depth == 0) roots += tree.nodes[i].total;
    // Children never outweigh their parent.
    uint64_t children = 0;
    size_t end = SubtreeEnd(tree, i);
    for (size_t j = i + 1; j < end; j = SubtreeEnd(tree, j)) children += tree.nodes[j].total;
    ASSERT_LE(children, tree.nodes[i].total) << i;
  }
  EXPECT_EQ(roots, p.total_samples());
  EXPECT_EQ(tree.total, 100000u);
}

}  // namespace
}  // namespace flamekit
