// SPDX-License-Identifier: Apache-2.0
// File: attach.h
//
// AttachSession profiles another process by PID with perf_event_open and the
// kernel's ring buffers: nothing is loaded into the target. It opens one
// sampling event per thread (IP|TID|TIME|CALLCHAIN, plus MMAP2/COMM/FORK/EXIT
// side-band records), follows threads created during the capture (from
// PERF_RECORD_FORK and by rescanning /proc/PID/task), reads the rings with
// epoll, counts lost records, and feeds every sample to the middle stage
// (collect/StackFolder: leaf repair, folding), whose addresses an
// AttachSymbols names (attach_symbols.h). Samples are kept as raw address stacks
// while the rings are read (cheap, so new threads are opened promptly and
// no ring overflows while an ELF file is parsed); a second thread names
// each new address as it appears, while the target is alive (so a target
// that exits mid-capture still resolves), and the profile is folded at the
// end.
//
// The parts, one job each: attach_options.h (options, progress),
// attach_event_plan.h (the options checked, the perf events they ask for),
// attach_symbols.h (the naming interface), attach_samples.h (the record
// sinks and each sample's path), symbol_worker.h (the naming
// thread), thread_rings.h (one event and ring per thread, epoll),
// offcpu_switches.h (event "wall": off-CPU intervals from a second,
// context-switch event per thread); this file drives them.
//
// Thread-safety: one AttachSession is driven by one ordinary thread
// (Create(), Run(), TakeProfile()). During Run() it owns one helper thread
// that makes every AttachSymbols call (so AttachSymbols is used from one
// thread at a time, as Symbolizer requires); it is joined before
// TakeProfile() returns. The only cross-thread input is the `stop` flag,
// which any thread or a signal handler may set (a lock-free
// std::atomic<bool> read with relaxed loads). Not for signal handlers.
//
// Example:
//
//   AttachOptions options;
//   options.pid = 1234;
//   options.duration = absl::Seconds(30);
//   options.period = PerfPeriod::Interval(absl::Milliseconds(1));
//   FLAMEKIT_ASSIGN_OR_RETURN(std::unique_ptr<AttachSymbols> symbols,
//                             SymbolizerAttachSymbols::ForProcess(1234));
//   FLAMEKIT_ASSIGN_OR_RETURN(std::unique_ptr<AttachSession> session,
//                             AttachSession::Create(options, std::move(symbols)));
//   FLAMEKIT_RETURN_IF_ERROR(session->Run());
//   Profile profile = session->TakeProfile();

#ifndef FLAMEKIT_ATTACH_ATTACH_H_
#define FLAMEKIT_ATTACH_ATTACH_H_

#include <errno.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "flamekit/attach/attach_event_plan.h"
#include "flamekit/attach/attach_options.h"
#include "flamekit/attach/attach_symbols.h"
#include "flamekit/attach/blocked_threads.h"
#include "flamekit/attach/offcpu_switches.h"
#include "flamekit/attach/sample_stacks.h"
#include "flamekit/attach/syscall_site.h"
#include "flamekit/attach/symbol_worker.h"
#include "flamekit/attach/thread_rings.h"
#include "flamekit/base/config.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/collect/frame_name.h"
#include "flamekit/collect/stack_folder.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/perf/perf_record.h"
#include "flamekit/profile/profile.h"
#include "flamekit/unwind/cfi_table.h"
#include "flamekit/unwind/copied_stack.h"
#include "flamekit/unwind/frame_pointer.h"
#include "flamekit/unwind/leaf_repair.h"

namespace flamekit {

class AttachSession {
 public:
  // Create()
  //
  // Opens an event and ring on every current thread of options.pid. Errors:
  // NotFound "no process PID"; PermissionDenied naming perf_event_paranoid
  // and the capability that would allow it; FailedPrecondition for a
  // hardware event without a PMU or no perf events at all;
  // ResourceExhausted for fd or locked-memory limits; InvalidArgument for a
  // period that does not fit the event.
  static absl::StatusOr<std::unique_ptr<AttachSession>> Create(
      const AttachOptions& options, std::unique_ptr<AttachSymbols> symbols);

  ~AttachSession();
  AttachSession(const AttachSession&) = delete;
  AttachSession& operator=(const AttachSession&) = delete;

