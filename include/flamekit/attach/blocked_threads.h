// SPDX-License-Identifier: Apache-2.0
// File: blocked_threads.h
//
// attach_internal::BlockedThreads names where the threads of a target wait
// that were already off CPU when a `record -e wall` capture started: such a
// thread has no switch-out in the capture, so the kernel gives it neither a
// stack nor a state. At the start, /proc/PID/task/TID/syscall says, for a
// thread blocked in the kernel, the system call number (or -1 outside
// one), its user stack pointer and pc; with ptrace access (as perf itself
// needs) the top of its user stack is copied with process_vm_readv, and
// later walked with the .eh_frame rules (unwind/copied_stack.h), so an
// idle redis thread shows `main;aeMain;...;epoll_wait;[syscall
// epoll_wait]` instead of a bare `[off-CPU since before the capture]`.
// Bounds: at most kMaxBlockedStacks threads get a stack copy of
// kBlockedStackBytes each (512 KiB in all); the others keep their state
// frame only. A copy that cannot be read (no permission, the thread
// moved on) leaves the state alone; nothing is invented: a walk that stops
// early is marked truncated.
//
// Thread-compatible: used by the AttachSession's thread only. Not for
// signal handlers (allocates, reads files).
//
// Example:
//
//   attach_internal::BlockedThreads blocked(pid);
//   blocked.Read(tids);                       // before the events start
//   blocked.Walk(symbols);                    // once the capture runs
//   blocked.HandTo(offcpu);                   // OffCpuSwitches

#ifndef FLAMEKIT_ATTACH_BLOCKED_THREADS_H_
#define FLAMEKIT_ATTACH_BLOCKED_THREADS_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "flamekit/attach/attach_symbols.h"
#include "flamekit/attach/offcpu_switches.h"
#include "flamekit/base/config.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/collect/thread_state.h"
#include "flamekit/unwind/cfi_table.h"
#include "flamekit/unwind/copied_stack.h"

namespace flamekit {
namespace attach_internal {

// Stack bytes copied per blocked thread (perf's default dwarf copy).
inline constexpr size_t kBlockedStackBytes = 8192;
// Threads whose stack is copied; the rest get their state frame only.
inline constexpr size_t kMaxBlockedStacks = 64;

// Highest x86-64 user address: a pc above it is not user code.
inline constexpr uint64_t kMaxUserPc = 0x00007fffffffffffULL;

// ProcSyscall: one /proc/PID/task/TID/syscall line.
struct ProcSyscall {
  int32_t number = -1;  // -1: blocked outside a system call
  uint64_t sp = 0;
  uint64_t pc = 0;
};

// ParseProcSyscall()
//
// "NR a1 a2 a3 a4 a5 a6 SP PC" (in a call) or "-1 SP PC" (blocked
// elsewhere); nullopt for "running" or anything else.
std::optional<ProcSyscall> ParseProcSyscall(absl::string_view text);

struct BlockedThread {
  ThreadStateKey state = kSleepingState;
  ProcSyscall at;
  std::vector<uint8_t> stack;  // copied from `at.sp` up; freed by Walk()
  std::vector<uint64_t> pcs;   // user frames, leaf first (after Walk())
  bool truncated = false;
};

class BlockedThreads {
 public:
  explicit BlockedThreads(pid_t pid) : pid_(pid) {}

  // Read()
  //
  // Reads each of `tids` that is blocked now (not running) and copies the
  // top of its user stack (see the bounds above).
  void Read(const std::vector<pid_t>& tids);

  // Walk()
  //
  // Walks each copied stack with the rules of `symbols` (null: the leaf
  // alone), asking for the files the walks reach (WantFrameRulesAt()), and
  // frees the copies.
  void Walk(AttachSymbols* symbols);

  // The thread as read at the start, or null (running, or unreadable).
  const BlockedThread* Find(uint32_t tid) const {
    auto it = threads_.find(tid);
    return it == threads_.end() ? nullptr : &it->second;
  }
  size_t size() const { return threads_.size(); }

