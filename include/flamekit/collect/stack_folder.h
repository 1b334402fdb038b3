// SPDX-License-Identifier: Apache-2.0
// File: stack_folder.h
//
// StackFolder is the middle stage every source feeds: it takes raw samples
// (leaf-first addresses, thread, state, truncation, weight, the stack words
// above sp), repairs the caller a frame-pointer walk skips (LeafRepair),
// folds equal stacks by address, keeps the set of addresses not yet named,
// and finally builds a symbolized Profile with one spelling of the thread
// root (ThreadFrameName()), of thread states and of truncation. The embedded
// profiler's collector (profiler_session.h) and attach mode's session
// (attach/attach.h) both fold here and nowhere else.
//
// Thread-compatible: one StackFolder is used by one thread at a time (the
// caller's lock). Not for signal handlers: it allocates. Addresses are named
// by the caller, when and on which thread it likes (the embedded collector
// synchronously per drain, attach mode on a worker while the target lives):
// TakeUnnamed() hands out each new address once, SetName() records its name.
//
// Example:
//
//   StackFolder folder(StackFolderOptions{.per_thread = true}, &repair);
//   RawSample s;
//   s.tid = 42;
//   s.pcs = absl::MakeConstSpan(addresses);  // leaf first
//   s.user_leaf = 0;
//   folder.Add(s);
//   for (uint64_t a : folder.TakeUnnamed()) folder.SetName(a, NameOf(a));
//   Profile profile;
//   folder.AddTo(profile, [](uint32_t tid) { return ThreadName(tid); });

#ifndef FLAMEKIT_COLLECT_STACK_FOLDER_H_
#define FLAMEKIT_COLLECT_STACK_FOLDER_H_

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "flamekit/base/frame_kind.h"
#include "flamekit/collect/frame_name.h"
#include "flamekit/collect/thread_state.h"
#include "flamekit/profile/profile.h"
#include "flamekit/unwind/leaf_repair.h"

namespace flamekit {

// RawSample
//
// One sample as a source saw it. Spans point into the source's buffers and
// are read only during StackFolder::Add().
struct RawSample {
  uint32_t tid = 0;
  // Leaf first. pcs[0] and pcs[user_leaf] are where the code was (the first
  // of the kernel's and of the user's frames); every other entry is a return
  // address, looked up one byte back so it falls inside its call (a call at
  // the end of a function would otherwise name the next one).
  absl::Span<const uint64_t> pcs;
  // Index of the first user-space frame: 0 with no kernel frames,
  // pcs.size() when the sample has kernel frames only.
  size_t user_leaf = 0;
  // The 8-byte words above the user stack pointer at the sample (may be
  // empty): where a frameless leaf's return address is found.
  absl::Span<const uint64_t> stack_words;
  // The deeper frames were cut: the profile shows a "[truncated]" root.
  bool truncated = false;
  // For the wall engine: running, or blocked in a system call (see
  // thread_state.h). kNoThreadState for every other event.
  ThreadStateKey state = kNoThreadState;
  uint64_t weight = 1;
};

struct StackFolderOptions {
  // A root frame per thread (ThreadFrameName(), FrameKind::kThread).
  bool per_thread = false;
};

class StackFolder {
 public:
  // `repair` may be nullptr (no leaf repair); it must outlive the folder.
  explicit StackFolder(StackFolderOptions options, LeafRepair* repair = nullptr)
      : options_(options), repair_(repair) {}

  // Add()
  //
  // Folds one sample. Returns false (and adds nothing) for a sample with no
  // frames.
  bool Add(const RawSample& sample);

  // RepeatLast()
  //
  // Adds `weight` to the last stack Add() folded for `tid` with
  // `remember_for_repeat` (the wall engine's "still blocked where the last
  // sample saw it"). False when there is none.
  bool RepeatLast(uint32_t tid, uint64_t weight);
  // Whether Add() remembers stacks for RepeatLast(): only for samples whose
  // state is a system call (the only ones a source repeats).
  void set_remember_blocked(bool remember) { remember_blocked_ = remember; }

  // TakeUnnamed()
  //
  // The addresses (already adjusted into their calls) that appeared since the
  // last call, each once per folder; name them and call SetName().
  std::vector<uint64_t> TakeUnnamed();
  void SetName(uint64_t address, FrameName name);
  bool HasName(uint64_t address) const { return names_.contains(address); }

  // Forget names (an exec replaced the code, or the caller re-reads maps);
  // every folded address is handed out again by TakeUnnamed().
  void ForgetNames();

  // AddTo()
  //
  // Adds every folded stack to `profile`, root first: the thread root
  // (per_thread; ThreadFrameName() of `thread_name(tid)`), "[truncated]"
  // when cut, the frames, then the state frame. Addresses never named
  // become "0x..." frames.
  void AddTo(Profile& profile, const std::function<std::string(uint32_t)>& thread_name) const;

  uint64_t samples() const { return samples_; }
  size_t distinct_stacks() const { return folded_.size(); }
  // Threads with at least one sample.
  size_t threads() const { return threads_.size(); }
  bool sampled_thread(uint32_t tid) const { return threads_.contains(tid); }
  bool per_thread() const { return options_.per_thread; }

