// SPDX-License-Identifier: Apache-2.0
// File: doctor.h
//
// `flamekit doctor`: checks whether this machine (or container) lets
// flamekit profile, one line per check with PASS / WARN / FAIL and the fix,
// then recommends an event: `cpu` (perf events) when perf_event_open works,
// else `ctimer` or `itimer` (the embedded timer engines, which need no
// permission) with the reason. Checks: kernel.perf_event_paranoid,
// kernel.kptr_restrict (and whether /proc/kallsyms really shows addresses),
// container detection (/.dockerenv, /run/.containerenv, cgroup names,
// namespaces against pid 1's, user namespace), the seccomp mode, effective
// capabilities (CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE), real
// perf_event_open attempts (cpu-clock without and with kernel frames, a
// hardware event), real timer attempts (setitimer and timer_create, each
// must deliver SIGPROF), and the limits that bound how many threads can be
// sampled (perf_event_mlock_kb, RLIMIT_MEMLOCK, RLIMIT_NOFILE). The pure
// checks over those readings are doctor_checks.h; this header adds the
// live probes, RunDoctor() and the text/JSON reports.
//
// Thread-safety: RunDoctor() is meant for a command-line process: the
// timer probes install a temporary SIGPROF handler (the previous one is
// restored) and burn up to ~0.3 s of CPU on the calling thread; do not run
// it while a profiler in the same process uses SIGPROF. The Check*()
// functions are pure and thread-safe. Nothing here is async-signal-safe
// except the probe's own handler.
//
// Example:
//
//   DoctorReport report = RunDoctor();
//   std::cout << FormatDoctorText(report);   // or FormatDoctorJson(report)
//   return report.exit_code();               // 0 unless a check FAILed

#ifndef FLAMEKIT_ENV_DOCTOR_H_
#define FLAMEKIT_ENV_DOCTOR_H_

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"
#include "flamekit/env/doctor_checks.h"
#include "flamekit/perf/perf_event.h"

