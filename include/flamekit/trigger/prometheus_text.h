// SPDX-License-Identifier: Apache-2.0
// File: prometheus_text.h
//
// The Prometheus text exposition format (version 0.0.4, what `/metrics`
// pages serve), for `flamekit watch --metric`. ParsePrometheusText() reads a
// whole page into samples with their family type (counter, gauge, ...);
// metric_selector.h picks series out of it.
//
// Thread-safety: all functions are thread-compatible (no shared state).
// Nothing here is async-signal-safe (allocation).
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(PrometheusPage page, ParsePrometheusText(body));
//   for (const PrometheusSample& s : page.samples) { ... s.name, s.value ... }

#ifndef FLAMEKIT_TRIGGER_PROMETHEUS_TEXT_H_
#define FLAMEKIT_TRIGGER_PROMETHEUS_TEXT_H_

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

namespace flamekit {

// MetricType
//
// The `# TYPE` of a metric family. Samples with no TYPE line are kUntyped,
// which watch treats like a gauge.
enum class MetricType { kUntyped, kCounter, kGauge, kHistogram, kSummary };

// MetricTypeName()
//
// "counter", "gauge", ... as the exposition format spells them.
absl::string_view MetricTypeName(MetricType type);

// PrometheusSample
//
// One line of a page: `name{labels} value [timestamp_ms]`. Labels keep
// page order, with escapes (\\, \", \n) already decoded.
struct PrometheusSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
  std::optional<int64_t> timestamp_ms;
  MetricType type = MetricType::kUntyped;  // from the family's # TYPE line
  int line = 0;                            // 1-based line number in the page
};

// PrometheusPage
//
// Every sample of a page, in page order, plus the HELP text per family.
struct PrometheusPage {
  std::vector<PrometheusSample> samples;
  absl::flat_hash_map<std::string, std::string> help;
  absl::flat_hash_map<std::string, MetricType> types;
};

// ParsePrometheusText()
//
// Parses a text-format page. Accepts blank lines, `# HELP`/`# TYPE` and
// other comments (OpenMetrics' # UNIT and # EOF too), CRLF line ends,
// labels in any order with a trailing comma, float values including NaN,
// +Inf and -Inf, an optional timestamp (integer milliseconds, or OpenMetrics
// seconds with a fraction) and an OpenMetrics exemplar after ` # `, ignored. Any malformed line fails the whole page (as
// Prometheus fails a scrape) with InvalidArgument naming the line, e.g.
// `line 7: expected '=' after label name "code"`. `source` (a URL or file
// name) prefixes the message when not empty.
absl::StatusOr<PrometheusPage> ParsePrometheusText(absl::string_view text,
                                                   absl::string_view source = "");

// Implementation details follow.

namespace trigger_internal {

inline bool IsMetricNameStart(char c) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
inline bool IsMetricNameChar(char c) {
  return IsMetricNameStart(c) || absl::ascii_isdigit(static_cast<unsigned char>(c));
}
inline bool IsLabelNameStart(char c) {
  return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_';
}
inline bool IsLabelNameChar(char c) {
  return IsLabelNameStart(c) || absl::ascii_isdigit(static_cast<unsigned char>(c));
}
inline bool IsBlank(char c) { return c == ' ' || c == '\t'; }

// A small cursor over one line; every Parse* returns false and sets error_
// with what was expected where.
class LineCursor {
 public:
  explicit LineCursor(absl::string_view line) : line_(line) {}

