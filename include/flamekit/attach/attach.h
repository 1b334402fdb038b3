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
// AttachSymbols names. Samples are kept as raw address stacks
// while the rings are read (cheap, so new threads are opened promptly and
// no ring overflows while an ELF file is parsed); a second thread names
// each new address as it appears, while the target is alive (so a target
// that exits mid-capture still resolves), and the profile is folded at the
// end.
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

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "flamekit/base/config.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/collect/frame_name.h"
#include "flamekit/collect/stack_folder.h"
#include "flamekit/profile/profile.h"
#include "flamekit/perf/perf_event.h"
#include "flamekit/perf/perf_ring.h"
#include "flamekit/unwind/frame_pointer.h"
#include "flamekit/unwind/leaf_repair.h"

namespace flamekit {

// AttachSymbols
//
// Names the target's code addresses for an AttachSession. The session calls
// it from its own thread only, caches every answer per address, and tells it
// about mappings that appear during the capture (MMAP2) and about exec (the
// old mappings are then gone). attach/target_symbols.h adapts
// flamekit::Symbolizer; tests may supply their own.
class AttachSymbols {
 public:
  virtual ~AttachSymbols() = default;
  using Name = FrameName;
  // `address` is already adjusted: a return address minus one, so it falls
  // inside the calling instruction. `kernel` comes from the callchain's
  // context markers.
  virtual Name Lookup(uint64_t address, bool kernel) = 0;
  virtual void OnMmap(const PerfMmapRecord& record) { (void)record; }
  virtual void OnExec() {}
  // Called before sampling starts: load what the first lookups would
  // (e.g. kallsyms), so sampling is not held up by it.
  virtual void Warm(bool kernel_frames) { (void)kernel_frames; }