namespace flamekit {

// DoctorReport
struct DoctorReport {
  std::vector<DoctorCheck> checks;
  std::string recommended_event;  // "cpu", "ctimer", "itimer" or "none"
  std::string recommendation;     // why
  // exit_code(): 0 when no check FAILed, else 1.
  int exit_code() const;
  const DoctorCheck* Find(absl::string_view id) const;
};

// DoctorOptions
struct DoctorOptions {
  // Root under which /proc, /.dockerenv, ... are read ("/" normally;
  // a directory of fixtures in tests).
  std::string root = "/";
  // Run the live probes (perf_event_open, timers, rlimits) of this process.
  bool probe = true;
  // Ring size the thread bound assumes: 1 metadata page + this many data
  // pages per sampled thread.
  int ring_data_pages = 8;
};

// RunDoctor()
//
// Runs every check and picks the recommended event.
DoctorReport RunDoctor(const DoctorOptions& options = DoctorOptions());

// FormatDoctorText()
//
// `PASS  kernel.perf_event_paranoid  2: ...` lines, fixes indented under
// them, then `recommended event: ...`.
std::string FormatDoctorText(const DoctorReport& report);

// FormatDoctorJson()
//
// {"checks":[{"id","level","title","detail","fix"}...],
//  "recommended_event", "recommendation", "exit_code"}.
std::string FormatDoctorJson(const DoctorReport& report);

// TimerProbe: what arming a SIGPROF timer and burning CPU delivered.
struct TimerProbe {
  absl::Status status;  // the syscall's error, if any
  int signals = 0;      // SIGPROFs delivered
  double cpu_ms = 0;    // CPU burnt while waiting
};
TimerProbe ProbeItimer();
TimerProbe ProbeCtimer();
DoctorCheck CheckTimer(absl::string_view engine, const TimerProbe& probe);

// PerfProbe(): tries perf_event_open for `event` on this thread.
absl::Status ProbePerfEvent(absl::string_view event, bool exclude_kernel);
DoctorCheck CheckPerfCpu(const absl::Status& user_only, std::optional<int> seccomp_mode);
DoctorCheck CheckPerfKernel(const absl::Status& user_only, const absl::Status& with_kernel);
DoctorCheck CheckPerfHardware(const absl::Status& hardware);

// Recommend()
//
// cpu when perf cpu-clock works, else ctimer, else itimer, else none.
void Recommend(bool perf_cpu_ok, const TimerProbe& ctimer, const TimerProbe& itimer,
               DoctorReport* report);

// Implementation details follow.

namespace env_internal {

// The timer probes' handler: counts SIGPROFs. Async-signal-safe (one
// lock-free atomic).
inline std::atomic<int> g_probe_signals{0};
inline void ProbeHandler(int) { g_probe_signals.fetch_add(1, std::memory_order_relaxed); }

inline double ThreadCpuMs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Arms with `arm`, burns CPU until 3 signals or 300 ms of CPU, disarms.
template <typename Arm, typename Disarm>
TimerProbe RunTimerProbe(Arm arm, Disarm disarm) {
  TimerProbe probe;
  struct sigaction sa = {}, old = {};
  sa.sa_handler = ProbeHandler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  if (sigaction(SIGPROF, &sa, &old) != 0) {
    probe.status = absl::ErrnoToStatus(errno, "sigaction(SIGPROF)");
    return probe;
  }
  // Make sure SIGPROF is not blocked on this thread for the probe.
  sigset_t prof, old_mask;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_UNBLOCK, &prof, &old_mask);
  g_probe_signals.store(0);
  probe.status = arm();
  if (probe.status.ok()) {
    double start = ThreadCpuMs();
    volatile uint64_t x = 1;
    while (g_probe_signals.load(std::memory_order_relaxed) < 3 &&
           ThreadCpuMs() - start < 300) {
      for (int i = 0; i < 10000; ++i) x = x * 6364136223846793005ULL + 1;
    }
    probe.cpu_ms = ThreadCpuMs() - start;
    disarm();
  }
  probe.signals = g_probe_signals.load();
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  sigaction(SIGPROF, &old, nullptr);
  return probe;
}

}  // namespace env_internal

inline int DoctorReport::exit_code() const {
  for (const DoctorCheck& c : checks) {
    if (c.level == CheckLevel::kFail) return 1;
  }
  return 0;
}

inline const DoctorCheck* DoctorReport::Find(absl::string_view id) const {
  for (const DoctorCheck& c : checks) {
    if (c.id == id) return &c;
  }
  return nullptr;
}

inline absl::Status ProbePerfEvent(absl::string_view event, bool exclude_kernel) {
  absl::StatusOr<PerfEventSpec> spec = ParsePerfEvent(event);
  if (!spec.ok()) return spec.status();
  PerfEventOptions o;
  o.event = *spec;
  o.tid = 0;
  o.exclude_kernel = exclude_kernel;
  absl::StatusOr<ScopedFd> fd = OpenPerfEvent(o);
  return fd.status();
}

inline DoctorCheck CheckPerfCpu(const absl::Status& user_only, std::optional<int> seccomp) {
  using env_internal::Make;
  const char* title = "perf_event_open cpu-clock";
  if (user_only.ok()) {
    return Make("perf_cpu", CheckLevel::kPass, title,
                "opened a cpu-clock sampling event on this thread: `-e cpu` works");
  }
  std::string fix =
      "see kernel.perf_event_paranoid and capabilities above; or use a timer engine "
      "(ctimer, itimer), which needs no permission";
  if (seccomp.has_value() && *seccomp == 2 &&
      (absl::IsPermissionDenied(user_only) || absl::StrContains(user_only.message(), "ENOSYS") ||
       absl::IsFailedPrecondition(user_only))) {
    fix = absl::StrCat(
        "a seccomp filter is active and most likely blocks perf_event_open: in Docker run "
        "with --security-opt seccomp=examples/container/seccomp-perf.json (the default "
        "profile plus perf_event_open), or add --cap-add PERFMON (Docker 23+; SYS_ADMIN on "
        "Docker 20.10), whose default profile then allows it; otherwise ",
        "use a timer engine (ctimer, itimer), which needs no permission");
  }
  return Make("perf_cpu", CheckLevel::kFail, title, std::string(user_only.message()), fix);
}

