// SPDX-License-Identifier: Apache-2.0
// File: page_template.h
//
// Loading and rendering the mustache templates (templates/*.mustache) the
// HTML and SVG renderers fill: the copies embedded at build time, or the
// files of RenderOptions::templates_dir while editing them. Also the
// metadata line every page shows. Pure functions: safe from many threads;
// never from a signal handler. kainjow mustache enters flamekit only
// through render/ headers.
//
// Example:
//
//   kainjow::mustache::data data;
//   data.set("title", "my flame graph");
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string page,
//       render_internal::RenderTemplate("flame_graph.html.mustache", data, options));

#ifndef FLAMEKIT_RENDER_PAGE_TEMPLATE_H_
#define FLAMEKIT_RENDER_PAGE_TEMPLATE_H_

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/profile/profile.h"
#include "flamekit/render/render_options.h"
#include "flamekit/render/templates.h"
#include "kainjow/mustache.hpp"

namespace flamekit {
namespace render_internal {

// LoadTemplate()
//
// The text of template `file_name` ("flame_graph.html.mustache"): from
// options.templates_dir when set, else the embedded copy. NotFound with
// what to do when the override directory lacks it.
absl::StatusOr<std::string> LoadTemplate(absl::string_view file_name,
                                         const RenderOptions& options);

// RenderTemplate()
//
// Renders template `file_name` with `data`. A template that does not parse
// is Internal for the shipped copy, InvalidArgument for a templates_dir one.
absl::StatusOr<std::string> RenderTemplate(absl::string_view file_name,
                                           const kainjow::mustache::data& data,
                                           const RenderOptions& options);

// One "label: value" item of the line under a page's title.
struct MetaItem {
  std::string label;
  std::string value;
};

// MetadataLine()
//
// event, engine, interval, duration, samples, dropped, threads, date, and
// the process, as far as `metadata` knows them.
std::vector<MetaItem> MetadataLine(const ProfileMetadata& metadata,
                                   uint64_t samples);

// The items as a mustache list of {label, value}.
kainjow::mustache::data MetaItemsData(const std::vector<MetaItem>& items);

// FormatSampleCount()
//
// 1234567 -> "1,234,567".
std::string FormatSampleCount(uint64_t n);

// Implementation details follow.

inline absl::StatusOr<std::string> LoadTemplate(absl::string_view file_name,
                                                const RenderOptions& options) {
  if (!options.templates_dir.empty()) {
    std::string path = absl::StrCat(options.templates_dir, "/", file_name);
    FILE* file = ::fopen(path.c_str(), "rbe");
    if (file == nullptr) {
      int error = errno;
      return absl::NotFoundError(absl::StrCat(
          "cannot read template ", path, ": ", ::strerror(error),
          "; copy flamekit's templates/ directory there, or drop "
          "--templates_dir to use the built-in templates"));
    }
    std::string text;
    char buffer[65536];
    size_t n;
    while ((n = ::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
    bool failed = ::ferror(file) != 0;
    ::fclose(file);
    if (failed) {
      return absl::DataLossError(absl::StrCat("error reading template ", path));
    }
    return text;
  }
  for (const EmbeddedTemplate& entry : kTemplateFiles) {
    if (file_name == entry.file_name) return std::string(entry.text);
  }
  return absl::InternalError(absl::StrCat(
      "no embedded template named ", file_name,
      "; flamekit was built without it (a bug: report it)"));
}

inline absl::StatusOr<std::string> RenderTemplate(
    absl::string_view file_name, const kainjow::mustache::data& data,
    const RenderOptions& options) {
  absl::StatusOr<std::string> text = LoadTemplate(file_name, options);
  if (!text.ok()) return text.status();
  kainjow::mustache::mustache tmpl(*text);
  if (!tmpl.is_valid()) {
    std::string message = absl::StrCat("template ", file_name,
                                        " does not parse: ", tmpl.error_message());
    if (options.templates_dir.empty()) {
      return absl::InternalError(absl::StrCat(message, " (a bug: report it)"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        message, "; fix it in ", options.templates_dir));
  }
  std::string out;
  out.reserve(text->size() * 2);
  tmpl.render(data, [&out](const std::string& piece) { out.append(piece); });
  if (!tmpl.error_message().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "template ", file_name, " failed to render: ", tmpl.error_message()));
  }
  return out;
}

inline std::string FormatSampleCount(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

inline std::vector<MetaItem> MetadataLine(const ProfileMetadata& metadata,
                                          uint64_t samples) {
  std::vector<MetaItem> items;
  items.push_back({"event", metadata.event.empty() ? "unknown" : metadata.event});
  if (!metadata.engine.empty()) items.push_back({"engine", metadata.engine});
  if (metadata.interval > absl::ZeroDuration()) {
    items.push_back({"interval", absl::FormatDuration(metadata.interval)});
  } else if (metadata.interval_events > 0) {
    items.push_back({"interval", absl::StrCat(metadata.interval_events, " events")});
  }
  if (metadata.start_time != absl::InfinitePast() &&
      metadata.end_time != absl::InfinitePast() &&
      metadata.end_time >= metadata.start_time) {
    items.push_back({"duration",
                     absl::FormatDuration(absl::Trunc(
                         metadata.end_time - metadata.start_time, absl::Milliseconds(1)))});
  }
  items.push_back({"samples", FormatSampleCount(samples)});
  std::string dropped = FormatSampleCount(metadata.dropped_samples + metadata.lost_samples);
  if (metadata.lost_samples > 0) {
    absl::StrAppend(&dropped, " (", FormatSampleCount(metadata.lost_samples),
                    " lost by the kernel)");
  }
  items.push_back({"dropped", dropped});
  if (metadata.threads > 0) items.push_back({"threads", absl::StrCat(metadata.threads)});
  if (metadata.pid > 0 || !metadata.command.empty()) {
    std::string process = metadata.command;
    if (metadata.pid > 0) {
      absl::StrAppend(&process, process.empty() ? "" : " ", "(pid ", metadata.pid, ")");
    }
    items.push_back({"process", process});
  }
  items.push_back({"date", metadata.start_time == absl::InfinitePast()
                               ? std::string("unknown")
                               : absl::FormatTime("%Y-%m-%d %H:%M:%S UTC",
                                                  metadata.start_time,
                                                  absl::UTCTimeZone())});
  return items;
}

inline kainjow::mustache::data MetaItemsData(const std::vector<MetaItem>& items) {
  kainjow::mustache::data list{kainjow::mustache::data::type::list};
  for (const MetaItem& item : items) {
    kainjow::mustache::data entry;
    entry.set("label", item.label);
    entry.set("value", item.value);
    list.push_back(entry);
  }
  return list;
}

}  // namespace render_internal
}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_PAGE_TEMPLATE_H_
