// SPDX-License-Identifier: Apache-2.0
// File: attach.h
//
// AttachSession profiles another process by PID with perf_event_open and the
// kernel's ring buffers: nothing is loaded into the target. It opens one
// sampling event per thread (IP|TID|TIME|CALLCHAIN, plus MMAP2/COMM/FORK/EXIT
// side-band records), follows threads created during the capture (from
// PERF_RECORD_FORK and by rescanning /proc/PID/task), reads the rings with
// epoll, counts lost records, names addresses through an AttachSymbols
// (symbolizing incrementally while the target is alive, so a target that
// exits mid-capture still resolves), and folds the stacks into a Profile.
//
// Thread-safety: one AttachSession is driven by one ordinary thread
// (Create(), Run(), TakeProfile()). The only cross-thread input is the
// `stop` flag, which any thread or a signal handler may set (it is a
// lock-free std::atomic<bool> read with relaxed loads). Not for use from a
// signal handler.
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
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
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
#include "flamekit/base/config.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/profile/profile.h"
#include "flamekit/sample/perf_event.h"
#include "flamekit/sample/perf_ring.h"

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
  struct Name {
    std::string name;
    FrameKind kind = FrameKind::kUnknown;
  };
  // `address` is already adjusted: a return address minus one, so it falls
  // inside the calling instruction. `kernel` comes from the callchain's
  // context markers.
  virtual Name Lookup(uint64_t address, bool kernel) = 0;
  virtual void OnMmap(const PerfMmapRecord& record) { (void)record; }
  virtual void OnExec() {}
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
  // "name tid=N" (the collapsed writer shows it as "[name tid=N]").
  bool split_threads = false;
  // Data pages per thread ring (a power of two). Halved, down to 1, when
  // the locked-memory budget refuses a ring.
  size_t ring_pages = 16;
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
  void set_symbols(std::unique_ptr<AttachSymbols> symbols) {
    symbols_ = std::move(symbols);
    frame_cache_.clear();
  }

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

  explicit AttachSession(const AttachOptions& options) : options_(options) {}
  absl::Status OpenThread(pid_t tid, bool first);
  void ScanThreads();
  void DrainAll();
  void DrainThread(ThreadEvent& t);
  void CloseThread(ThreadEvent& t);
  void AddSample(const PerfSample& sample);
  FrameId FrameFor(uint64_t address, bool kernel);
  FrameId ThreadFrame(uint32_t tid);
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
  absl::flat_hash_map<uint64_t, FrameId> frame_cache_;
  absl::flat_hash_map<uint32_t, FrameId> thread_frames_;
  absl::flat_hash_map<uint32_t, std::string> thread_names_;
  absl::flat_hash_set<uint32_t> sampled_tids_;
  std::vector<FrameId> stack_scratch_;
  ScopedFd epoll_;
  ScopedFd pidfd_;
  size_t ring_pages_ = 16;
  absl::Time start_ = absl::InfinitePast();
  absl::Time last_progress_ = absl::InfinitePast();
  absl::Time last_scan_ = absl::InfinitePast();
  bool exec_seen_ = false;
  bool created_ = false;  // Create() has opened the initial threads
};

// Implementation details follow.

namespace attach_internal {

inline std::string ReadProcString(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    out.append(buf, n);
    if (out.size() > (1 << 16)) break;
  }
  std::fclose(f);
  return out;
}

// The threads of `pid`, from /proc/PID/task; empty when it is gone.
inline std::vector<pid_t> ListThreads(pid_t pid) {
  std::vector<pid_t> tids;
  std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return tids;
  while (dirent* e = readdir(d)) {
    pid_t tid = 0;
    if (absl::SimpleAtoi(e->d_name, &tid) && tid > 0) tids.push_back(tid);
  }
  closedir(d);
  std::sort(tids.begin(), tids.end());
  return tids;
}

// The command line of `pid` with NULs as spaces ("" when unreadable).
inline std::string ProcessCommand(pid_t pid) {
  std::string cmd = ReadProcString(absl::StrCat("/proc/", pid, "/cmdline"));
  while (!cmd.empty() && cmd.back() == '\0') cmd.pop_back();
  std::replace(cmd.begin(), cmd.end(), '\0', ' ');
  return cmd;
}

inline std::string ThreadComm(pid_t pid, pid_t tid) {
  std::string comm = ReadProcString(absl::StrCat("/proc/", pid, "/task/", tid, "/comm"));
  return std::string(absl::StripAsciiWhitespace(comm));
}

