// SPDX-License-Identifier: Apache-2.0
#include "flamekit/trigger/metric_selector.h"
#include "flamekit/trigger/prometheus_text.h"

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/testing/status_matchers.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadTestdata(const std::string& name) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  std::string path = std::string(srcdir ? srcdir : ".") + "/flamekit/testdata/trigger/" + name;
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_FALSE(ss.str().empty()) << "cannot read " << path;
  return ss.str();
}

const PrometheusSample* Find(const PrometheusPage& page, absl::string_view name,
                             absl::string_view label = "", absl::string_view value = "") {
  for (const PrometheusSample& s : page.samples) {
    if (s.name != name) continue;
    if (label.empty()) return &s;
    for (const auto& l : s.labels) {
      if (l.first == label && l.second == value) return &s;
    }
  }
  return nullptr;
}

TEST(PrometheusTextTest, ParsesARealisticPage) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PrometheusPage page,
                                ParsePrometheusText(ReadTestdata("service_metrics.prom")));
  EXPECT_EQ(page.samples.size(), 21u);
  const PrometheusSample* g = Find(page, "go_goroutines");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->value, 42);
  EXPECT_EQ(g->type, MetricType::kGauge);
  EXPECT_EQ(page.help.at("go_goroutines"), "Number of goroutines that currently exist.");

  const PrometheusSample* ok = Find(page, "http_requests_total", "code", "200");
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(ok->type, MetricType::kCounter);
  EXPECT_EQ(ok->value, 1027);
  ASSERT_TRUE(ok->timestamp_ms.has_value());
  EXPECT_EQ(*ok->timestamp_ms, 1395066363000);
  ASSERT_EQ(ok->labels.size(), 2u);
  EXPECT_EQ(ok->labels[1].first, "method");

  // Histogram and summary series that only grow are rated like counters;
  // quantiles are not.
  EXPECT_EQ(Find(page, "request_seconds_bucket")->type, MetricType::kCounter);
  EXPECT_EQ(Find(page, "request_seconds_count")->type, MetricType::kCounter);
  EXPECT_EQ(Find(page, "rpc_duration_seconds_sum")->type, MetricType::kCounter);
  EXPECT_EQ(Find(page, "rpc_duration_seconds")->type, MetricType::kSummary);
  EXPECT_EQ(Find(page, "rpc_duration_seconds_sum")->value, 1.7560473e+07);
  EXPECT_EQ(Find(page, "queue_depth")->type, MetricType::kUntyped);

  const PrometheusSample* ms = Find(page, "msdos_file_access_time_seconds");
  ASSERT_NE(ms, nullptr);
  EXPECT_EQ(ms->labels[0].second, "C:\\DIR\\FILE.TXT");
  EXPECT_EQ(ms->labels[1].second, "Cannot find file:\n\"FILE.TXT\"");
  EXPECT_EQ(page.help.at("msdos_file_access_time_seconds"),
            "Access time\\ with a backslash\nand a newline.");

  EXPECT_TRUE(std::isinf(Find(page, "temperature_celsius")->value));
  EXPECT_LT(Find(page, "temperature_celsius")->value, 0);
  EXPECT_TRUE(std::isnan(Find(page, "ratio")->value));
  EXPECT_TRUE(std::isinf(Find(page, "headroom")->value));
  EXPECT_GT(Find(page, "headroom")->value, 0);
  EXPECT_EQ(Find(page, "request_seconds_bucket", "le", "+Inf")->value, 144320);
}

