// SPDX-License-Identifier: Apache-2.0
// File: ui_pages.h
//
// The UI's HTML: the index page (capture controls and the profile list),
// the login page, the embedded static assets, and the Content-Security-
// Policy of each (the UI's own pages run only /static/ui.js; a generated
// flame graph page gets the hashes of its inline scripts). Every value put
// into a page goes through mustache's HTML escaping.
//
// Thread-safety: pure functions of their inputs; safe from any ordinary
// thread. Never from a signal handler.
//
// Example:
//
//   UiIndexInputs in;
//   in.status = profiler.Status();
//   in.profiles = store.List();
//   res.set_content(RenderIndexPage(in), "text/html; charset=utf-8");

#ifndef FLAMEKIT_UI_UI_PAGES_H_
#define FLAMEKIT_UI_UI_PAGES_H_

#include <stdint.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/ui/profile_store.h"
#include "flamekit/ui/profiler_control.h"
#include "flamekit/ui/ui_auth.h"
#include "flamekit/ui/ui_responses.h"
#include "flamekit/ui/ui_templates.h"
#include "kainjow/mustache.hpp"

namespace flamekit {

// What the index page shows.
struct UiIndexInputs {
  UiProfilerStatus status;
  UiStartOptions defaults;
  std::vector<std::string> events;
  std::vector<StoredProfile> profiles;  // newest first
  std::string directory;
  std::string error;       // this request's error, shown at the top
  std::string last_error;  // the last capture's error
  bool raw = false;        // show the raw .txt links
  bool token = false;      // offer "Sign out"
  // The profile the last capture saved, shown while idle.
  std::optional<StoredProfile> last_saved;
  // The row to highlight (just saved); 0: none.
  int64_t highlight_id = 0;
};

// DiffBaseIndex()
//
// For profiles[i] (newest first), the index of the profile a "diff with
// previous" compares it with: the next older one of the same event, and
// only when both have samples (an empty profile has nothing to compare).
// -1 when there is none.
int DiffBaseIndex(const std::vector<StoredProfile>& profiles, size_t i);

// RenderIndexPage() / RenderLoginPage()
//
// The HTML of the index page and of the login page (with `error` shown
// when not empty).
std::string RenderIndexPage(const UiIndexInputs& in);
std::string RenderLoginPage(absl::string_view error);

// UiTemplateText()
//
// An embedded template or asset by name ("index.html", "ui.js", ...);
// empty for an unknown name.
std::string UiTemplateText(absl::string_view name);

// GeneratedPageCsp()
//
// The CSP for a generated page (flame graph, diff graph): its inline
// <script> blocks are allowed by hash, nothing else runs.
std::string GeneratedPageCsp(absl::string_view html);

// Implementation details follow.

namespace ui_internal {

// The CSP of the UI's own pages: only its own script and style.
inline constexpr absl::string_view kUiCsp =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

inline std::string HumanBytes(uint64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < 1024 * 1024) return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  return absl::StrFormat("%.1f MiB", bytes / (1024.0 * 1024.0));
}

inline std::string HumanDuration(absl::Duration d) {
  double seconds = absl::ToDoubleSeconds(d);
  if (seconds < 60) return absl::StrFormat("%.1f s", seconds);
  return absl::StrFormat("%d min %02d s", static_cast<int>(seconds) / 60,
                         static_cast<int>(seconds) % 60);
}

inline std::string FormatInterval(absl::Duration interval, uint64_t events) {
  if (events > 0) return absl::StrCat(events);
  if (interval <= absl::ZeroDuration()) return "";
  int64_t ns = absl::ToInt64Nanoseconds(interval);
  if (ns % 1000000000 == 0) return absl::StrCat(ns / 1000000000, "s");
  if (ns % 1000000 == 0) return absl::StrCat(ns / 1000000, "ms");
  if (ns % 1000 == 0) return absl::StrCat(ns / 1000, "us");
  return absl::StrCat(ns, "ns");
}

}  // namespace ui_internal

inline std::string UiTemplateText(absl::string_view name) {
  for (const UiTemplateFile& file : kUiTemplateFiles) {
    if (name == file.name) return file.text;
  }
  return "";
}

inline std::string GeneratedPageCsp(absl::string_view html) {
  std::string hashes;
  size_t pos = 0;
  while (true) {
    size_t open = html.find("<script", pos);
    if (open == absl::string_view::npos) break;
    size_t tag_end = html.find('>', open);
    if (tag_end == absl::string_view::npos) break;
    absl::string_view tag = html.substr(open, tag_end - open);
    size_t close = html.find("</script>", tag_end);
    if (close == absl::string_view::npos) break;
    if (tag.find(" src=") == absl::string_view::npos) {
      absl::string_view body = html.substr(tag_end + 1, close - tag_end - 1);
      absl::StrAppend(&hashes, " 'sha256-", absl::Base64Escape(ui_internal::Sha256(body)), "'");
    }
    pos = close + 9;
  }
  return absl::StrCat("default-src 'none'; script-src", hashes.empty() ? " 'none'" : hashes,
                      "; style-src 'unsafe-inline'; img-src data:; font-src data:; "
                      "connect-src 'none'; form-action 'none'; frame-ancestors 'none'; "
                      "base-uri 'none'");
}

