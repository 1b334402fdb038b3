// SPDX-License-Identifier: Apache-2.0
// File: sampler.h
//
// The common part of flamekit's in-process sampling engines (perf `cpu` and
// counters, `ctimer`, `itimer`, `wall`): the Sampler interface the profiler
// drives, the state the signal handler reads (the StackRing it pushes to,
// the thread stack table bounding its unwinding), and the handler path
// itself: read registers -> bound the stack -> walk frame pointers -> push.
//
// Thread and signal safety:
//   - HandleSampleSignal() and everything it calls are async-signal-safe: no
//     allocation, no lock, no stdio; two clock_gettime() calls (vDSO) and, on
//     a thread's first sample, one gettid() system call. For the perf engine
//     it also reads the thread's kernel chain ring (perf_kernel_chain.h).
//   - ActivateSampling()/DeactivateSampling() and Sampler methods run on the
//     profiler's control or collector thread, one at a time.
//   - DeactivateSampling() returns only when no handler is inside the sample
//     path any more, so the ring and table may be freed afterwards.
//
// Example (what profiler.h does):
//
//   flamekit::SamplingTarget target{ring.get(), &table, 64};
//   flamekit::ActivateSampling(target, flamekit::SampleSource::kCtimer);
//   std::unique_ptr<flamekit::Sampler> sampler = ...;   // e.g. CtimerSampler
//   FLAMEKIT_RETURN_IF_ERROR(sampler->Start());
//   sampler->AddThread(tid);
//   ...
//   sampler->Stop();
//   flamekit::DeactivateSampling();

#ifndef FLAMEKIT_SAMPLE_SAMPLER_H_
#define FLAMEKIT_SAMPLE_SAMPLER_H_

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/buffer/stack_record.h"
#include "flamekit/buffer/stack_ring.h"
#include "flamekit/perf/perf_kernel_chain.h"
#include "flamekit/sample/wall_idle.h"
#include "flamekit/unwind/cfi_table.h"
#include "flamekit/unwind/frame_pointer.h"
#include "flamekit/unwind/stack_bounds.h"
#include "flamekit/unwind/ucontext_regs.h"

