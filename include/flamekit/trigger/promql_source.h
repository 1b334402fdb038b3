// SPDX-License-Identifier: Apache-2.0
// File: promql_source.h
//
// PromQlSource: a MetricSource that evaluates one PromQL expression as an
// instant query against a Prometheus server's HTTP API
// (`GET /api/v1/query?query=...&timeout=...`, API v1 as served by
// Prometheus 2.x; tested against Debian's prometheus 2.42), for
// `flamekit watch --prometheus URL --query Q`.
//
// What a poll returns:
//   scalar                  its value
//   vector, one series      its value
//   vector, several series  the one furthest beyond the line: the largest
//                           for --above, the smallest for --below ("any
//                           series crosses"); write sum(...) or max(...)
//                           in the query to choose otherwise
//   vector, no series       NotFound "returned no series": the watch keeps
//                           polling (a series may appear later); put the
//                           threshold in --above/--below, not in the query
//                           (`x > 5` returns nothing below 5)
//   matrix or string        InvalidArgument: ask for an instant vector
//   NaN                     a value that never satisfies the trigger
// Failures: Unavailable when the server is down or the HTTP request times
// out (bounded by `timeout`; the watch keeps polling and logs it once),
// DeadlineExceeded when Prometheus itself gave up on the query (the same
// `timeout` is passed as its query timeout), InvalidArgument when it
// refused the query (bad_data: the message is Prometheus' own), and
// PermissionDenied for 401/403.
//
// Thread-safety: thread-compatible (one thread polls). Poll() blocks for at
// most about `timeout`. Not async-signal-safe.
//
// Example:
//
//   PromQlSource src("http://127.0.0.1:9090",
//                    "rate(process_cpu_seconds_total{job=\"api\"}[30s])",
//                    TriggerDirection::kAbove, absl::Seconds(2));
//   absl::StatusOr<std::optional<double>> v = src.Poll();

#ifndef FLAMEKIT_TRIGGER_PROMQL_SOURCE_H_
#define FLAMEKIT_TRIGGER_PROMQL_SOURCE_H_

#include <cmath>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "flamekit/trigger/http_fetch.h"
#include "flamekit/trigger/metric_source.h"
#include "flamekit/trigger/trigger_state.h"

namespace flamekit {

// PromQlSeries: one element of an instant query's result.
struct PromQlSeries {
  std::string labels;  // `{job="api",instance="..."}`, "" for a scalar
  double value = 0;
};

// ParsePromQlResponse()
//
// The series of an /api/v1/query response with HTTP status `http_status`
// and JSON `body`, or the error it carries (see the file comment for the
// codes). `query` is only for messages.
absl::StatusOr<std::vector<PromQlSeries>> ParsePromQlResponse(int http_status,
                                                              absl::string_view body,
                                                              absl::string_view query);

// PromQlQueryUrl()
//
// `<base>/api/v1/query?query=<escaped>&timeout=<ms>ms`; `base` may end in
// '/' and may carry a path prefix (a Prometheus behind --web.route-prefix).
std::string PromQlQueryUrl(absl::string_view base, absl::string_view query,
                           absl::Duration timeout);

// QueryFetcher: GETs a URL (HttpGet() in production).
using QueryFetcher = std::function<absl::StatusOr<HttpResponse>(const std::string& url)>;

// PromQlSource
class PromQlSource : public MetricSource {
 public:
  // With no `fetch`, polls through HttpGet() with `timeout` and `token`.
  PromQlSource(std::string base_url, std::string query, TriggerDirection direction,
               absl::Duration timeout, std::string token = "", QueryFetcher fetch = nullptr);

  absl::StatusOr<std::optional<double>> Poll() override;
  // "promql": queries are rarely file-name-safe; the log keeps the query.
  std::string Name() const override { return "promql"; }
  std::string Describe() const override {
    return absl::StrCat("PromQL '", query_, "' at ", base_url_);
  }
  // The labels of the series the last successful poll took its value from.
  const std::string& last_series() const { return last_series_; }