  // The two calls below come from the session's own thread, while the
  // calls above may be running on its symbol worker: implementations keep
  // separate state for them (or lock).
  //
  // FramelessReturnSlot()
  //
  // For a sampled user pc: when the function there keeps no frame at that
  // instruction (a gcc -O2 leaf, a prologue or epilogue), so that the
  // kernel's frame-pointer callchain skipped its caller, the index of the
  // 8-byte word of the user stack, counted from the sampled stack pointer,
  // that holds its return address; nullopt when it has a frame or that
  // cannot be told. IsCode() tells whether an address is the target's
  // executable code. ForgetFrameRules() drops what was learnt (an exec).
  virtual std::optional<uint32_t> FramelessReturnSlot(uint64_t pc) {
    (void)pc;
    return std::nullopt;
  }
  virtual bool IsCode(uint64_t address) {
    (void)address;
    return false;
  }
  virtual void ForgetFrameRules() {}
};

// Why Run() returned.
enum class AttachStopReason {
  kNotStopped = 0,
  kDuration,       // the requested duration passed
  kStopRequested,  // *options.stop became true (Ctrl-C)
  kTargetExited,   // the target process exited
};
absl::string_view AttachStopReasonName(AttachStopReason reason);

// AttachProgress
//
// What the session has done so far; passed to on_progress and kept in
// stats().
struct AttachProgress {
  absl::Duration elapsed = absl::ZeroDuration();
  absl::Duration duration = absl::InfiniteDuration();  // as requested
  uint64_t samples = 0;
  uint64_t lost_samples = 0;     // PERF_RECORD_LOST totals
  uint64_t throttles = 0;        // PERF_RECORD_THROTTLE: the kernel slowed sampling
  uint32_t threads_followed = 0; // threads an event was opened on
  uint32_t threads_now = 0;      // of those, still open
  uint32_t threads_missed = 0;   // threads that exited before we could open them
  uint32_t threads_failed = 0;   // threads whose event could not be opened
  std::string thread_error;      // why, for the last of those
  uint64_t mmaps = 0;            // executable mappings reported during the capture
  AttachStopReason stop_reason = AttachStopReason::kNotStopped;
};

struct AttachOptions {
  // The process to profile (its threads are found in /proc/PID/task).
  pid_t pid = 0;
  PerfEventSpec event;  // cpu-clock
  PerfPeriod period;    // the event's default when unset
  // Stop after this long; InfiniteDuration() = until stopped or the target
  // exits.
  absl::Duration duration = absl::InfiniteDuration();
  // Add a synthetic root frame per thread, FrameKind::kThread named
  // ThreadFrameName() "name tid=N" (the collapsed writer shows it as
  // "[name tid=N]").
  bool split_threads = false;
  // Data pages per thread ring (a power of two). Halved, down to 1, when
  // the locked-memory budget refuses a ring. 32: a sample with its user
  // stack copy (kUserStackBytes) is ~260 bytes, so 128 KiB hold ~0.25 s of
  // a thread at 2 kHz; with 16 pages a loaded 2-core machine lost 121 of
  // 15,115 samples (0.8 %) before the CLI drained.
  size_t ring_pages = 32;
  // How often to rescan /proc/PID/task for threads the FORK records missed,
  // and the longest wait in epoll.
  absl::Duration thread_scan_interval = absl::Milliseconds(100);
  // on_progress is called about this often from Run()'s thread.
  absl::Duration progress_interval = absl::Milliseconds(250);
  std::function<void(const AttachProgress&)> on_progress;
  // Set (by a SIGINT handler, another thread, ...) to stop Run() soon.
  const std::atomic<bool>* stop = nullptr;
  // Launch mode: the target is a child that has not exec'd yet; the events
  // start at its exec (enable_on_exec) and the symbols are reset then.
  bool launch_mode = false;
  // Leave kernel frames out (unset: as the machine allows).
  std::optional<bool> exclude_kernel;
};

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
  struct ThreadEvent {
    pid_t tid = 0;
    ScopedFd fd;
    std::unique_ptr<PerfRing> ring;
    bool closed = false;
  };
  class Sink;
  class SymbolWorker;
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
  void DrainThread(ThreadEvent& t);
  void CloseThread(ThreadEvent& t);
  void AddSample(const PerfSample& sample);
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
  std::vector<std::unique_ptr<ThreadEvent>> threads_;
  absl::flat_hash_set<pid_t> known_tids_;
  absl::flat_hash_set<pid_t> exited_tids_;
  std::vector<pid_t> pending_forks_;
  // The middle stage: leaf repair from the sample's copy of the user stack,
  // folding; names come from the symbol worker at the end.
  SymbolsCodeFacts code_facts_{this};
  LeafRepair leaf_repair_{&code_facts_};
  StackFolder folder_;
  // One sample's frames and stack words (no allocation once grown).
  std::vector<uint64_t> pcs_;
  std::vector<uint64_t> stack_words_;
  std::unique_ptr<SymbolWorker> worker_;
  absl::flat_hash_map<uint32_t, std::string> thread_names_;
  bool built_ = false;
  ScopedFd epoll_;
  ScopedFd pidfd_;
  size_t ring_pages_ = 32;
  absl::Time start_ = absl::InfinitePast();
  absl::Time last_progress_ = absl::InfinitePast();
  absl::Time last_scan_ = absl::InfinitePast();
  bool exec_seen_ = false;
  bool created_ = false;  // Create() has opened the initial threads
  bool running_ = false;  // Run() has enabled the events
};

// Implementation details follow.

namespace attach_internal {

// Bytes of user stack each sample copies (see kLeafStackWords).
inline constexpr uint32_t kUserStackBytes = 8 * kLeafStackWords;

}  // namespace attach_internal

inline absl::string_view AttachStopReasonName(AttachStopReason reason) {
  switch (reason) {
    case AttachStopReason::kNotStopped: return "running";
    case AttachStopReason::kDuration: return "duration reached";
    case AttachStopReason::kStopRequested: return "stopped by request";
    case AttachStopReason::kTargetExited: return "target exited";
  }
  return "unknown";
}

