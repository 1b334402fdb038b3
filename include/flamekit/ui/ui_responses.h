// SPDX-License-Identifier: Apache-2.0
// File: ui_responses.h
//
// The UI's JSON answers: a stored profile as JSON, JSON that cannot open
// markup, error bodies, and the HTTP status for an absl::Status. Pure
// functions: safe from any ordinary thread; never from a signal handler.
//
// Example:
//
//   if (!status.ok()) {
//     SendError(res, HttpStatusFor(status), status.message());
//     return;
//   }
//   SendJson(res, 200, {{"profile", ProfileJson(saved)}});

#ifndef FLAMEKIT_UI_UI_RESPONSES_H_
#define FLAMEKIT_UI_UI_RESPONSES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/ui/profile_store.h"
#include "httplib.h"  // Debian's cpp-httplib: declarations; code in libcpp-httplib.so
#include "nlohmann/json.hpp"

namespace flamekit {
namespace ui_internal {

// A profile with fewer samples than this is flagged "few samples".
inline constexpr uint64_t kLowSamples = 1000;

inline bool ParseBool(absl::string_view text) {
  std::string t = absl::AsciiStrToLower(text);
  return t == "1" || t == "true" || t == "on" || t == "yes";
}

inline nlohmann::json ProfileJson(const StoredProfile& p) {
  nlohmann::json j;
  j["id"] = p.id;
  j["event"] = p.event;
  j["html"] = p.html_name;
  j["txt"] = p.txt_name;
  j["url"] = absl::StrCat("/profiles/", p.html_name);
  j["raw_url"] = absl::StrCat("/profiles/", p.txt_name);
  j["samples"] = p.samples;
  j["dropped_samples"] = p.dropped_samples;
  j["low_samples"] = p.samples < kLowSamples;
  j["bytes"] = p.bytes;
  j["duration_ms"] = absl::ToInt64Milliseconds(p.duration);
  j["engine"] = p.engine;
  j["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", p.time, absl::UTCTimeZone());
  return j;
}

// JSON whose strings cannot open markup even if a browser were tricked into
// reading it as HTML: '<', '>' and '&' (which only occur inside strings)
// become \u escapes.
inline std::string SafeJson(const nlohmann::json& body) {
  std::string text = body.dump(2);
  std::string out;
  out.reserve(text.size() + 16);
  for (char c : text) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out.push_back(c);
    }
  }
  out.push_back('\n');
  return out;
}

inline void SendJson(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(SafeJson(body), "application/json");
}

inline void SendError(httplib::Response& res, int status, absl::string_view message) {
  nlohmann::json j;
  j["error"] = std::string(message);
  SendJson(res, status, j);
}

inline int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk: return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists: return 409;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable: return 503;
    default: return 500;
  }
}

}  // namespace ui_internal
}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_RESPONSES_H_