namespace flamekit {

// Which engine's signals the handler accepts right now.
enum class SampleSource : int {
  kNone = 0,
  kItimer,  // SIGPROF from setitimer(ITIMER_PROF): si_code == SI_KERNEL
  kCtimer,  // timer_create(): si_code == SI_TIMER with our cookie
  kWall,    // rt_tgsigqueueinfo() from the wall timer thread: SI_QUEUE + cookie
  kPerf,    // perf_event fd overflow (F_SETSIG): si_code POLL_*, si_fd ours
};

// Where samples go and how deep they are walked.
struct SamplingTarget {
  StackRing* ring = nullptr;
  const ThreadStackTable* stacks = nullptr;
  uint32_t max_depth = kMaxStackFrames;  // clamped to [1, kMaxStackFrames]
  // Unwind with these call frame rules (unwind/cfi_table.h) instead of
  // frame pointers alone; null: frame pointers. Replaced while sampling
  // with PublishCfiTable().
  const CfiTable* cfi = nullptr;
};

// Sampler
//
// One sampling engine. Start() prepares it (installs the signal handler,
// process-wide timers), AddThread()/RemoveThread() arm and disarm one
// thread (per-thread engines; no-ops for itimer), Stop() disarms all and
// restores the handler. Called from one thread at a time.
class Sampler {
 public:
  virtual ~Sampler() = default;
  // The engine name recorded in profiles: "perf cpu-clock", "ctimer", ...
  virtual std::string name() const = 0;
  virtual SampleSource source() const = 0;
  virtual absl::Status Start() = 0;
  // Arms sampling of thread `tid` of this process. A thread that exited
  // meanwhile gives NotFound; other errors say what to do.
  virtual absl::Status AddThread(pid_t tid) = 0;
  virtual void RemoveThread(pid_t tid) = 0;
  virtual void Stop() = 0;
  // Whether the engine samples each thread separately (and so needs
  // AddThread for new threads).
  virtual bool per_thread() const { return true; }
};

// ActivateSampling()
//
// Points the signal handler at `target` and accepts signals of `source`.
// Call before the engine starts delivering signals.
void ActivateSampling(const SamplingTarget& target, SampleSource source);

// DeactivateSampling()
//
// Stops accepting samples and waits until no handler is inside the sample
// path. After it returns the target's ring and table may be destroyed.
void DeactivateSampling();

// RefuseSamples()
//
// Stops accepting samples at once, without waiting for handlers: for exit
// and for a forked child, where waiting could hang (a thread that was in a
// handler does not exist in the child, or holds a lock at exit). Handlers
// already inside the sample path finish normally. Async-signal-safe.
void RefuseSamples();

// ForgetThreadAfterFork()
//
// In a forked child: the calling thread's cached tid is the parent's thread
// id; drop it so the next sample reads the child's. Async-signal-safe.
void ForgetThreadAfterFork();

// PublishCfiTable()
//
// Makes handlers unwind with `table` from now on (after a dlopen, say).
// The table it replaces may still be read by a handler until
// WaitForSampleHandlers() returns; free it only after that.
void PublishCfiTable(const CfiTable* table);

// WaitForSampleHandlers()
//
// Waits until no handler is inside the sample path: after unpublishing
// something handlers look up (a kernel chain ring), it may then be freed.
void WaitForSampleHandlers();

// SampleSignalCallback()
//
// The SignalCallback all engines install (see signal_handler.h): claims the
// signal when it comes from the active engine and records a sample; returns
// false (chain) otherwise. Async-signal-safe.
bool SampleSignalCallback(int signo, siginfo_t* info, void* ucontext);

// Statistics of the handler path, for the UI and the overhead report.
struct SamplerCounters {
  uint64_t signals = 0;        // signals claimed as ours
  uint64_t samples = 0;        // records pushed
  uint64_t dropped = 0;        // ring full or no registers
  uint64_t no_bounds = 0;      // leaf-only samples (thread stack unknown yet)
  uint64_t handler_ns = 0;     // total time spent in the sample path
};
SamplerCounters ReadSamplerCounters();
void ResetSamplerCounters();

// CurrentTid()
//
// The calling thread's kernel id, cached per thread (initial-exec TLS, no
// dynamic initialization). Async-signal-safe.
pid_t CurrentTid();

// Cookies carried in si_value to tell flamekit's queued/timer signals from
// anyone else's.
inline constexpr uintptr_t kCtimerCookie = 0x666b6374696dULL;  // "fkctim"
// Wall signals carry a slot and sequence beside their tag (wall_idle.h);
// this is the value of one with no slot.
inline constexpr uintptr_t kWallCookie = WallSignalValue(kNoWallSlot, 0);
inline constexpr uintptr_t kProbeCookie = 0x666b70726f62ULL;   // "fkprob"

// QueueSampleSignal()
//
// Sends `signo` to thread `tid` of this process with si_code SI_QUEUE and
// `cookie` in si_value (rt_tgsigqueueinfo), as the wall engine and thread
// probes do. Returns the errno (0 on success; ESRCH when the thread exited).
// Async-signal-safe (one system call).
int QueueSampleSignal(pid_t tid, int signo, uintptr_t cookie);

// Flag of StackRecord::flags set on probe records: a signal sent only to
// learn a new thread's stack pointer (not a sample).
inline constexpr uint8_t kStackRecordProbe = 4;

// Flag of StackRecord::flags set on repeat records: no frames, `weight` more
// samples of the thread's previous stack (the wall engine found it still
// blocked where that sample saw it, see wall_idle.h).
inline constexpr uint8_t kStackRecordRepeat = 8;

// PushRepeatSamples()
//
// Pushes a repeat record of `weight` samples for thread `tid` into the
// active ring, when the active engine is `source`. For the wall engine's
// timer thread; lock-free, async-signal-safe. False when nothing is active
// or the ring is full (then counted as dropped).
bool PushRepeatSamples(SampleSource source, pid_t tid, uint64_t weight);

// ThreadCpuClock()
//
// The clockid of thread `tid`'s CPU time (the kernel's
// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)), usable for any tid of this
// process, unlike pthread_getcpuclockid() which needs a pthread_t.
inline clockid_t ThreadCpuClock(pid_t tid) {
  return static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 6);
}

// Implementation details follow.

