// SPDX-License-Identifier: Apache-2.0
// File: profiler_collector.h
//
// The collector thread of a Profiler::Session: it polls the process's
// threads (arming new ones, dropping dead ones, asking each new thread for
// its stack pointer), drains the ring into the middle stage
// (collect/StackFolder) and names new addresses while their code is still
// mapped. An implementation header of profiler_session.h (included at its
// end), compiled in the one translation unit that compiles the profiler.
//
// Thread safety: CollectorMain() runs on the collector thread only, with the
// sample signals (and SIGPROF) blocked; SyncThreads() and DrainLocked()
// share the session's folded data under data_mu_, and take the Profiler's
// symbol_mu_ after it, never before. Nothing here runs in a signal handler.

#ifndef FLAMEKIT_PROFILER_COLLECTOR_H_
#define FLAMEKIT_PROFILER_COLLECTOR_H_

#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/buffer/stack_record.h"
#include "flamekit/collect/cfi_table_builder.h"
#include "flamekit/collect/frame_name.h"
#include "flamekit/collect/stack_folder.h"
#include "flamekit/collect/thread_state.h"
#include "flamekit/profiler_session.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/sample/thread_list.h"
#include "flamekit/sample/wall_clock_sampler.h"
#include "flamekit/symbol/symbolizer.h"
#include "flamekit/unwind/stack_bounds.h"

