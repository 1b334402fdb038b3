// SPDX-License-Identifier: Apache-2.0
// File: profiler_hooks.h
//
// The embedded profiler's `alloc`, `live` and `lock` events: a capture that
// turns the hooks on (hooks/hook_runtime.h; present when the program links
// //include/flamekit/hooks:interpose or runs under libflamekit_agent.so)
// and, at Dump()/Stop(), folds their stacks through the middle stage
// (collect/StackFolder) into a Profile whose weights are bytes (alloc,
// live) or nanoseconds waited (lock), and whose events column
// (profile.h: Profile::has_events()) holds how many allocations or waits
// made each stack's weight, so pprof writes alloc_space and alloc_objects
// (inuse_*, delay/contentions) from one Profile. Part of the facade's
// implementation: compiled once, with profiler_impl.h.
//
// Thread safety: every call is made under the Profiler's control_mu_; the
// Symbolizer passed to Build() is used under its symbol_mu_. The hooks run
// on the program's threads and never wait for anything here.

#ifndef FLAMEKIT_PROFILER_HOOKS_H_
#define FLAMEKIT_PROFILER_HOOKS_H_

#include <time.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/proc_files.h"
#include "flamekit/collect/stack_folder.h"
#include "flamekit/hooks/hook_runtime.h"
#include "flamekit/profile/profile.h"
#include "flamekit/profiler.h"
#include "flamekit/symbol/symbolizer.h"

namespace flamekit {
namespace profiler_internal {

inline bool IsHookEvent(absl::string_view event) {
  return event == "alloc" || event == "live" || event == "lock";
}

inline constexpr uint64_t kDefaultAllocIntervalBytes = 512 * 1024;

class HookCapture {
 public:
  // Begin()
  //
  // Turns the hooks on for options.event. FailedPrecondition, saying how
  // to get them, when this process has none.
  static absl::StatusOr<std::unique_ptr<HookCapture>> Begin(const ProfilerOptions& options) {
    HookRuntime* runtime = FindHookRuntime();
    if (runtime == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "event '", options.event,
          "' needs the allocation and lock hooks, which this program does not have: "
          "link it with //include/flamekit/hooks:interpose, or run it under the agent "
          "(LD_PRELOAD=libflamekit_agent.so FLAMEKIT_EVENT=", options.event,
          ", or flamekit record -e ", options.event, " -- COMMAND)"));
    }
    auto capture = std::unique_ptr<HookCapture>(new HookCapture(runtime, options));
    HookConfig config;
    config.event = options.event == "alloc"  ? HookEvent::kAlloc
                   : options.event == "live" ? HookEvent::kLive
                                             : HookEvent::kLock;
    config.mean_bytes = options.alloc_interval_bytes > 0 ? options.alloc_interval_bytes
                                                         : kDefaultAllocIntervalBytes;
    config.lock_threshold_ns =
        static_cast<uint64_t>(absl::ToInt64Nanoseconds(options.lock_threshold));
    capture->config_ = config;
    capture->start_time_ = absl::Now();
    runtime->Enable(config);
    return capture;
  }

  ~HookCapture() { Shutdown(); }

  // Shutdown() turns the hooks off (a `live` capture keeps its table for
  // the profile taken right after). Idempotent.
  void Shutdown() {
    if (!sampling_) return;
    runtime_->Disable();
    sampling_ = false;
    end_time_ = absl::Now();
  }

  bool sampling() const { return sampling_; }

  // Build()
  //
  // The profile so far. `symbolizer` may be nullptr ("0x..." frames); the
  // caller holds the lock that guards it.
  Profile Build(Symbolizer* symbolizer) {
    runtime_->Bypass(true);
    std::vector<HookStack> stacks;
    const HookStats stats = runtime_->Snapshot(&stacks);
    // Two folders over the same raw stacks, one weighted by bytes (or ns),
    // one by events: they fold to the same named stacks, joined below.
    StackFolder folder(StackFolderOptions{});
    StackFolder event_folder(StackFolderOptions{});
    std::vector<uint64_t> pcs;
    uint64_t total_count = 0;
    uint64_t oldest_ns = 0;
    for (const HookStack& s : stacks) {
      if (s.pcs.empty() || s.weight == 0) continue;
      pcs = s.pcs;
      pcs[0] -= 1;  // a return address, like the others: look inside the call
      RawSample raw;
      raw.pcs = absl::MakeConstSpan(pcs);
      raw.weight = s.weight;
      folder.Add(raw);
      raw.weight = s.count;
      event_folder.Add(raw);
      total_count += s.count;
      if (s.oldest_ns != 0 && (oldest_ns == 0 || s.oldest_ns < oldest_ns)) oldest_ns = s.oldest_ns;
    }
    std::vector<uint64_t> unnamed = folder.TakeUnnamed();
    if (symbolizer != nullptr && !unnamed.empty()) {
      std::vector<Symbolizer::Symbol> named = symbolizer->LookupAll(unnamed);
      for (size_t i = 0; i < named.size(); ++i) {
        event_folder.SetName(unnamed[i], FrameName{named[i].name, named[i].kind});
        folder.SetName(unnamed[i], FrameName{std::move(named[i].name), named[i].kind});
      }
    }
    Profile profile;
    ProfileMetadata& m = profile.metadata();
    m.title = options_.title;
    m.event = options_.event;
    m.engine = "hooks";
    m.engine_note = Note(stats, total_count, oldest_ns);
    m.start_time = start_time_;
    m.end_time = sampling_ ? absl::Now() : end_time_;
    m.dropped_samples = stats.dropped;
    m.pid = getpid();
    m.command = ProcessCommandLine(0);
    m.transforms_json = options_.transforms_json;
    folder.AddTo(profile, nullptr);
    JoinEvents(event_folder, profile);
    runtime_->Bypass(false);
    return profile;
  }

