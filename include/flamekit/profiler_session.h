// SPDX-License-Identifier: Apache-2.0
// File: profiler_session.h
//
// Profiler::Session, one capture of the embedded profiler: the ring the
// signal handlers push to, the engine, and the collector thread that arms
// new threads, drains the ring into the middle stage (collect/StackFolder,
// which repairs leaf callers and folds) and names new addresses while their
// code is still mapped. An implementation header: only profiler_impl.h
// includes it, in the one translation unit that compiles the profiler.
//
// Thread safety: Begin(), Shutdown(), BuildProfile() and Status() are called
// under the Profiler's control_mu_; the collector thread and those calls
// share the folded data under data_mu_ and the Symbolizer under the
// Profiler's symbol_mu_ (taken after data_mu_, never before). Nothing here
// runs in a signal handler: the handler side lives in sample/.

#ifndef FLAMEKIT_PROFILER_SESSION_H_
#define FLAMEKIT_PROFILER_SESSION_H_

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/buffer/stack_record.h"
#include "flamekit/collect/self_code_facts.h"
#include "flamekit/collect/stack_folder.h"
#include "flamekit/collect/thread_state.h"
#include "flamekit/buffer/stack_ring.h"
#include "flamekit/profile/profile.h"
#include "flamekit/profiler.h"
#include "flamekit/sample/ctimer_sampler.h"
#include "flamekit/sample/itimer_sampler.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/sample/perf_sampler.h"
#include "flamekit/sample/sampler.h"
#include "flamekit/sample/signal_handler.h"
#include "flamekit/sample/thread_list.h"
#include "flamekit/sample/wall_clock_sampler.h"
#include "flamekit/collect/cfi_table_builder.h"
#include "flamekit/symbol/symbolizer.h"
#include "flamekit/unwind/stack_bounds.h"
#include "flamekit/unwind/leaf_repair.h"

namespace flamekit {

namespace profiler_internal {

// Only one Profiler may own the signal path at a time.
inline std::atomic<Profiler*> g_active_profiler{nullptr};

// The Profiler whose locks this thread's fork() took in the pthread_atfork
// prepare handler, to release in the parent and child handlers.
inline thread_local Profiler* t_forking_profiler = nullptr;

inline bool IsTimerEngine(absl::string_view event) {
  return event == "ctimer" || event == "itimer" || event == "wall";
}

// Whether a perf failure is one the fallback covers (perf events refused or
// missing) rather than a bug in the request.
inline bool PerfUnavailable(const absl::Status& status) {
  return absl::IsPermissionDenied(status) || absl::IsFailedPrecondition(status) ||
         absl::IsUnimplemented(status) || absl::IsNotFound(status) ||
         absl::IsUnavailable(status);
}

// "; ..." naming the seccomp filter when `perf` is a refusal and this
// process runs under one (Seccomp: 2): in a container with Docker's default
// profile perf_event_open fails with EPERM whatever perf_event_paranoid
// says, so perf's own advice (lower the paranoid level) would mislead.
// Called once from Start(), never from a signal handler.
inline std::string SeccompPerfNote(const absl::Status& perf) {
  if (!absl::IsPermissionDenied(perf)) return "";
  absl::StatusOr<std::string> status = ReadSmallFile("/proc/self/status", 64 * 1024);
  if (!status.ok() || status->find("\nSeccomp:\t2") == std::string::npos) return "";
  return "; a seccomp filter is active (Seccomp: 2), most likely the cause: a container's "
         "default profile refuses the perf_event_open syscall; least privilege that allows "
         "it: a seccomp profile that allows perf_event_open (flamekit's "
         "examples/container/seccomp-perf.json), or CAP_PERFMON (Docker 23+) / CAP_SYS_ADMIN";
}

// State of each thread the collector knows.
struct ThreadInfo {
  std::string name;
  bool armed = false;     // the engine samples it
  bool excluded = false;  // filtered out by name
  bool bounds = false;    // stack bounds known
  bool probe_sent = false;
};

}  // namespace profiler_internal

// One capture: ring, stack table, engine, collector thread, folded data.
class Profiler::Session {
 public:
  Session(Profiler* owner, ProfilerOptions options)
      : owner_(owner),
        options_(std::move(options)),
        code_facts_(&owner->symbol_mu_, [owner] { return owner->SymbolizerLocked(); }),
        folder_(StackFolderOptions{options_.per_thread}, &leaf_repair_) {
    // Only the wall engine repeats samples (a thread still blocked).
    folder_.set_remember_blocked(options_.event == "wall");
  }
  ~Session() { Shutdown(); }