inline DoctorCheck CheckPerfKernel(const absl::Status& user_only,
                                   const absl::Status& with_kernel) {
  using env_internal::Make;
  const char* title = "perf_event_open kernel frames";
  if (with_kernel.ok()) {
    return Make("perf_kernel", CheckLevel::kPass, title,
                "cpu-clock including kernel mode opened: stacks show kernel frames");
  }
  if (!user_only.ok()) {
    return Make("perf_kernel", CheckLevel::kWarn, title, "skipped: perf events do not work",
                "");
  }
  return Make("perf_kernel", CheckLevel::kWarn, title,
              "refused: profiles will have user-space frames only",
              "sudo sysctl kernel.perf_event_paranoid=1, or grant CAP_PERFMON");
}

inline DoctorCheck CheckPerfHardware(const absl::Status& hw) {
  using env_internal::Make;
  const char* title = "perf_event_open hardware (cycles)";
  if (hw.ok()) {
    return Make("perf_hardware", CheckLevel::kPass, title,
                "a PMU is present: cycles, instructions, cache-misses work");
  }
  if (absl::IsFailedPrecondition(hw) && absl::StrContains(hw.message(), "no PMU")) {
    return Make("perf_hardware", CheckLevel::kWarn, title,
                "not available on this machine: no PMU (usual in VMs)",
                "use software events (cpu, page-faults, context-switches); hardware "
                "counters need bare metal or a VM with a virtual PMU");
  }
  return Make("perf_hardware", CheckLevel::kWarn, title, std::string(hw.message()),
              "hardware events need the same permission as cpu (see above)");
}

inline TimerProbe ProbeItimer() {
  return env_internal::RunTimerProbe(
      [] {
        itimerval tv = {};
        tv.it_interval.tv_usec = 1000;
        tv.it_value.tv_usec = 1000;
        if (setitimer(ITIMER_PROF, &tv, nullptr) != 0) {
          return absl::ErrnoToStatus(errno, "setitimer(ITIMER_PROF)");
        }
        return absl::OkStatus();
      },
      [] {
        itimerval zero = {};
        setitimer(ITIMER_PROF, &zero, nullptr);
      });
}

inline TimerProbe ProbeCtimer() {
  timer_t timer{};
  bool created = false;
  return env_internal::RunTimerProbe(
      [&] {
        sigevent sev = {};
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = SIGPROF;
        sev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
        if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &timer) != 0) {
          return absl::ErrnoToStatus(errno, "timer_create(CLOCK_THREAD_CPUTIME_ID)");
        }
        created = true;
        itimerspec its = {};
        its.it_interval.tv_nsec = 1000000;
        its.it_value.tv_nsec = 1000000;
        if (timer_settime(timer, 0, &its, nullptr) != 0) {
          return absl::ErrnoToStatus(errno, "timer_settime");
        }
        return absl::OkStatus();
      },
      [&] {
        if (created) timer_delete(timer);
      });
}

inline DoctorCheck CheckTimer(absl::string_view engine, const TimerProbe& p) {
  using env_internal::Make;
  std::string id = absl::StrCat("timer_", engine);
  std::string title = engine == "itimer" ? "itimer engine (setitimer ITIMER_PROF)"
                                         : "ctimer engine (timer_create per-thread CPU clock)";
  if (!p.status.ok()) {
    return Make(id, CheckLevel::kFail, title, std::string(p.status.message()),
                "a sandbox forbids CPU timers; profile from outside it");
  }
  if (p.signals == 0) {
    return Make(id, CheckLevel::kFail, title,
                absl::StrCat("armed, but no SIGPROF in ", static_cast<int>(p.cpu_ms),
                             " ms of CPU"),
                "something blocks or ignores SIGPROF in this process");
  }
  return Make(id, CheckLevel::kPass, title,
              absl::StrCat(p.signals, " SIGPROF in ", static_cast<int>(p.cpu_ms + 0.5),
                           " ms of CPU (tick-based: at most ~1 per scheduler tick)"));
}

