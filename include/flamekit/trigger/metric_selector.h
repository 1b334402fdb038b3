// SPDX-License-Identifier: Apache-2.0
// File: metric_selector.h
//
// Metric selectors in PromQL's instant-vector syntax
// (`http_requests_total{code=~"5..",method="GET"}`) over a page that
// prometheus_text.h parsed: MetricSelector picks the series a trigger
// watches; SelectValue() sums the matching series into one value.
//
// Thread-safety: all functions are thread-compatible (no shared state); a
// MetricSelector is immutable after Parse() and may be shared between
// threads. Nothing here is async-signal-safe (allocation, RE2).
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(PrometheusPage page, ParsePrometheusText(body));
//   FLAMEKIT_ASSIGN_OR_RETURN(MetricSelector sel,
//       MetricSelector::Parse(R"(queue_depth{queue=~"in.*"})"));
//   FLAMEKIT_ASSIGN_OR_RETURN(SelectedValue v, SelectValue(page, sel));
//   // v.value is the sum over matching series; v.type says gauge/counter.

#ifndef FLAMEKIT_TRIGGER_METRIC_SELECTOR_H_
#define FLAMEKIT_TRIGGER_METRIC_SELECTOR_H_


#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "re2/re2.h"

#include "flamekit/trigger/prometheus_text.h"

namespace flamekit {

// LabelMatcher
//
// One `label op "value"` term of a selector: =, !=, =~ (RE2, anchored at
// both ends as in PromQL) or !~.
struct LabelMatcher {
  enum class Op { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };
  std::string label;
  Op op = Op::kEqual;
  std::string value;
  std::shared_ptr<const RE2> regex;  // set for the two regex ops
};

// MetricSelector
//
// `metric_name{label=~"re",other="x"}`; the braces are optional. A label
// that is absent from a series matches as the empty string (PromQL's rule),
// so `{env=""}` selects series without `env`.
class MetricSelector {
 public:
  // Parse()
  //
  // Parses a selector; a bad one gives InvalidArgument saying where, and a
  // bad regular expression gives RE2's own message.
  static absl::StatusOr<MetricSelector> Parse(absl::string_view text);

  // Matches()
  //
  // Whether `sample` has this selector's name and satisfies every matcher.
  bool Matches(const PrometheusSample& sample) const;

  const std::string& name() const { return name_; }
  const std::vector<LabelMatcher>& matchers() const { return matchers_; }
  // The selector as written (normalised), for logs and file names.
  const std::string& text() const { return text_; }

 private:
  std::string name_;
  std::vector<LabelMatcher> matchers_;
  std::string text_;
};

// SelectedValue
//
// What SelectValue() found: the sum of the matching series' values, how
// many series matched, and the family type (kCounter also for a
// histogram's or summary's _count/_sum/_bucket series, which only grow).
struct SelectedValue {
  double value = 0;
  int series = 0;
  MetricType type = MetricType::kUntyped;
  bool cumulative() const { return type == MetricType::kCounter; }
};

// SelectValue()
//
// Sums the samples `selector` matches. NotFound when none does, naming the
// closest metric names on the page (an unknown metric or a typo in a label
// value should be obvious from the message).
absl::StatusOr<SelectedValue> SelectValue(const PrometheusPage& page,
                                          const MetricSelector& selector);

// Implementation details follow.

namespace trigger_internal {

// Levenshtein distance, for "did you mean" suggestions.
inline size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

inline std::string QuoteLabelValue(absl::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out.push_back(c);
  }
  out += "\"";
  return out;
}

}  // namespace trigger_internal

