// SPDX-License-Identifier: Apache-2.0
// File: profiler_push.h
//
// The embedded profiler's continuous push (ProfilerOptions::push): a
// PushLoop thread that, every `every`, takes the capture so far
// (Profiler::Dump()), subtracts the previous one (ProfileDelta()), encodes
// the window as gzipped pprof and offers it to a ProfilePusher
// (trigger/pyroscope_push.h), whose own thread POSTs it to /ingest. An
// implementation header: only profiler_impl.h includes it, so the facade
// (profiler.h) never sees httplib.
//
// Thread safety: StartPush(), StopPush() and AbandonPushAfterFork() may be
// called from any ordinary thread, never from a signal handler; they
// serialize on PushMutex(), which is never held across a join. The loop
// thread calls Profiler::Dump(), so StopPush() must be called WITHOUT the
// Profiler's control_mu_ held (Profiler::Stop() and the exit handler call it
// first). The program's threads never touch the network: the loop and
// the sender are the profiler's threads, and Offer() drops rather than
// waits.
//
// Bounds: windows waiting to be sent: `max_queue` and 8 MiB; one send:
// min(5 s, every) per attempt, 2 attempts; StopPush(): the last window's
// Dump and encoding, then at most `stop_wait` for it to go out, then the
// send in flight is aborted (its socket shut down) and the threads joined.
// A connect() in progress is not interrupted by the abort: against an
// address that drops SYNs, StopPush() may take up to one more send bound.
// Memory: the previous window's cumulative profile is kept (one copy of
// the capture's stacks).
//
// Example (what profiler_impl.h does):
//
//   FLAMEKIT_RETURN_IF_ERROR(profiler_internal::ValidatePushOptions(options.push));
//   ... session begun ...
//   profiler_internal::StartPush(this, options);
//   ...
//   std::string summary = profiler_internal::StopPush();  // before control_mu_

#ifndef FLAMEKIT_PROFILER_PUSH_H_
#define FLAMEKIT_PROFILER_PUSH_H_

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/profile/profile.h"
#include "flamekit/profiler.h"
#include "flamekit/render/pprof.h"
#include "flamekit/symbol/elf_reader.h"
#include "flamekit/trigger/pyroscope_push.h"

namespace flamekit {
namespace profiler_internal {

// ValidatePushOptions()
//
// OK for an empty url (no push); InvalidArgument saying what to give for a
// bad URL, label, window, queue or stop_wait.
absl::Status ValidatePushOptions(const ProfilerPushOptions& push);

// PushAvailable()
//
// Unimplemented with the reason in the static build (no HTTP client).
absl::Status PushAvailable();

// ProfileDelta()
//
// `current` minus `previous` stack by stack (frames matched by name and
// kind), for two Dump()s of one capture: counts only grow there, so a
// stack whose count did not grow is left out. Metadata is current's, with
// the drop and loss counters also subtracted.
Profile ProfileDelta(const Profile& current, const Profile& previous);

// SelfPushLabels()
//
// host, pid and build_id of this process, then `push.labels` (which win).
std::map<std::string, std::string> SelfPushLabels(const ProfilerPushOptions& push);

class PushLoop {
 public:
  static absl::StatusOr<std::unique_ptr<PushLoop>> Start(Profiler* profiler,
                                                         const ProfilerOptions& options);
  ~PushLoop() { Stop(); }
  PushLoop(const PushLoop&) = delete;
  PushLoop& operator=(const PushLoop&) = delete;

  // Stop(): pushes the last window, then as the header says; returns a
  // one-line summary ("push: 3 windows sent, ...").
  std::string Stop();

 private:
  PushLoop(Profiler* profiler, const ProfilerOptions& options)
      : profiler_(profiler), options_(options.push), live_(options.event == "live") {}
  void Run();
  void PushWindow();

