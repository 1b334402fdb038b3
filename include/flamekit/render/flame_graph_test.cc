// SPDX-License-Identifier: Apache-2.0
// Tests of the HTML flame graph: content, the data island, and hostile
// frame names that must stay text.

#include "flamekit/render/flame_graph.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <string>
#include <vector>

#include "flamekit/render/render_test_util.h"
#include "flamekit/render/templates.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace flamekit {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kDataOpen = "<script id=\"fk-data\" type=\"application/json\">";

// The text of the data island.
std::string DataIsland(const std::string& html) {
  size_t open = html.find(kDataOpen);
  if (open == std::string::npos) return "";
  open += kDataOpen.size();
  size_t close = html.find("</script>", open);
  return html.substr(open, close - open);
}

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(FlameGraphHtmlTest, ShowsTitleMetadataAndData) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html,
                                RenderFlameGraphHtml(render_testing::SmallProfile()));
  EXPECT_THAT(html, HasSubstr("<title>checkout-service cpu</title>"));
  EXPECT_THAT(html, HasSubstr("<span class=\"label\">event:</span> cpu"));
  EXPECT_THAT(html, HasSubstr("<span class=\"label\">interval:</span> 10ms"));
  EXPECT_THAT(html, HasSubstr("<span class=\"label\">duration:</span> 2.5s"));
  EXPECT_THAT(html, HasSubstr("<span class=\"label\">samples:</span> 2,000"));
  EXPECT_THAT(html, HasSubstr("<span class=\"label\">dropped:</span> 3"));
  EXPECT_THAT(html, HasSubstr("<span class=\"label\">date:</span> 2026-01-02 03:04:05 UTC"));
  EXPECT_THAT(html, Not(HasSubstr("id=\"few-samples\"")));
  nlohmann::json data = nlohmann::json::parse(DataIsland(html));
  EXPECT_EQ(data["total"], 2000);
  EXPECT_EQ(data["diff"], false);
  EXPECT_EQ(data["transforms"], R"([{"hide": "^__libc"}])");
  std::vector<std::string> names = data["tree"]["names"];
  EXPECT_THAT(names, ::testing::Contains("JsonParser::Parse(std::basic_string_view<char>)"));
  EXPECT_EQ(data["tree"]["name_width"], 1);
  EXPECT_FALSE(data["tree"]["nodes"].get<std::string>().empty());
}

TEST(FlameGraphHtmlTest, OptionsReachThePage) {
  RenderOptions options;
  options.title = "custom title";
  options.inverted = true;
  options.reverse = true;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html,
                                RenderFlameGraphHtml(render_testing::SmallProfile(), options));
  EXPECT_THAT(html, HasSubstr("<title>custom title</title>"));
  nlohmann::json data = nlohmann::json::parse(DataIsland(html));
  EXPECT_EQ(data["inverted"], true);
  EXPECT_EQ(data["reverse"], true);
  // The page builds the reversed view itself from the normal tree.
  EXPECT_EQ(data["tree"]["names"][0], "main");
}

TEST(FlameGraphHtmlTest, WarnsBelowAThousandSamples) {
  Profile p;
  render_testing::Add(&p, {{"main"}, {"a"}}, 999);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderFlameGraphHtml(p));
  EXPECT_THAT(html, HasSubstr("id=\"few-samples\""));
  EXPECT_THAT(html, HasSubstr("<title>Flame graph</title>"));
}

TEST(FlameGraphHtmlTest, EmptyProfileStillRenders) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderFlameGraphHtml(Profile()));
  nlohmann::json data = nlohmann::json::parse(DataIsland(html));
  EXPECT_EQ(data["total"], 0);
  EXPECT_EQ(data["tree"]["nodes"], "");
  EXPECT_THAT(html, HasSubstr("<span class=\"label\">date:</span> unknown"));
}