  // Run()
  //
  // Samples until the duration passes, *stop becomes true, or the target
  // exits; then disables the events and drains what is left. The profile
  // holds what was collected in every case. Returns an error only for a
  // failure of the machinery itself (epoll).
  absl::Status Run();

  // TakeProfile()
  //
  // The folded stacks with metadata (event, interval, times, lost, threads,
  // pid, command). Call after Run().
  Profile TakeProfile();

  // set_symbols()
  //
  // Replaces the AttachSymbols (before Run()): the CLI opens the events
  // first, so a permission problem is reported as perf's, with its fix.
  void set_symbols(std::unique_ptr<AttachSymbols> symbols) { symbols_ = std::move(symbols); }

  const AttachProgress& stats() const { return progress_; }
  // The kernel's sampling period per event, for the summary.
  const PerfEventOptions& event_options() const { return event_options_; }

  // Reads the rings now (tests use this to drive a session step by step).
  void PollOnce(absl::Duration timeout);


 private:
  class Sink;
  class SwitchSink;
  // LeafRepair's questions, answered by symbols_ (whichever is set).
  class SymbolsCodeFacts : public CodeFacts {
   public:
    explicit SymbolsCodeFacts(AttachSession* session) : session_(session) {}
    LeafFrame LeafFrameAt(uint64_t pc) override;
    bool IsReturnAddress(uint64_t word) override;

   private:
    AttachSession* const session_;
  };

  explicit AttachSession(const AttachOptions& options)
      : options_(options), folder_(StackFolderOptions{options.split_threads}, &leaf_repair_) {}
  absl::Status OpenThread(pid_t tid, bool first);
  void ScanThreads();
  void DrainAll();
  void DrainThread(size_t index);
  // Event "wall": reads the context-switch rings (and closes those of
  // exited threads, or all).
  void DrainSwitches(bool close_all);
  void AddSample(const PerfSample& sample);
  // SampleStacks::Build() with the rules, grown to the files the walk
  // reaches (each file once: target_symbols.h builds rules lazily).
  bool BuildStacks(const PerfSample& sample, RawSample* raw, AttachProgress* progress);
  // Event "wall": a context-switch sample (the stack at switch-out).
  void AddSwitchSample(const PerfSample& sample);
  // The target exec()ed: its old mappings are gone.
  void NoteExec();
  // Sends the addresses the folder has not seen named to the symbol worker.
  void NameNewAddresses();
  void BuildProfile();
  void ReportProgress(bool force);
  bool TargetExited();

  AttachOptions options_;
  PerfEventOptions event_options_;
  std::unique_ptr<AttachSymbols> symbols_;
  Profile profile_;
  AttachProgress progress_;
  attach_internal::ThreadRings threads_{&event_options_, &progress_, options_.ring_pages};
  // Event "wall" only: the context-switch event per thread, and what turns
  // its records into off-CPU time (offcpu_switches.h).
  PerfEventOptions switch_options_;
  // Its own counters (threads are counted once, by threads_); its lost
  // records are added to progress_ at the end.
  AttachProgress switch_progress_;
  attach_internal::ThreadRings switch_threads_{&switch_options_, &switch_progress_,
                                               options_.ring_pages};
  std::unique_ptr<attach_internal::OffCpuSwitches> offcpu_;
  std::unique_ptr<attach_internal::SyscallSites> syscall_sites_;
  // The middle stage: leaf repair from the sample's copy of the user stack,
  // folding; names come from the symbol worker at the end.
  SymbolsCodeFacts code_facts_{this};
  LeafRepair leaf_repair_{&code_facts_};
  StackFolder folder_;
  // One sample's frames and stack words (no allocation once grown).
  attach_internal::SampleStacks stacks_{options_.unwind};
  std::unique_ptr<attach_internal::SymbolWorker> worker_;
  absl::flat_hash_map<uint32_t, std::string> thread_names_;
  bool built_ = false;
  ScopedFd pidfd_;
  absl::Time start_ = absl::InfinitePast();
  absl::Time last_progress_ = absl::InfinitePast();
  absl::Time last_scan_ = absl::InfinitePast();
  bool exec_seen_ = false;
  bool created_ = false;  // Create() has opened the initial threads
  bool running_ = false;  // Run() has enabled the events
};

// Implementation details follow.

}  // namespace flamekit