namespace flamekit {

inline void Profiler::Session::CollectorMain() {
  // The collector never takes sample signals (ITIMER_PROF then goes to a
  // thread that is doing the application's work).
  // SIGPROF too: when `cpu` falls back to itimer, the process-wide
  // ITIMER_PROF signal is SIGPROF whatever options_.signal says.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, options_.signal);
  sigaddset(&mask, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  collector_tid_ = CurrentTid();
  // The collector's own cost is paid per wall-clock second whatever the
  // sampling rate, so it does as little as it can per wake-up: every
  // thread_poll_interval one stat() of /proc/self/task (its link count is
  // 2 + the number of threads) and one read of the last pid handed out; the
  // full listing only when the count changed, a task was created (a thread
  // that exited while another started leaves the count equal), or once a
  // second (/proc/sys unreadable).
  // The ring is drained when a quarter full or every 100 ms, and the
  // collector wakes every 5 ms while the last drain found it that full.
  const absl::Duration min_tick = options_.thread_poll_interval;
  const absl::Duration max_tick = std::max(min_tick, absl::Milliseconds(100));
  absl::Duration tick = min_tick;
  const uint64_t drain_threshold = ring_->capacity() / 4;
  absl::Time next_full_sync = absl::InfinitePast();
  absl::Time next_drain = absl::InfinitePast();
  absl::Time probe_drain = absl::InfiniteFuture();
  nlink_t last_links = 0;
  TaskCreationWatch created;
  uint64_t drained_total = 0;
  bool busy = false;  // the last drain found the ring a quarter full
  while (true) {
    const absl::Time now = absl::Now();
    if (sampling_.load()) {
      struct stat task_dir;
      nlink_t links = stat("/proc/self/task", &task_dir) == 0 ? task_dir.st_nlink : 0;
      const bool changed = links != last_links || links == 0;
      // Read every tick so that a creation is not reported twice.
      const bool task_created = created.Changed();
      bool found_new = false;
      if (changed || task_created || now >= next_full_sync) {
        // New threads' probes come back within a tick; their stack pointers
        // are turned into stack bounds at a drain, and until then their
        // samples hold the leaf frame only: so drain soon.
        if (SyncThreads(/*refresh_names=*/now >= next_full_sync) > 0) {
          probe_drain = now + min_tick;
          found_new = true;
        }
        last_links = links;
        if (now >= next_full_sync) next_full_sync = now + absl::Seconds(1);
        std::lock_guard<std::mutex> lock(wake_mu_);
        if (!first_sync_done_) {
          first_sync_done_ = true;
          wake_.notify_all();
        }
      }
      // Other processes' forks move the last pid too: only threads of ours
      // keep the collector looking often.
      tick = changed || found_new ? min_tick : std::min(tick * 2, max_tick);
    }
    {
      // A library dlopen()ed and dlclose()d between two drains is named
      // only if the symbolizer saw it mapped: one cheap check per tick.
      std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
      if (Symbolizer* symbolizer = owner_->SymbolizerLocked()) {
        if (symbolizer->RefreshIfLibrariesChanged() && cfi_table_ != nullptr &&
            sampling_.load()) {
          // New code (or code gone): handlers get rules for what is mapped
          // now, and the old table goes once no handler can hold it. (Once
          // sampling stopped there is nothing to publish to; a publish that
          // races Stop() leaves a pointer no handler reads: the ring is
          // unpublished and the next Start() overwrites it.)
          std::unique_ptr<CfiTable> fresh = BuildCfiTable(*symbolizer);
          PublishCfiTable(fresh.get());
          WaitForSampleHandlers();
          cfi_table_ = std::move(fresh);
        }
      }
    }
    // Relaxed reads of a statistic: only decides whether to drain now.
    if (ring_->pushed() - drained_total >= drain_threshold || now >= next_drain ||
        now >= probe_drain) {
      if (now >= probe_drain) probe_drain = absl::InfiniteFuture();
      std::lock_guard<std::mutex> lock(data_mu_);
      DrainLocked();
      busy = ring_drained_ - drained_total >= drain_threshold;
      drained_total = ring_drained_;
      next_drain = now + absl::Milliseconds(100);
    }
    if (options_.duration > absl::ZeroDuration() && sampling_.load() &&
        now - start_time_ >= options_.duration) {
      StopSampling();
    }
    std::unique_lock<std::mutex> lock(wake_mu_);
    if (stop_requested_) break;
    // Many threads sampling fast: come back sooner so the ring never fills.
    absl::Duration wait = busy ? std::min(tick, absl::Milliseconds(5)) : tick;
    if (probe_drain != absl::InfiniteFuture()) {
      wait = std::min(wait, std::max(probe_drain - absl::Now(), absl::Milliseconds(1)));
    }
    if (options_.duration > absl::ZeroDuration() && sampling_.load()) {
      wait = std::min(wait, std::max(start_time_ + options_.duration - absl::Now(),
                                     absl::Milliseconds(1)));
    }
    wake_.wait_for(lock, absl::ToChronoNanoseconds(wait), [this] { return stop_requested_; });
    if (stop_requested_) break;
  }
  struct timespec own;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &own);
  collector_cpu_ns_ = static_cast<uint64_t>(own.tv_sec) * 1000000000ull + own.tv_nsec;
}

inline size_t Profiler::Session::SyncThreads(bool refresh_names) {
  absl::StatusOr<std::vector<pid_t>> tids = ListThreadIds();
  if (!tids.ok()) return 0;
  size_t probes = 0;
  const pid_t collector = collector_tid_.load();
  pid_t timer_tid = 0;
  if (auto* wall = dynamic_cast<WallClockSampler*>(sampler_.get())) {
    timer_tid = wall->timer_tid();
  }
  absl::flat_hash_set<pid_t> alive(tids->begin(), tids->end());
  std::lock_guard<std::mutex> lock(data_mu_);
  if (engine_stopped_) return 0;
  for (pid_t tid : *tids) {
    if (tid == collector || tid == timer_tid) continue;
    auto [it, inserted] = threads_.try_emplace(tid);
    profiler_internal::ThreadInfo& info = it->second;
    if (inserted || info.name.empty() || refresh_names) {
      std::string name = ReadThreadName(tid);
      if (!name.empty()) info.name = std::move(name);
    }
    const bool want = thread_filter_.Wants(info.name);
    info.excluded = !want;
    if (sampler_->per_thread()) {
      if (want && !info.armed) {
        absl::Status armed = sampler_->AddThread(tid);
        if (armed.ok()) {
          info.armed = true;
        } else if (!absl::IsNotFound(armed)) {
          ++unarmed_threads_;
          if (first_arm_error_.empty()) first_arm_error_ = std::string(armed.message());
          info.excluded = true;  // do not retry every poll
        }
      } else if (!want && info.armed) {
        sampler_->RemoveThread(tid);
        info.armed = false;
      }
    }
    if (want && !info.bounds && !info.probe_sent) {
      // Ask the thread for its stack pointer so that its stack is known
      // before its first real sample.
      QueueSampleSignal(tid, options_.signal, kProbeCookie);
      info.probe_sent = true;
      ++probes;
    }
  }
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (alive.contains(it->first)) {
      ++it;
      continue;
    }
    if (it->second.armed) sampler_->RemoveThread(it->first);
    stacks_->Erase(static_cast<uint32_t>(it->first));
    it->second.armed = false;
    it->second.bounds = false;
    it->second.probe_sent = false;
    // Keep the name for samples still in the ring; forget dead threads that
    // never produced a sample.
    if (!folder_.sampled_thread(static_cast<uint32_t>(it->first))) {
      threads_.erase(it++);
    } else {
      ++it;
    }
  }
  return probes;
}

