// SPDX-License-Identifier: Apache-2.0
// File: embedded_stacks.h
//
// The exact stacks a flame graph page (HTML or SVG) carries so that
// `convert` and `diff` can read the page back: every frame (name and kind),
// every stack and count, and the metadata that matters for comparing
// (event, interval, engine, times, pid, command, title). The page's drawing
// data is pruned (minwidth) and cannot be read back; this block is not.
// Pure functions: callable from many threads at once; never from a signal
// handler (they allocate).
//
// The text (version 1), one record a line, fields separated by one space:
//
//   flamekit-stacks 1
//   m KEY VALUE          metadata (event, title, interval_ns, ...)
//   f KIND NAME          frame ids 0, 1, 2... in order; KIND is 0-8
//   s COUNT ID ID ...    a stack, root first
//
// VALUE and NAME are percent-encoded: '%', control bytes, ' ', '<', '>',
// '&', '"', '\'' and bytes that are not valid UTF-8 become %XX, so the text
// is valid UTF-8 with no markup, fits in a <script> or an XML element
// unescaped, and decodes to the exact bytes (names are never altered, unlike
// collapsed text, which must replace ';').
//
// Reading is bounded by the input: at most one Frame per 'f' line, ids are
// checked against the frames seen, counts must not overflow the total.
//
// Example:
//
//   std::string text = EncodeEmbeddedStacks(profile);
//   FLAMEKIT_ASSIGN_OR_RETURN(Profile back, DecodeEmbeddedStacks(text, "p.html"));

#ifndef FLAMEKIT_PROFILE_EMBEDDED_STACKS_H_
#define FLAMEKIT_PROFILE_EMBEDDED_STACKS_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/base/frame_kind.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

// The first line of the text, and the id of the element that holds it in
// pages (<script id="fk-stacks"> in HTML, <metadata id="fk-stacks"> in SVG).
inline constexpr absl::string_view kEmbeddedStacksMagic = "flamekit-stacks 1";
inline constexpr absl::string_view kEmbeddedStacksElementId = "fk-stacks";

// EncodeEmbeddedStacks()
//
// The text for `profile`.
std::string EncodeEmbeddedStacks(const Profile& profile);

// DecodeEmbeddedStacks()
//
// The profile `text` describes. InvalidArgument naming `source_name` and the
// line on anything malformed (unknown kind, id out of range, bad escape,
// count overflow, no samples).
absl::StatusOr<Profile> DecodeEmbeddedStacks(absl::string_view text,
                                             absl::string_view source_name);

// Implementation details follow.

namespace embedded_internal {

// Whether the bytes at s[0] start a valid UTF-8 sequence, and its length.
inline size_t Utf8Length(absl::string_view s) {
  const unsigned char c = static_cast<unsigned char>(s[0]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || n > s.size()) return 0;
  for (size_t i = 1; i < n; ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) return 0;
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid UTF-8.
  const unsigned char d = n > 1 ? static_cast<unsigned char>(s[1]) : 0;
  if (n == 2 && c < 0xC2) return 0;
  if (n == 3 && ((c == 0xE0 && d < 0xA0) || (c == 0xED && d >= 0xA0))) return 0;
  if (n == 4 && ((c == 0xF0 && d < 0x90) || c > 0xF4 || (c == 0xF4 && d >= 0x90))) return 0;
  return n;
}

inline void AppendEncoded(std::string* out, absl::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = Utf8Length(s.substr(i));
    const bool plain = n > 1 || (n == 1 && c > 0x20 && c != 0x7f && c != '%' &&
                                  c != '<' && c != '>' && c != '&' && c != '"' &&
                                  c != '\'');
    if (plain) {
      out->append(s.data() + i, n);
      i += n;
    } else {
      out->push_back('%');
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
      ++i;
    }
  }
}

inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

inline bool Decode(absl::string_view s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    const int hi = HexValue(s[i + 1]), lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

inline void AppendMeta(std::string* out, absl::string_view key, absl::string_view value) {
  if (value.empty()) return;
  absl::StrAppend(out, "m ", key, " ");
  AppendEncoded(out, value);
  out->push_back('\n');
}

inline void AppendMetaNumber(std::string* out, absl::string_view key, int64_t value) {
  if (value != 0) absl::StrAppend(out, "m ", key, " ", value, "\n");
}

}  // namespace embedded_internal

