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
// Storage: every distinct stack is stored once, in one flat arena of frame
// ids, and found again through an open-addressing table of stack indices, so
// folding a sample costs one hash of its frames and one comparison.
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
//
//   // Per-thread split: the thread is a synthetic root frame (kThread).
//   profile.AddThreadStack(ThreadFrameName("worker", 1234), stack, 1);
//   Profile merged = MergeThreads(profile);  // the same without thread roots
//   profile.Merge(other_profile);            // adds another capture's stacks
//
// Events per stack (optional): a profile whose weight is not a sample count
// (alloc/live: bytes; lock: nanoseconds waited) may also keep how many
// events made each stack's weight (allocations, waits), so pprof can offer
// both (alloc_space and alloc_objects). Kept as a second column beside the
// weight, in a parallel vector that stays empty (no memory, no work) for
// profiles without it, rather than as a companion Profile: a companion would
// have to be carried through Profiler::Stop(), the agent and every
// transform as a second object and could drift from the first; here Merge(),
// MergeThreads() and the transforms copy the column with the stack.
//
//   profile.AddStack(stack, /*count=*/4096, /*events=*/2);  // 2 allocations
//   profile.has_events();        // true
//   profile.stack_events_at(0);  // 2
//
// This header declares; the definitions are compiled once per binary
// (profile_impl.h: the Bazel target compiles them, other builds define
// FLAMEKIT_IMPLEMENTATION in one translation unit). A file that only
// receives a Profile, as one embedding the profiler does, stays light.

#ifndef FLAMEKIT_PROFILE_PROFILE_H_
#define FLAMEKIT_PROFILE_PROFILE_H_

#include <stddef.h>
#include <stdint.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "flamekit/base/frame_kind.h"

namespace flamekit {

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

  // FindFrame()
  //
  // The id of the frame with this name and kind, or std::nullopt.
  std::optional<FrameId> FindFrame(absl::string_view name,
                                   FrameKind kind = FrameKind::kUser) const;

  // frame()
  //
  // The frame with id `id`, which must come from this profile.
  const Frame& frame(FrameId id) const { return frames_[id]; }
  size_t frame_count() const { return frames_.size(); }

  // AddStack()
  //
  // Adds `count` samples of the stack `root_to_leaf` (frame ids of this
  // profile, root first). An empty stack or a zero count adds nothing.
  // Counts saturate at UINT64_MAX instead of wrapping.
  void AddStack(absl::Span<const FrameId> root_to_leaf, uint64_t count) {
    AddStackImpl(root_to_leaf, count, 0);
  }

  // AddStack() with events
  //
  // As above, and adds `events` to the stack's event count (see the file
  // comment); the profile has_events() from then on, and stacks added
  // without events count zero. Adds nothing when both are zero. Event
  // counts saturate too.
  void AddStack(absl::Span<const FrameId> root_to_leaf, uint64_t count, uint64_t events) {
    EnableEvents();
    AddStackImpl(root_to_leaf, count, events);
  }

  // EnableEvents()
  //
  // Gives the profile the events column (existing stacks count zero), e.g.
  // for a transform's output, which keeps it even when no stack survives.
  void EnableEvents() {
    if (has_events_) return;
    has_events_ = true;
    events_.assign(stacks_.size(), 0);
  }

  // Whether the profile keeps events per stack, the event count of stack i
  // (0 without them), and their sum.
  bool has_events() const { return has_events_; }
  uint64_t stack_events_at(size_t i) const { return has_events_ ? events_[i] : 0; }
  uint64_t total_events() const { return total_events_; }

  // AddThreadStack()
  //
  // The per-thread split: adds `count` samples of `root_to_leaf` under a
  // synthetic root frame of kind kThread named `thread_name` (use
  // ThreadFrameName() for the usual "name tid=123" form). Collectors call it
  // instead of AddStack() when the user asked for threads.
  void AddThreadStack(absl::string_view thread_name,
                      absl::Span<const FrameId> root_to_leaf, uint64_t count);

  // Merge()
  //
  // Adds every stack of `other` (its frames are interned here) and sums the
  // loss counters; the start time becomes the earlier one, the end time the
  // later one, threads the larger count. Other metadata stays this
  // profile's. MergeProfiles() below also checks the events match.
  void Merge(const Profile& other);

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

  // Stack i (0 <= i < stack_count()), in insertion order. The span stays
  // valid until the next AddStack()/AddThreadStack()/Merge().
  absl::Span<const FrameId> stack(size_t i) const {
    return absl::MakeConstSpan(arena_.data() + stacks_[i].offset,
                               stacks_[i].size);
  }
  uint64_t stack_count_at(size_t i) const { return stacks_[i].count; }

  // FindStack()
  //
  // The index of the stack with exactly these frames, or std::nullopt.
  std::optional<size_t> FindStack(absl::Span<const FrameId> root_to_leaf) const;

