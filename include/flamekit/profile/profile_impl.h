// SPDX-License-Identifier: Apache-2.0
// File: profile_impl.h
//
// Profile's definitions (flamekit/profile/profile.h declares them). They
// are compiled once per binary, not in every file that includes profile.h:
// interning, folding and sorting instantiate Abseil's hash map, its hashing
// and std::sort, which made up half of what a file that only receives a
// Profile from Profiler::Stop() took to compile.
//
// Bazel: the target //include/flamekit/profile:profile compiles this
// (profile.cc). Other builds: define FLAMEKIT_IMPLEMENTATION before the
// flamekit includes of exactly one translation unit; profile.h includes
// this file there. A second copy in one binary is a link error (duplicate
// Profile members), never a silent mismatch.
//
// Thread and signal safety: as profile.h says.

#ifndef FLAMEKIT_PROFILE_PROFILE_IMPL_H_
#define FLAMEKIT_PROFILE_PROFILE_IMPL_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <array>
#include <memory>
#include <optional>
#include <string>
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
#include "flamekit/profile/profile.h"

namespace flamekit {

namespace profile_internal {

uint64_t SaturatingAdd(uint64_t a, uint64_t b) {
  uint64_t sum;
  return __builtin_add_overflow(a, b, &sum) ? ~uint64_t{0} : sum;
}

}  // namespace profile_internal

struct Profile::FrameIndex {
  std::array<absl::flat_hash_map<std::string, FrameId>, kFrameKindCount> by_kind;
};

Profile::FrameIndexOwner::FrameIndexOwner() = default;
Profile::FrameIndexOwner::~FrameIndexOwner() = default;
Profile::FrameIndexOwner::FrameIndexOwner(FrameIndexOwner&& other) noexcept = default;
Profile::FrameIndexOwner& Profile::FrameIndexOwner::operator=(FrameIndexOwner&& other) noexcept =
    default;

Profile::FrameIndexOwner::FrameIndexOwner(const FrameIndexOwner& other)
    : index(other.index ? std::make_unique<FrameIndex>(*other.index) : nullptr) {}

Profile::FrameIndexOwner& Profile::FrameIndexOwner::operator=(const FrameIndexOwner& other) {
  if (&other != this) {
    index = other.index ? std::make_unique<FrameIndex>(*other.index) : nullptr;
  }
  return *this;
}

FrameId Profile::InternFrame(absl::string_view name, FrameKind kind) {
  std::unique_ptr<FrameIndex>& owned = frame_index_.index;
  if (!owned) owned = std::make_unique<FrameIndex>();
  auto& index = owned->by_kind[static_cast<size_t>(kind)];
  auto it = index.find(name);
  if (it != index.end()) return it->second;
  FrameId id = static_cast<FrameId>(frames_.size());
  frames_.push_back(Frame{std::string(name), kind});
  index.emplace(std::string(name), id);
  return id;
}

std::optional<FrameId> Profile::FindFrame(absl::string_view name, FrameKind kind) const {
  if (!frame_index_.index) return std::nullopt;
  const auto& index = frame_index_.index->by_kind[static_cast<size_t>(kind)];
  auto it = index.find(name);
  if (it == index.end()) return std::nullopt;
  return it->second;
}

uint64_t Profile::HashFrames(absl::Span<const FrameId> frames) {
  // absl::Hash hashes a span of integers as bytes, 64 at a time with
  // independent lanes: ~8.5 ns for 35 frames here, about half of what a
  // simple per-word multiply chain costs.
  return absl::Hash<absl::Span<const FrameId>>()(frames);
}

void Profile::Rehash(size_t slot_count) {
  slots_.assign(slot_count, 0);
  const size_t mask = slot_count - 1;
  for (size_t i = 0; i < stacks_.size(); ++i) {
    size_t pos = stacks_[i].hash & mask;
    while (slots_[pos] != 0) pos = (pos + 1) & mask;
    slots_[pos] = MakeSlot(stacks_[i].hash, i);
  }
}

void Profile::Reserve(size_t stacks, size_t frame_ids) {
  stacks_.reserve(stacks);
  arena_.reserve(frame_ids);
  size_t want = 16;
  while (want < stacks * 2) want *= 2;
  if (want > slots_.size()) Rehash(want);
}

void Profile::AddStackImpl(absl::Span<const FrameId> root_to_leaf, uint64_t count,
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

std::optional<size_t> Profile::FindStack(absl::Span<const FrameId> root_to_leaf) const {
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

void Profile::AddThreadStack(absl::string_view thread_name,
                             absl::Span<const FrameId> root_to_leaf, uint64_t count) {
  if (root_to_leaf.empty() || count == 0) return;
  FrameId thread = InternFrame(thread_name, FrameKind::kThread);
  scratch_.clear();
  scratch_.push_back(thread);
  scratch_.insert(scratch_.end(), root_to_leaf.begin(), root_to_leaf.end());
  AddStack(scratch_, count);
}

void Profile::Merge(const Profile& other) {
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

bool Profile::HasThreadFrames() const {
  for (const StackEntry& entry : stacks_) {
    if (frames_[arena_[entry.offset]].kind == FrameKind::kThread) return true;
  }
  return false;
}

std::vector<uint32_t> Profile::SortedFrameRanks() const {
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

std::vector<size_t> Profile::SortedStackIndices() const {
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


std::string ThreadFrameName(absl::string_view thread_name, int64_t tid) {
  if (thread_name.empty()) return absl::StrCat("tid=", tid);
  return absl::StrCat(thread_name, " tid=", tid);
}

Profile MergeThreads(const Profile& profile) {
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

absl::StatusOr<Profile> MergeProfiles(const Profile& a, const Profile& b) {
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

#endif  // FLAMEKIT_PROFILE_PROFILE_IMPL_H_