inline int DiffBaseIndex(const std::vector<StoredProfile>& profiles, size_t i) {
  if (i >= profiles.size() || profiles[i].samples == 0) return -1;
  for (size_t j = i + 1; j < profiles.size(); ++j) {
    if (profiles[j].event != profiles[i].event) continue;
    if (profiles[j].samples == 0) continue;
    return static_cast<int>(j);
  }
  return -1;
}

inline std::string RenderLoginPage(absl::string_view error) {
  kainjow::mustache::mustache page(UiTemplateText("login.html"));
  kainjow::mustache::data data;
  data.set("error", std::string(error));
  data.set("has_error", !error.empty());
  return page.render(data);
}

inline std::string RenderIndexPage(const UiIndexInputs& in) {
  using kainjow::mustache::data;
  const UiProfilerStatus& status = in.status;
  const UiStartOptions& defaults = in.defaults;
  data page;
  page.set("running", status.running);
  page.set("state", status.running ? "running" : "idle");
  page.set("event", status.event);
  page.set("elapsed", ui_internal::HumanDuration(status.elapsed));
  page.set("samples", absl::StrCat(status.samples));
  // kainjow mustache treats an empty string as true in a section: flags.
  page.set("error", in.error);
  page.set("has_error", !in.error.empty());
  page.set("raw", in.raw);
  page.set("token", in.token);
  page.set("last_error", in.last_error);
  bool has_last = !status.running && in.last_saved.has_value();
  page.set("has_last_capture", has_last);
  if (has_last) {
    const StoredProfile& last = *in.last_saved;
    page.set("last_id", absl::StrCat(last.id));
    page.set("last_html", last.html_name);
    page.set("last_event", last.event);
    page.set("last_duration", ui_internal::HumanDuration(last.duration));
    page.set("last_samples", absl::StrCat(last.samples));
  }
  page.set("has_last_error", !in.last_error.empty());
  data events{data::type::list};
  for (const std::string& e : in.events) {
    data item;
    item.set("name", e);
    item.set("selected", e == defaults.event);
    events.push_back(item);
  }
  page.set("events", events);
  page.set("interval", ui_internal::FormatInterval(defaults.interval, defaults.interval_events));
  page.set("duration", defaults.duration > absl::ZeroDuration()
                           ? absl::StrCat(absl::ToInt64Seconds(defaults.duration))
                           : std::string());
  page.set("per_thread", defaults.per_thread);
  page.set("transforms", defaults.transforms_json);
  page.set("has_transforms", !defaults.transforms_json.empty() && defaults.transforms_json != "[]");

  const std::vector<StoredProfile>& list = in.profiles;
  data rows{data::type::list};
  data choices_a{data::type::list};
  data choices_b{data::type::list};
  uint64_t bytes = 0;
  // The diff form starts on the newest profile and its previous one of the
  // same event (else the one before it).
  int default_base = list.empty() ? -1 : DiffBaseIndex(list, 0);
  if (default_base < 0) default_base = 1;
  for (size_t i = 0; i < list.size(); ++i) {
    const StoredProfile& p = list[i];
    bytes += p.bytes;
    data row;
    row.set("id", absl::StrCat(p.id));
    row.set("event", p.event);
    row.set("html", p.html_name);
    row.set("txt", p.txt_name);
    row.set("samples", absl::StrCat(p.samples));
    row.set("low_samples", p.samples < ui_internal::kLowSamples);
    row.set("size", ui_internal::HumanBytes(p.bytes));
    row.set("duration", ui_internal::HumanDuration(p.duration));
    row.set("time", absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", p.time, absl::UTCTimeZone()));
    row.set("saved", in.highlight_id != 0 && p.id == in.highlight_id);
    int base = DiffBaseIndex(list, i);
    row.set("has_previous", base >= 0);
    if (base >= 0) row.set("previous_id", absl::StrCat(list[base].id));
    rows.push_back(row);
    std::string label = absl::StrCat("#", p.id, " ", p.event, " (", p.samples, " samples)");
    data a;
    a.set("id", absl::StrCat(p.id));
    a.set("label", label);
    a.set("selected", static_cast<int>(i) == default_base);
    choices_a.push_back(a);
    data b;
    b.set("id", absl::StrCat(p.id));
    b.set("label", label);
    b.set("selected", i == 0);
    choices_b.push_back(b);
  }
  page.set("profiles", rows);
  page.set("has_profiles", !list.empty());
  page.set("can_diff", list.size() >= 2);
  page.set("choices_a", choices_a);
  page.set("choices_b", choices_b);
  page.set("profile_count", absl::StrCat(list.size()));
  page.set("store_size", ui_internal::HumanBytes(bytes));
  page.set("directory", in.directory);
  kainjow::mustache::mustache tmpl(UiTemplateText("index.html"));
  return tmpl.render(page);
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_UI_PAGES_H_