namespace sample_internal {

struct SamplerShared {
  std::atomic<int> source{0};
  std::atomic<int> active_handlers{0};
  std::atomic<StackRing*> ring{nullptr};
  std::atomic<const ThreadStackTable*> stacks{nullptr};
  std::atomic<const CfiTable*> cfi{nullptr};
  std::atomic<uint32_t> max_depth{kMaxStackFrames};
  std::atomic<uint64_t> signals{0};
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> no_bounds{0};
  std::atomic<uint64_t> handler_ns{0};
  std::atomic<pid_t> pid{0};
};

// Constant-initialized: safe in signal context.
inline SamplerShared g_shared;

// One bit per file descriptor owned by the perf engine (fds < 65536).
inline constexpr int kMaxPerfFd = 65536;
inline std::atomic<uint64_t> g_perf_fds[kMaxPerfFd / 64] = {};

inline bool IsPerfFd(int fd) {
  if (fd < 0 || fd >= kMaxPerfFd) return false;
  // Acquire: pairs with the release in SetPerfFd(); the fd was configured.
  return (g_perf_fds[fd / 64].load(std::memory_order_acquire) >> (fd % 64)) & 1;
}
inline void SetPerfFd(int fd, bool on) {
  if (fd < 0 || fd >= kMaxPerfFd) return;
  uint64_t bit = uint64_t{1} << (fd % 64);
  if (on) {
    g_perf_fds[fd / 64].fetch_or(bit, std::memory_order_release);
  } else {
    g_perf_fds[fd / 64].fetch_and(~bit, std::memory_order_release);
  }
}

inline thread_local pid_t t_cached_tid __attribute__((tls_model("initial-exec"))) = 0;

inline uint64_t MonotonicNanos() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return TimespecNanos(ts);
}

// Whether `info` is a signal of the active engine.
inline bool IsOurSignal(SampleSource source, const siginfo_t* info,
                        bool* is_probe) {
  *is_probe = false;
  if (info == nullptr) return false;
  // A probe (new thread registration) is accepted whatever the engine.
  if (info->si_code == SI_QUEUE &&
      reinterpret_cast<uintptr_t>(info->si_value.sival_ptr) == kProbeCookie &&
      info->si_pid == g_shared.pid.load(std::memory_order_relaxed)) {
    *is_probe = true;
    return true;
  }
  switch (source) {
    case SampleSource::kItimer:
      return info->si_code == SI_KERNEL;
    case SampleSource::kCtimer:
      return info->si_code == SI_TIMER &&
             reinterpret_cast<uintptr_t>(info->si_value.sival_ptr) == kCtimerCookie;
    case SampleSource::kWall:
      return info->si_code == SI_QUEUE &&
             IsWallSignalValue(reinterpret_cast<uintptr_t>(info->si_value.sival_ptr)) &&
             info->si_pid == g_shared.pid.load(std::memory_order_relaxed);
    case SampleSource::kPerf:
      return info->si_code > 0 && IsPerfFd(info->si_fd);
    case SampleSource::kNone:
      return false;
  }
  return false;
}