  absl::Status Begin();
  // Stops the collector and the engine; idempotent.
  void Shutdown();
  absl::StatusOr<Profile> BuildProfile();
  bool sampling() const { return sampling_.load(); }
  ProfilerStatus Status();
  void Abandon() {
    abandoned_ = true;  // forked child: the threads are not ours
  }

 private:
  absl::Status ChooseEngine();
  absl::Status TryEngine(std::unique_ptr<Sampler> sampler, pid_t self);
  void CollectorMain();
  // Returns the number of probes sent (new threads whose stacks are asked).
  size_t SyncThreads(bool refresh_names);
  void DrainLocked();
  void StopSampling();

  Profiler* const owner_;
  const ProfilerOptions options_;
  std::unique_ptr<StackRing> ring_;
  std::unique_ptr<ThreadStackTable> stacks_;
  // unwind == "dwarf": the rules handlers unwind with.
  std::unique_ptr<CfiTable> cfi_table_;
  std::unique_ptr<Sampler> sampler_;
  std::string engine_;
  std::string engine_note_;
  absl::Time start_time_ = absl::InfinitePast();
  absl::Time end_time_ = absl::InfinitePast();

  std::unique_ptr<std::thread> collector_;
  std::atomic<pid_t> collector_tid_{0};
  std::atomic<uint64_t> collector_cpu_ns_{0};  // set when the collector ends
  std::mutex wake_mu_;
  std::condition_variable wake_;
  bool stop_requested_ = false;  // under wake_mu_
  bool first_sync_done_ = false;  // under wake_mu_
  std::atomic<bool> sampling_{false};
  bool engine_stopped_ = true;  // under data_mu_
  bool abandoned_ = false;

