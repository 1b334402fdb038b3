// SPDX-License-Identifier: Apache-2.0
// File: hot_functions.h
//
// The "hot functions" summary of a profile: the top N frames by self samples
// (samples where the frame is the leaf) and by total samples (samples where
// the frame is anywhere on the stack, counted once per stack even when it
// recurses), and a plain-text table of them for terminals and reports.
// Pure functions of a const Profile: safe to call from many threads at once
// on the same profile. Not for signal handlers (they allocate).
//
// Example:
//
//   HotFunctions hot = ComputeHotFunctions(profile, 20);
//   std::cout << FormatHotFunctions(profile, hot);
//
//   Self%   Self    Total%  Total   Function
//   41.20%  412     41.20%  412     memcpy
//   ...

#ifndef FLAMEKIT_PROFILE_HOT_FUNCTIONS_H_
#define FLAMEKIT_PROFILE_HOT_FUNCTIONS_H_

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

struct HotFunction {
  FrameId frame = 0;
  uint64_t self = 0;   // samples with this frame as the leaf
  uint64_t total = 0;  // samples with this frame anywhere on the stack
};

struct HotFunctions {
  // Both lists hold at most N entries, largest first; ties are broken by
  // frame name so the output is deterministic.
  std::vector<HotFunction> by_self;
  std::vector<HotFunction> by_total;
  uint64_t total_samples = 0;
};

// ComputeHotFunctions()
//
// The top `top_n` frames of `profile` by self and by total samples.
// Synthetic thread roots (kThread) are left out: every sample of a thread
// would otherwise rank its root first. Frames with zero self samples are
// not listed in by_self.
HotFunctions ComputeHotFunctions(const Profile& profile, size_t top_n);

// FormatHotFunctions()
//
// Two plain-text tables ("By self samples", "By total samples") with
// percentages of all samples, one function a row. Frame kinds other than
// user are shown after the name ("memcpy [kernel]").
std::string FormatHotFunctions(const Profile& profile, const HotFunctions& hot);

// Implementation details follow.

inline HotFunctions ComputeHotFunctions(const Profile& profile, size_t top_n) {
  HotFunctions result;
  result.total_samples = profile.total_samples();
  const size_t n = profile.frame_count();
  std::vector<uint64_t> self(n, 0), total(n, 0);
  // last_seen[id] = index of the last stack that counted id into total, so a
  // recursive frame counts once per stack.
  std::vector<size_t> last_seen(n, static_cast<size_t>(-1));
  for (size_t i = 0; i < profile.stack_count(); ++i) {
    absl::Span<const FrameId> frames = profile.stack(i);
    const uint64_t count = profile.stack_count_at(i);
    self[frames.back()] += count;
    for (FrameId id : frames) {
      if (last_seen[id] == i) continue;
      last_seen[id] = i;
      total[id] += count;
    }
  }
  std::vector<HotFunction> all;
  all.reserve(n);
  for (size_t id = 0; id < n; ++id) {
    if (total[id] == 0) continue;
    if (profile.frame(static_cast<FrameId>(id)).kind == FrameKind::kThread) continue;
    all.push_back(HotFunction{static_cast<FrameId>(id), self[id], total[id]});
  }
  auto by_name = [&](const HotFunction& a, const HotFunction& b) {
    const Frame& x = profile.frame(a.frame);
    const Frame& y = profile.frame(b.frame);
    if (x.name != y.name) return x.name < y.name;
    return x.kind < y.kind;
  };
  auto top = [&](auto key) {
    std::vector<HotFunction> list;
    for (const HotFunction& f : all) {
      if (key(f) > 0) list.push_back(f);
    }
    auto order = [&](const HotFunction& a, const HotFunction& b) {
      if (key(a) != key(b)) return key(a) > key(b);
      return by_name(a, b);
    };
    if (list.size() > top_n) {
      std::partial_sort(list.begin(), list.begin() + top_n, list.end(), order);
      list.resize(top_n);
    } else {
      std::sort(list.begin(), list.end(), order);
    }
    return list;
  };
  result.by_self = top([](const HotFunction& f) { return f.self; });
  result.by_total = top([](const HotFunction& f) { return f.total; });
  return result;
}

inline std::string FormatHotFunctions(const Profile& profile,
                                      const HotFunctions& hot) {
  auto percent = [&](uint64_t v) {
    if (hot.total_samples == 0) return std::string("-");
    return absl::StrFormat("%.2f%%", 100.0 * static_cast<double>(v) /
                                         static_cast<double>(hot.total_samples));
  };
  auto label = [&](FrameId id) {
    const Frame& f = profile.frame(id);
    if (f.kind == FrameKind::kUser) return f.name;
    return absl::StrCat(f.name, " [", FrameKindName(f.kind), "]");
  };
  auto table = [&](absl::string_view title, const std::vector<HotFunction>& list,
                   std::string* out) {
    absl::StrAppend(out, title, "\n");
    absl::StrAppendFormat(out, "%8s %12s %8s %12s  %s\n", "Self%", "Self",
                          "Total%", "Total", "Function");
    for (const HotFunction& f : list) {
      absl::StrAppendFormat(out, "%8s %12d %8s %12d  %s\n", percent(f.self),
                            f.self, percent(f.total), f.total, label(f.frame));
    }
    if (list.empty()) absl::StrAppend(out, "  (no samples)\n");
  };
  std::string out = absl::StrCat("Samples: ", hot.total_samples, "\n\n");
  table("By self samples:", hot.by_self, &out);
  out += "\n";
  table("By total samples:", hot.by_total, &out);
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_HOT_FUNCTIONS_H_