inline absl::StatusOr<MetricSelector> MetricSelector::Parse(absl::string_view text) {
  using trigger_internal::LineCursor;
  absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  auto bad = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metric selector '", trimmed, "': ", what,
        " (expected e.g. http_requests_total{code=~\"5..\",method=\"GET\"})"));
  };
  MetricSelector sel;
  LineCursor c(trimmed);
  absl::string_view name = c.TakeMetricName();
  if (name.empty()) return bad("expected a metric name first");
  sel.name_ = std::string(name);
  c.SkipBlanks();
  if (c.Consume('{')) {
    while (true) {
      c.SkipBlanks();
      if (c.Consume('}')) break;
      absl::string_view label = c.TakeLabelName();
      if (label.empty()) return bad("expected a label name");
      c.SkipBlanks();
      LabelMatcher m;
      m.label = std::string(label);
      if (c.Consume('=')) {
        m.op = c.Consume('~') ? LabelMatcher::Op::kRegexMatch : LabelMatcher::Op::kEqual;
      } else if (c.Consume('!')) {
        if (c.Consume('=')) {
          m.op = LabelMatcher::Op::kNotEqual;
        } else if (c.Consume('~')) {
          m.op = LabelMatcher::Op::kRegexNoMatch;
        } else {
          return bad(absl::StrCat("expected != or !~ after label \"", label, "\""));
        }
      } else {
        return bad(absl::StrCat("expected =, !=, =~ or !~ after label \"", label, "\""));
      }
      c.SkipBlanks();
      std::string error;
      if (!c.TakeQuoted(&m.value, &error)) return bad(error);
      if (m.op == LabelMatcher::Op::kRegexMatch || m.op == LabelMatcher::Op::kRegexNoMatch) {
        // PromQL anchors label regexes at both ends.
        auto re = std::make_shared<RE2>(absl::StrCat("^(?:", m.value, ")$"), RE2::Quiet);
        if (!re->ok()) {
          return bad(absl::StrCat("invalid regular expression \"", m.value,
                                  "\" for label \"", label, "\": ", re->error()));
        }
        m.regex = std::move(re);
      }
      sel.matchers_.push_back(std::move(m));
      c.SkipBlanks();
      if (c.Consume(',')) continue;
      if (c.Consume('}')) break;
      return bad("expected ',' or '}' after a label matcher");
    }
  }
  c.SkipBlanks();
  if (!c.done()) return bad("unexpected text after the selector");
  std::vector<std::string> parts;
  for (const LabelMatcher& m : sel.matchers_) {
    const char* op = m.op == LabelMatcher::Op::kEqual      ? "="
                     : m.op == LabelMatcher::Op::kNotEqual ? "!="
                     : m.op == LabelMatcher::Op::kRegexMatch ? "=~"
                                                             : "!~";
    parts.push_back(absl::StrCat(m.label, op, trigger_internal::QuoteLabelValue(m.value)));
  }
  sel.text_ = parts.empty() ? sel.name_
                            : absl::StrCat(sel.name_, "{", absl::StrJoin(parts, ","), "}");
  return sel;
}

inline bool MetricSelector::Matches(const PrometheusSample& sample) const {
  if (sample.name != name_) return false;
  for (const LabelMatcher& m : matchers_) {
    absl::string_view value;  // absent label == ""
    for (const auto& label : sample.labels) {
      if (label.first == m.label) {
        value = label.second;
        break;
      }
    }
    bool ok = false;
    switch (m.op) {
      case LabelMatcher::Op::kEqual: ok = value == m.value; break;
      case LabelMatcher::Op::kNotEqual: ok = value != m.value; break;
      case LabelMatcher::Op::kRegexMatch:
        ok = RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *m.regex);
        break;
      case LabelMatcher::Op::kRegexNoMatch:
        ok = !RE2::FullMatch(re2::StringPiece(value.data(), value.size()), *m.regex);
        break;
    }
    if (!ok) return false;
  }
  return true;
}

inline absl::StatusOr<SelectedValue> SelectValue(const PrometheusPage& page,
                                                 const MetricSelector& selector) {
  SelectedValue result;
  bool name_seen = false;
  for (const PrometheusSample& s : page.samples) {
    if (s.name == selector.name()) name_seen = true;
    if (!selector.Matches(s)) continue;
    result.value += s.value;
    result.type = s.type;
    ++result.series;
  }
  if (result.series > 0) return result;
  if (name_seen) {
    return absl::NotFoundError(absl::StrCat(
        "no series of ", selector.name(), " matches ", selector.text(),
        "; check the label matchers against the page"));
  }
  // Suggest the closest names (distance <= a third of the name, at most 3).
  std::vector<std::pair<size_t, std::string>> near;
  absl::flat_hash_map<std::string, bool> seen;
  for (const PrometheusSample& s : page.samples) {
    if (!seen.emplace(s.name, true).second) continue;
    size_t d = trigger_internal::EditDistance(s.name, selector.name());
    if (d <= std::max<size_t>(2, selector.name().size() / 3) ||
        absl::StrContains(s.name, selector.name())) {
      near.emplace_back(d, s.name);
    }
  }
  std::sort(near.begin(), near.end());
  if (near.size() > 3) near.resize(3);
  std::vector<std::string> names;
  for (auto& n : near) names.push_back(n.second);
  return absl::NotFoundError(absl::StrCat(
      "unknown metric ", selector.name(), ": the page has no such series (",
      page.samples.size(), " samples)",
      names.empty() ? std::string("") : absl::StrCat("; did you mean ", absl::StrJoin(names, ", "), "?")));
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_METRIC_SELECTOR_H_