// The sample path. `info`'s engine was checked by the caller.
inline void RecordSample(SampleSource source, bool is_probe, const siginfo_t* info,
                         void* ucontext) {
  SamplerShared& s = g_shared;
  const uint64_t start_ns = MonotonicNanos();
  // Relaxed: statistics.
  s.signals.fetch_add(1, std::memory_order_relaxed);
  // Acquire: pairs with the release stores in ActivateSampling(); the ring
  // and table they point to are fully built.
  StackRing* ring = s.ring.load(std::memory_order_acquire);
  const ThreadStackTable* stacks = s.stacks.load(std::memory_order_acquire);
  // Seq_cst: pairs with PublishCfiTable() (a Dekker-style protocol with
  // active_handlers, as the kernel chain rings): once the collector has
  // published a new table and seen no handler inside, none holds the old.
  const CfiTable* cfi = s.cfi.load(std::memory_order_seq_cst);
  if (ring == nullptr) return;
  MachineRegisters regs;
  if (!ReadMachineRegisters(ucontext, &regs)) {
    s.dropped.fetch_add(1, std::memory_order_relaxed);
    ring->CountDrop();
    return;
  }
  const pid_t tid = CurrentTid();
  StackBounds bounds;
  uint8_t flags = 0;
  if (stacks == nullptr || !stacks->Find(static_cast<uint32_t>(tid), &bounds) ||
      !bounds.Contains(regs.sp)) {
    // Unknown thread (or its tid was reused by a thread with another stack):
    // record the leaf and sp; the collector learns the stack from sp.
    bounds = StackBounds{};
    flags |= kStackRecordNoBounds;
    if (!is_probe) s.no_bounds.fetch_add(1, std::memory_order_relaxed);
  }
  ThreadState state = ThreadState::kRunning;
  int32_t syscall_number = -1;
  bool restarting = false;
  const bool wall = source == SampleSource::kWall && !is_probe;
  if (wall && InterruptedSystemCall(ucontext, &syscall_number, &restarting)) {
    state = ThreadState::kSyscall;
  }
  uint64_t frames[kMaxStackFrames];
  size_t count = 0;
  if (is_probe) {
    flags |= kStackRecordProbe;
  } else {
    uint32_t depth = s.max_depth.load(std::memory_order_relaxed);
    // The kernel's part first (leaf first): where the perf event keeps a
    // kernel chain ring, the overflow that sent this signal wrote its chain
    // there. Always taken, so that the ring never fills.
    size_t kernel = 0;
    if (source == SampleSource::kPerf) {
      kernel = TakeNewestKernelChain(FindKernelChainRing(info->si_fd), frames, depth);
    }
    if (kernel < depth) {
      const FramePointerStart start{regs.pc, regs.fp, regs.sp};
      UnwindResult unwound =
          cfi != nullptr ? UnwindWithCfi(start, bounds, cfi, frames + kernel, depth - kernel)
                         : UnwindFramePointers(start, bounds, frames + kernel, depth - kernel);
      count = kernel + unwound.frame_count;
      if (unwound.truncated) flags |= kStackRecordTruncated;
    } else {
      count = kernel;
      flags |= kStackRecordTruncated;
    }
  }
  // The words just above the leaf's sp, for the reader to find the caller
  // of a leaf that has no frame (see StackRecord::leaf_stack_words). A CFI
  // walk already stepped through such a leaf.
  size_t words = 0;
  if (!is_probe && cfi == nullptr && (flags & kStackRecordNoBounds) == 0 &&
      count < kMaxStackFrames) {
    size_t room = kMaxStackFrames - count;
    words = CopyStackWords(regs.sp, bounds, frames + count,
                           room < kLeafStackWords ? room : kLeafStackWords);
  }
  const bool pushed = ring->TryPush(static_cast<uint32_t>(tid), start_ns, 1, frames, count,
                                    flags, state, syscall_number, regs.sp, words);
  if (pushed) {
    if (!is_probe) s.samples.fetch_add(1, std::memory_order_relaxed);
  } else {
    s.dropped.fetch_add(1, std::memory_order_relaxed);
  }
  if (wall) {
    // After the push: a repeat the timer pushes on the strength of this mark
    // lands behind this sample in the ring. Only a whole stack is worth
    // repeating: a dropped or leaf-only sample (bounds not known yet) leaves
    // the thread to be signalled again.
    const bool repeatable = pushed && (flags & kStackRecordNoBounds) == 0;
    NoteWallSample(reinterpret_cast<uintptr_t>(info->si_value.sival_ptr),
                   repeatable && state == ThreadState::kSyscall, restarting, regs, ucontext);
  }
  s.handler_ns.fetch_add(MonotonicNanos() - start_ns, std::memory_order_relaxed);
}

}  // namespace sample_internal

inline int QueueSampleSignal(pid_t tid, int signo, uintptr_t cookie) {
  siginfo_t info;
  memset(&info, 0, sizeof(info));
  info.si_signo = signo;
  info.si_code = SI_QUEUE;
  info.si_pid = getpid();
  info.si_uid = getuid();
  info.si_value.sival_ptr = reinterpret_cast<void*>(cookie);
  if (syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, signo, &info) != 0) return errno;
  return 0;
}

inline pid_t CurrentTid() {
  pid_t tid = sample_internal::t_cached_tid;
  if (tid == 0) {
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    sample_internal::t_cached_tid = tid;
  }
  return tid;
}

inline void ActivateSampling(const SamplingTarget& target, SampleSource source) {
  using sample_internal::g_shared;
  uint32_t depth = target.max_depth;
  if (depth < 1) depth = 1;
  if (depth > kMaxStackFrames) depth = kMaxStackFrames;
  g_shared.pid.store(getpid(), std::memory_order_relaxed);
  g_shared.max_depth.store(depth, std::memory_order_relaxed);
  // Release: publishes the ring and table (built by this thread) to
  // handlers that acquire these pointers.
  g_shared.ring.store(target.ring, std::memory_order_release);
  g_shared.stacks.store(target.stacks, std::memory_order_release);
  g_shared.cfi.store(target.cfi, std::memory_order_release);
  // Seq_cst: the handler's active_handlers/source protocol (Dekker-style)
  // with DeactivateSampling() needs a single total order.
  g_shared.source.store(static_cast<int>(source), std::memory_order_seq_cst);
}