  // HasThreadFrames()
  //
  // Whether any stack starts with a kThread frame (a per-thread profile).
  bool HasThreadFrames() const;

  // Reserve()
  //
  // Optional capacity hint: `stacks` distinct stacks holding `frame_ids`
  // frame ids in all. Saves rehashing when a caller knows the size.
  void Reserve(size_t stacks, size_t frame_ids);

  // SortedStackIndices()
  //
  // Indices of the stacks ordered by their frame names, root first, as
  // FlameGraph's collapsed files are: the order deterministic outputs use.
  std::vector<size_t> SortedStackIndices() const;

  // SortedFrameRanks()
  //
  // rank[id] for every frame: its position when all frames are ordered by
  // (name, kind). Comparing ranks orders frames as SortedStackIndices() does.
  std::vector<uint32_t> SortedFrameRanks() const;

  ProfileMetadata& metadata() { return metadata_; }
  const ProfileMetadata& metadata() const { return metadata_; }

 private:
  struct StackEntry {
    size_t offset;   // first frame id in arena_
    uint32_t size;   // number of frames
    uint32_t hash;   // low bits of the stack's hash, to skip most compares
    uint64_t count;  // samples
  };

  static uint64_t HashFrames(absl::Span<const FrameId> frames);
  // A slot packs a stack's 32 hash bits (high) and its index + 1 (low);
  // 0 is an empty slot.
  static uint64_t MakeSlot(uint32_t hash, size_t index) {
    return (uint64_t{hash} << 32) | static_cast<uint32_t>(index + 1);
  }
  static uint32_t SlotHash(uint64_t slot) { return static_cast<uint32_t>(slot >> 32); }
  static size_t SlotIndex(uint64_t slot) { return static_cast<uint32_t>(slot) - 1u; }
  void Rehash(size_t slot_count);
  void AddStackImpl(absl::Span<const FrameId> root_to_leaf, uint64_t count, uint64_t events);

  std::vector<Frame> frames_;
  // The name index: one hash map per kind, lookups by string_view with no
  // allocation. Defined in profile_impl.h, because Abseil's hash map would
  // cost every file that includes this header a fifth of its compile time.
  // Made by the first InternFrame(), so an empty or moved-from Profile has
  // none. The owner copies it deep, which keeps Profile's copies defaulted.
  struct FrameIndex;
  class FrameIndexOwner {
   public:
    FrameIndexOwner();
    ~FrameIndexOwner();
    FrameIndexOwner(const FrameIndexOwner& other);
    FrameIndexOwner& operator=(const FrameIndexOwner& other);
    FrameIndexOwner(FrameIndexOwner&& other) noexcept;
    FrameIndexOwner& operator=(FrameIndexOwner&& other) noexcept;
    std::unique_ptr<FrameIndex> index;
  };
  FrameIndexOwner frame_index_;
  // Distinct stacks, in insertion order; their frames live in arena_.
  std::vector<FrameId> arena_;
  std::vector<StackEntry> stacks_;
  // Open addressing with linear probing over MakeSlot() values. The size is
  // a power of two and at least twice the stack count.
  std::vector<uint64_t> slots_;
  uint64_t total_samples_ = 0;
  // The events column: events_[i] belongs to stacks_[i] while has_events_.
  bool has_events_ = false;
  std::vector<uint64_t> events_;
  uint64_t total_events_ = 0;
  ProfileMetadata metadata_;
  // Scratch for AddThreadStack (no allocation per call once grown).
  std::vector<FrameId> scratch_;
};

// ThreadFrameName()
//
// The name of a per-thread root frame: "worker-3 tid=1234", or "tid=1234"
// when the thread has no name. The collapsed writer prints kThread frames
// in brackets ("[worker-3 tid=1234]", as async-profiler does), and the
// reader turns such a root frame back into a kThread frame.
std::string ThreadFrameName(absl::string_view thread_name, int64_t tid);

// MergeThreads()
//
// `profile` without its thread roots: leading kThread frames are dropped and
// the stacks of all threads fold together. Metadata is kept.
Profile MergeThreads(const Profile& profile);

// MergeProfiles()
//
// A new profile with the stacks of both (see Profile::Merge()). Fails with
// InvalidArgument when they sampled different events, which cannot be
// added together.
absl::StatusOr<Profile> MergeProfiles(const Profile& a, const Profile& b);

template <typename Fn>
void Profile::ForEachStack(Fn&& fn) const {
  for (size_t i = 0; i < stacks_.size(); ++i) {
    fn(stack(i), stacks_[i].count);
  }
}

}  // namespace flamekit

// The definitions, in the one translation unit that asks for them (see
// profile_impl.h).
#if defined(FLAMEKIT_IMPLEMENTATION)
#include "flamekit/profile/profile_impl.h"
#endif

#endif  // FLAMEKIT_PROFILE_PROFILE_H_