inline void Recommend(bool perf_cpu_ok, const TimerProbe& ctimer, const TimerProbe& itimer,
                      DoctorReport* report) {
  if (perf_cpu_ok) {
    report->recommended_event = "cpu";
    report->recommendation =
        "perf events work: `flamekit record -e cpu PID` (attach, nothing loaded into the "
        "target) or the embedded profiler's cpu engine";
    return;
  }
  bool ct = ctimer.status.ok() && ctimer.signals > 0;
  bool it = itimer.status.ok() && itimer.signals > 0;
  if (ct) {
    report->recommended_event = "ctimer";
    report->recommendation =
        "perf_event_open is not allowed here, and ctimer needs no permission: the embedded "
        "profiler with a per-thread CPU timer (timer_create), fair across threads, limited "
        "to the scheduler tick rate";
  } else if (it) {
    report->recommended_event = "itimer";
    report->recommendation =
        "perf_event_open and per-thread timers are not available; itimer "
        "(setitimer ITIMER_PROF, process-wide) still works in the embedded profiler";
  } else {
    report->recommended_event = "none";
    report->recommendation =
        "neither perf events nor CPU timers work here; profile from the host "
        "(`flamekit record PID` works through /proc/PID/root)";
  }
}

inline DoctorReport RunDoctor(const DoctorOptions& options) {
  using env_internal::JoinPath;
  DoctorReport report;
  const std::string& root = options.root;
  std::optional<int64_t> paranoid =
      env_internal::ReadInt(JoinPath(root, "/proc/sys/kernel/perf_event_paranoid"));
  std::optional<int64_t> kptr =
      env_internal::ReadInt(JoinPath(root, "/proc/sys/kernel/kptr_restrict"));
  std::optional<int64_t> mlock_kb =
      env_internal::ReadInt(JoinPath(root, "/proc/sys/kernel/perf_event_mlock_kb"));
  std::string status = env_internal::ReadFile(JoinPath(root, "/proc/self/status")).value_or("");
  std::optional<uint64_t> caps = ParseCapEff(status);
  std::optional<int> seccomp, filters;
  if (auto s = StatusField(status, "Seccomp"); s.has_value()) {
    int v;
    if (absl::SimpleAtoi(*s, &v)) seccomp = v;
  }
  if (auto s = StatusField(status, "Seccomp_filters"); s.has_value()) {
    int v;
    if (absl::SimpleAtoi(*s, &v)) filters = v;
  }
  std::optional<bool> kallsyms_ok;
  if (auto ks = env_internal::ReadFile(JoinPath(root, "/proc/kallsyms")); ks.has_value()) {
    absl::string_view first = *ks;
    first = first.substr(0, first.find(' '));
    kallsyms_ok = !first.empty() && first.find_first_not_of('0') != absl::string_view::npos;
  }
  ContainerEvidence container = DetectContainer(root);
  bool has_perfmon = env_internal::HasCap(caps, kCapPerfmon) ||
                     env_internal::HasCap(caps, kCapSysAdmin);

  report.checks.push_back(CheckPerfEventParanoid(
      paranoid.has_value() ? std::optional<int>(static_cast<int>(*paranoid)) : std::nullopt,
      has_perfmon && !container.user_namespace));
  const std::optional<int> paranoid_level =
      paranoid.has_value() && !env_internal::HasCap(caps, kCapSyslog)
          ? std::optional<int>(static_cast<int>(*paranoid))
          : std::nullopt;
  report.checks.push_back(CheckKptrRestrict(
      kptr.has_value() ? std::optional<int>(static_cast<int>(*kptr)) : std::nullopt,
      kallsyms_ok, paranoid_level));
  report.checks.push_back(CheckContainer(container));
  report.checks.push_back(CheckSeccomp(seccomp, filters));
  report.checks.push_back(CheckCapabilities(caps, container.user_namespace));

  TimerProbe ctimer, itimer;
  bool perf_ok = false;
  if (options.probe) {
    absl::Status user_only = ProbePerfEvent("cpu", /*exclude_kernel=*/true);
    absl::Status with_kernel =
        user_only.ok() ? ProbePerfEvent("cpu", /*exclude_kernel=*/false) : user_only;
    absl::Status hardware = ProbePerfEvent("cycles", /*exclude_kernel=*/true);
    perf_ok = user_only.ok();
    // Levels above 2 are a Debian/Android patch; upstream kernels treat
    // them as 2. When the probe opened an event anyway, say so rather
    // than FAIL above and PASS below.
    for (DoctorCheck& c : report.checks) {
      if (c.id == "perf_event_paranoid" && c.level == CheckLevel::kFail && perf_ok) {
        c.level = CheckLevel::kWarn;
        c.detail = absl::StrCat(paranoid.has_value() ? absl::StrCat(*paranoid) : "?",
                                ": but perf_event_open works here (this kernel treats levels "
                                "above 2 as 2): CPU profiling of your own processes, "
                                "user-space frames only");
        c.fix = "for kernel frames: sudo sysctl kernel.perf_event_paranoid=1 (or grant "
                "CAP_PERFMON)";
      }
    }
    report.checks.push_back(CheckPerfCpu(user_only, seccomp));
    report.checks.push_back(CheckPerfKernel(user_only, with_kernel));
    report.checks.push_back(CheckPerfHardware(hardware));
    ctimer = ProbeCtimer();
    itimer = ProbeItimer();
    report.checks.push_back(CheckTimer("ctimer", ctimer));
    report.checks.push_back(CheckTimer("itimer", itimer));
    rlimit memlock{}, nofile{};
    std::optional<uint64_t> memlock_cur, nofile_cur, nofile_max;
    if (getrlimit(RLIMIT_MEMLOCK, &memlock) == 0) memlock_cur = memlock.rlim_cur;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
      nofile_cur = nofile.rlim_cur;
      nofile_max = nofile.rlim_max;
    }
    int cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
    bool ipc_lock = env_internal::HasCap(caps, kCapIpcLock) && !container.user_namespace;
    report.checks.push_back(CheckLimits(mlock_kb, cpus, memlock_cur, ipc_lock, nofile_cur,
                                        nofile_max, options.ring_data_pages));
  }
  Recommend(perf_ok, ctimer, itimer, &report);
  return report;
}

inline std::string FormatDoctorText(const DoctorReport& report) {
  std::string out;
  for (const DoctorCheck& c : report.checks) {
    absl::StrAppend(&out, CheckLevelName(c.level), "  ", c.title, ": ", c.detail, "\n");
    if (!c.fix.empty() && c.level != CheckLevel::kPass) {
      absl::StrAppend(&out, "      fix: ", c.fix, "\n");
    }
  }
  absl::StrAppend(&out, "recommended event: ", report.recommended_event, " (",
                  report.recommendation, ")\n");
  return out;
}

inline std::string FormatDoctorJson(const DoctorReport& report) {
  nlohmann::json j;
  j["checks"] = nlohmann::json::array();
  for (const DoctorCheck& c : report.checks) {
    j["checks"].push_back({{"id", c.id},
                           {"level", std::string(CheckLevelName(c.level))},
                           {"title", c.title},
                           {"detail", c.detail},
                           {"fix", c.fix}});
  }
  j["recommended_event"] = report.recommended_event;
  j["recommendation"] = report.recommendation;
  j["exit_code"] = report.exit_code();
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace flamekit

#endif  // FLAMEKIT_ENV_DOCTOR_H_