 private:
  // Key layout: [tid or 0, state, truncated, address...] (leaf first,
  // adjusted). The tid has its own slot, so no address can pass for one.
  static constexpr size_t kHeader = 3;

  void Note(uint64_t address);

  const StackFolderOptions options_;
  LeafRepair* const repair_;
  absl::flat_hash_map<std::vector<uint64_t>, uint64_t> folded_;
  std::vector<uint64_t> key_;
  absl::flat_hash_map<uint64_t, FrameName> names_;
  // Addresses seen, named or not, and those not yet handed out.
  absl::flat_hash_map<uint64_t, bool> seen_;
  std::vector<uint64_t> unnamed_;
  absl::flat_hash_map<uint32_t, std::vector<uint64_t>> last_blocked_;
  absl::flat_hash_map<uint32_t, bool> threads_;
  bool remember_blocked_ = false;
  uint64_t samples_ = 0;
};

// Implementation details follow.

inline void StackFolder::Note(uint64_t address) {
  key_.push_back(address);
  if (seen_.emplace(address, true).second) unnamed_.push_back(address);
}

inline bool StackFolder::Add(const RawSample& s) {
  if (s.pcs.empty()) return false;
  key_.clear();
  key_.push_back(options_.per_thread ? s.tid : 0);
  key_.push_back(s.state);
  key_.push_back(s.truncated ? 1 : 0);
  uint64_t missing = 0;
  if (repair_ != nullptr && s.user_leaf < s.pcs.size()) {
    const uint64_t walked = s.user_leaf + 1 < s.pcs.size() ? s.pcs[s.user_leaf + 1] : 0;
    missing = repair_->MissingCaller(s.pcs[s.user_leaf], walked, s.stack_words);
  }
  for (size_t i = 0; i < s.pcs.size(); ++i) {
    // Return addresses point after the call; step back into it.
    Note(i == 0 || i == s.user_leaf ? s.pcs[i] : s.pcs[i] - 1);
    if (i == s.user_leaf && missing != 0) Note(missing - 1);
  }
  folded_[key_] += s.weight;
  samples_ += s.weight;
  threads_.emplace(s.tid, true);
  if (remember_blocked_ && IsSyscallState(s.state)) last_blocked_[s.tid] = key_;
  return true;
}

inline bool StackFolder::RepeatLast(uint32_t tid, uint64_t weight) {
  auto last = last_blocked_.find(tid);
  if (last == last_blocked_.end()) return false;
  folded_[last->second] += weight;
  samples_ += weight;
  return true;
}

inline std::vector<uint64_t> StackFolder::TakeUnnamed() {
  std::vector<uint64_t> out;
  out.swap(unnamed_);
  return out;
}

inline void StackFolder::SetName(uint64_t address, FrameName name) {
  names_[address] = std::move(name);
}

inline void StackFolder::ForgetNames() {
  names_.clear();
  unnamed_.clear();
  for (const auto& [address, unused] : seen_) unnamed_.push_back(address);
}

inline void StackFolder::AddTo(Profile& profile,
                               const std::function<std::string(uint32_t)>& thread_name) const {
  absl::flat_hash_map<uint64_t, FrameId> frames;
  absl::flat_hash_map<uint32_t, FrameId> thread_frames;
  auto frame_for = [&](uint64_t address) {
    auto it = frames.find(address);
    if (it != frames.end()) return it->second;
    auto named = names_.find(address);
    FrameId id = named != names_.end()
                     ? profile.InternFrame(named->second.name, named->second.kind)
                     : profile.InternFrame(absl::StrCat("0x", absl::Hex(address)),
                                           (address >> 63) != 0 ? FrameKind::kKernel
                                                                : FrameKind::kUnknown);
    frames.emplace(address, id);
    return id;
  };
  std::vector<FrameId> stack;
  for (const auto& [key, count] : folded_) {
    stack.clear();
    if (options_.per_thread) {
      const uint32_t tid = static_cast<uint32_t>(key[0]);
      auto it = thread_frames.find(tid);
      if (it == thread_frames.end()) {
        FrameId id = profile.InternFrame(ThreadFrameName(thread_name ? thread_name(tid) : "", tid),
                                         FrameKind::kThread);
        it = thread_frames.emplace(tid, id).first;
      }
      stack.push_back(it->second);
    }
    if (key[2] != 0) {
      stack.push_back(profile.InternFrame(kTruncatedFrameName, FrameKind::kTruncated));
    }
    for (size_t i = key.size(); i > kHeader; --i) stack.push_back(frame_for(key[i - 1]));
    if (key[1] != kNoThreadState) {
      FrameName state = ThreadStateFrame(key[1]);
      stack.push_back(profile.InternFrame(state.name, state.kind));
    }
    profile.AddStack(stack, count);
  }
}

}  // namespace flamekit

#endif  // FLAMEKIT_COLLECT_STACK_FOLDER_H_