  bool done() const { return pos_ >= line_.size(); }
  char peek() const { return done() ? '\0' : line_[pos_]; }
  size_t pos() const { return pos_; }
  void SkipBlanks() {
    while (!done() && IsBlank(line_[pos_])) ++pos_;
  }
  bool Consume(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  absl::string_view TakeMetricName() {
    size_t start = pos_;
    if (done() || !IsMetricNameStart(line_[pos_])) return {};
    while (!done() && IsMetricNameChar(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  absl::string_view TakeLabelName() {
    size_t start = pos_;
    if (done() || !IsLabelNameStart(line_[pos_])) return {};
    while (!done() && IsLabelNameChar(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  absl::string_view TakeToken() {
    size_t start = pos_;
    while (!done() && !IsBlank(line_[pos_])) ++pos_;
    return line_.substr(start, pos_ - start);
  }
  // A double-quoted string with \\, \" and \n escapes (the exposition
  // format's; PromQL selectors use the same three here).
  bool TakeQuoted(std::string* out, std::string* error) {
    if (!Consume('"')) {
      *error = "expected '\"' to start a label value";
      return false;
    }
    out->clear();
    while (!done()) {
      char c = line_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (done()) break;
        char e = line_[pos_++];
        switch (e) {
          case '\\': out->push_back('\\'); break;
          case '"': out->push_back('"'); break;
          case 'n': out->push_back('\n'); break;
          default:
            *error = absl::StrCat("unknown escape '\\", std::string(1, e),
                                  "' in a label value (only \\\\, \\\" and \\n are allowed)");
            return false;
        }
        continue;
      }
      out->push_back(c);
    }
    *error = "label value is missing its closing '\"'";
    return false;
  }

 private:
  absl::string_view line_;
  size_t pos_ = 0;
};

// Go's strconv.ParseFloat as Prometheus uses it: decimal or hex floats,
// and Inf/NaN in any case with an optional sign.
inline bool ParseSampleValue(absl::string_view token, double* out) {
  if (token.empty()) return false;
  std::string lower = absl::AsciiStrToLower(token);
  absl::string_view body = lower;
  bool negative = false;
  if (!body.empty() && (body[0] == '+' || body[0] == '-')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == "inf" || body == "infinity") {
    *out = negative ? -std::numeric_limits<double>::infinity()
                    : std::numeric_limits<double>::infinity();
    return true;
  }
  if (body == "nan") {
    *out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  // strtod accepts "inf"/"nan" spellings handled above and also hex floats;
  // it must consume the whole token.
  std::string copy(token);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || copy.empty()) return false;
  *out = v;
  return true;
}

inline MetricType ParseTypeName(absl::string_view name, bool* ok) {
  *ok = true;
  if (name == "counter") return MetricType::kCounter;
  if (name == "gauge") return MetricType::kGauge;
  if (name == "histogram") return MetricType::kHistogram;
  if (name == "summary") return MetricType::kSummary;
  if (name == "untyped") return MetricType::kUntyped;
  *ok = false;
  return MetricType::kUntyped;
}

// The family a sample belongs to: its own name, or the name without a
// histogram/summary/counter suffix when that has a TYPE line.
inline MetricType TypeOfSample(const PrometheusPage& page, absl::string_view name) {
  auto it = page.types.find(name);
  if (it != page.types.end()) return it->second;
  for (absl::string_view suffix : {"_total", "_count", "_sum", "_bucket", "_created"}) {
    if (!absl::EndsWith(name, suffix)) continue;
    absl::string_view base = name.substr(0, name.size() - suffix.size());
    auto b = page.types.find(base);
    if (b == page.types.end()) continue;
    MetricType t = b->second;
    if (t == MetricType::kHistogram || t == MetricType::kSummary) {
      // _count, _sum and _bucket only grow: rate them like counters. A
      // summary's quantile series (no suffix) stays a gauge-like value.
      return MetricType::kCounter;
    }
    return t;
  }
  return MetricType::kUntyped;
}

inline absl::Status LineError(absl::string_view source, int line, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(source.empty() ? "" : absl::StrCat(source, ": "), "line ", line, ": ",
                   what));
}

}  // namespace trigger_internal

inline absl::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter: return "counter";
    case MetricType::kGauge: return "gauge";
    case MetricType::kHistogram: return "histogram";
    case MetricType::kSummary: return "summary";
    case MetricType::kUntyped: break;
  }
  return "untyped";
}

inline absl::StatusOr<PrometheusPage> ParsePrometheusText(absl::string_view text,
                                                          absl::string_view source) {
  using trigger_internal::LineCursor;
  using trigger_internal::LineError;
  PrometheusPage page;
  int line_number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    absl::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    absl::string_view trimmed = absl::StripAsciiWhitespace(line);
    if (trimmed.empty()) {
      if (end == text.size()) break;
      continue;
    }
    if (trimmed[0] == '#') {
      LineCursor c(trimmed.substr(1));
      c.SkipBlanks();
      absl::string_view keyword = c.TakeToken();
      if (keyword != "HELP" && keyword != "TYPE") continue;  // a plain comment
      c.SkipBlanks();
      absl::string_view name = c.TakeMetricName();
      if (name.empty()) {
        return LineError(source, line_number,
                         absl::StrCat("# ", keyword, " must be followed by a metric name"));
      }
      if (!c.done() && !trigger_internal::IsBlank(c.peek())) {
        return LineError(source, line_number,
                         absl::StrCat("invalid character '", std::string(1, c.peek()),
                                      "' in metric name after \"", name, "\""));
      }
      c.SkipBlanks();
      absl::string_view rest = trimmed.substr(1 + c.pos());
      if (keyword == "HELP") {
        // HELP text escapes only \\ and \n.
        std::string help;
        for (size_t i = 0; i < rest.size(); ++i) {
          if (rest[i] == '\\' && i + 1 < rest.size() &&
              (rest[i + 1] == '\\' || rest[i + 1] == 'n')) {
            help.push_back(rest[i + 1] == 'n' ? '\n' : '\\');
            ++i;
          } else {
            help.push_back(rest[i]);
          }
        }
        page.help[std::string(name)] = std::move(help);
        continue;
      }
      bool ok = false;
      MetricType type = trigger_internal::ParseTypeName(absl::StripAsciiWhitespace(rest), &ok);
      if (!ok) {
        return LineError(source, line_number,
                         absl::StrCat("unknown metric type \"", absl::StripAsciiWhitespace(rest),
                                      "\" for ", name,
                                      " (expected counter, gauge, histogram, summary or untyped)"));
      }
      if (!page.types.emplace(std::string(name), type).second) {
        return LineError(source, line_number,
                         absl::StrCat("second # TYPE line for ", name));
      }
      continue;
    }

    PrometheusSample sample;
    sample.line = line_number;
    LineCursor c(trimmed);
    absl::string_view name = c.TakeMetricName();
    if (name.empty()) {
      return LineError(source, line_number,
                       absl::StrCat("expected a metric name, found '", std::string(1, c.peek()),
                                    "' (names match [a-zA-Z_:][a-zA-Z0-9_:]*)"));
    }
    sample.name = std::string(name);
    if (!c.done() && !trigger_internal::IsBlank(c.peek()) && c.peek() != '{') {
      return LineError(source, line_number,
                       absl::StrCat("invalid character '", std::string(1, c.peek()),
                                    "' after metric name \"", name, "\""));
    }
    c.SkipBlanks();
    if (c.Consume('{')) {
      while (true) {
        c.SkipBlanks();
        if (c.Consume('}')) break;
        absl::string_view label = c.TakeLabelName();
        if (label.empty()) {
          if (c.done()) {
            return LineError(source, line_number, "label set is missing its closing '}'");
          }
          return LineError(source, line_number,
                           absl::StrCat("expected a label name, found '",
                                        std::string(1, c.peek()), "'"));
        }
        c.SkipBlanks();
        if (!c.Consume('=')) {
          return LineError(source, line_number,
                           absl::StrCat("expected '=' after label name \"", label, "\""));
        }
        c.SkipBlanks();
        std::string value, error;
        if (!c.TakeQuoted(&value, &error)) {
          return LineError(source, line_number,
                           absl::StrCat(error, " (label \"", label, "\")"));
        }
        for (const auto& existing : sample.labels) {
          if (existing.first == label) {
            return LineError(source, line_number,
                             absl::StrCat("label \"", label, "\" appears twice"));
          }
        }
        sample.labels.emplace_back(std::string(label), std::move(value));
        c.SkipBlanks();
        if (c.Consume(',')) continue;
        if (c.Consume('}')) break;
        return LineError(source, line_number,
                         c.done() ? std::string("label set is missing its closing '}'")
                                  : absl::StrCat("expected ',' or '}' after label \"", label,
                                                 "\", found '", std::string(1, c.peek()), "'"));
      }
    }
    c.SkipBlanks();
    absl::string_view value_token = c.TakeToken();
    if (value_token.empty()) {
      return LineError(source, line_number, absl::StrCat("metric ", name, " has no value"));
    }
    if (!trigger_internal::ParseSampleValue(value_token, &sample.value)) {
      return LineError(source, line_number,
                       absl::StrCat("value \"", value_token, "\" of ", name,
                                    " is not a number (expected e.g. 12, 1.5e3, +Inf, NaN)"));
    }
    c.SkipBlanks();
    if (!c.done() && c.peek() != '#') {
      absl::string_view ts = c.TakeToken();
      int64_t ms = 0;
      double seconds = 0;
      if (absl::SimpleAtoi(ts, &ms)) {
        sample.timestamp_ms = ms;
      } else if (absl::SimpleAtod(ts, &seconds) && std::isfinite(seconds) &&
                 std::fabs(seconds) < 9.0e15) {
        // OpenMetrics writes seconds with a fraction ("1700000000.123").
        sample.timestamp_ms = static_cast<int64_t>(std::llround(seconds * 1000));
      } else {
        return LineError(source, line_number,
                         absl::StrCat("timestamp \"", ts, "\" of ", name,
                                      " is not a number (milliseconds, or seconds with a "
                                      "fraction)"));
      }
      c.SkipBlanks();
    }
    // An OpenMetrics exemplar (` # {trace_id="..."} 1.0`) may follow; the
    // trigger does not use it.
    if (!c.done() && c.peek() != '#') {
      return LineError(source, line_number,
                       absl::StrCat("unexpected text after the timestamp of ", name));
    }
    page.samples.push_back(std::move(sample));
    if (end == text.size()) break;
  }
  for (PrometheusSample& s : page.samples) {
    s.type = trigger_internal::TypeOfSample(page, s.name);
  }
  return page;
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_PROMETHEUS_TEXT_H_