  Profiler* const profiler_;
  const ProfilerPushOptions options_;
  const bool live_;  // a snapshot event: push the whole capture, no delta
  std::unique_ptr<ProfilePusher> pusher_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  bool stopped_ = false;   // guarded by mu_
  std::string summary_;    // guarded by mu_
  // Loop thread only.
  Profile previous_;
  absl::Time window_start_;
  uint64_t encode_failures_ = 0;
  std::thread thread_;
};

// The process's push loop, if any.
std::mutex& PushMutex();
std::unique_ptr<PushLoop>& ActivePushLoop();

// StartPush(): no-op without push.url; the pusher's error otherwise.
absl::Status StartPush(Profiler* profiler, const ProfilerOptions& options);

// StopPush(): the summary line, or "" when nothing was pushing. With
// keep_summary (the exit handler), the line is also kept for the next
// StopPush() to return, so a Profiler::Stop() in a later exit handler
// (the agent's) still reports it.
std::string StopPush(bool keep_summary = false);

// AbandonPushAfterFork(): in a forked child, the loop's threads do not
// exist: leak the loop instead of joining them.
void AbandonPushAfterFork();

// Implementation details follow.

inline absl::Status ValidatePushOptions(const ProfilerPushOptions& push) {
  if (push.url.empty()) return absl::OkStatus();
  absl::StatusOr<ParsedUrl> url = ParsePushUrl(push.url);
  if (!url.ok()) return url.status();
  if (!push.app.empty() && (!ValidPushLabelValue(push.app) ||
                            push.app.find_first_of(" \t") != std::string::npos)) {
    return absl::InvalidArgumentError(
        absl::StrCat("push app '", push.app, "': give a name without spaces or , = { }"));
  }
  for (const auto& [key, value] : push.labels) {
    if (!ValidPushLabelKey(key) || !ValidPushLabelValue(value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "push label '", key, "=", value,
          "': the key made of letters, digits, _ and . (not starting with a digit), the "
          "value non-empty without , = { }"));
    }
  }
  if (push.every < absl::Seconds(1) || push.every > absl::Hours(1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "push window ", absl::FormatDuration(push.every),
        " is outside 1s..1h (Pyroscope takes whole seconds); e.g. 10s"));
  }
  if (push.max_queue < 1 || push.max_queue > 64) {
    return absl::InvalidArgumentError("push max_queue must be in 1..64 windows");
  }
  if (push.stop_wait < absl::ZeroDuration() || push.stop_wait > absl::Seconds(10)) {
    return absl::InvalidArgumentError("push stop_wait must be in 0..10s; e.g. 1s");
  }
  return absl::OkStatus();
}

inline absl::Status PushAvailable() {
  if (HttpFetchAvailable()) return absl::OkStatus();
  return absl::UnimplementedError(
      "push needs the regular build: the static one has no HTTP client");
}

inline Profile ProfileDelta(const Profile& current, const Profile& previous) {
  Profile out;
  out.metadata() = current.metadata();
  const ProfileMetadata& before = previous.metadata();
  out.metadata().dropped_samples -= std::min(out.metadata().dropped_samples, before.dropped_samples);
  out.metadata().lost_samples -= std::min(out.metadata().lost_samples, before.lost_samples);
  // current's frame id -> previous's (or none), looked up once per frame.
  std::vector<std::optional<FrameId>> in_previous(current.frame_count());
  for (FrameId id = 0; id < current.frame_count(); ++id) {
    in_previous[id] = previous.FindFrame(current.frame(id).name, current.frame(id).kind);
  }
  std::vector<FrameId> mapped, interned;
  for (size_t i = 0; i < current.stack_count(); ++i) {
    absl::Span<const FrameId> stack = current.stack(i);
    uint64_t count = current.stack_count_at(i);
    mapped.clear();
    bool known = true;
    for (FrameId id : stack) {
      if (!in_previous[id].has_value()) {
        known = false;
        break;
      }
      mapped.push_back(*in_previous[id]);
    }
    if (known) {
      if (std::optional<size_t> at = previous.FindStack(mapped); at.has_value()) {
        uint64_t was = previous.stack_count_at(*at);
        count = count > was ? count - was : 0;
      }
    }
    if (count == 0) continue;
    interned.clear();
    for (FrameId id : stack) {
      interned.push_back(out.InternFrame(current.frame(id).name, current.frame(id).kind));
    }
    out.AddStack(interned, count);
  }
  return out;
}

inline std::map<std::string, std::string> SelfPushLabels(const ProfilerPushOptions& push) {
  std::map<std::string, std::string> labels;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0 && ValidPushLabelValue(host)) {
    labels["host"] = host;
  }
  labels["pid"] = absl::StrCat(getpid());
  // /proc/self/exe: the file this process runs, even if replaced on disk.
  absl::StatusOr<std::unique_ptr<ElfFile>> exe = ElfFile::Open("/proc/self/exe");
  if (exe.ok() && !(*exe)->build_id().empty()) labels["build_id"] = (*exe)->build_id();
  for (const auto& [k, v] : push.labels) labels[k] = v;
  return labels;
}

inline absl::StatusOr<std::unique_ptr<PushLoop>> PushLoop::Start(Profiler* profiler,
                                                                const ProfilerOptions& options) {
  std::unique_ptr<PushLoop> loop(new PushLoop(profiler, options));
  PushOptions push;
  push.url = options.push.url;
  push.app = options.push.app;
  if (push.app.empty()) {
    // program_invocation_short_name, as Pyroscope takes it.
    push.app.clear();
    for (char c : absl::string_view(program_invocation_short_name)) {
      push.app += (absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-') ? c : '_';
    }
    if (push.app.empty()) push.app = "flamekit";
  }
  push.labels = SelfPushLabels(options.push);
  push.max_queue = options.push.max_queue;
  push.max_queue_bytes = 8 << 20;
  // A slow server costs dropped windows, never a backlog: one attempt
  // takes at most a window (and 5 s), and there are two.
  push.timeout = std::min(absl::Seconds(5), options.push.every);
  push.backoff = std::min(absl::Milliseconds(500), options.push.every / 4);
  push.max_attempts = 2;
  // exit() destroys the statics the first POST created before it runs the
  // exit handlers registered earlier (the agent's, the Profiler's): one
  // registered now runs before those destructors and sends the last window.
  push.after_first_attempt = [] {
    static std::once_flag once;
    std::call_once(once, [] { std::atexit([] { StopPush(/*keep_summary=*/true); }); });
  };
  absl::StatusOr<std::unique_ptr<ProfilePusher>> pusher = ProfilePusher::Start(std::move(push));
  if (!pusher.ok()) return pusher.status();
  loop->pusher_ = std::move(*pusher);
  loop->window_start_ = absl::Now();
  loop->thread_ = std::thread([self = loop.get()] { self->Run(); });
  return loop;
}

inline void PushLoop::Run() {
  absl::Time next = window_start_ + options_.every;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait_for(lock, absl::ToChronoMilliseconds(std::max(absl::ZeroDuration(), next - absl::Now())),
                 [&] { return stopping_ || absl::Now() >= next; });
    const bool last = stopping_;
    lock.unlock();
    PushWindow();
    lock.lock();
    if (last) return;
    // A late wake-up (a long Dump) starts the next window from now.
    next = std::max(next + options_.every, absl::Now());
  }
}