inline void WaitForSampleHandlers() {
  using sample_internal::g_shared;
  // Seq_cst: a handler that loaded a pointer the caller just cleared is
  // counted here (see DeactivateSampling()).
  while (g_shared.active_handlers.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
}

inline void DeactivateSampling() {
  using sample_internal::g_shared;
  // Seq_cst store then seq_cst loads: a handler either saw the old source
  // after incrementing active_handlers (and we wait for it below) or sees
  // kNone and leaves without touching the ring.
  g_shared.source.store(static_cast<int>(SampleSource::kNone),
                        std::memory_order_seq_cst);
  while (g_shared.active_handlers.load(std::memory_order_seq_cst) != 0) {
    std::this_thread::yield();
  }
  g_shared.ring.store(nullptr, std::memory_order_release);
  g_shared.stacks.store(nullptr, std::memory_order_release);
  g_shared.cfi.store(nullptr, std::memory_order_release);
}

inline void RefuseSamples() {
  sample_internal::g_shared.source.store(static_cast<int>(SampleSource::kNone),
                                         std::memory_order_seq_cst);
}

inline void ForgetThreadAfterFork() { sample_internal::t_cached_tid = 0; }

inline void PublishCfiTable(const CfiTable* table) {
  // Seq_cst: see RecordSample(); also publishes the table's contents.
  sample_internal::g_shared.cfi.store(table, std::memory_order_seq_cst);
}

inline bool SampleSignalCallback(int /*signo*/, siginfo_t* info, void* ucontext) {
  using sample_internal::g_shared;
  // Seq_cst: see DeactivateSampling().
  g_shared.active_handlers.fetch_add(1, std::memory_order_seq_cst);
  SampleSource source =
      static_cast<SampleSource>(g_shared.source.load(std::memory_order_seq_cst));
  bool is_probe = false;
  bool ours = source != SampleSource::kNone &&
              sample_internal::IsOurSignal(source, info, &is_probe);
  if (ours) sample_internal::RecordSample(source, is_probe, info, ucontext);
  // Release: our last reads of the ring happen before the waiter frees it.
  g_shared.active_handlers.fetch_sub(1, std::memory_order_seq_cst);
  if (!ours && source == SampleSource::kNone && info != nullptr) {
    // A late signal of an engine that was just stopped (timer in flight):
    // swallow it rather than chain a profiler signal to the application.
    bool probe = false;
    for (SampleSource s : {SampleSource::kItimer, SampleSource::kCtimer,
                           SampleSource::kWall, SampleSource::kPerf}) {
      if (s != SampleSource::kItimer && sample_internal::IsOurSignal(s, info, &probe)) {
        return true;
      }
    }
  }
  return ours;
}

inline bool PushRepeatSamples(SampleSource source, pid_t tid, uint64_t weight) {
  using sample_internal::g_shared;
  if (weight == 0) return true;
  // Same protocol as a handler (see DeactivateSampling()): the ring is not
  // freed while we are inside.
  g_shared.active_handlers.fetch_add(1, std::memory_order_seq_cst);
  bool pushed = false;
  if (g_shared.source.load(std::memory_order_seq_cst) == static_cast<int>(source)) {
    StackRing* ring = g_shared.ring.load(std::memory_order_acquire);
    if (ring != nullptr) {
      pushed = ring->TryPush(static_cast<uint32_t>(tid), sample_internal::MonotonicNanos(),
                             weight, nullptr, 0, kStackRecordRepeat, ThreadState::kSyscall,
                             -1, 0);
      if (pushed) {
        g_shared.samples.fetch_add(weight, std::memory_order_relaxed);
      } else {
        g_shared.dropped.fetch_add(weight, std::memory_order_relaxed);
      }
    }
  }
  g_shared.active_handlers.fetch_sub(1, std::memory_order_seq_cst);
  return pushed;
}

inline SamplerCounters ReadSamplerCounters() {
  using sample_internal::g_shared;
  SamplerCounters c;
  c.signals = g_shared.signals.load(std::memory_order_relaxed);
  c.samples = g_shared.samples.load(std::memory_order_relaxed);
  c.dropped = g_shared.dropped.load(std::memory_order_relaxed);
  c.no_bounds = g_shared.no_bounds.load(std::memory_order_relaxed);
  c.handler_ns = g_shared.handler_ns.load(std::memory_order_relaxed);
  return c;
}

inline void ResetSamplerCounters() {
  using sample_internal::g_shared;
  g_shared.signals.store(0, std::memory_order_relaxed);
  g_shared.samples.store(0, std::memory_order_relaxed);
  g_shared.dropped.store(0, std::memory_order_relaxed);
  g_shared.no_bounds.store(0, std::memory_order_relaxed);
  g_shared.handler_ns.store(0, std::memory_order_relaxed);
}

}  // namespace flamekit

#endif  // FLAMEKIT_SAMPLE_SAMPLER_H_
