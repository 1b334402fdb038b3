// SPDX-License-Identifier: Apache-2.0
// Tests of the embedded templates (templates.h, generated from
// templates/*.mustache) and of RenderOptions::templates_dir.

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "flamekit/render/page_template.h"
#include "flamekit/render/templates.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string SourceTemplatePath(const char* file_name) {
  return std::string(getenv("TEST_SRCDIR")) + "/flamekit/templates/" + file_name;
}

TEST(TemplatesTest, DelimiterNeverOccursInATemplate) {
  ASSERT_GE(std::size(kTemplateFiles), 2u);
  for (const EmbeddedTemplate& entry : kTemplateFiles) {
    std::string source = ReadFile(SourceTemplatePath(entry.file_name));
    ASSERT_FALSE(source.empty()) << entry.file_name;
    EXPECT_EQ(source.find(")FKTPL\""), std::string::npos) << entry.file_name;
  }
}

TEST(TemplatesTest, EmbeddedCopyMatchesTheSourceFile) {
  for (const EmbeddedTemplate& entry : kTemplateFiles) {
    EXPECT_EQ(std::string(entry.text), ReadFile(SourceTemplatePath(entry.file_name)))
        << entry.file_name << " is stale: rebuild";
  }
}

TEST(TemplatesTest, EveryShippedTemplateParses) {
  for (const EmbeddedTemplate& entry : kTemplateFiles) {
    kainjow::mustache::mustache tmpl{std::string(entry.text)};
    EXPECT_TRUE(tmpl.is_valid()) << entry.file_name << ": " << tmpl.error_message();
  }
}

TEST(TemplatesTest, FlameGraphTemplateIsNamedAndSelfContained) {
  std::string html = kFlameGraphHtmlTemplate;
  EXPECT_THAT(html, HasSubstr("{{{frames_json}}}"));
  EXPECT_THAT(html, HasSubstr("{{title}}"));
  // No network: nothing loaded from elsewhere.
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("@import"), std::string::npos);
}

class TemplatesDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fk_templates_XXXXXX";
    const char* tmpdir = getenv("TEST_TMPDIR");
    dir_ = tmpdir != nullptr ? std::string(tmpdir) + "/templates" : std::string(mkdtemp(pattern));
    mkdir(dir_.c_str(), 0755);
  }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
  }
  std::string dir_;
};

TEST_F(TemplatesDirTest, OverrideIsUsed) {
  Write("flame_graph.html.mustache", "<p>{{title}}</p>");
  RenderOptions options;
  options.templates_dir = dir_;
  kainjow::mustache::data data;
  data.set("title", "a<b");
  absl::StatusOr<std::string> out =
      render_internal::RenderTemplate("flame_graph.html.mustache", data, options);
  ASSERT_THAT(out, IsOk());
  EXPECT_EQ(*out, "<p>a&lt;b</p>");
}

TEST_F(TemplatesDirTest, MissingOverrideSaysWhatToDo) {
  RenderOptions options;
  options.templates_dir = dir_ + "/nope";
  EXPECT_THAT(render_internal::LoadTemplate("flame_graph.html.mustache", options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("--templates_dir")));
}

TEST_F(TemplatesDirTest, BrokenOverrideIsInvalidArgument) {
  Write("flame_graph.svg.mustache", "{{#open}} never closed");
  RenderOptions options;
  options.templates_dir = dir_;
  EXPECT_THAT(render_internal::RenderTemplate("flame_graph.svg.mustache", {}, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not parse")));
}

TEST(TemplatesTest, UnknownEmbeddedTemplateIsInternal) {
  EXPECT_THAT(render_internal::LoadTemplate("nope.mustache", {}),
              StatusIs(absl::StatusCode::kInternal));
}

}  // namespace
}  // namespace flamekit