// Makes every AttachSymbols call on its own thread, in the order the
// session asks: names for address keys, new mappings, exec. Names already
// given are looked up again after a mapping over them or an exec.
class AttachSession::SymbolWorker {
 public:
  explicit SymbolWorker(AttachSymbols* symbols) : symbols_(symbols), thread_([this] { Loop(); }) {}
  ~SymbolWorker() { Finish(); }

  void Lookup(uint64_t key) { Push(Command{Command::kLookup, key, {}, {}}); }
  void Mmap(const PerfMmapRecord& m) {
    PerfMmapRecord copy = m;
    Command c{Command::kMmap, 0, copy, std::string(m.filename)};
    Push(std::move(c));
  }
  void Exec() { Push(Command{Command::kExec, 0, {}, {}}); }

  // Finish()
  //
  // Works through what is queued and stops the thread; names() is then
  // complete and owned by the caller's thread.
  void Finish() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  const absl::flat_hash_map<uint64_t, AttachSymbols::Name>& names() const { return names_; }

 private:
  struct Command {
    enum Type { kLookup, kMmap, kExec } type;
    uint64_t key;
    PerfMmapRecord mmap;
    std::string filename;  // mmap.filename points here once queued
  };

  void Push(Command c) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(std::move(c));
    }
    cv_.notify_one();
  }

  void Loop() {
    std::vector<Command> batch;
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty() && stopping_) return;
        batch.assign(std::make_move_iterator(queue_.begin()),
                     std::make_move_iterator(queue_.end()));
        queue_.clear();
      }
      for (Command& c : batch) Run(c);
      batch.clear();
    }
  }

  void Run(Command& c) {
    switch (c.type) {
      case Command::kLookup: {
        bool kernel = (c.key >> 63) != 0;
        names_[c.key] = symbols_->Lookup(c.key, kernel);
        return;
      }
      case Command::kMmap: {
        c.mmap.filename = c.filename;
        symbols_->OnMmap(c.mmap);
        std::vector<uint64_t> again;
        for (const auto& [key, name] : names_) {
          if (key >= c.mmap.addr && key < c.mmap.addr + c.mmap.len) again.push_back(key);
        }
        for (uint64_t key : again) names_[key] = symbols_->Lookup(key, false);
        return;
      }
      case Command::kExec: {
        symbols_->OnExec();
        for (auto& [key, name] : names_) {
          name = symbols_->Lookup(key, (key >> 63) != 0);
        }
        return;
      }
    }
  }

  AttachSymbols* symbols_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Command> queue_;
  bool stopping_ = false;
  absl::flat_hash_map<uint64_t, AttachSymbols::Name> names_;  // worker thread only until Finish()
  std::thread thread_;  // last: starts after the members above exist
};