  ProfilerStatus Status() {
    ProfilerStatus status;
    status.running = sampling_;
    status.event = options_.event;
    status.engine = "hooks";
    status.elapsed = (sampling_ ? absl::Now() : end_time_) - start_time_;
    std::vector<HookStack> ignored;
    runtime_->Bypass(true);
    const HookStats stats = runtime_->Snapshot(&ignored);
    runtime_->Bypass(false);
    status.samples = stats.samples;
    status.dropped_samples = stats.dropped;
    return status;
  }

 private:
  // Adds the events folded by `event_folder` to the same stacks of
  // `profile` (frames matched by name and kind), giving it the events column.
  static void JoinEvents(const StackFolder& event_folder, Profile& profile) {
    Profile events;
    event_folder.AddTo(events, nullptr);
    profile.EnableEvents();
    std::vector<FrameId> map(events.frame_count());
    for (FrameId id = 0; id < events.frame_count(); ++id) {
      map[id] = profile.InternFrame(events.frame(id).name, events.frame(id).kind);
    }
    std::vector<FrameId> translated;
    for (size_t i = 0; i < events.stack_count(); ++i) {
      absl::Span<const FrameId> stack = events.stack(i);
      translated.resize(stack.size());
      for (size_t j = 0; j < stack.size(); ++j) translated[j] = map[stack[j]];
      // count 0: the bytes are already there; only the events are added.
      profile.AddStack(translated, 0, events.stack_count_at(i));
    }
  }

  HookCapture(HookRuntime* runtime, const ProfilerOptions& options)
      : runtime_(runtime), options_(options) {}

  std::string Note(const HookStats& stats, uint64_t total_count, uint64_t oldest_ns) const {
    std::string note;
    if (config_.event == HookEvent::kLock) {
      note = absl::StrCat("weights are nanoseconds waited; ", stats.samples,
                          " waits of at least ", config_.lock_threshold_ns / 1000, " us");
    } else {
      note = absl::StrCat("weights are bytes (estimated from ", stats.samples,
                          " sampled allocations, one per ", config_.mean_bytes,
                          " bytes on average); ~", total_count, " allocations");
    }
    if (config_.event == HookEvent::kLive) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      const uint64_t now_ns =
          static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
      absl::StrAppend(&note, "; ", stats.live_entries, " sampled allocations live");
      if (oldest_ns != 0 && now_ns > oldest_ns) {
        absl::StrAppend(&note, ", oldest ",
                        absl::FormatDuration(absl::Nanoseconds(now_ns - oldest_ns)), " old");
      }
    }
    absl::StrAppend(&note, "; tables reserve ", stats.reserved_bytes >> 20, " MiB");
    if (stats.malloc_shadowed_by != nullptr && config_.event != HookEvent::kLock) {
      absl::StrAppend(&note, "; malloc() is served by ", stats.malloc_shadowed_by,
                      ", loaded before the hooks: its calls are not seen (put the agent "
                      "first in LD_PRELOAD)");
    }
    if (stats.dropped > 0) absl::StrAppend(&note, "; ", stats.dropped, " samples dropped (full)");
    return note;
  }

  HookRuntime* const runtime_;
  const ProfilerOptions options_;
  HookConfig config_;
  bool sampling_ = true;
  absl::Time start_time_ = absl::InfinitePast();
  absl::Time end_time_ = absl::InfinitePast();
};

// The capture of the hook events (the hooks are process-wide, and only one
// Profiler samples at a time: g_active_profiler). Under control_mu_.
inline std::unique_ptr<HookCapture>& ActiveHookCapture() {
  static auto* capture = new std::unique_ptr<HookCapture>();
  return *capture;
}

}  // namespace profiler_internal
}  // namespace flamekit

#endif  // FLAMEKIT_PROFILER_HOOKS_H_
