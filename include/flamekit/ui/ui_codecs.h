// SPDX-License-Identifier: Apache-2.0
// File: ui_codecs.h
//
// The conversions the UI's profile store uses: a Profile to flame graph
// HTML, to collapsed text and back, and two profiles to a diff graph.
// Pure functions of their arguments: safe from any ordinary thread, never
// from a signal handler (they allocate).
//
// Example:
//
//   ProfileStoreCodecs codecs = DefaultUiCodecs();
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string html, codecs.render_html(profile));

#ifndef FLAMEKIT_UI_UI_CODECS_H_
#define FLAMEKIT_UI_UI_CODECS_H_

#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "flamekit/profile/profile.h"
#include "flamekit/ui/profile_store.h"

namespace flamekit {

// DefaultUiCodecs()
//
// The codecs ServeUi() uses unless UiOptions gives others.
ProfileStoreCodecs DefaultUiCodecs();

// RenderUiDiff()
//
// The diff graph HTML of `base` -> `next`.
absl::StatusOr<std::string> RenderUiDiff(const Profile& base, const Profile& next);

// Implementation details follow.

namespace ui_internal {

inline absl::string_view KindSuffix(FrameKind kind) {
  switch (kind) {
    case FrameKind::kKernel: return "_[k]";
    case FrameKind::kJit: return "_[j]";
    case FrameKind::kInlined: return "_[i]";
    default: return "";
  }
}

inline std::string WriteCollapsedText(const Profile& profile) {
  std::string out;
  for (size_t i : profile.SortedStackIndices()) {
    bool first = true;
    for (FrameId id : profile.stack(i)) {
      if (!first) out.push_back(';');
      first = false;
      const Frame& f = profile.frame(id);
      out.append(f.name);
      out.append(KindSuffix(f.kind).data(), KindSuffix(f.kind).size());
    }
    absl::StrAppend(&out, " ", profile.stack_count_at(i), "\n");
  }
  return out;
}

inline absl::StatusOr<Profile> ReadCollapsedText(absl::string_view text) {
  Profile profile;
  profile.metadata().engine = "collapsed text";
  int line_number = 0;
  std::vector<FrameId> stack;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line[0] == '#') continue;
    size_t space = line.rfind(' ');
    uint64_t count = 0;
    if (space == absl::string_view::npos || !absl::SimpleAtoi(line.substr(space + 1), &count)) {
      return absl::InvalidArgumentError(
          absl::StrCat("collapsed text line ", line_number, ": expected 'frames count'"));
    }
    stack.clear();
    for (absl::string_view name : absl::StrSplit(line.substr(0, space), ';')) {
      FrameKind kind = FrameKind::kUser;
      if (absl::EndsWith(name, "_[k]")) {
        kind = FrameKind::kKernel;
        name.remove_suffix(4);
      } else if (absl::EndsWith(name, "_[j]")) {
        kind = FrameKind::kJit;
        name.remove_suffix(4);
      } else if (absl::EndsWith(name, "_[i]")) {
        kind = FrameKind::kInlined;
        name.remove_suffix(4);
      }
      stack.push_back(profile.InternFrame(name, kind));
    }
    profile.AddStack(stack, count);
  }
  return profile;
}

inline std::string HtmlEscape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// A plain, script-free page listing the stacks: stands in until the
// render/ flame graph is available.
inline std::string PlainStacksPage(absl::string_view title, absl::string_view body_text) {
  return absl::StrCat("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>",
                      HtmlEscape(title), "</title></head><body><h1>", HtmlEscape(title),
                      "</h1><pre>", HtmlEscape(body_text), "</pre></body></html>\n");
}

}  // namespace ui_internal

inline ProfileStoreCodecs DefaultUiCodecs() {
  ProfileStoreCodecs codecs;
  codecs.render_html = [](const Profile& profile) -> absl::StatusOr<std::string> {
    std::string title = profile.metadata().title.empty()
                            ? absl::StrCat("Flame graph: ", profile.metadata().event)
                            : profile.metadata().title;
    return ui_internal::PlainStacksPage(title, ui_internal::WriteCollapsedText(profile));
  };
  codecs.write_collapsed = [](const Profile& profile) {
    return ui_internal::WriteCollapsedText(profile);
  };
  codecs.read_collapsed = [](absl::string_view text) {
    return ui_internal::ReadCollapsedText(text);
  };
  return codecs;
}

inline absl::StatusOr<std::string> RenderUiDiff(const Profile& base, const Profile& next) {
  return ui_internal::PlainStacksPage(
      "Diff graph", absl::StrCat("base:\n", ui_internal::WriteCollapsedText(base), "\nnext:\n",
                                 ui_internal::WriteCollapsedText(next)));
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_CODECS_H_
