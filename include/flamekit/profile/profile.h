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

#ifndef FLAMEKIT_PROFILE_PROFILE_H_
#define FLAMEKIT_PROFILE_PROFILE_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
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
  // One name index per kind: lookups by string_view with no allocation.
  std::array<absl::flat_hash_map<std::string, FrameId>, kFrameKindCount> frame_index_;
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

// Implementation details follow.

namespace profile_internal {

inline uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? ~uint64_t{0} : sum;
}

}  // namespace profile_internal

inline FrameId Profile::InternFrame(absl::string_view name, FrameKind kind) {
  auto& index = frame_index_[static_cast<size_t>(kind)];
  auto it = index.find(name);
  if (it != index.end()) return it->second;
  FrameId id = static_cast<FrameId>(frames_.size());
  frames_.push_back(Frame{std::string(name), kind});
  index.emplace(std::string(name), id);
  return id;
}

inline std::optional<FrameId> Profile::FindFrame(absl::string_view name,
                                                 FrameKind kind) const {
  const auto& index = frame_index_[static_cast<size_t>(kind)];
  auto it = index.find(name);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

inline uint64_t Profile::HashFrames(absl::Span<const FrameId> frames) {
  // absl::Hash hashes a span of integers as bytes, 64 at a time with
  // independent lanes: ~8.5 ns for 35 frames here, about half of what a
  // simple per-word multiply chain costs.
  return absl::Hash<absl::Span<const FrameId>>()(frames);
}

inline void Profile::Rehash(size_t slot_count) {
  slots_.assign(slot_count, 0);
  const size_t mask = slot_count - 1;
  for (size_t i = 0; i < stacks_.size(); ++i) {
    size_t pos = stacks_[i].hash & mask;
    while (slots_[pos] != 0) pos = (pos + 1) & mask;
    slots_[pos] = MakeSlot(stacks_[i].hash, i);
  }
}

inline void Profile::Reserve(size_t stacks, size_t frame_ids) {
  stacks_.reserve(stacks);
  arena_.reserve(frame_ids);
  size_t want = 16;
  while (want < stacks * 2) want *= 2;
  if (want > slots_.size()) Rehash(want);
}

inline void Profile::AddStackImpl(absl::Span<const FrameId> root_to_leaf, uint64_t count,
                                  uint64_t events) {
  if (root_to_leaf.empty() || (count == 0 && events == 0)) return;
  total_samples_ = profile_internal::SaturatingAdd(total_samples_, count);
  total_events_ = profile_internal::SaturatingAdd(total_events_, events);
  if (slots_.empty()) Rehash(16);
  const uint32_t hash = static_cast<uint32_t>(HashFrames(root_to_leaf));
  const size_t mask = slots_.size() - 1;
  const size_t n = root_to_leaf.size();
  size_t pos = hash & mask;
  while (uint64_t slot = slots_[pos]) {
    // The slot holds the hash too: most mismatches are rejected without
    // touching stacks_ or the arena.
    if (SlotHash(slot) == hash) {
      StackEntry& entry = stacks_[SlotIndex(slot)];
      if (entry.size == n &&
          memcmp(arena_.data() + entry.offset, root_to_leaf.data(),
                 n * sizeof(FrameId)) == 0) {
        entry.count = profile_internal::SaturatingAdd(entry.count, count);
        if (has_events_) {
          uint64_t& e = events_[SlotIndex(slot)];
          e = profile_internal::SaturatingAdd(e, events);
        }
        return;
      }
    }
    pos = (pos + 1) & mask;
  }
  // New stack. root_to_leaf may point into arena_ (e.g. a span from
  // stack()), so copy it before the arena can reallocate.
  const size_t offset = arena_.size();
  if (root_to_leaf.data() >= arena_.data() &&
      root_to_leaf.data() < arena_.data() + arena_.size()) {
    std::vector<FrameId> copy(root_to_leaf.begin(), root_to_leaf.end());
    arena_.insert(arena_.end(), copy.begin(), copy.end());
  } else {
    arena_.insert(arena_.end(), root_to_leaf.begin(), root_to_leaf.end());
  }
  stacks_.push_back(StackEntry{offset, static_cast<uint32_t>(n), hash, count});
  if (has_events_) events_.push_back(events);
  slots_[pos] = MakeSlot(hash, stacks_.size() - 1);
  if (stacks_.size() * 2 > slots_.size()) Rehash(slots_.size() * 2);
}

inline std::optional<size_t> Profile::FindStack(
    absl::Span<const FrameId> root_to_leaf) const {
  if (slots_.empty() || root_to_leaf.empty()) return std::nullopt;
  const uint32_t hash = static_cast<uint32_t>(HashFrames(root_to_leaf));
  const size_t mask = slots_.size() - 1;
  const size_t n = root_to_leaf.size();
  for (size_t pos = hash & mask; slots_[pos] != 0; pos = (pos + 1) & mask) {
    const uint64_t slot = slots_[pos];
    if (SlotHash(slot) != hash) continue;
    const StackEntry& entry = stacks_[SlotIndex(slot)];
    if (entry.size == n &&
        memcmp(arena_.data() + entry.offset, root_to_leaf.data(),
               n * sizeof(FrameId)) == 0) {
      return SlotIndex(slot);
    }
  }
  return std::nullopt;
}

inline void Profile::AddThreadStack(absl::string_view thread_name,
                                    absl::Span<const FrameId> root_to_leaf,
                                    uint64_t count) {
  if (root_to_leaf.empty() || count == 0) return;
  FrameId thread = InternFrame(thread_name, FrameKind::kThread);
  scratch_.clear();
  scratch_.push_back(thread);
  scratch_.insert(scratch_.end(), root_to_leaf.begin(), root_to_leaf.end());
  AddStack(scratch_, count);
}

inline void Profile::Merge(const Profile& other) {
  if (&other == this) {
    Profile copy = other;
    Merge(copy);
    return;
  }
  if (other.has_events()) EnableEvents();
  std::vector<FrameId> map(other.frames_.size());
  for (size_t i = 0; i < other.frames_.size(); ++i) {
    map[i] = InternFrame(other.frames_[i].name, other.frames_[i].kind);
  }
  std::vector<FrameId> translated;
  for (size_t i = 0; i < other.stack_count(); ++i) {
    absl::Span<const FrameId> s = other.stack(i);
    translated.resize(s.size());
    for (size_t j = 0; j < s.size(); ++j) translated[j] = map[s[j]];
    if (other.has_events()) {
      AddStack(translated, other.stack_count_at(i), other.stack_events_at(i));
    } else {
      AddStack(translated, other.stack_count_at(i));
    }
  }
  const ProfileMetadata& o = other.metadata_;
  metadata_.dropped_samples += o.dropped_samples;
  metadata_.lost_samples += o.lost_samples;
  if (o.start_time != absl::InfinitePast() &&
      (metadata_.start_time == absl::InfinitePast() ||
       o.start_time < metadata_.start_time)) {
    metadata_.start_time = o.start_time;
  }
  if (o.end_time > metadata_.end_time) metadata_.end_time = o.end_time;
  metadata_.threads = std::max(metadata_.threads, o.threads);
}

inline bool Profile::HasThreadFrames() const {
  for (const StackEntry& entry : stacks_) {
    if (frames_[arena_[entry.offset]].kind == FrameKind::kThread) return true;
  }
  return false;
}

inline std::vector<uint32_t> Profile::SortedFrameRanks() const {
  std::vector<FrameId> order(frames_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<FrameId>(i);
  std::sort(order.begin(), order.end(), [this](FrameId a, FrameId b) {
    int c = frames_[a].name.compare(frames_[b].name);
    if (c != 0) return c < 0;
    return frames_[a].kind < frames_[b].kind;
  });
  std::vector<uint32_t> rank(frames_.size());
  for (size_t i = 0; i < order.size(); ++i) rank[order[i]] = static_cast<uint32_t>(i);
  return rank;
}

inline std::vector<size_t> Profile::SortedStackIndices() const {
  // Frames are ranked once by (name, kind); stacks then compare as rank
  // sequences, with no string comparison per stack pair.
  const std::vector<uint32_t> rank = SortedFrameRanks();
  std::vector<size_t> order(stacks_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    absl::Span<const FrameId> x = stack(a);
    absl::Span<const FrameId> y = stack(b);
    size_t n = std::min(x.size(), y.size());
    for (size_t i = 0; i < n; ++i) {
      if (x[i] == y[i]) continue;
      return rank[x[i]] < rank[y[i]];
    }
    return x.size() < y.size();
  });
  return order;
}

template <typename Fn>
void Profile::ForEachStack(Fn&& fn) const {
  for (size_t i = 0; i < stacks_.size(); ++i) {
    fn(stack(i), stacks_[i].count);
  }
}

inline std::string ThreadFrameName(absl::string_view thread_name, int64_t tid) {
  if (thread_name.empty()) return absl::StrCat("tid=", tid);
  return absl::StrCat(thread_name, " tid=", tid);
}

inline Profile MergeThreads(const Profile& profile) {
  Profile result;
  result.metadata() = profile.metadata();
  if (profile.has_events()) result.EnableEvents();
  constexpr FrameId kUnmapped = ~FrameId{0};
  std::vector<FrameId> map(profile.frame_count(), kUnmapped);
  std::vector<FrameId> translated;
  for (size_t i = 0; i < profile.stack_count(); ++i) {
    absl::Span<const FrameId> s = profile.stack(i);
    size_t skip = 0;
    while (skip < s.size() &&
           profile.frame(s[skip]).kind == FrameKind::kThread) {
      ++skip;
    }
    translated.clear();
    for (size_t j = skip; j < s.size(); ++j) {
      FrameId& mapped = map[s[j]];
      if (mapped == kUnmapped) {
        const Frame& f = profile.frame(s[j]);
        mapped = result.InternFrame(f.name, f.kind);
      }
      translated.push_back(mapped);
    }
    if (profile.has_events()) {
      result.AddStack(translated, profile.stack_count_at(i), profile.stack_events_at(i));
    } else {
      result.AddStack(translated, profile.stack_count_at(i));
    }
  }
  return result;
}

inline absl::StatusOr<Profile> MergeProfiles(const Profile& a, const Profile& b) {
  if (a.metadata().event != b.metadata().event) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot merge a '", a.metadata().event, "' profile with a '",
        b.metadata().event, "' profile: their samples count different "
        "things; merge profiles of the same event"));
  }
  Profile merged = a;
  merged.Merge(b);
  return merged;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_PROFILE_H_
