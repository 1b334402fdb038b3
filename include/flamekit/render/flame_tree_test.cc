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

// Decodes the node stream as the page does: (depth, name, self, self_before).
struct Decoded {
  uint32_t depth;
  uint64_t name, self, self_before;
};
std::vector<Decoded> DecodeNodes(const std::string& str, int width, bool diff) {
  const std::string alphabet = render_internal::kNodeAlphabet;
  const uint64_t base = alphabet.size();
  const uint32_t p = diff ? 3 : 18;
  size_t pos = 0;
  auto digit = [&]() { return static_cast<uint64_t>(alphabet.find(str.at(pos++))); };
  auto num = [&](uint64_t w) {
    uint64_t v = 0;
    for (uint64_t i = 0; i < w; ++i) v = v * base + digit();
    return v;
  };
  auto longnum = [&]() { return num(digit()); };
  std::vector<Decoded> out;
  uint32_t prev = 0;
  while (pos < str.size()) {
    uint64_t h = digit();
    uint64_t pc = h % p, cc = h / p;
    uint64_t pops = pc == p - 1 ? longnum() : pc;
    uint64_t ca = diff ? cc % 5 : cc, cb = diff ? cc / 5 : 0;
    Decoded d;
    d.depth = static_cast<uint32_t>(prev - pops);
    d.name = num(width);
    d.self = ca < 4 ? num(ca) : longnum();
    d.self_before = diff ? (cb < 4 ? num(cb) : longnum()) : 0;
    prev = d.depth + 1;
    out.push_back(d);
  }
  return out;
}

std::string NodesOf(const std::string& json, int* width) {
  size_t w = json.find("\"name_width\":");
  *width = std::stoi(json.substr(w + 13));
  size_t at = json.find("\"nodes\":\"") + 9;
  return json.substr(at, json.rfind('"') - at);
}

TEST(FlameTreeTest, CompactEncodingOfATinyTree) {
  Profile p;
  Add(&p, {{"main"}, {"a"}}, 2);
  Add(&p, {{"main"}, {"b"}}, 1);
  Add(&p, {{"z"}}, 4);
  std::string json;
  render_internal::AppendFlameTreeJson(BuildFlameTree(p, RenderOptions{}), &json);
  EXPECT_THAT(json, ::testing::StartsWith(
                        R"({"names":["main","a","b","z"],"kinds":[0,0,0,0],"alphabet":")"));
  // main: head 0 (pops 0, no self), name 0.  a: head 18 (1 digit of self),
  // name 1, self 2.  b: head 1 + 18 (pops 1), name 2, self 1.  z: head 2 + 18.
  const char* a = render_internal::kNodeAlphabet;
  std::string want = {a[0], a[0], a[18], a[1], a[2], a[19], a[2], a[1], a[20], a[3], a[4]};
  EXPECT_THAT(json, ::testing::EndsWith("\"name_width\":1,\"nodes\":\"" + want + "\"}"));
}

TEST(FlameTreeTest, CompactEncodingRoundTripsALargeTree) {
  Profile p = render_testing::LargeProfile(200000, 3000);
  // One huge count and one very deep stack, to exercise the long forms.
  std::vector<FrameId> deep;
  for (int i = 0; i < 300; ++i) deep.push_back(p.InternFrame("deep" + std::to_string(i % 7)));
  p.AddStack(deep, 123456789);
  FlameTree tree = BuildFlameTree(p, RenderOptions{});
  std::string json;
  render_internal::AppendFlameTreeJson(tree, &json);
  int width = 0;
  std::string nodes = NodesOf(json, &width);
  EXPECT_EQ(nodes.find_first_of("\"\\<>&"), std::string::npos);
  std::vector<Decoded> decoded = DecodeNodes(nodes, width, false);
  ASSERT_EQ(decoded.size(), tree.nodes.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    ASSERT_EQ(decoded[i].depth, tree.nodes[i].depth) << i;
    ASSERT_EQ(decoded[i].name, tree.nodes[i].name) << i;
    uint64_t children = 0;
    for (size_t j = i + 1; j < SubtreeEnd(tree, i); j = SubtreeEnd(tree, j)) {
      children += tree.nodes[j].total;
    }
    ASSERT_EQ(decoded[i].self, tree.nodes[i].total - children) << i;
  }
  // About 3 bytes a node.
  EXPECT_LT(nodes.size(), tree.nodes.size() * 4);
}

TEST(FlameTreeTest, CompactEncodingRoundTripsADiffTree) {
  Profile frames;
  std::vector<std::vector<FrameId>> stacks;
  std::vector<FlameStackRef> refs;
  for (int i = 0; i < 50; ++i) {
    std::vector<FrameId> s;
    for (int d = 0; d <= i % 9; ++d) s.push_back(frames.InternFrame("f" + std::to_string((i * 7 + d) % 13)));
    stacks.push_back(s);
  }
  for (int i = 0; i < 50; ++i) refs.push_back({stacks[i], static_cast<uint64_t>(i * 1000003 % 977), static_cast<uint64_t>(i * 31 % 5)});
  FlameTree tree = BuildFlameTree(frames, refs, false, 0, true);
  std::string json;
  render_internal::AppendFlameTreeJson(tree, &json);
  int width = 0;
  std::string nodes = NodesOf(json, &width);
  std::vector<Decoded> decoded = DecodeNodes(nodes, width, true);
  ASSERT_EQ(decoded.size(), tree.nodes.size());
  for (size_t i = 0; i < decoded.size(); ++i) {
    uint64_t after = 0, before = 0;
    for (size_t j = i + 1; j < SubtreeEnd(tree, i); j = SubtreeEnd(tree, j)) {
      after += tree.nodes[j].total;
      before += tree.nodes[j].before;
    }
    ASSERT_EQ(decoded[i].depth, tree.nodes[i].depth) << i;
    ASSERT_EQ(decoded[i].self, tree.nodes[i].total - after) << i;
    ASSERT_EQ(decoded[i].self_before, tree.nodes[i].before - before) << i;
  }
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