// The record sinks and the per-sample path (split out to keep files small).
#include "flamekit/attach/attach_samples.h"

namespace flamekit {

inline absl::StatusOr<std::unique_ptr<AttachSession>> AttachSession::Create(
    const AttachOptions& options, std::unique_ptr<AttachSymbols> symbols) {
  absl::StatusOr<AttachEventPlan> plan = PlanAttachEvents(options);
  if (!plan.ok()) return plan.status();
  std::unique_ptr<AttachSession> s(new AttachSession(plan->options));
  s->symbols_ = std::move(symbols);
  s->event_options_ = plan->sampling;
  if (plan->wall) {
    s->switch_options_ = plan->switches;
    s->offcpu_ = std::make_unique<attach_internal::OffCpuSwitches>(plan->period.value);
    s->syscall_sites_ = std::make_unique<attach_internal::SyscallSites>(options.pid);
  }

  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, options.pid, 0));
  if (pidfd >= 0) s->pidfd_.reset(pidfd);
  absl::Status init = s->threads_.Init(pidfd);
  if (!init.ok()) return init;
  if (s->offcpu_) {
    // Its own epoll set, never waited on: PollOnce() reads every ring.
    init = s->switch_threads_.Init(-1);
    if (!init.ok()) return init;
  }

  std::vector<pid_t> tids = ListProcessThreads(options.pid);
  if (tids.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no process ", options.pid, " (no threads in /proc/", options.pid,
        "/task); check the PID with `ps` or use --name REGEX"));
  }
  bool first = true;
  for (pid_t tid : tids) {
    absl::Status opened = s->OpenThread(tid, first);
    if (!opened.ok()) {
      // The first thread's error is the user's problem (permission, no
      // PMU, ...); later ones that vanished in between are not.
      if (first || opened.code() != absl::StatusCode::kNotFound) return opened;
      continue;
    }
    first = false;
  }
  if (first) {
    return absl::NotFoundError(absl::StrCat("no process ", options.pid,
                                            " (its threads exited while attaching)"));
  }
  s->created_ = true;
  s->profile_.metadata().pid = options.pid;
  s->profile_.metadata().command = ProcessCommandLine(options.pid);
  return s;
}

inline AttachSession::~AttachSession() {
  threads_.CloseAll();
  switch_threads_.CloseAll();
  if (worker_) worker_->Finish();
}

inline absl::Status AttachSession::OpenThread(pid_t tid, bool first) {
  if (threads_.Known(tid)) return absl::OkStatus();
  // Threads found while running start enabled. (Launch mode: only the
  // child's first thread exists before exec; later ones come after it.)
  const bool start_enabled = running_ || (options_.launch_mode && created_);
  absl::Status opened = threads_.Open(tid, first, start_enabled);
  if (!opened.ok()) return opened;
  if (offcpu_) {
    absl::Status sw = switch_threads_.Open(tid, first, start_enabled);
    if (first && sw.code() == absl::StatusCode::kPermissionDenied &&
        !switch_options_.exclude_kernel.value_or(true)) {
      // Kernel sampling was guessed allowed (root in a user namespace): the
      // switch records still come, the stacks at switch-out do not.
      attach_internal::ConfigureSwitchEvent(event_options_, &switch_options_,
                                            /*kernel=*/false);
      sw = switch_threads_.Open(tid, first, start_enabled);
    }
    if (!sw.ok() && first) return sw;
  }
  if (!thread_names_.contains(static_cast<uint32_t>(tid))) {
    thread_names_[static_cast<uint32_t>(tid)] = ThreadName(options_.pid, tid);
  }
  return absl::OkStatus();
}

inline void AttachSession::DrainThread(size_t index) {
  Sink sink(this);
  threads_.Drain(index, sink);
}

inline void AttachSession::DrainSwitches(bool close_all) {
  if (!offcpu_) return;
  SwitchSink sink(this);
  for (size_t i = 0; i < switch_threads_.size(); ++i) {
    switch_threads_.Drain(i, sink);
    if (close_all || threads_.Exited(switch_threads_.at(i).tid)) switch_threads_.Close(i);
  }
}