TEST(PrometheusTextTest, AcceptsFormattingVariants) {
  struct Case {
    const char* text;
    double value;
    size_t labels;
  };
  for (const Case& c : std::vector<Case>{
           {"m 1", 1, 0},
           {"m 1\n", 1, 0},
           {"m 1\r\n", 1, 0},
           {"  m   1.5  ", 1.5, 0},
           {"m\t-2e3", -2000, 0},
           {"m{} 3", 3, 0},
           {"m{a=\"x\"} 4", 4, 1},
           {"m{ a = \"x\" , b=\"y\", } 5 1700000000000", 5, 2},
           {"m{a=\"}\"} 6", 6, 1},
           {"m{a=\"a,b=c\"} 7", 7, 1},
           {"m +inf", INFINITY, 0},
           {"m Inf", INFINITY, 0},
           {"m 0x10", 16, 0},
           {"\n\n# just a comment\n#\nm 8\n\n", 8, 0},
           {"# TYPE m gauge\n# HELP m\nm 9", 9, 0},
           {"ns:sub_metric 10", 10, 0},
           {"m_bucket{le=\"0.5\"} 11 # {trace_id=\"ab\"} 0.4 1.6e9", 11, 1},
           {"m 12 1700000000000 # {a=\"b\"} 1", 12, 0},
           {"# TYPE m counter\n# UNIT m seconds\nm_total 13\n# EOF", 13, 0},
       }) {
    absl::StatusOr<PrometheusPage> page = ParsePrometheusText(c.text);
    ASSERT_THAT(page.status(), IsOk()) << "text: " << c.text;
    ASSERT_EQ(page->samples.size(), 1u) << "text: " << c.text;
    EXPECT_EQ(page->samples[0].value, c.value) << "text: " << c.text;
    EXPECT_EQ(page->samples[0].labels.size(), c.labels) << "text: " << c.text;
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PrometheusPage empty, ParsePrometheusText(""));
  EXPECT_TRUE(empty.samples.empty());
}

TEST(PrometheusTextTest, MalformedLinesNameTheLine) {
  struct Case {
    const char* text;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"ok 1\n9bad 1", "line 2: expected a metric name"},
           {"m", "line 1: metric m has no value"},
           {"m abc", "line 1: value \"abc\" of m is not a number"},
           {"m 1 2 3", "line 1: unexpected text after the timestamp"},
           {"m 1 soon", "line 1: timestamp \"soon\" of m is not a number"},
           {"m{a=\"x\" 1", "line 1: expected ',' or '}' after label \"a\""},
           {"m{a=\"x\",", "line 1: label set is missing its closing '}'"},
           {"m{a=x} 1", "line 1: expected '\"' to start a label value (label \"a\")"},
           {"m{a \"x\"} 1", "line 1: expected '=' after label name \"a\""},
           {"m{a=\"x} 1", "line 1: label value is missing its closing '\"'"},
           {"m{a=\"\\q\"} 1", "line 1: unknown escape '\\q'"},
           {"m{a=\"1\",a=\"2\"} 1", "line 1: label \"a\" appears twice"},
           {"m{1a=\"x\"} 1", "line 1: expected a label name, found '1'"},
           {"m-x 1", "line 1: invalid character '-' after metric name \"m\""},
           {"# TYPE m gauge\n# TYPE m counter\nm 1", "line 2: second # TYPE line for m"},
           {"# TYPE m meter\nm 1", "line 1: unknown metric type \"meter\" for m"},
           {"# TYPE\nm 1", "line 1: # TYPE must be followed by a metric name"},
           {"a 1\nb 2\r\nc 3\n\nd{", "line 5: label set is missing its closing '}'"},
       }) {
    absl::StatusOr<PrometheusPage> page = ParsePrometheusText(c.text, "http://x/metrics");
    EXPECT_THAT(page.status(), StatusIs(absl::StatusCode::kInvalidArgument))
        << "text: " << c.text;
    EXPECT_THAT(std::string(page.status().message()), HasSubstr(c.message))
        << "text: " << c.text;
    EXPECT_THAT(std::string(page.status().message()), HasSubstr("http://x/metrics: line "));
  }
}

TEST(PrometheusTextTest, TimestampsInMillisecondsOrOpenMetricsSeconds) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PrometheusPage page,
                                ParsePrometheusText("a 1 1700000000123\nb 2 1700000000.123\n"));
  ASSERT_EQ(page.samples.size(), 2u);
  EXPECT_EQ(*page.samples[0].timestamp_ms, 1700000000123);
  EXPECT_EQ(*page.samples[1].timestamp_ms, 1700000000123);
}