TEST(FlameGraphHtmlTest, HostileNamesStayText) {
  Profile profile = render_testing::HostileProfile();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html, RenderFlameGraphHtml(profile));
  std::string island = DataIsland(html);
  // Nothing in the island can start a tag or end the script.
  EXPECT_EQ(island.find('<'), std::string::npos);
  EXPECT_EQ(island.find('>'), std::string::npos);
  // Exactly three scripts: the data island, the embedded stacks and the
  // page's code.
  EXPECT_EQ(Count(html, "<script"), 3u);
  EXPECT_EQ(Count(html, "</script>"), 3u);
  // The embedded stacks block holds no markup either.
  const size_t stacks = html.find("<script id=\"fk-stacks\" type=\"text/plain\">");
  ASSERT_NE(stacks, std::string::npos);
  const size_t body = html.find('>', stacks) + 1;
  const std::string block = html.substr(body, html.find("</script>", body) - body);
  EXPECT_EQ(block.find_first_of("<>&"), std::string::npos);
  EXPECT_EQ(Count(html, "<img"), 0u);
  // The title is escaped as text, in <title> and in <h1>.
  EXPECT_THAT(html, HasSubstr("<title>&lt;/title&gt;&lt;script&gt;window.fkPwned=3&lt;/script&gt;"
                              " &quot;title&quot;</title>"));
  // Every valid name survives the trip exactly; invalid UTF-8 becomes U+FFFD.
  nlohmann::json data = nlohmann::json::parse(island);
  std::vector<std::string> names = data["tree"]["names"];
  for (const std::string& name : render_testing::HostileNames()) {
    if (name.find("bad utf8") == 0) {
      EXPECT_THAT(names, ::testing::Contains("bad utf8 \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD( end"));
    } else {
      EXPECT_THAT(names, ::testing::Contains(name)) << name.substr(0, 40);
    }
  }
  EXPECT_THAT(names, ::testing::Contains(std::string(10000, 'N')));
}

TEST(FlameGraphHtmlTest, MinwidthIsReported) {
  RenderOptions options;
  options.minwidth = 5;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string html,
                                RenderFlameGraphHtml(render_testing::SmallProfile(), options));
  EXPECT_THAT(html, HasSubstr("id=\"pruned\""));
  nlohmann::json data = nlohmann::json::parse(DataIsland(html));
  std::vector<std::string> names = data["tree"]["names"];
  EXPECT_THAT(names, Not(::testing::Contains("Hash(Key const&)")));  // 2 %
  EXPECT_THAT(names, ::testing::Contains("Compress(Buffer*)"));       // 12.5 %
}

}  // namespace
}  // namespace flamekit

namespace flamekit {
namespace {

TEST(FlameGraphHtmlTest, TemplatesDirWithTheShippedCopyGivesTheSamePage) {
  const char* tmp = getenv("TEST_TMPDIR");
  std::string dir = std::string(tmp ? tmp : "/tmp") + "/shipped_templates";
  mkdir(dir.c_str(), 0755);
  for (const EmbeddedTemplate& entry : kTemplateFiles) {
    std::ofstream(dir + "/" + entry.file_name, std::ios::binary) << entry.text;
  }
  RenderOptions options;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string embedded,
                                RenderFlameGraphHtml(render_testing::SmallProfile(), options));
  options.templates_dir = dir;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string from_dir,
                                RenderFlameGraphHtml(render_testing::SmallProfile(), options));
  EXPECT_TRUE(embedded == from_dir);
  // And an edited copy is picked up.
  std::ofstream(dir + "/flame_graph.html.mustache") << "<h1>{{title}}</h1>{{{frames_json}}}";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(from_dir,
                                RenderFlameGraphHtml(render_testing::SmallProfile(), options));
  EXPECT_THAT(from_dir, ::testing::StartsWith("<h1>checkout-service cpu</h1>{\"v\":1"));
}

}  // namespace
}  // namespace flamekit