inline void PushLoop::PushWindow() {
  absl::StatusOr<Profile> now = profiler_->Dump();
  const absl::Time until = absl::Now();
  if (!now.ok()) return;  // stopped under us: nothing more to send
  Profile window = live_ ? *now : ProfileDelta(*now, previous_);
  window.metadata().start_time = window_start_;
  window.metadata().end_time = until;
  if (!live_) previous_ = std::move(*now);
  const absl::Time from = window_start_;
  window_start_ = until;
  if (window.total_samples() == 0) return;  // an idle window: nothing to store
  absl::StatusOr<std::string> gz = RenderPprof(window);
  if (!gz.ok()) {
    ++encode_failures_;
    return;
  }
  pusher_->Offer(std::move(*gz), from, until);  // never waits: full drops
}

inline std::string PushLoop::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return summary_;
    stopped_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();  // after the last window's Dump
  PushStats s = pusher_->Stop(options_.stop_wait);
  std::string summary = absl::StrCat("push to ", options_.url, ": ", s.sent_windows,
                                     " windows sent, ", s.dropped_windows, " dropped, ",
                                     s.failed_windows, " failed");
  if (encode_failures_ > 0) absl::StrAppend(&summary, ", ", encode_failures_, " not encoded");
  if (!s.last_error.empty()) absl::StrAppend(&summary, " (last error: ", s.last_error, ")");
  std::lock_guard<std::mutex> lock(mu_);
  summary_ = summary;
  return summary_;
}

namespace push_internal {
// Never destroyed (used at exit); replaced in a forked child, where a
// parent thread may have held it at fork() time. A function-local static,
// not a namespace-scope one: the agent's constructor starts the profiler
// before this library's namespace-scope initializers may have run.
inline std::mutex*& PushMutexSlot() {
  static std::mutex* mu = new std::mutex();
  return mu;
}
}  // namespace push_internal

inline std::mutex& PushMutex() { return *push_internal::PushMutexSlot(); }

inline std::unique_ptr<PushLoop>& ActivePushLoop() {
  static auto* const loop = new std::unique_ptr<PushLoop>();  // as above
  return *loop;
}

inline absl::Status StartPush(Profiler* profiler, const ProfilerOptions& options) {
  if (options.push.url.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<PushLoop>> loop = PushLoop::Start(profiler, options);
  if (!loop.ok()) return loop.status();
  std::unique_ptr<PushLoop> old;
  {
    std::lock_guard<std::mutex> lock(PushMutex());
    old = std::exchange(ActivePushLoop(), std::move(*loop));
  }
  if (old != nullptr) old->Stop();  // a capture that ended by its duration
  return absl::OkStatus();
}

inline std::string& KeptPushSummary() {  // guarded by PushMutex()
  static auto* const kept = new std::string();  // never destroyed: used at exit
  return *kept;
}

inline std::string StopPush(bool keep_summary) {
  std::unique_ptr<PushLoop> loop;
  {
    std::lock_guard<std::mutex> lock(PushMutex());
    loop = std::move(ActivePushLoop());
    if (loop == nullptr) return std::exchange(KeptPushSummary(), std::string());
  }
  std::string summary = loop->Stop();
  if (keep_summary) {
    std::lock_guard<std::mutex> lock(PushMutex());
    KeptPushSummary() = summary;
  }
  return summary;
}

inline void AbandonPushAfterFork() {
  // No lock: the child is single-threaded here, and PushMutex() may have
  // been held by a parent thread at fork() time: a new one (the old leaks).
  // The old mutex and loop are kept reachable (for a leak checker) but
  // never touched again.
  static std::mutex* abandoned_mu = nullptr;
  static PushLoop* abandoned = nullptr;
  abandoned_mu = push_internal::PushMutexSlot();
  push_internal::PushMutexSlot() = new std::mutex();
  abandoned = ActivePushLoop().release();  // NOLINT: intentional leak in a forked child
  (void)abandoned_mu;
  (void)abandoned;
}

}  // namespace profiler_internal
}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_PUSH_H_