inline std::string EncodeEmbeddedStacks(const Profile& profile) {
  using embedded_internal::AppendMeta;
  using embedded_internal::AppendMetaNumber;
  const ProfileMetadata& m = profile.metadata();
  std::string out;
  absl::StrAppend(&out, kEmbeddedStacksMagic, "\n");
  // The event is always written, even when empty ('m event ' is not
  // written then, so a reader keeps its default only if the writer had none).
  AppendMeta(&out, "event", m.event);
  AppendMeta(&out, "title", m.title);
  AppendMeta(&out, "engine", m.engine);
  AppendMeta(&out, "engine_note", m.engine_note);
  AppendMeta(&out, "command", m.command);
  AppendMeta(&out, "transforms", m.transforms_json);
  AppendMetaNumber(&out, "interval_ns", absl::ToInt64Nanoseconds(m.interval));
  AppendMetaNumber(&out, "interval_events", static_cast<int64_t>(m.interval_events));
  if (m.start_time != absl::InfinitePast()) {
    AppendMetaNumber(&out, "start_ns", absl::ToUnixNanos(m.start_time));
  }
  if (m.end_time != absl::InfinitePast()) {
    AppendMetaNumber(&out, "end_ns", absl::ToUnixNanos(m.end_time));
  }
  AppendMetaNumber(&out, "dropped", static_cast<int64_t>(m.dropped_samples));
  AppendMetaNumber(&out, "lost", static_cast<int64_t>(m.lost_samples));
  AppendMetaNumber(&out, "threads", m.threads);
  AppendMetaNumber(&out, "pid", m.pid);
  for (FrameId id = 0; id < profile.frame_count(); ++id) {
    const Frame& frame = profile.frame(id);
    absl::StrAppend(&out, "f ", static_cast<int>(frame.kind), " ");
    embedded_internal::AppendEncoded(&out, frame.name);
    out.push_back('\n');
  }
  for (size_t i = 0; i < profile.stack_count(); ++i) {
    absl::StrAppend(&out, "s ", profile.stack_count_at(i));
    for (FrameId id : profile.stack(i)) absl::StrAppend(&out, " ", id);
    out.push_back('\n');
  }
  return out;
}

inline absl::StatusOr<Profile> DecodeEmbeddedStacks(absl::string_view text,
                                                    absl::string_view source_name) {
  Profile profile;
  ProfileMetadata& m = profile.metadata();
  m.event.clear();
  size_t line_number = 0;
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": embedded stacks, line ", line_number, ": ", what,
        "; the page is damaged: record it again or convert from the original profile"));
  };
  std::string decoded;
  std::vector<FrameId> ids;
  uint64_t total = 0;
  bool magic = false;
  while (!text.empty()) {
    size_t newline = text.find('\n');
    absl::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == absl::string_view::npos ? text.size() : newline + 1);
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    if (!magic) {
      if (line != kEmbeddedStacksMagic) {
        return error(absl::StrCat("expected '", kEmbeddedStacksMagic,
                                  "' (a newer flamekit may have written it)"));
      }
      magic = true;
      continue;
    }
    if (line.size() < 2 || line[1] != ' ') return error("expected 'm', 'f' or 's' and a space");
    absl::string_view rest = line.substr(2);
    if (line[0] == 'm') {
      size_t space = rest.find(' ');
      if (space == absl::string_view::npos) return error("expected 'm KEY VALUE'");
      absl::string_view key = rest.substr(0, space);
      if (!embedded_internal::Decode(rest.substr(space + 1), &decoded)) {
        return error("bad %XX escape");
      }
      int64_t number = 0;
      const bool is_number = absl::SimpleAtoi(decoded, &number);
      if (key == "event") m.event = decoded;
      else if (key == "title") m.title = decoded;
      else if (key == "engine") m.engine = decoded;
      else if (key == "engine_note") m.engine_note = decoded;
      else if (key == "command") m.command = decoded;
      else if (key == "transforms") m.transforms_json = decoded;
      else if (!is_number) continue;  // unknown keys are for newer readers
      else if (key == "interval_ns") m.interval = absl::Nanoseconds(number);
      else if (key == "interval_events") m.interval_events = static_cast<uint64_t>(number);
      else if (key == "start_ns") m.start_time = absl::FromUnixNanos(number);
      else if (key == "end_ns") m.end_time = absl::FromUnixNanos(number);
      else if (key == "dropped") m.dropped_samples = static_cast<uint64_t>(number);
      else if (key == "lost") m.lost_samples = static_cast<uint64_t>(number);
      else if (key == "threads") m.threads = static_cast<uint32_t>(number);
      else if (key == "pid") m.pid = number;
    } else if (line[0] == 'f') {
      if (rest.size() < 2 || rest[0] < '0' || rest[0] >= '0' + kFrameKindCount ||
          rest[1] != ' ') {
        return error("expected 'f KIND NAME' with KIND 0-8");
      }
      if (!embedded_internal::Decode(rest.substr(2), &decoded)) return error("bad %XX escape");
      const FrameKind kind = static_cast<FrameKind>(rest[0] - '0');
      const size_t before = profile.frame_count();
      profile.InternFrame(decoded, kind);
      if (profile.frame_count() != before + 1) return error("the same frame twice");
    } else if (line[0] == 's') {
      ids.clear();
      uint64_t count = 0;
      bool first = true;
      while (!rest.empty()) {
        size_t space = rest.find(' ');
        absl::string_view field = rest.substr(0, space);
        rest.remove_prefix(space == absl::string_view::npos ? rest.size() : space + 1);
        uint64_t value = 0;
        if (!absl::SimpleAtoi(field, &value) || field.empty() || field[0] == '+') {
          return error("expected 's COUNT ID ID ...' with decimal numbers");
        }
        if (first) {
          count = value;
          first = false;
        } else if (value >= profile.frame_count()) {
          return error(absl::StrCat("frame id ", value, " before its 'f' line"));
        } else {
          ids.push_back(static_cast<FrameId>(value));
        }
      }
      if (ids.empty()) return error("a stack with no frames");
      if (__builtin_add_overflow(total, count, &total)) {
        return error("sample counts add up to more than 2^64 - 1");
      }
      profile.AddStack(ids, count);
    } else {
      return error("expected 'm', 'f' or 's' and a space");
    }
  }
  if (!magic) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": embedded stacks are empty"));
  }
  if (total == 0) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": no samples in the embedded stacks"));
  }
  return profile;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_EMBEDDED_STACKS_H_