TEST(MetricSelectorTest, ParsesAndNormalises) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(MetricSelector s, MetricSelector::Parse("up"));
  EXPECT_EQ(s.name(), "up");
  EXPECT_TRUE(s.matchers().empty());
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      s, MetricSelector::Parse(R"( x_total{ code =~ "5..", m!="GET",q!~"a|b", z="q\"" } )"));
  EXPECT_EQ(s.name(), "x_total");
  ASSERT_EQ(s.matchers().size(), 4u);
  EXPECT_EQ(s.matchers()[0].op, LabelMatcher::Op::kRegexMatch);
  EXPECT_EQ(s.matchers()[1].op, LabelMatcher::Op::kNotEqual);
  EXPECT_EQ(s.matchers()[2].op, LabelMatcher::Op::kRegexNoMatch);
  EXPECT_EQ(s.matchers()[3].value, "q\"");
  EXPECT_EQ(s.text(), R"(x_total{code=~"5..",m!="GET",q!~"a|b",z="q\""})");
}

TEST(MetricSelectorTest, RejectsBadSelectors) {
  for (const char* bad : {"", "{a=\"b\"}", "m{a}", "m{a=b}", "m{a=\"b\"", "m{a=\"b\"} x",
                          "m{a!\"b\"}", "m{a==\"b\"}"}) {
    EXPECT_THAT(MetricSelector::Parse(bad).status(),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  absl::Status re = MetricSelector::Parse(R"(m{a=~"(x"})").status();
  EXPECT_THAT(re, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(re.message()), HasSubstr("invalid regular expression \"(x\""));
  EXPECT_THAT(std::string(re.message()), HasSubstr("missing )"));
}

TEST(MetricSelectorTest, SelectsAndSumsMatchingSeries) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PrometheusPage page,
                                ParsePrometheusText(ReadTestdata("service_metrics.prom")));
  struct Case {
    const char* selector;
    double sum;
    int series;
  };
  for (const Case& c : std::vector<Case>{
           {"http_requests_total", 1027 + 3 + 4 + 12, 4},
           {R"(http_requests_total{code=~"5.."})", 7, 2},
           {R"(http_requests_total{code=~"5"})", 0, 0},  // anchored: no partial match
           {R"(http_requests_total{code!~"5..",method="POST"})", 12, 1},
           {R"(http_requests_total{code!="200"})", 7, 2},
           {R"(queue_depth{queue=~"inbound.*"})", 9, 2},
           {R"(queue_depth{queue="inbound"})", 7, 1},
           {R"(go_goroutines{job=""})", 42, 1},  // absent label == ""
           {R"(go_goroutines{job=~".+"})", 0, 0},
       }) {
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(MetricSelector sel, MetricSelector::Parse(c.selector));
    absl::StatusOr<SelectedValue> v = SelectValue(page, sel);
    if (c.series == 0) {
      EXPECT_THAT(v.status(), StatusIs(absl::StatusCode::kNotFound)) << c.selector;
      EXPECT_THAT(std::string(v.status().message()), HasSubstr("matches")) << c.selector;
      continue;
    }
    ASSERT_THAT(v.status(), IsOk()) << c.selector;
    EXPECT_EQ(v->value, c.sum) << c.selector;
    EXPECT_EQ(v->series, c.series) << c.selector;
  }
}

TEST(MetricSelectorTest, UnknownMetricSuggestsNeighbours) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(PrometheusPage page,
                                ParsePrometheusText(ReadTestdata("service_metrics.prom")));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(MetricSelector sel,
                                MetricSelector::Parse("http_request_total"));
  absl::Status s = SelectValue(page, sel).status();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown metric http_request_total"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("did you mean http_requests_total"));
}

}  // namespace
}  // namespace flamekit