inline void AttachSession::DrainAll() {
  // Index loop: draining may open new threads (FORK records).
  for (size_t i = 0; i < threads_.size(); ++i) DrainThread(i);
  // Threads whose EXIT we saw: their rings are drained, close them.
  if (threads_.AnyExited()) {
    for (size_t i = 0; i < threads_.size(); ++i) {
      if (!threads_.at(i).closed && threads_.Exited(threads_.at(i).tid)) {
        DrainThread(i);
        threads_.Close(i);
      }
    }
  }
  for (pid_t tid : threads_.TakeForks()) {
    if (!threads_.Exited(tid)) (void)OpenThread(tid, /*first=*/false);
  }
  DrainSwitches(/*close_all=*/false);
}

inline void AttachSession::ScanThreads() {
  for (pid_t tid : ListProcessThreads(options_.pid)) {
    if (!threads_.Known(tid) && !threads_.Exited(tid)) (void)OpenThread(tid, /*first=*/false);
  }
}

inline void AttachSession::BuildProfile() {
  if (built_) return;
  built_ = true;
  if (worker_) {
    worker_->Finish();
    for (const auto& [address, name] : worker_->names()) folder_.SetName(address, name);
  }
  auto thread_name = [this](uint32_t tid) {
    auto it = thread_names_.find(tid);
    return it != thread_names_.end() ? it->second : std::string();
  };
  folder_.AddTo(profile_, thread_name);
  if (offcpu_) offcpu_->AddStacklessTo(profile_, options_.split_threads, thread_name);
}

inline bool AttachSession::TargetExited() {
  if (pidfd_) {
    pollfd p{pidfd_.get(), POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
  }
  return !ProcessAlive(options_.pid);
}

inline void AttachSession::ReportProgress(bool force) {
  absl::Time now = absl::Now();
  progress_.elapsed = now - start_;
  progress_.duration = options_.duration;
  if (!options_.on_progress) return;
  if (!force && now - last_progress_ < options_.progress_interval) return;
  last_progress_ = now;
  options_.on_progress(progress_);
}

inline void AttachSession::PollOnce(absl::Duration timeout) {
  epoll_event events[64];
  int wait_ms = static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(timeout)));
  int n = epoll_wait(threads_.epoll_fd(), events, 64, wait_ms);
  for (int i = 0; i < n; ++i) {
    uint64_t index = events[i].data.u64;
    if (index >= threads_.size()) continue;  // the pidfd
    if (events[i].events & (EPOLLHUP | EPOLLERR)) {
      // The thread exited: its event will never produce again, and epoll
      // would report the hang-up forever. Read what is left and close it.
      DrainThread(index);
      threads_.NoteExit(threads_.at(index).tid);
      threads_.Close(index);
    }
  }
  // Read every ring whether or not it woke us: cheap (two loads when
  // empty), and a thread that samples slowly never fills its watermark.
  DrainAll();
  absl::Time now = absl::Now();
  if (now - last_scan_ >= options_.thread_scan_interval) {
    last_scan_ = now;
    ScanThreads();
  }
}

