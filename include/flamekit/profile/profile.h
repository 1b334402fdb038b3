// SPDX-License-Identifier: Apache-2.0
// File: profile.h
//
// Profile is the folded form every flamekit output is made from: frames
// interned once, stacks (root first) folded into sample counts, and the
// metadata of the capture. Not thread-safe: one thread builds a Profile (the
// collector thread draining a StackRing, or a parser); after that, const
// methods may be called from many threads at once. Never used from a signal
// handler (it allocates).
//
// Example:
//
//   flamekit::Profile profile;
//   flamekit::FrameId main_id = profile.InternFrame("main", FrameKind::kUser);
//   flamekit::FrameId work_id = profile.InternFrame("Work()", FrameKind::kUser);
//   flamekit::FrameId stack[] = {main_id, work_id};
//   profile.AddStack(stack, 3);
//   profile.metadata().event = "cpu";
//   profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
//     ...  // frames[0] is the root ("main"), frames.back() the leaf
//   });

#ifndef FLAMEKIT_PROFILE_PROFILE_H_
#define FLAMEKIT_PROFILE_PROFILE_H_

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <array>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"

namespace flamekit {

// FrameKind says where a frame's code lives; renderers colour by it and the
// collapsed format carries it as FlameGraph's suffix annotations.
enum class FrameKind : uint8_t {
  kUser = 0,   // the main executable (or code whose mapping is unknown)
  kLibrary,    // a shared library
  kKernel,     // the kernel                        collapsed suffix "_[k]"
  kJit,        // JIT code named by a perf map file collapsed suffix "_[j]"
  kInlined,    // an inlined function               collapsed suffix "_[i]"
  kThread,     // synthetic root naming a thread (per-thread split)
  kTruncated,  // synthetic marker: deeper frames were cut here
  kUnknown,    // an address with no symbol, e.g. "libfoo.so+0x1a2b"
};
inline constexpr int kFrameKindCount = 8;

// FrameKindName()
//
// A short lowercase name ("user", "library", "kernel", ...) for legends,
// JSON and tests.
absl::string_view FrameKindName(FrameKind kind);

// The name of the synthetic frame that marks a cut stack.
inline constexpr absl::string_view kTruncatedFrameName = "[truncated]";

using FrameId = uint32_t;

struct Frame {
  std::string name;
  FrameKind kind = FrameKind::kUser;
};

// What was captured, how, and what was lost. Renderers print it; the UI and
// the pprof writer read it. Times are absl::InfinitePast() when unknown
// (e.g. a profile read from collapsed text).
struct ProfileMetadata {
  std::string title;
  // What was sampled: "cpu", "itimer", "wall", "page-faults", ...
  std::string event = "cpu";
  // What actually ran ("perf cpu-clock", "ctimer", "itimer", "wall",
  // "collapsed text") and, after a fallback, why ("perf events unavailable:
  // EACCES ..."). Empty when not applicable.
  std::string engine;
  std::string engine_note;
  // The sampling period: a duration for time-based events, otherwise a
  // count of events (interval_events) with interval zero.
  absl::Duration interval = absl::ZeroDuration();
  uint64_t interval_events = 0;
  absl::Time start_time = absl::InfinitePast();
  absl::Time end_time = absl::InfinitePast();
  // Samples taken by the sampler, and those it had to drop (ring full) or
  // that the kernel lost (perf PERFORMANCE_RECORD_LOST). Samples that were
  // recorded are in the stacks; dropped and lost ones are only counted.
  uint64_t dropped_samples = 0;
  uint64_t lost_samples = 0;
  // Distinct threads seen.
  uint32_t threads = 0;
  // The profiled process, when there was one.
  int64_t pid = 0;
  std::string command;
  // The transform list applied to the stacks, as the JSON the CLI reads
  // (see transform.h); empty when none.
  std::string transforms_json;
};

class Profile {
 public:
  Profile() = default;
  Profile(const Profile&) = default;
  Profile& operator=(const Profile&) = default;
  Profile(Profile&&) noexcept = default;
  Profile& operator=(Profile&&) noexcept = default;

  // InternFrame()
  //
  // Returns the id of the frame with this name and kind, adding it if new.
  // The same name with another kind is another frame.
  FrameId InternFrame(absl::string_view name, FrameKind kind = FrameKind::kUser);

  // frame()
  //
  // The frame with id `id`, which must come from this profile.
  const Frame& frame(FrameId id) const { return frames_[id]; }
  size_t frame_count() const { return frames_.size(); }

  // AddStack()
  //
  // Adds `count` samples of the stack `root_to_leaf` (frame ids of this
  // profile, root first). An empty stack or a zero count adds nothing.
  void AddStack(absl::Span<const FrameId> root_to_leaf, uint64_t count);