inline void Profiler::Session::DrainLocked() {
  // Threads whose samples came without known stack bounds, with a stack
  // pointer seen in one of them.
  absl::flat_hash_map<pid_t, uint64_t> resolve;
  const bool wall_state = options_.event == "wall" && options_.thread_state;
  ring_drained_ += ring_->Drain([&](const StackRecord& r) {
    const pid_t tid = static_cast<pid_t>(r.tid);
    if ((r.flags & kStackRecordNoBounds) != 0 && r.sp != 0) resolve[tid] = r.sp;
    if ((r.flags & kStackRecordRepeat) != 0) {
      // The wall engine found the thread still blocked where its previous
      // sample saw it (that sample is ahead of this record in the ring).
      folder_.RepeatLast(r.tid, r.weight);
      return;
    }
    if ((r.flags & kStackRecordProbe) != 0 || r.frame_count == 0) return;
    auto info = threads_.find(tid);
    if (info != threads_.end() && info->second.excluded) return;
    RawSample sample;
    sample.tid = r.tid;
    sample.pcs = absl::MakeConstSpan(r.frames, r.frame_count);
    // The user part starts after the kernel's frames (cpu engine).
    while (sample.user_leaf < r.frame_count && IsKernelAddress(r.frames[sample.user_leaf])) {
      ++sample.user_leaf;
    }
    sample.stack_words = absl::MakeConstSpan(r.frames + r.frame_count, r.leaf_stack_words);
    sample.truncated = r.truncated();
    if (wall_state) {
      sample.state =
          r.state == ThreadState::kSyscall ? SyscallState(r.syscall_number) : kRunningState;
    }
    folder_.Add(sample);
  });
  // Learn the stacks of threads first seen without bounds (or whose tid was
  // reused by a thread with another stack) from the mapping holding their sp.
  for (const auto& [tid, sp] : resolve) {
    absl::StatusOr<StackBounds> bounds = StackBoundsFromMaps(sp);
    if (bounds.ok() && stacks_->Insert(static_cast<uint32_t>(tid), *bounds)) {
      threads_[tid].bounds = true;
    }
  }
  // Name new addresses now, while their libraries are still loaded.
  std::vector<uint64_t> unnamed = folder_.TakeUnnamed();
  if (unnamed.empty()) return;
  std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
  Symbolizer* symbolizer = owner_->SymbolizerLocked();
  // Without a symbolizer the addresses stay unnamed: "0x..." frames.
  if (symbolizer == nullptr) return;
  // Names are kept for the whole session, so a batch with addresses in no
  // known mapping re-reads maps first (LookupAll).
  std::vector<Symbolizer::Symbol> named = symbolizer->LookupAll(unnamed);
  for (size_t i = 0; i < named.size(); ++i) {
    folder_.SetName(unnamed[i], FrameName{std::move(named[i].name), named[i].kind});
  }
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_COLLECTOR_H_