  // HandTo()
  //
  // Tells `off` how each thread read waited (OffCpuSwitches::SetBefore()).
  void HandTo(OffCpuSwitches& off) const {
    for (const auto& [tid, t] : threads_) off.SetBefore(tid, t.pcs, t.truncated, t.state);
  }

 private:
  const pid_t pid_;
  absl::flat_hash_map<uint32_t, BlockedThread> threads_;
};

// Implementation details follow.

inline std::optional<ProcSyscall> ParseProcSyscall(absl::string_view text) {
  std::vector<absl::string_view> f =
      absl::StrSplit(absl::StripAsciiWhitespace(text), ' ', absl::SkipEmpty());
  if (f.size() != 9 && f.size() != 3) return std::nullopt;
  ProcSyscall s;
  auto hex = [](absl::string_view v, uint64_t* out) {
    return absl::ConsumePrefix(&v, "0x") && absl::SimpleHexAtoi(v, out);
  };
  if (!absl::SimpleAtoi(f[0], &s.number) || s.number < -1) return std::nullopt;
  if ((f.size() == 3) != (s.number == -1)) return std::nullopt;
  if (!hex(f[f.size() - 2], &s.sp) || !hex(f[f.size() - 1], &s.pc)) return std::nullopt;
  return s;
}

inline void BlockedThreads::Read(const std::vector<pid_t>& tids) {
  size_t copies = 0;
  for (pid_t tid : tids) {
    absl::StatusOr<std::string> text =
        ReadSmallFile(absl::StrCat("/proc/", pid_, "/task/", tid, "/syscall"), 512);
    if (!text.ok()) continue;
    std::optional<ProcSyscall> at = ParseProcSyscall(*text);
    if (!at.has_value()) continue;  // running, or no permission
    BlockedThread& t = threads_[static_cast<uint32_t>(tid)];
    t.at = *at;
    t.state = at->number >= 0 ? SyscallState(at->number) : kSleepingState;
    if (copies >= kMaxBlockedStacks || at->sp == 0 || at->pc == 0 || at->pc > kMaxUserPc) {
      continue;
    }
    t.stack.resize(kBlockedStackBytes);
    // The stack may end (its top page) before the copy would: read page by
    // page so the part that exists is kept.
    size_t got = 0;
    while (got < t.stack.size()) {
      const uint64_t from = at->sp + got;
      const size_t chunk = std::min<size_t>(t.stack.size() - got, 4096 - (from & 4095));
      iovec local{t.stack.data() + got, chunk};
      iovec remote{reinterpret_cast<void*>(from), chunk};
      ssize_t n = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
      if (n <= 0) break;
      got += static_cast<size_t>(n);
    }
    t.stack.resize(got);
    if (got > 0) ++copies;
  }
}

inline void BlockedThreads::Walk(AttachSymbols* symbols) {
  uint64_t frames[FLAMEKIT_MAX_FRAMES];
  for (auto& entry : threads_) {
    // Not a structured binding: clang 14 (C++17) refuses a lambda that
    // captures one, and walk_once below captures the thread.
    auto& t = entry.second;
    if (t.stack.empty()) continue;
    // No frame pointer is known (the file gives sp and pc only): the rules
    // step sp-based frames and recover rbp where a frame saved it.
    const FramePointerStart start{t.at.pc, 0, t.at.sp};
    auto walk_once = [&] {
      return UnwindCopiedStack(symbols ? symbols->FrameRules() : nullptr, start, t.stack.data(),
                               t.stack.size(), frames, sizeof(frames) / sizeof(frames[0]));
    };
    // Frames in files the rules do not cover yet: cover them, walk again
    // (each round covers one more file at least).
    auto want_rules = [&](const UnwindResult& w) {
      bool wanted = false;
      for (size_t k = 0; symbols != nullptr && k < w.frame_count; ++k) {
        wanted |= symbols->WantFrameRulesAt(frames[k]);
      }
      return wanted;
    };
    UnwindResult walk = walk_once();
    while (want_rules(walk)) walk = walk_once();
    t.pcs.assign(frames, frames + walk.frame_count);
    t.truncated = !walk.complete;
    t.stack.clear();
    t.stack.shrink_to_fit();
  }
}

}  // namespace attach_internal
}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_BLOCKED_THREADS_H_
