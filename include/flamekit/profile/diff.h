// SPDX-License-Identifier: Apache-2.0
// File: diff.h
//
// The difference of two profiles, stack by stack: for every stack seen in
// either, its samples before (in `base`) and after (in `next`). This is the
// input of differential flame graphs and of FlameGraph's "difffolded"
// format ("stack before after" a line). Raw counts are always kept; the
// Normalized*() helpers scale `before` so both sides have the same total
// (what `flamekit diff --normalize` and the page's toggle show).
// ComputeDiff() is a pure function of two const profiles; a DiffProfile is
// then read-only data safe to share between threads. Not for signal
// handlers (it allocates).
//
// Example:
//
//   DiffProfile diff = ComputeDiff(before, after);
//   for (const DiffStack& s : diff.stacks) {
//     double delta = static_cast<double>(s.after) - diff.NormalizedBefore(s);
//     ...  // diff.frames.frame(s.frames[i]).name, root first
//   }

#ifndef FLAMEKIT_PROFILE_DIFF_H_
#define FLAMEKIT_PROFILE_DIFF_H_

#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "absl/types/span.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

struct DiffStack {
  std::vector<FrameId> frames;  // ids in DiffProfile::frames, root first
  uint64_t before = 0;          // samples in base
  uint64_t after = 0;           // samples in next
};

struct DiffProfile {
  // Owns the interned frames of both inputs (only the frames: it has no
  // stacks). Its metadata is `next`'s.
  Profile frames;
  ProfileMetadata base_metadata;
  // Every stack of either input once, in the deterministic order of
  // Profile::SortedStackIndices() (by frame names, root first).
  std::vector<DiffStack> stacks;
  uint64_t total_before = 0;
  uint64_t total_after = 0;

  // Scale applied to `before` so that sum(NormalizedBefore) == total_after;
  // 1 when base has no samples.
  double before_scale() const;
  // s.before * before_scale().
  double NormalizedBefore(const DiffStack& s) const;
  // after - before, raw and normalized.
  int64_t Delta(const DiffStack& s) const;
  double NormalizedDelta(const DiffStack& s) const;
};

// ComputeDiff()
//
// Matches stacks of `base` and `next` by their frames' names and kinds.
DiffProfile ComputeDiff(const Profile& base, const Profile& next);

// NormalizedBefore()
//
// Free-function form of DiffProfile::NormalizedBefore().
double NormalizedBefore(const DiffProfile& diff, const DiffStack& s);

// Implementation details follow.

inline double DiffProfile::before_scale() const {
  if (total_before == 0) return 1.0;
  return static_cast<double>(total_after) / static_cast<double>(total_before);
}

inline double DiffProfile::NormalizedBefore(const DiffStack& s) const {
  return static_cast<double>(s.before) * before_scale();
}

inline int64_t DiffProfile::Delta(const DiffStack& s) const {
  return static_cast<int64_t>(s.after) - static_cast<int64_t>(s.before);
}

inline double DiffProfile::NormalizedDelta(const DiffStack& s) const {
  return static_cast<double>(s.after) - NormalizedBefore(s);
}

inline double NormalizedBefore(const DiffProfile& diff, const DiffStack& s) {
  return diff.NormalizedBefore(s);
}

inline DiffProfile ComputeDiff(const Profile& base, const Profile& next) {
  DiffProfile diff;
  diff.base_metadata = base.metadata();
  diff.frames.metadata() = next.metadata();
  diff.total_before = base.total_samples();
  diff.total_after = next.total_samples();
  // `keys` folds the stacks of both sides to give each distinct stack an
  // index; its frame ids equal diff.frames' (both are interned in the same
  // order). before/after are indexed by that stack index.
  Profile keys;
  std::vector<uint64_t> before, after;
  std::vector<FrameId> translated;
  auto add = [&](const Profile& p, bool is_base) {
    std::vector<FrameId> map(p.frame_count());
    for (size_t i = 0; i < p.frame_count(); ++i) {
      const Frame& f = p.frame(static_cast<FrameId>(i));
      map[i] = diff.frames.InternFrame(f.name, f.kind);
      keys.InternFrame(f.name, f.kind);
    }
    for (size_t i = 0; i < p.stack_count(); ++i) {
      absl::Span<const FrameId> s = p.stack(i);
      translated.resize(s.size());
      for (size_t j = 0; j < s.size(); ++j) translated[j] = map[s[j]];
      keys.AddStack(translated, 1);
      const size_t index = *keys.FindStack(translated);
      if (index >= before.size()) {
        before.resize(index + 1, 0);
        after.resize(index + 1, 0);
      }
      (is_base ? before : after)[index] += p.stack_count_at(i);
    }
  };
  add(base, true);
  add(next, false);
  diff.stacks.reserve(keys.stack_count());
  for (size_t index : keys.SortedStackIndices()) {
    absl::Span<const FrameId> s = keys.stack(index);
    diff.stacks.push_back(
        DiffStack{std::vector<FrameId>(s.begin(), s.end()), before[index], after[index]});
  }
  return diff;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_DIFF_H_