inline absl::Status AttachSession::Run() {
  if (symbols_ && !worker_) worker_ = std::make_unique<attach_internal::SymbolWorker>(symbols_.get());
  if (worker_) worker_->Warm(!event_options_.exclude_kernel.value_or(!DefaultExcludeKernel()));
  // -e wall: how the threads already off CPU wait (read before the start,
  // so it describes the wait the capture begins in; blocked_threads.h).
  attach_internal::BlockedThreads blocked(options_.pid);
  if (offcpu_ && !options_.launch_mode) {
    std::vector<pid_t> tids;
    for (size_t i = 0; i < threads_.size(); ++i) tids.push_back(threads_.at(i).tid);
    blocked.Read(tids);
  }
  if (!options_.launch_mode) {
    // Opened disabled in Create(): start them together, now.
    threads_.EnableAll();
    switch_threads_.EnableAll();
  }
  running_ = true;
  // The capture runs from here: -d, the profile's times and the wall
  // engine's "threads x duration" all count the rules' build below.
  start_ = absl::Now();
  if (offcpu_) offcpu_->Start(attach_internal::MonotonicNowNs());
  // The rules' table right after the start (it grows with the files the
  // walks reach: a few ms each for libc and the like; the rings hold ~64
  // samples per thread meanwhile).
  // Before the start it would delay sampling by up to a second of wall
  // time on a loaded machine, and a short-lived target could be gone.
  if (symbols_ && options_.unwind != AttachUnwind::kFramePointers && !options_.launch_mode) {
    (void)symbols_->FrameRules();
  }
  if (blocked.size() > 0) {
    // The rules even for --unwind fp: /proc gives no frame pointer.
    blocked.Walk(symbols_.get());
    blocked.HandTo(*offcpu_);
  }
  last_scan_ = start_;
  profile_.metadata().start_time = start_;
  const absl::Time deadline =
      options_.duration == absl::InfiniteDuration() ? absl::InfiniteFuture() : start_ + options_.duration;
  ReportProgress(/*force=*/true);
  while (true) {
    if (options_.stop != nullptr && options_.stop->load(std::memory_order_relaxed)) {
      progress_.stop_reason = AttachStopReason::kStopRequested;
      break;
    }
    absl::Time now = absl::Now();
    if (now >= deadline) {
      progress_.stop_reason = AttachStopReason::kDuration;
      break;
    }
    if (TargetExited()) {
      progress_.stop_reason = AttachStopReason::kTargetExited;
      break;
    }
    absl::Duration wait = std::min(options_.thread_scan_interval, deadline - now);
    wait = std::min(wait, options_.progress_interval);
    PollOnce(wait);
    ReportProgress(/*force=*/false);
  }
  // Stop sampling, then read what the kernel already wrote.
  const uint64_t end_ns = attach_internal::MonotonicNowNs();
  threads_.DisableAll();
  switch_threads_.DisableAll();
  DrainAll();
  for (size_t i = 0; i < threads_.size(); ++i) {
    DrainThread(i);
    threads_.Close(i);
  }
  if (offcpu_) {
    DrainSwitches(/*close_all=*/true);
    progress_.lost_samples += switch_progress_.lost_samples;
    progress_.throttles += switch_progress_.throttles;
    // Threads still off CPU: their interval ends with the capture.
    std::vector<uint32_t> followed;
    for (size_t i = 0; i < switch_threads_.size(); ++i) {
      followed.push_back(static_cast<uint32_t>(switch_threads_.at(i).tid));
    }
    offcpu_->Finish(end_ns, folder_, followed);
    NameNewAddresses();
    if (offcpu_->stackless_intervals() > 0) {
      progress_.note = absl::StrCat(
          "-e wall: ", offcpu_->stackless_intervals(), " of ", offcpu_->intervals(),
          " off-CPU intervals have no stack (shown as \"", attach_internal::kNoStackFrameName,
          "\"): the kernel takes the stack at a context switch in kernel mode, which needs "
          "perf_event_paranoid <= 1 or CAP_PERFMON (e.g. run as root); on-CPU stacks are "
          "complete");
    }
  }
  ReportProgress(/*force=*/true);
  return absl::OkStatus();
}

inline Profile AttachSession::TakeProfile() {
  BuildProfile();
  ProfileMetadata& m = profile_.metadata();
  m.event = options_.event.name;
  m.engine = absl::StrCat("perf ", options_.event.name == "cpu" ? "cpu-clock" : options_.event.name,
                          " (attached)");
  if (offcpu_) {
    m.engine = "perf cpu-clock + context switches (attached)";
    m.engine_note = progress_.note;
  }
  absl::StatusOr<ResolvedPerfPeriod> period = ResolvePeriod(options_.event, options_.period);
  if (period.ok() && !period->is_frequency) {
    if (options_.event.time_based) {
      m.interval = absl::Nanoseconds(static_cast<int64_t>(period->value));
    } else {
      m.interval_events = period->value;
    }
  } else if (period.ok()) {
    m.engine_note = absl::StrCat("frequency ", period->value, " Hz");
  }
  m.end_time = start_ + progress_.elapsed;
  m.lost_samples = progress_.lost_samples;
  m.threads = static_cast<uint32_t>(folder_.threads());
  Profile out = std::move(profile_);
  profile_ = Profile();
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_ATTACH_H_