 private:
  std::string base_url_;
  std::string query_;
  TriggerDirection direction_;
  absl::Duration timeout_;
  QueryFetcher fetch_;
  std::string last_series_;
};

// Implementation details follow.

namespace trigger_internal {

// UrlEscape() is in http_fetch.h (the pusher needs it without the JSON).

// Prometheus writes sample values as strings: "1.5", "NaN", "+Inf", "-Inf".
inline bool ParsePromValue(const nlohmann::json& v, double* out) {
  if (!v.is_string()) return false;
  const std::string& s = v.get_ref<const std::string&>();
  if (s == "NaN") { *out = std::nan(""); return true; }
  if (s == "+Inf" || s == "Inf") { *out = HUGE_VAL; return true; }
  if (s == "-Inf") { *out = -HUGE_VAL; return true; }
  return absl::SimpleAtod(s, out);
}

inline std::string SeriesLabels(const nlohmann::json& metric) {
  if (!metric.is_object() || metric.empty()) return "{}";
  std::string out = "{";
  bool first = true;
  for (auto it = metric.begin(); it != metric.end(); ++it) {
    if (!first) out += ",";
    first = false;
    absl::StrAppend(&out, it.key(), "=\"",
                    it.value().is_string() ? it.value().get<std::string>() : "", "\"");
  }
  return out + "}";
}

}  // namespace trigger_internal

inline std::string PromQlQueryUrl(absl::string_view base, absl::string_view query,
                                  absl::Duration timeout) {
  absl::ConsumeSuffix(&base, "/");
  return absl::StrCat(base, "/api/v1/query?query=", trigger_internal::UrlEscape(query),
                      "&timeout=", std::max<int64_t>(1, absl::ToInt64Milliseconds(timeout)),
                      "ms");
}

inline absl::StatusOr<std::vector<PromQlSeries>> ParsePromQlResponse(int http_status,
                                                                     absl::string_view body,
                                                                     absl::string_view query) {
  if (http_status == 401 || http_status == 403) {
    return absl::PermissionDeniedError(absl::StrCat(
        "Prometheus answered HTTP ", http_status,
        "; pass --token TOKEN (or FLAMEKIT_TOKEN) if it sits behind an authenticating proxy"));
  }
  nlohmann::json doc = nlohmann::json::parse(body.begin(), body.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("status")) {
    return absl::UnavailableError(absl::StrCat(
        "HTTP ", http_status, " without a Prometheus API answer (",
        body.substr(0, 80), "); is --prometheus the server's base URL, e.g. "
        "http://127.0.0.1:9090?"));
  }
  if (doc["status"] != "success") {
    std::string type = doc.value("errorType", "");
    std::string error = doc.value("error", "");
    std::string what = absl::StrCat("Prometheus refused '", query, "': ", error);
    if (type == "timeout") {
      return absl::DeadlineExceededError(absl::StrCat(
          what, "; the query took too long: simplify it or poll less often (--every)"));
    }
    if (type == "bad_data") {
      return absl::InvalidArgumentError(
          absl::StrCat(what, "; try the query in Prometheus' /graph page"));
    }
    return absl::UnavailableError(absl::StrCat(what, " (", type, ", HTTP ", http_status, ")"));
  }
  const nlohmann::json* data = doc.contains("data") ? &doc["data"] : nullptr;
  if (data == nullptr || !data->is_object()) {
    return absl::UnavailableError("Prometheus answered success without data");
  }
  std::string type = data->value("resultType", "");
  const nlohmann::json& result = (*data)["result"];
  std::vector<PromQlSeries> out;
  if (type == "scalar") {
    double v = 0;
    if (!result.is_array() || result.size() != 2 || !trigger_internal::ParsePromValue(result[1], &v)) {
      return absl::UnavailableError("malformed scalar in Prometheus' answer");
    }
    out.push_back({"", v});
    return out;
  }
  if (type != "vector") {
    return absl::InvalidArgumentError(absl::StrCat(
        "'", query, "' gives a ", type.empty() ? "missing" : type,
        " result; watch needs an instant vector or a scalar (drop a trailing [range], or "
        "wrap it as rate(...[range]))"));
  }
  if (!result.is_array()) return absl::UnavailableError("malformed vector in Prometheus' answer");
  for (const nlohmann::json& s : result) {
    double v = 0;
    if (!s.is_object() || !s.contains("value") || !s["value"].is_array() ||
        s["value"].size() != 2 || !trigger_internal::ParsePromValue(s["value"][1], &v)) {
      return absl::UnavailableError("malformed sample in Prometheus' answer");
    }
    out.push_back({trigger_internal::SeriesLabels(s.value("metric", nlohmann::json::object())),
                   v});
  }
  return out;
}

inline PromQlSource::PromQlSource(std::string base_url, std::string query,
                                  TriggerDirection direction, absl::Duration timeout,
                                  std::string token, QueryFetcher fetch)
    : base_url_(std::move(base_url)),
      query_(std::move(query)),
      direction_(direction),
      timeout_(timeout),
      fetch_(std::move(fetch)) {
  if (!fetch_) {
    absl::Duration t = timeout_;
    fetch_ = [t, token](const std::string& url) { return HttpGet(url, t, token); };
  }
}

inline absl::StatusOr<std::optional<double>> PromQlSource::Poll() {
  // Prometheus gets a little less than our own HTTP timeout, so a slow
  // query comes back as its "timeout" error rather than as our cut-off.
  absl::Duration server_timeout = std::max(absl::Milliseconds(100), timeout_ * 0.8);
  absl::StatusOr<HttpResponse> response =
      fetch_(PromQlQueryUrl(base_url_, query_, server_timeout));
  if (!response.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "Prometheus at ", base_url_, " did not answer: ", response.status().message(),
        "; still watching"));
  }
  absl::StatusOr<std::vector<PromQlSeries>> series =
      ParsePromQlResponse(response->status, response->body, query_);
  if (!series.ok()) return series.status();
  if (series->empty()) {
    return absl::NotFoundError(absl::StrCat(
        "'", query_, "' returned no series (yet); still watching. Check the query in "
        "Prometheus' /graph page, and put the threshold in --above/--below, not in the "
        "query"));
  }
  const PromQlSeries* pick = nullptr;
  for (const PromQlSeries& s : *series) {
    if (std::isnan(s.value)) continue;
    if (pick == nullptr || (direction_ == TriggerDirection::kAbove ? s.value > pick->value
                                                                   : s.value < pick->value)) {
      pick = &s;
    }
  }
  if (pick == nullptr) {
    last_series_ = (*series)[0].labels;
    return std::optional<double>(std::nan(""));
  }
  last_series_ = pick->labels;
  return std::optional<double>(pick->value);
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_PROMQL_SOURCE_H_
