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

// The session's other parts, each its own job.
#include "flamekit/profiler_engine_choice.h"  // IWYU pragma: keep
#include "flamekit/profiler_collector.h"  // IWYU pragma: keep

#endif  // FLAMEKIT_PROFILER_SESSION_H_
