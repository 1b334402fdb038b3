// SPDX-License-Identifier: Apache-2.0
// File: collapsed_writer.h
//
// Writes a Profile as collapsed ("folded") text, one stack a line, frames
// root first, ';' between them, then a space and the count; frame kinds as
// FlameGraph's annotations ("_[k]", "_[j]", "_[i]") and thread roots in
// brackets, so collapsed_reader.h reads every line back to the same stack.
// Pure functions of a const Profile: callable from many threads at once;
// never from a signal handler (they allocate and do I/O).
//
// Example:
//
//   FLAMEKIT_RETURN_IF_ERROR(WriteCollapsedFile(profile, "out.txt"));

#ifndef FLAMEKIT_PROFILE_COLLAPSED_WRITER_H_
#define FLAMEKIT_PROFILE_COLLAPSED_WRITER_H_

#include <stddef.h>

#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

// CollapsedFrameText()
//
// How a frame is written: its name with the kind's annotation ("_[k]",
// "_[j]", "_[i]"; kThread in brackets unless its name already has them).
// Characters the format cannot hold
// are replaced: ';' by ':', and newline and NUL by spaces (names read from
// collapsed text never contain them, so text round trips are exact).
std::string CollapsedFrameText(const Frame& frame);

// WriteCollapsed()
//
// Writes every stack, one line each, in SortedStackIndices() order (so the
// output is deterministic), handing the text to `sink` in pieces of about
// 1 MB. Stops at and returns the first error of `sink`.
absl::Status WriteCollapsed(
    const Profile& profile,
    absl::FunctionRef<absl::Status(absl::string_view)> sink);

// WriteCollapsedFile()
//
// Writes the profile to `path` through an AtomicFileWriter: the file is
// complete or absent.
absl::Status WriteCollapsedFile(const Profile& profile, absl::string_view path);

// ToCollapsedString()
//
// The whole collapsed text in memory (for tests and small profiles).
std::string ToCollapsedString(const Profile& profile);

// Implementation details follow.

inline std::string CollapsedFrameText(const Frame& frame) {
  std::string text;
  text.reserve(frame.name.size() + 4);
  // A thread name that already carries its brackets ("[main tid=1]") gets
  // no second pair.
  const bool bracket =
      frame.kind == FrameKind::kThread &&
      !(frame.name.size() >= 2 && frame.name.front() == '[' && frame.name.back() == ']');
  if (bracket) text += '[';
  for (char c : frame.name) {
    if (c == ';') {
      text += ':';
    } else if (c == '\n' || c == '\0') {
      text += ' ';
    } else {
      text += c;
    }
  }
  switch (frame.kind) {
    case FrameKind::kKernel: text += "_[k]"; break;
    case FrameKind::kJit: text += "_[j]"; break;
    case FrameKind::kInlined: text += "_[i]"; break;
    case FrameKind::kThread:
      if (bracket) text += ']';
      break;
    default: break;
  }
  return text;
}

inline absl::Status WriteCollapsed(
    const Profile& profile,
    absl::FunctionRef<absl::Status(absl::string_view)> sink) {
  constexpr size_t kFlushBytes = size_t{1} << 20;
  std::vector<std::string> texts(profile.frame_count());
  for (size_t i = 0; i < texts.size(); ++i) {
    texts[i] = CollapsedFrameText(profile.frame(static_cast<FrameId>(i)));
  }
  std::string buffer;
  buffer.reserve(kFlushBytes + 4096);
  for (size_t index : profile.SortedStackIndices()) {
    absl::Span<const FrameId> frames = profile.stack(index);
    for (size_t i = 0; i < frames.size(); ++i) {
      if (i != 0) buffer += ';';
      buffer += texts[frames[i]];
    }
    buffer += ' ';
    absl::StrAppend(&buffer, profile.stack_count_at(index));
    buffer += '\n';
    if (buffer.size() >= kFlushBytes) {
      absl::Status s = sink(buffer);
      if (!s.ok()) return s;
      buffer.clear();
    }
  }
  if (!buffer.empty()) return sink(buffer);
  return absl::OkStatus();
}

inline absl::Status WriteCollapsedFile(const Profile& profile,
                                       absl::string_view path) {
  absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Open(path);
  if (!writer.ok()) return writer.status();
  absl::Status s = WriteCollapsed(
      profile, [&](absl::string_view text) { return writer->Write(text); });
  if (!s.ok()) return s;
  return writer->Commit();
}

inline std::string ToCollapsedString(const Profile& profile) {
  std::string out;
  WriteCollapsed(profile, [&](absl::string_view text) {
    out.append(text.data(), text.size());
    return absl::OkStatus();
  }).IgnoreError();
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_COLLAPSED_WRITER_H_