  const ThreadNameFilter thread_filter_{options_.include_threads, options_.exclude_threads};
  std::mutex data_mu_;
  absl::flat_hash_map<pid_t, profiler_internal::ThreadInfo> threads_;
  // The middle stage: leaf repair (answered from this process's code) and
  // folding; addresses are named at each drain, while their code is mapped.
  SelfCodeFacts code_facts_;
  LeafRepair leaf_repair_{&code_facts_};
  StackFolder folder_;
  // Scratch for one record's frames and stack words (no allocation per
  // record once grown).
  std::vector<uint64_t> pcs_;
  uint64_t unarmed_threads_ = 0;
  std::string first_arm_error_;
  uint64_t ring_drained_ = 0;  // records taken from the ring so far
  SamplerCounters counters_at_stop_;
  uint64_t ring_dropped_at_stop_ = 0;
};


// ---- Session ----

inline absl::Status Profiler::Session::Begin() {
  absl::StatusOr<std::unique_ptr<StackRing>> ring = StackRing::Create(options_.ring_capacity);
  if (!ring.ok()) return ring.status();
  ring_ = std::move(*ring);
  stacks_ = std::make_unique<ThreadStackTable>(8192);
  const pid_t self = CurrentTid();
  absl::StatusOr<StackBounds> own = CurrentThreadStackBounds();
  if (own.ok()) {
    stacks_->Insert(static_cast<uint32_t>(self), *own);
    threads_[self].bounds = true;
  }
  ResetSamplerCounters();
  start_time_ = absl::Now();
  std::string unwind_note;
  if (options_.unwind == "dwarf") {
    CfiTableStats stats;
    {
      std::lock_guard<std::mutex> lock(owner_->symbol_mu_);
      if (Symbolizer* symbolizer = owner_->SymbolizerLocked()) {
        cfi_table_ = BuildCfiTable(*symbolizer, &stats);
      }
    }
    unwind_note = cfi_table_ == nullptr
                      ? "unwind=dwarf: /proc/self/maps unreadable, frame pointers used"
                      : absl::StrCat("unwind=dwarf: ", stats.rows, " rules from ", stats.mappings,
                                     " mappings (", stats.bytes / 1024, " KiB)");
  }
  absl::Status engine = ChooseEngine();
  if (engine.ok() && !unwind_note.empty()) {
    engine_note_ = absl::StrCat(engine_note_, engine_note_.empty() ? "" : "; ", unwind_note);
  }
  if (!engine.ok()) {
    DeactivateSampling();
    return engine;
  }
  {
    std::lock_guard<std::mutex> lock(data_mu_);
    engine_stopped_ = false;
  }
  sampling_ = true;
  collector_ = std::make_unique<std::thread>([this] { CollectorMain(); });
  // Wait for the first thread scan so that every thread is armed on return.
  std::unique_lock<std::mutex> lock(wake_mu_);
  wake_.wait(lock, [this] { return first_sync_done_; });
  return absl::OkStatus();
}

inline absl::Status Profiler::Session::TryEngine(std::unique_ptr<Sampler> sampler,
                                                 pid_t self) {
  SamplingTarget target{ring_.get(), stacks_.get(), options_.max_depth, cfi_table_.get()};
  ActivateSampling(target, sampler->source());
  absl::Status started = sampler->Start();
  if (started.ok() && sampler->per_thread()) {
    started = sampler->AddThread(self);
    if (!started.ok()) sampler->Stop();
  }
  if (!started.ok()) {
    DeactivateSampling();
    return started;
  }
  if (sampler->per_thread()) threads_[self].armed = true;
  engine_ = sampler->name();
  sampler_ = std::move(sampler);
  return absl::OkStatus();
}

inline absl::Status Profiler::Session::ChooseEngine() {
  const pid_t self = CurrentTid();
  const std::string& event = options_.event;
  if (event == "ctimer") {
    return TryEngine(std::make_unique<CtimerSampler>(options_.interval, options_.signal), self);
  }
  if (event == "itimer") {
    return TryEngine(std::make_unique<ItimerSampler>(options_.interval), self);
  }
  if (event == "wall") {
    return TryEngine(std::make_unique<WallClockSampler>(options_.interval, options_.signal),
                     self);
  }
  absl::StatusOr<PerfEventSpec> spec = ParsePerfEvent(event);
  if (!spec.ok()) return spec.status();
  PerfPeriod period;
  if (spec->time_based) {
    period = PerfPeriod::Interval(options_.interval);
  } else if (options_.interval_events > 0) {
    period = PerfPeriod::Count(options_.interval_events);
  }
  absl::Status perf;
  if (options_.simulate_perf_errno != 0) {
    PerfEventOptions what;
    what.event = *spec;
    what.tid = self;
    perf = PerfEventOpenError(options_.simulate_perf_errno, what);
  } else {
    perf = TryEngine(std::make_unique<PerfSampler>(*spec, period, options_.signal), self);
  }
  if (perf.ok()) {
    // Whether kernel frames were allowed is known once the first thread's
    // event is open.
    if (auto* sampler = dynamic_cast<PerfSampler*>(sampler_.get())) {
      engine_note_ = sampler->kernel_note();
    }
    return perf;
  }
  const bool is_cpu = spec->name == "cpu" || spec->name == "cpu-clock";
  if (!is_cpu || !options_.fallback || !profiler_internal::PerfUnavailable(perf)) {
    return perf;
  }
  // Fallback: ctimer, then itimer.
  absl::Status ctimer =
      TryEngine(std::make_unique<CtimerSampler>(options_.interval, options_.signal), self);
  if (ctimer.ok()) {
    engine_note_ = absl::StrCat("perf events unavailable: ", perf.message(),
                                profiler_internal::SeccompPerfNote(perf),
                                "; fell back to ctimer");
    fprintf(stderr, "flamekit: %s\n", engine_note_.c_str());
    return ctimer;
  }
  absl::Status itimer = TryEngine(std::make_unique<ItimerSampler>(options_.interval), self);
  if (itimer.ok()) {
    engine_note_ = absl::StrCat("perf events unavailable: ", perf.message(),
                                profiler_internal::SeccompPerfNote(perf),
                                "; ctimer failed: ", ctimer.message(),
                                "; fell back to itimer");
    fprintf(stderr, "flamekit: %s\n", engine_note_.c_str());
    return itimer;
  }
  return absl::Status(perf.code(),
                      absl::StrCat(perf.message(), "; fallback to ctimer failed: ",
                                   ctimer.message(), "; fallback to itimer failed: ",
                                   itimer.message()));
}

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

inline void Profiler::Session::StopSampling() {
  std::lock_guard<std::mutex> lock(data_mu_);
  if (engine_stopped_) return;
  if (!abandoned_ && sampler_ != nullptr) sampler_->Stop();
  DeactivateSampling();
  engine_stopped_ = true;
  sampling_ = false;
  end_time_ = absl::Now();
  counters_at_stop_ = ReadSamplerCounters();
  DrainLocked();
  ring_dropped_at_stop_ = ring_->dropped();
}

inline void Profiler::Session::Shutdown() {
  if (abandoned_) return;
  if (collector_ != nullptr) {
    {
      std::lock_guard<std::mutex> lock(wake_mu_);
      stop_requested_ = true;
    }
    wake_.notify_all();
    collector_->join();
    collector_.reset();
  }
  StopSampling();
}

inline ProfilerStatus Profiler::Session::Status() {
  ProfilerStatus status;
  std::lock_guard<std::mutex> lock(data_mu_);
  status.running = !engine_stopped_;
  status.event = options_.event;
  status.engine = engine_;
  status.engine_note = engine_note_;
  if (unarmed_threads_ > 0) {
    status.engine_note = absl::StrCat(
        status.engine_note, status.engine_note.empty() ? "" : "; ", unarmed_threads_,
        " thread(s) could not be sampled: ", first_arm_error_);
  }
  absl::Time end = engine_stopped_ ? end_time_ : absl::Now();
  status.elapsed = end - start_time_;
  SamplerCounters counters = engine_stopped_ ? counters_at_stop_ : ReadSamplerCounters();
  status.samples = counters.samples;
  status.dropped_samples = engine_stopped_ ? ring_dropped_at_stop_ : ring_->dropped();
  status.handler_time = absl::Nanoseconds(counters.handler_ns);
  uint32_t armed = 0;
  for (const auto& [tid, info] : threads_) armed += info.armed ? 1 : 0;
  status.threads = armed;
  auto thread_cpu = [](pid_t tid) {
    struct timespec ts;
    if (tid == 0 || clock_gettime(CtimerSampler::ThreadCpuClock(tid), &ts) != 0) {
      return absl::ZeroDuration();
    }
    return absl::DurationFromTimespec(ts);
  };
  status.profiler_thread_cpu = collector_cpu_ns_.load() > 0
                                   ? absl::Nanoseconds(collector_cpu_ns_.load())
                                   : thread_cpu(collector_tid_.load());
  if (auto* wall = dynamic_cast<WallClockSampler*>(sampler_.get())) {
    status.profiler_thread_cpu += thread_cpu(wall->timer_tid());
  }
  return status;
}

inline absl::StatusOr<Profile> Profiler::Session::BuildProfile() {
  std::lock_guard<std::mutex> lock(data_mu_);
  if (!engine_stopped_) DrainLocked();
  Profile profile;
  ProfileMetadata& m = profile.metadata();
  m.title = options_.title;
  m.event = options_.event;
  m.engine = engine_;
  m.engine_note = engine_note_;
  if (unarmed_threads_ > 0) {
    m.engine_note = absl::StrCat(m.engine_note, m.engine_note.empty() ? "" : "; ",
                                 unarmed_threads_, " thread(s) could not be sampled: ",
                                 first_arm_error_);
  }
  absl::StatusOr<PerfEventSpec> spec =
      profiler_internal::IsTimerEngine(options_.event)
          ? absl::StatusOr<PerfEventSpec>(absl::NotFoundError(""))
          : ParsePerfEvent(options_.event);
  if (spec.ok() && !spec->time_based) {
    m.interval_events =
        options_.interval_events > 0 ? options_.interval_events : spec->default_period;
  } else {
    m.interval = options_.interval;
  }
  m.start_time = start_time_;
  m.end_time = engine_stopped_ ? end_time_ : absl::Now();
  m.dropped_samples = engine_stopped_ ? ring_dropped_at_stop_ : ring_->dropped();
  m.pid = getpid();
  m.command = ProcessCommandLine(0);
  m.transforms_json = options_.transforms_json;
  folder_.AddTo(profile, [this](uint32_t tid) {
    auto info = threads_.find(static_cast<pid_t>(tid));
    return info != threads_.end() ? info->second.name : std::string();
  });
  m.threads = static_cast<uint32_t>(folder_.threads());
  return profile;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_SESSION_H_