  // ForEachStack()
  //
  // Calls fn(absl::Span<const FrameId> root_to_leaf, uint64_t count) once per
  // distinct stack, in an unspecified order (use SortedStackIndices() for a
  // stable one). The span is valid only during the call.
  template <typename Fn>
  void ForEachStack(Fn&& fn) const;

  // Number of distinct stacks, and the sum of all their counts.
  size_t stack_count() const { return stacks_.size(); }
  uint64_t total_samples() const { return total_samples_; }

  // Stack i (0 <= i < stack_count()), in insertion order.
  absl::Span<const FrameId> stack(size_t i) const {
    return absl::MakeConstSpan(stacks_[i].first);
  }
  uint64_t stack_count_at(size_t i) const { return stacks_[i].second; }

  // SortedStackIndices()
  //
  // Indices of the stacks ordered by their frame names, root first, as
  // FlameGraph's collapsed files are: the order deterministic outputs use.
  std::vector<size_t> SortedStackIndices() const;

  ProfileMetadata& metadata() { return metadata_; }
  const ProfileMetadata& metadata() const { return metadata_; }

 private:
  struct SpanHash {
    using is_transparent = void;
    size_t operator()(absl::Span<const FrameId> s) const {
      return absl::Hash<absl::Span<const FrameId>>()(s);
    }
    size_t operator()(const std::vector<FrameId>& v) const {
      return (*this)(absl::MakeConstSpan(v));
    }
  };
  struct SpanEq {
    using is_transparent = void;
    static absl::Span<const FrameId> AsSpan(absl::Span<const FrameId> s) { return s; }
    static absl::Span<const FrameId> AsSpan(const std::vector<FrameId>& v) {
      return absl::MakeConstSpan(v);
    }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return AsSpan(a) == AsSpan(b);
    }
  };

  std::vector<Frame> frames_;
  // One name index per kind: lookups by string_view with no allocation.
  std::array<absl::flat_hash_map<std::string, FrameId>, kFrameKindCount> frame_index_;
  // Distinct stacks with their counts, in insertion order, and an index
  // from a stack's frames to its position.
  std::vector<std::pair<std::vector<FrameId>, uint64_t>> stacks_;
  absl::flat_hash_map<std::vector<FrameId>, size_t, SpanHash, SpanEq> stack_index_;
  uint64_t total_samples_ = 0;
  ProfileMetadata metadata_;
};

// Implementation details follow.

inline absl::string_view FrameKindName(FrameKind kind) {
  switch (kind) {
    case FrameKind::kUser: return "user";
    case FrameKind::kLibrary: return "library";
    case FrameKind::kKernel: return "kernel";
    case FrameKind::kJit: return "jit";
    case FrameKind::kInlined: return "inlined";
    case FrameKind::kThread: return "thread";
    case FrameKind::kTruncated: return "truncated";
    case FrameKind::kUnknown: return "unknown";
  }
  return "unknown";
}

inline FrameId Profile::InternFrame(absl::string_view name, FrameKind kind) {
  auto& index = frame_index_[static_cast<size_t>(kind)];
  auto it = index.find(name);
  if (it != index.end()) return it->second;
  FrameId id = static_cast<FrameId>(frames_.size());
  frames_.push_back(Frame{std::string(name), kind});
  index.emplace(std::string(name), id);
  return id;
}

inline void Profile::AddStack(absl::Span<const FrameId> root_to_leaf, uint64_t count) {
  if (root_to_leaf.empty() || count == 0) return;
  total_samples_ += count;
  auto it = stack_index_.find(root_to_leaf);
  if (it != stack_index_.end()) {
    stacks_[it->second].second += count;
    return;
  }
  std::vector<FrameId> key(root_to_leaf.begin(), root_to_leaf.end());
  stack_index_.emplace(key, stacks_.size());
  stacks_.emplace_back(std::move(key), count);
}

inline std::vector<size_t> Profile::SortedStackIndices() const {
  std::vector<size_t> order(stacks_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [this](size_t a, size_t b) {
    const std::vector<FrameId>& x = stacks_[a].first;
    const std::vector<FrameId>& y = stacks_[b].first;
    size_t n = std::min(x.size(), y.size());
    for (size_t i = 0; i < n; ++i) {
      if (x[i] == y[i]) continue;
      int c = frames_[x[i]].name.compare(frames_[y[i]].name);
      if (c != 0) return c < 0;
      return frames_[x[i]].kind < frames_[y[i]].kind;
    }
    return x.size() < y.size();
  });
  return order;
}

template <typename Fn>
void Profile::ForEachStack(Fn&& fn) const {
  for (const auto& entry : stacks_) {
    fn(absl::MakeConstSpan(entry.first), entry.second);
  }
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_PROFILE_H_