// Whether /proc/PID exists and is not a zombie.
inline bool ProcessAlive(pid_t pid) {
  std::string stat = ReadProcString(absl::StrCat("/proc/", pid, "/stat"));
  if (stat.empty()) return false;
  size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

inline constexpr uint64_t kKernelKeyBit = uint64_t{1} << 63;

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

class AttachSession::Sink : public PerfRecordSink {
 public:
  explicit Sink(AttachSession* session) : session_(session) {}
  void OnSample(const PerfSample& sample) override { session_->AddSample(sample); }
  void OnMmap(const PerfMmapRecord& m) override {
    if (m.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    if ((m.prot & 4 /*PROT_EXEC*/) == 0 && m.is_mmap2) return;
    ++session_->progress_.mmaps;
    if (session_->symbols_) session_->symbols_->OnMmap(m);
    // Addresses in the new range may have been named "[unknown]" before the
    // mapping was known (rings are read one after another): forget them.
    auto& cache = session_->frame_cache_;
    for (auto it = cache.begin(); it != cache.end();) {
      uint64_t a = it->first & ~attach_internal::kKernelKeyBit;
      if (a >= m.addr && a < m.addr + m.len) {
        cache.erase(it++);
      } else {
        ++it;
      }
    }
  }
  void OnComm(const PerfCommRecord& c) override {
    if (c.pid != static_cast<uint32_t>(session_->options_.pid)) return;
    session_->thread_names_[c.tid] = std::string(c.comm);
    if (c.exec && !session_->exec_seen_) {
      session_->exec_seen_ = true;
      session_->frame_cache_.clear();
      if (session_->symbols_) session_->symbols_->OnExec();
    }
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
  s->event_options_.sample_type = kDefaultPerfSampleType;
  s->event_options_.record_mmap = true;
  s->event_options_.record_comm = true;
  s->event_options_.record_task = true;
  s->event_options_.enable_on_exec = options.launch_mode;
  s->event_options_.disabled = options.launch_mode;
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

  std::vector<pid_t> tids = attach_internal::ListThreads(options.pid);
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
  s->profile_.metadata().command = attach_internal::ProcessCommand(options.pid);
  return s;
}

inline AttachSession::~AttachSession() {
  for (auto& t : threads_) CloseThread(*t);
}

inline absl::Status AttachSession::OpenThread(pid_t tid, bool first) {
  if (known_tids_.contains(tid)) return absl::OkStatus();
  PerfEventOptions options = event_options_;
  options.tid = tid;
  // Launch mode: only the child's first thread exists before exec; later
  // threads come after it and must start enabled.
  if (options_.launch_mode && created_) {
    options.enable_on_exec = false;
    options.disabled = false;
  }
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(options);
  if (!fd.ok()) {
    if (fd.status().code() == absl::StatusCode::kNotFound && !first) ++progress_.threads_missed;
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
    thread_names_[static_cast<uint32_t>(tid)] = attach_internal::ThreadComm(options_.pid, tid);
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
  for (pid_t tid : attach_internal::ListThreads(options_.pid)) {
    if (!known_tids_.contains(tid) && !exited_tids_.contains(tid)) {
      (void)OpenThread(tid, /*first=*/false);
    }
  }
}

inline FrameId AttachSession::ThreadFrame(uint32_t tid) {
  auto it = thread_frames_.find(tid);
  if (it != thread_frames_.end()) return it->second;
  auto name_it = thread_names_.find(tid);
  std::string name = name_it != thread_names_.end() && !name_it->second.empty()
                         ? absl::StrCat(name_it->second, " tid=", tid)
                         : absl::StrCat("tid=", tid);
  FrameId id = profile_.InternFrame(name, FrameKind::kThread);
  thread_frames_[tid] = id;
  return id;
}

inline FrameId AttachSession::FrameFor(uint64_t address, bool kernel) {
  uint64_t key = address | (kernel ? attach_internal::kKernelKeyBit : 0);
  auto it = frame_cache_.find(key);
  if (it != frame_cache_.end()) return it->second;
  AttachSymbols::Name name;
  if (symbols_) {
    name = symbols_->Lookup(address, kernel);
  } else {
    name.name = absl::StrCat("0x", absl::Hex(address));
    name.kind = kernel ? FrameKind::kKernel : FrameKind::kUnknown;
  }
  FrameId id = profile_.InternFrame(name.name, name.kind);
  frame_cache_.emplace(key, id);
  return id;
}

inline void AttachSession::AddSample(const PerfSample& sample) {
  if (sample.pid != static_cast<uint32_t>(options_.pid)) return;
  if (options_.launch_mode && !exec_seen_) {
    // Samples start at exec (enable_on_exec): the pre-exec mappings the
    // symbols were read from are gone.
    exec_seen_ = true;
    frame_cache_.clear();
    if (symbols_) symbols_->OnExec();
  }
  ++progress_.samples;
  sampled_tids_.insert(sample.tid);
  // The callchain is leaf first; the profile wants root first. Within each
  // context (kernel, user) the first address is where the code was; the
  // others are return addresses, looked up one byte back so they fall in
  // the call instruction (a call at the end of a function would otherwise
  // name the next one).
  std::vector<FrameId>& stack = stack_scratch_;
  stack.clear();
  bool next_is_exact = true;
  bool last_kernel = false;
  bool any = false;
  for (uint64_t address : sample.callchain) {
    if (address >= static_cast<uint64_t>(PERF_CONTEXT_MAX)) {
      last_kernel = address == static_cast<uint64_t>(PERF_CONTEXT_KERNEL);
      next_is_exact = true;
      continue;
    }
    if (address == 0) continue;
    uint64_t lookup = next_is_exact ? address : address - 1;
    next_is_exact = false;
    if (stack.size() + 1 >= static_cast<size_t>(FLAMEKIT_MAX_FRAMES)) {
      // Keep the leaf side, mark where the root side was cut.
      stack.push_back(profile_.InternFrame(kTruncatedFrameName, FrameKind::kTruncated));
      any = true;
      break;
    }
    stack.push_back(FrameFor(lookup, last_kernel));
    any = true;
  }
  if (!any && sample.ip != 0) stack.push_back(FrameFor(sample.ip, false));
  if (stack.empty()) return;
  if (options_.split_threads) stack.push_back(ThreadFrame(sample.tid));
  std::reverse(stack.begin(), stack.end());
  profile_.AddStack(stack, 1);
}

inline bool AttachSession::TargetExited() {
  if (pidfd_) {
    pollfd p{pidfd_.get(), POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLIN | POLLHUP)) != 0;
  }
  return !attach_internal::ProcessAlive(options_.pid);
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
  m.threads = static_cast<uint32_t>(sampled_tids_.size());
  Profile out = std::move(profile_);
  profile_ = Profile();
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_ATTACH_ATTACH_H_
