// SPDX-License-Identifier: Apache-2.0
// File: profile_file_name.h
//
// The names of the files the UI stores,
//
//   <profile_id>-<event>-flamegraph-<YYYYMMDD-HHMMSS>.<html|txt|json>
//
// and the only parser of them: a request names a file, and a name that does
// not match this pattern exactly never becomes a path. Pure functions: safe
// from any ordinary thread; not async-signal-safe (they allocate).
//
// Example:
//
//   ProfileFileName parsed;
//   if (!ParseProfileFileName(name, &parsed)) return NotFound;
//   // parsed.id, parsed.event, parsed.time, parsed.stem, parsed.extension

#ifndef FLAMEKIT_UI_PROFILE_FILE_NAME_H_
#define FLAMEKIT_UI_PROFILE_FILE_NAME_H_

#include <stdint.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace flamekit {

// ParseProfileFileName()
//
// Splits "<id>-<event>-flamegraph-<YYYYMMDD-HHMMSS>.<ext>" (ext: html, txt
// or json) into its parts; false for any other name. The id is 1 to 9
// digits, the event 1 to 32 characters of [a-z0-9-] starting with a letter
// or digit.
struct ProfileFileName {
  int64_t id = 0;
  std::string event;
  absl::Time time = absl::UnixEpoch();
  std::string stem;
  std::string extension;
};
bool ParseProfileFileName(absl::string_view name, ProfileFileName* out);

// Implementation details follow.

namespace ui_internal {

// An event name reduced to [a-z0-9-] (at most 32 characters), for file
// names; "profile" when nothing is left.
inline std::string SanitizeEventName(absl::string_view event) {
  std::string out;
  for (char c : event) {
    char lower = absl::ascii_tolower(static_cast<unsigned char>(c));
    if ((lower >= 'a' && lower <= 'z') || (lower >= '0' && lower <= '9')) {
      out.push_back(lower);
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
    if (out.size() >= 32) break;
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  if (out.empty()) out = "profile";
  return out;
}

inline bool AllDigits(absl::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace ui_internal

inline bool ParseProfileFileName(absl::string_view name, ProfileFileName* out) {
  // <id>-<event>-flamegraph-YYYYMMDD-HHMMSS.<ext>
  if (name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
    if (!ok) return false;  // also refuses '/', '%', NUL, upper case
  }
  size_t dot = name.rfind('.');
  if (dot == absl::string_view::npos) return false;
  absl::string_view extension = name.substr(dot + 1);
  if (extension != "html" && extension != "txt" && extension != "json") return false;
  absl::string_view stem = name.substr(0, dot);
  if (stem.find('.') != absl::string_view::npos) return false;
  constexpr absl::string_view kMarker = "-flamegraph-";
  // The timestamp is the last 15 characters: YYYYMMDD-HHMMSS.
  if (stem.size() < 15 + kMarker.size() + 3) return false;
  absl::string_view stamp = stem.substr(stem.size() - 15);
  absl::string_view head = stem.substr(0, stem.size() - 15);
  if (!absl::EndsWith(head, kMarker)) return false;
  head.remove_suffix(kMarker.size());
  if (stamp[8] != '-' || !ui_internal::AllDigits(stamp.substr(0, 8)) ||
      !ui_internal::AllDigits(stamp.substr(9))) {
    return false;
  }
  size_t dash = head.find('-');
  if (dash == absl::string_view::npos) return false;
  absl::string_view id_text = head.substr(0, dash);
  absl::string_view event = head.substr(dash + 1);
  if (id_text.size() > 9 || !ui_internal::AllDigits(id_text)) return false;
  if (event.empty() || event.size() > 32 || event.front() == '-' || event.back() == '-') {
    return false;
  }
  // absl::ParseTime's %Y takes every digit it sees; read the fields by hand.
  auto field = [&](size_t pos, size_t len) {
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) v = v * 10 + (stamp[i] - '0');
    return v;
  };
  int year = field(0, 4), month = field(4, 2), day = field(6, 2);
  int hour = field(9, 2), minute = field(11, 2), second = field(13, 2);
  absl::CivilSecond civil(year, month, day, hour, minute, second);
  if (civil.year() != year || civil.month() != month || civil.day() != day ||
      civil.hour() != hour || civil.minute() != minute || civil.second() != second) {
    return false;  // e.g. month 13: CivilSecond normalised it
  }
  absl::Time time = absl::FromCivil(civil, absl::UTCTimeZone());
  int64_t id = 0;
  if (!absl::SimpleAtoi(id_text, &id)) return false;
  if (out != nullptr) {
    out->id = id;
    out->event = std::string(event);
    out->time = time;
    out->stem = std::string(stem);
    out->extension = std::string(extension);
  }
  return true;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_PROFILE_FILE_NAME_H_