class AttachSession::Sink : public PerfRecordSink {
 public:
  explicit Sink(AttachSession* session) : session_(session) {}
  void OnSample(const PerfSample& sample) override { session_->AddSample(sample); }
  void OnMmap(const PerfMmapRecord& m) override {
    if (m.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    if ((m.prot & 4 /*PROT_EXEC*/) == 0 && m.is_mmap2) return;
    ++session_->progress_.mmaps;
    // Addresses in the new range may have been named "[unknown]" before the
    // mapping was known (rings are read one after another): forget them.
    if (session_->worker_) session_->worker_->Mmap(m);
  }
  void OnComm(const PerfCommRecord& c) override {
    if (c.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    session_->thread_names_[c.tid] = std::string(c.comm);
    if (c.exec && !session_->exec_seen_) session_->NoteExec();
  }
  void OnTask(const PerfTaskRecord& t) override {
    if (t.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    if (t.is_exit) {
      session_->exited_tids_.insert(static_cast<pid_t>(t.tid));
    } else if (!session_->known_tids_.contains(static_cast<pid_t>(t.tid))) {
      session_->pending_forks_.push_back(static_cast<pid_t>(t.tid));
    }
  }

 private:
  AttachSession* session_;
};

inline absl::StatusOr<std::unique_ptr<AttachSession>> AttachSession::Create(
    const AttachOptions& options, std::unique_ptr<AttachSymbols> symbols) {
  if (options.pid <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad PID ", options.pid, "; give the PID of a running process"));
  }
  if (options.ring_pages == 0 || (options.ring_pages & (options.ring_pages - 1)) != 0) {
    return absl::InvalidArgumentError("ring_pages must be a power of two");
  }
  if (kill(options.pid, 0) != 0 && errno == ESRCH) {
    return absl::NotFoundError(absl::StrCat(
        "no process ", options.pid, "; check the PID with `ps` or use --name REGEX"));
  }
  std::unique_ptr<AttachSession> s(new AttachSession(options));
  s->symbols_ = std::move(symbols);
  s->ring_pages_ = options.ring_pages;
  s->event_options_.event = options.event;
  s->event_options_.period = options.period;
  // Each sample also carries the top of the user stack, where a leaf that
  // keeps no frame has its return address (AddSample puts its caller back).
  s->event_options_.sample_type = kDefaultPerfSampleType | PERF_SAMPLE_STACK_USER;
  s->event_options_.user_stack_bytes = attach_internal::kUserStackBytes;
  s->event_options_.record_mmap = true;
  s->event_options_.record_comm = true;
  s->event_options_.record_task = true;
  s->event_options_.enable_on_exec = options.launch_mode;
  // Created disabled; Run() enables them (launch mode: the exec does).
  s->event_options_.disabled = true;
  // Unset: OpenPerfEvent() decides, and retries without kernel frames when
  // the kernel refuses them.
  s->event_options_.exclude_kernel = options.exclude_kernel;
  // Wake epoll when a ring is half full; the periodic timeout reads the
  // rest. (A wake-up per sample would cost the CLI a syscall per sample.)
  s->event_options_.wakeup_watermark_bytes =
      static_cast<uint32_t>(options.ring_pages * static_cast<size_t>(sysconf(_SC_PAGESIZE)) / 2);
  // Resolve the period once so a bad one fails here with its own message.
  absl::StatusOr<ResolvedPerfPeriod> period = ResolvePeriod(options.event, options.period);
  if (!period.ok()) return period.status();

  s->epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
  if (!s->epoll_) return absl::ErrnoToStatus(errno, "epoll_create1");
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, options.pid, 0));
  if (pidfd >= 0) {
    s->pidfd_.reset(pidfd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = ~uint64_t{0};
    epoll_ctl(s->epoll_.get(), EPOLL_CTL_ADD, pidfd, &ev);
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
  for (auto& t : threads_) CloseThread(*t);
  if (worker_) worker_->Finish();
}

inline absl::Status AttachSession::OpenThread(pid_t tid, bool first) {
  if (known_tids_.contains(tid)) return absl::OkStatus();
  PerfEventOptions options = event_options_;
  options.tid = tid;
  // Threads found while running start enabled. (Launch mode: only the
  // child's first thread exists before exec; later ones come after it.)
  if (running_ || (options_.launch_mode && created_)) {
    options.enable_on_exec = false;
    options.disabled = false;
  }
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (!fd.ok() && (options.sample_type & PERF_SAMPLE_STACK_USER) != 0 &&
      fd.status().code() == absl::StatusCode::kInvalidArgument) {
    // A kernel without user stack samples (before 3.7, or one that limits
    // them): go on without, leaves' callers may then be missing.
    event_options_.sample_type &= ~static_cast<uint64_t>(PERF_SAMPLE_STACK_USER);
    options.sample_type = event_options_.sample_type;
    fd = OpenPerfEvent(options);
  }
  if (!fd.ok()) {
    if (!first) {
      if (fd.status().code() == absl::StatusCode::kNotFound) {
        ++progress_.threads_missed;
      } else {
        ++progress_.threads_failed;
        progress_.thread_error = std::string(fd.status().message());
      }
    }
    return fd.status();
  }
  auto t = std::make_unique<ThreadEvent>();
  t->tid = tid;
  t->fd = std::move(*fd);
  for (size_t pages = ring_pages_;; pages /= 2) {
    absl::StatusOr<PerfRing> ring = PerfRing::Map(t->fd.get(), pages, options.sample_type);
    if (ring.ok()) {
      t->ring = std::make_unique<PerfRing>(std::move(*ring));
      ring_pages_ = pages;
      break;
    }
    if (ring.status().code() != absl::StatusCode::kResourceExhausted || pages == 1) {
      if (!first) {
        ++progress_.threads_failed;
        progress_.thread_error = std::string(ring.status().message());
      }
      return ring.status();
    }
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = threads_.size();
  if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, t->fd.get(), &ev) != 0) {
    return absl::ErrnoToStatus(errno, "epoll_ctl(ADD perf fd)");
  }
  known_tids_.insert(tid);
  if (!thread_names_.contains(static_cast<uint32_t>(tid))) {
    thread_names_[static_cast<uint32_t>(tid)] = ThreadName(options_.pid, tid);
  }
  threads_.push_back(std::move(t));
  ++progress_.threads_followed;
  ++progress_.threads_now;
  return absl::OkStatus();
}

inline void AttachSession::CloseThread(ThreadEvent& t) {
  if (t.closed) return;
  if (t.fd) {
    ioctl(t.fd.get(), PERF_EVENT_IOC_DISABLE, 0);
    if (epoll_) epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, t.fd.get(), nullptr);
  }
  t.ring.reset();
  t.fd.reset();
  t.closed = true;
  if (progress_.threads_now > 0) --progress_.threads_now;
}

inline void AttachSession::DrainThread(ThreadEvent& t) {
  if (t.closed || !t.ring) return;
  Sink sink(this);
  PerfRecordCounts counts = t.ring->Read(sink);
  progress_.lost_samples += counts.lost_samples;
  progress_.throttles += counts.throttles;
}

inline void AttachSession::DrainAll() {
  // Index loop: draining may open new threads (FORK records).
  for (size_t i = 0; i < threads_.size(); ++i) DrainThread(*threads_[i]);
  // Threads whose EXIT we saw: their rings are drained, close them.
  if (!exited_tids_.empty()) {
    for (auto& t : threads_) {
      if (!t->closed && exited_tids_.contains(t->tid)) {
        DrainThread(*t);
        CloseThread(*t);
      }
    }
  }
  if (!pending_forks_.empty()) {
    std::vector<pid_t> forks;
    forks.swap(pending_forks_);
    for (pid_t tid : forks) {
      if (!exited_tids_.contains(tid)) (void)OpenThread(tid, /*first=*/false);
    }
  }
}

inline void AttachSession::ScanThreads() {
  for (pid_t tid : ListProcessThreads(options_.pid)) {
    if (!known_tids_.contains(tid) && !exited_tids_.contains(tid)) {
      (void)OpenThread(tid, /*first=*/false);
    }
  }
}

inline CodeFacts::LeafFrame AttachSession::SymbolsCodeFacts::LeafFrameAt(uint64_t pc) {
  LeafFrame frame;
  if (session_->symbols_ == nullptr) return frame;
  if (std::optional<uint32_t> slot = session_->symbols_->FramelessReturnSlot(pc)) {
    frame.kind = LeafFrame::Kind::kFrameless;
    frame.slot = *slot;
  }
  return frame;
}

inline bool AttachSession::SymbolsCodeFacts::IsReturnAddress(uint64_t word) {
  return session_->symbols_ != nullptr && session_->symbols_->IsCode(word);
}

inline void AttachSession::NameNewAddresses() {
  std::vector<uint64_t> fresh = folder_.TakeUnnamed();
  if (symbols_ == nullptr || fresh.empty()) return;
  if (!worker_) worker_ = std::make_unique<SymbolWorker>(symbols_.get());
  for (uint64_t address : fresh) worker_->Lookup(address);
}

inline void AttachSession::AddSample(const PerfSample& sample) {
  if (sample.pid != static_cast<uint32_t>(options_.pid)) return;
  if (options_.launch_mode && !exec_seen_) {
    // Samples start at exec (enable_on_exec): the pre-exec mappings the
    // symbols were read from are gone.
    NoteExec();
  }
  ++progress_.samples;
  // The callchain is leaf first, in contexts (kernel, then user) that
  // start with a marker; the folder steps return addresses into their
  // calls.
  RawSample raw;
  raw.tid = sample.tid;
  pcs_.clear();
  bool next_is_user_leaf = false;
  size_t user_leaf = SIZE_MAX;
  for (uint64_t address : sample.callchain) {
    if (address >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) {
      next_is_user_leaf = address == static_cast<uint64_t>(PERF_CONTEXT_USER);
      continue;
    }
    if (address == 0) continue;
    if (next_is_user_leaf) {
      user_leaf = pcs_.size();
      next_is_user_leaf = false;
    }
    if (pcs_.size() + 1 >= static_cast<size_t>(FLAMEKIT_MAX_FRAMES)) {
      // Keep the leaf side; the profile marks where the root side was cut.
      raw.truncated = true;
      break;
    }
    pcs_.push_back(address);
  }
  if (pcs_.empty() && sample.ip != 0) pcs_.push_back(sample.ip);
  if (pcs_.empty()) return;
  raw.pcs = pcs_;
  // No user context: nothing for the leaf repair.
  raw.user_leaf = std::min(user_leaf, pcs_.size());
  // The kernel walked the user stack by frame pointers: from a leaf that
  // keeps no frame it went straight to the caller's caller. The sample's
  // copy of the user stack holds the missing return address.
  stack_words_.resize(sample.user_stack.size() / 8);
  if (!stack_words_.empty()) {
    memcpy(stack_words_.data(), sample.user_stack.data(), stack_words_.size() * 8);
  }
  raw.stack_words = stack_words_;
  folder_.Add(raw);
  NameNewAddresses();
}

inline void AttachSession::NoteExec() {
  exec_seen_ = true;
  if (symbols_) {
    if (!worker_) worker_ = std::make_unique<SymbolWorker>(symbols_.get());
    worker_->Exec();
    symbols_->ForgetFrameRules();
  }
  leaf_repair_.Forget();
}

inline void AttachSession::BuildProfile() {
  if (built_) return;
  built_ = true;
  if (worker_) {
    worker_->Finish();
    for (const auto& [address, name] : worker_->names()) folder_.SetName(address, name);
  }
  folder_.AddTo(profile_, [this](uint32_t tid) {
    auto it = thread_names_.find(tid);
    return it != thread_names_.end() ? it->second : std::string();
  });
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
  int n = epoll_wait(epoll_.get(), events, 64, wait_ms);
  for (int i = 0; i < n; ++i) {
    uint64_t index = events[i].data.u64;
    if (index >= threads_.size()) continue;  // the pidfd
    if (events[i].events & (EPOLLHUP | EPOLLERR)) {
      // The thread exited: its event will never produce again, and epoll
      // would report the hang-up forever. Read what is left and close it.
      DrainThread(*threads_[index]);
      exited_tids_.insert(threads_[index]->tid);
      CloseThread(*threads_[index]);
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
  if (symbols_) symbols_->Warm(!event_options_.exclude_kernel.value_or(!DefaultExcludeKernel()));
  if (!options_.launch_mode) {
    // Opened disabled in Create(): start them together, now.
    for (auto& t : threads_) {
      if (!t->closed && t->fd) ioctl(t->fd.get(), PERF_EVENT_IOC_ENABLE, 0);
    }
  }
  running_ = true;
  if (symbols_ && !worker_) worker_ = std::make_unique<SymbolWorker>(symbols_.get());
  start_ = absl::Now();
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
  for (auto& t : threads_) {
    if (!t->closed && t->fd) ioctl(t->fd.get(), PERF_EVENT_IOC_DISABLE, 0);
  }
  DrainAll();
  for (auto& t : threads_) {
    DrainThread(*t);
    CloseThread(*t);
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
