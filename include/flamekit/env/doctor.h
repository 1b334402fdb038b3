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
// sampled (perf_event_mlock_kb, RLIMIT_MEMLOCK, RLIMIT_NOFILE).
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
#include "flamekit/sample/perf_event.h"

namespace flamekit {

// CheckLevel: PASS (works), WARN (works with a limitation), FAIL (does not
// work; doctor exits 1).
enum class CheckLevel { kPass, kWarn, kFail };

absl::string_view CheckLevelName(CheckLevel level);

// DoctorCheck: one line of the report.
struct DoctorCheck {
  std::string id;      // stable key for --json: "perf_event_paranoid", "perf_cpu", ...
  CheckLevel level = CheckLevel::kPass;
  std::string title;   // "kernel.perf_event_paranoid"
  std::string detail;  // what was found and what it allows
  std::string fix;     // what to do (empty for PASS)
};

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

// ---- Pure checks (the inputs come from the machine in RunDoctor()) ----

// Capability bits of CapEff.
inline constexpr int kCapIpcLock = 14;
inline constexpr int kCapSysPtrace = 19;
inline constexpr int kCapSysAdmin = 21;
inline constexpr int kCapSyslog = 34;
inline constexpr int kCapPerfmon = 38;

// StatusField()
//
// The value of `Name:` in /proc/PID/status text, trimmed; nullopt if absent.
std::optional<std::string> StatusField(absl::string_view status_text, absl::string_view name);

// ParseCapEff()
//
// CapEff from /proc/PID/status text.
std::optional<uint64_t> ParseCapEff(absl::string_view status_text);

// ContainerEvidence: what suggests a container, from files under a root.
struct ContainerEvidence {
  bool dockerenv = false;      // /.dockerenv
  bool containerenv = false;   // /run/.containerenv (podman)
  std::string cgroup_hint;     // "docker", "kubepods", "libpod", "containerd", "lxc"
  std::vector<std::string> namespaces_differ;  // ns names differing from pid 1's
  bool user_namespace = false;  // uid_map is not the identity map of all ids
  std::string runtime() const;  // best guess: "docker", "podman", "kubernetes", ...
  bool in_container() const;
};

// DetectContainer()
//
// Reads root/.dockerenv, root/run/.containerenv, root/proc/self/cgroup,
// root/proc/1/cgroup, root/proc/{self,1}/ns/*, root/proc/self/uid_map.
ContainerEvidence DetectContainer(absl::string_view root);

DoctorCheck CheckPerfEventParanoid(std::optional<int> paranoid, bool has_perfmon);
// CheckKptrRestrict(): `paranoid`, when known, says why kallsyms can show
// zeros at kptr_restrict 0 (the kernel shows addresses there only at
// perf_event_paranoid <= 1 or with CAP_SYSLOG), so 0 is never told to
// become 0.
DoctorCheck CheckKptrRestrict(std::optional<int> kptr_restrict,
                              std::optional<bool> kallsyms_shows_addresses,
                              std::optional<int> paranoid = std::nullopt);
DoctorCheck CheckContainer(const ContainerEvidence& evidence);
DoctorCheck CheckSeccomp(std::optional<int> mode, std::optional<int> filters);
DoctorCheck CheckCapabilities(std::optional<uint64_t> cap_eff, bool user_namespace);

// ThreadBound: how many threads can be sampled at once, and by what.
struct ThreadBound {
  int64_t by_mlock = -1;   // -1 = unlimited (CAP_IPC_LOCK)
  int64_t by_nofile = -1;
};
ThreadBound ComputeThreadBound(std::optional<int64_t> mlock_kb, int cpus,
                               std::optional<uint64_t> memlock_rlimit, bool has_ipc_lock,
                               std::optional<uint64_t> nofile_soft, int ring_data_pages);
DoctorCheck CheckLimits(std::optional<int64_t> mlock_kb, int cpus,
                        std::optional<uint64_t> memlock_rlimit, bool has_ipc_lock,
                        std::optional<uint64_t> nofile_soft, std::optional<uint64_t> nofile_hard,
                        int ring_data_pages);

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

inline std::string JoinPath(absl::string_view root, absl::string_view path) {
  if (root.empty() || root == "/") return std::string(path);
  std::string r(root);
  while (!r.empty() && r.back() == '/') r.pop_back();
  return absl::StrCat(r, path);
}

inline std::optional<std::string> ReadFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) return std::nullopt;
  std::string out;
  char buf[4096];
  size_t n;
  // /proc/kallsyms is huge: callers only need the start of files.
  while (out.size() < (1 << 16) && (n = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    out.append(buf, n);
  }
  std::fclose(f);
  return out;
}

inline std::optional<int64_t> ReadInt(const std::string& path) {
  std::optional<std::string> text = ReadFile(path);
  int64_t v = 0;
  if (!text.has_value() || !absl::SimpleAtoi(absl::StripAsciiWhitespace(*text), &v)) {
    return std::nullopt;
  }
  return v;
}

inline std::optional<std::string> ReadLink(const std::string& path) {
  char buf[256];
  ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return std::nullopt;
  return std::string(buf, static_cast<size_t>(n));
}

inline bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

inline bool HasCap(std::optional<uint64_t> caps, int bit) {
  return caps.has_value() && (*caps & (uint64_t{1} << bit)) != 0;
}

inline DoctorCheck Make(absl::string_view id, CheckLevel level, absl::string_view title,
                        std::string detail, std::string fix = "") {
  DoctorCheck c;
  c.id = std::string(id);
  c.level = level;
  c.title = std::string(title);
  c.detail = std::move(detail);
  c.fix = std::move(fix);
  return c;
}

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

inline absl::string_view CheckLevelName(CheckLevel level) {
  switch (level) {
    case CheckLevel::kPass: return "PASS";
    case CheckLevel::kWarn: return "WARN";
    case CheckLevel::kFail: return "FAIL";
  }
  return "?";
}

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

inline std::optional<std::string> StatusField(absl::string_view status_text,
                                              absl::string_view name) {
  for (absl::string_view line : absl::StrSplit(status_text, '\n')) {
    if (absl::StartsWith(line, name) && line.size() > name.size() && line[name.size()] == ':') {
      return std::string(absl::StripAsciiWhitespace(line.substr(name.size() + 1)));
    }
  }
  return std::nullopt;
}

inline std::optional<uint64_t> ParseCapEff(absl::string_view status_text) {
  std::optional<std::string> v = StatusField(status_text, "CapEff");
  uint64_t caps = 0;
  if (!v.has_value() || !absl::SimpleHexAtoi(*v, &caps)) return std::nullopt;
  return caps;
}

inline std::string ContainerEvidence::runtime() const {
  if (cgroup_hint == "kubepods") return "kubernetes";
  if (containerenv || cgroup_hint == "libpod") return "podman";
  if (dockerenv || cgroup_hint == "docker") return "docker";
  if (!cgroup_hint.empty()) return cgroup_hint;
  return in_container() ? "unknown" : "";
}

inline bool ContainerEvidence::in_container() const {
  return dockerenv || containerenv || !cgroup_hint.empty() || !namespaces_differ.empty();
}

inline ContainerEvidence DetectContainer(absl::string_view root) {
  using env_internal::JoinPath;
  ContainerEvidence e;
  e.dockerenv = env_internal::Exists(JoinPath(root, "/.dockerenv"));
  e.containerenv = env_internal::Exists(JoinPath(root, "/run/.containerenv"));
  for (const char* file : {"/proc/self/cgroup", "/proc/1/cgroup"}) {
    std::optional<std::string> cg = env_internal::ReadFile(JoinPath(root, file));
    if (!cg.has_value()) continue;
    for (const char* hint : {"kubepods", "libpod", "docker", "containerd", "lxc"}) {
      if (absl::StrContains(*cg, hint)) {
        e.cgroup_hint = hint;
        break;
      }
    }
    if (!e.cgroup_hint.empty()) break;
  }
  // Namespaces other than pid 1's: we run in a container (or a sandbox)
  // that pid 1 is not in. Inside a container pid 1 is the container's own
  // init, so this catches `docker exec`-less cases such as nsenter/unshare.
  for (const char* ns : {"pid", "mnt", "net", "user", "cgroup"}) {
    std::optional<std::string> self =
        env_internal::ReadLink(JoinPath(root, absl::StrCat("/proc/self/ns/", ns)));
    std::optional<std::string> init =
        env_internal::ReadLink(JoinPath(root, absl::StrCat("/proc/1/ns/", ns)));
    if (self.has_value() && init.has_value() && *self != *init) {
      e.namespaces_differ.push_back(ns);
    }
  }
  std::optional<std::string> uid_map = env_internal::ReadFile(JoinPath(root, "/proc/self/uid_map"));
  if (uid_map.has_value()) {
    std::vector<absl::string_view> f =
        absl::StrSplit(absl::StripAsciiWhitespace(*uid_map), absl::ByAnyChar(" \t\n"),
                       absl::SkipEmpty());
    e.user_namespace = !(f.size() == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295");
  }
  return e;
}

inline DoctorCheck CheckPerfEventParanoid(std::optional<int> p, bool has_perfmon) {
  using env_internal::Make;
  const char* title = "kernel.perf_event_paranoid";
  if (!p.has_value()) {
    return Make("perf_event_paranoid", CheckLevel::kFail, title,
                "/proc/sys/kernel/perf_event_paranoid is missing: this kernel has no perf "
                "events (or /proc is not mounted)",
                "use a timer engine (ctimer, itimer), or a kernel built with "
                "CONFIG_PERF_EVENTS");
  }
  std::string allows;
  if (*p <= -1) {
    allows = "everything is allowed: any process, kernel frames, tracepoints";
  } else if (*p == 0) {
    allows = "CPU profiling of any process you may ptrace, with kernel frames";
  } else if (*p == 1) {
    allows = "CPU profiling of your own processes with kernel frames";
  } else if (*p == 2) {
    allows = "CPU profiling of your own processes, user-space frames only";
  } else {
    allows = "nothing without CAP_PERFMON or CAP_SYS_ADMIN (Debian/Android level 3+)";
  }
  std::string detail = absl::StrCat(*p, ": ", allows);
  if (has_perfmon) {
    return Make("perf_event_paranoid", CheckLevel::kPass, title,
                absl::StrCat(detail, "; this process has CAP_PERFMON/CAP_SYS_ADMIN, which "
                                     "overrides it"));
  }
  if (*p <= 1) return Make("perf_event_paranoid", CheckLevel::kPass, title, detail);
  if (*p == 2) {
    return Make("perf_event_paranoid", CheckLevel::kWarn, title, detail,
                "for kernel frames: sudo sysctl kernel.perf_event_paranoid=1 (or grant "
                "CAP_PERFMON)");
  }
  return Make("perf_event_paranoid", CheckLevel::kFail, title, detail,
              "sudo sysctl kernel.perf_event_paranoid=2 (own processes) or 1 (with kernel "
              "frames), or grant CAP_PERFMON; else use a timer engine (ctimer, itimer)");
}

inline DoctorCheck CheckKptrRestrict(std::optional<int> k,
                                     std::optional<bool> kallsyms_shows_addresses,
                                     std::optional<int> paranoid) {
  using env_internal::Make;
  const char* title = "kernel.kptr_restrict";
  std::string value = k.has_value() ? absl::StrCat(*k) : std::string("unreadable");
  if (kallsyms_shows_addresses.has_value() && *kallsyms_shows_addresses) {
    return Make("kptr_restrict", CheckLevel::kPass, title,
                absl::StrCat(value, ": /proc/kallsyms shows addresses, kernel frames get names"));
  }
  std::string why = kallsyms_shows_addresses.has_value()
                        ? "/proc/kallsyms shows zero addresses to this process"
                        : "/proc/kallsyms is unreadable";
  if (k.has_value() && *k == 0) {
    // Already the most open setting: something else hides the addresses.
    if (paranoid.has_value() && *paranoid > 1) {
      return Make("kptr_restrict", CheckLevel::kPass, title,
                  absl::StrCat("0 (not restricting); ", why, " because perf_event_paranoid is ",
                               *paranoid, " and it lacks CAP_SYSLOG, and at that level perf "
                               "records no kernel frames to name anyway (see "
                               "kernel.perf_event_paranoid)"));
    }
    return Make("kptr_restrict", CheckLevel::kWarn, title,
                absl::StrCat("0 (not restricting), but ", why,
                             " (a container or kernel lockdown masks it); kernel frames will "
                             "show as [kernel] only"),
                "profile from the host, or grant CAP_SYSLOG; user-space profiles are not "
                "affected");
  }
  return Make("kptr_restrict", CheckLevel::kWarn, title,
              absl::StrCat(value, ": ", why, "; kernel frames will show as [kernel] only"),
              "sudo sysctl kernel.kptr_restrict=0 and kernel.perf_event_paranoid<=1 (or "
              "grant CAP_SYSLOG); user-space profiles are not affected");
}

inline DoctorCheck CheckContainer(const ContainerEvidence& e) {
  using env_internal::Make;
  const char* title = "container";
  std::vector<std::string> why;
  if (e.dockerenv) why.push_back("/.dockerenv");
  if (e.containerenv) why.push_back("/run/.containerenv");
  if (!e.cgroup_hint.empty()) why.push_back(absl::StrCat("cgroup mentions ", e.cgroup_hint));
  if (!e.namespaces_differ.empty()) {
    why.push_back(absl::StrCat(absl::StrJoin(e.namespaces_differ, ","),
                               " namespace differs from pid 1's"));
  }
  std::string userns = e.user_namespace ? "; in a user namespace (capabilities held here do "
                                          "not count for perf events, which checks the host's)"
                                        : "";
  if (!e.in_container()) {
    return Make("container", CheckLevel::kPass, title,
                absl::StrCat("not in a container", userns));
  }
  return Make("container", CheckLevel::kPass, title,
              absl::StrCat("in a container (", e.runtime(), ": ", absl::StrJoin(why, "; "), ")",
                           userns,
                           "; perf events need the container's permission: see "
                           "`flamekit_container flags --runtime ",
                           e.runtime() == "unknown" ? "docker" : e.runtime(),
                           "`, or profile from the host with `flamekit record PID`"));
}

inline DoctorCheck CheckSeccomp(std::optional<int> mode, std::optional<int> filters) {
  using env_internal::Make;
  const char* title = "seccomp";
  if (!mode.has_value()) {
    return Make("seccomp", CheckLevel::kPass, title, "no Seccomp: line in /proc/self/status");
  }
  if (*mode == 0) return Make("seccomp", CheckLevel::kPass, title, "0: no filter");
  if (*mode == 1) {
    return Make("seccomp", CheckLevel::kFail, title, "1: strict mode, only read/write/exit",
                "run flamekit outside the strict-mode sandbox");
  }
  return Make("seccomp", CheckLevel::kWarn, title,
              absl::StrCat("2: a filter is active", filters.has_value()
                                                       ? absl::StrCat(" (", *filters, " filters)")
                                                       : std::string(""),
                           "; Docker's default profile allows perf_event_open only with "
                           "CAP_PERFMON or CAP_SYS_ADMIN"),
              "if perf_event_open fails below: docker run --cap-add PERFMON (or "
              "--security-opt seccomp=<profile allowing perf_event_open>)");
}

inline DoctorCheck CheckCapabilities(std::optional<uint64_t> caps, bool user_namespace) {
  using env_internal::HasCap;
  using env_internal::Make;
  const char* title = "capabilities";
  if (!caps.has_value()) {
    return Make("capabilities", CheckLevel::kWarn, title, "CapEff unreadable",
                "check /proc/self/status");
  }
  std::vector<std::string> have, missing;
  for (auto [bit, name] : std::vector<std::pair<int, const char*>>{
           {kCapPerfmon, "CAP_PERFMON"}, {kCapSysAdmin, "CAP_SYS_ADMIN"},
           {kCapSysPtrace, "CAP_SYS_PTRACE"}}) {
    (HasCap(caps, bit) ? have : missing).push_back(name);
  }
  std::string detail = absl::StrCat("CapEff=", absl::Hex(*caps, absl::kZeroPad16), ": ");
  if (have.empty()) {
    absl::StrAppend(&detail, "none of ", absl::StrJoin(missing, ", "));
  } else {
    absl::StrAppend(&detail, "has ", absl::StrJoin(have, ", "));
    if (!missing.empty()) absl::StrAppend(&detail, "; lacks ", absl::StrJoin(missing, ", "));
  }
  if (user_namespace) {
    absl::StrAppend(&detail, " (in a user namespace: these are not the host's)");
  }
  bool perf = HasCap(caps, kCapPerfmon) || HasCap(caps, kCapSysAdmin);
  if (perf && HasCap(caps, kCapSysPtrace) && !user_namespace) {
    return Make("capabilities", CheckLevel::kPass, title, detail);
  }
  return Make("capabilities", CheckLevel::kWarn, title, detail,
              "without CAP_PERFMON (kernel 5.8+) or CAP_SYS_ADMIN, perf_event_paranoid "
              "decides; without CAP_SYS_PTRACE only your own user's processes can be "
              "profiled (setcap cap_perfmon,cap_sys_ptrace+ep flamekit, or "
              "--cap-add PERFMON --cap-add SYS_PTRACE)");
}

inline ThreadBound ComputeThreadBound(std::optional<int64_t> mlock_kb, int cpus,
                                      std::optional<uint64_t> memlock_rlimit, bool has_ipc_lock,
                                      std::optional<uint64_t> nofile_soft, int ring_data_pages) {
  ThreadBound b;
  const int64_t ring_kb = (1 + ring_data_pages) * (sysconf(_SC_PAGESIZE) / 1024);
  if (!has_ipc_lock && mlock_kb.has_value()) {
    // kernel/events/core.c perf_mmap(): each user may lock
    // perf_event_mlock_kb * online CPUs for perf rings, and beyond that
    // up to RLIMIT_MEMLOCK more (counted in locked_vm).
    int64_t budget_kb = *mlock_kb * (cpus > 0 ? cpus : 1);
    if (memlock_rlimit.has_value() && *memlock_rlimit != RLIM_INFINITY) {
      budget_kb += static_cast<int64_t>(*memlock_rlimit / 1024);
    } else if (memlock_rlimit.has_value()) {
      budget_kb = -1;
    }
    b.by_mlock = budget_kb < 0 ? -1 : budget_kb / ring_kb;
  }
  if (nofile_soft.has_value() && *nofile_soft != RLIM_INFINITY) {
    // One perf fd per thread, plus ~32 for the binary, ELF files and output.
    b.by_nofile = std::max<int64_t>(0, static_cast<int64_t>(*nofile_soft) - 32);
  }
  return b;
}

inline DoctorCheck CheckLimits(std::optional<int64_t> mlock_kb, int cpus,
                               std::optional<uint64_t> memlock_rlimit, bool has_ipc_lock,
                               std::optional<uint64_t> nofile_soft,
                               std::optional<uint64_t> nofile_hard, int ring_data_pages) {
  using env_internal::Make;
  ThreadBound b = ComputeThreadBound(mlock_kb, cpus, memlock_rlimit, has_ipc_lock,
                                     nofile_soft, ring_data_pages);
  auto str = [](int64_t v) { return v < 0 ? std::string("unlimited") : absl::StrCat(v); };
  auto rl = [](std::optional<uint64_t> v) {
    return !v.has_value() ? std::string("?")
           : *v == RLIM_INFINITY ? std::string("unlimited")
                                 : absl::StrCat(*v);
  };
  std::string detail = absl::StrCat(
      "perf_event_mlock_kb=", mlock_kb.has_value() ? absl::StrCat(*mlock_kb) : "?", " x ", cpus,
      " CPUs", has_ipc_lock ? " (CAP_IPC_LOCK: not enforced)" : "",
      ", RLIMIT_MEMLOCK=", rl(memlock_rlimit), ", ulimit -n=", rl(nofile_soft), " (hard ",
      rl(nofile_hard), "): threads that can be sampled at once (", 1 + ring_data_pages,
      "-page ring each): ", str(b.by_mlock), " by locked memory, ", str(b.by_nofile),
      " by open files");
  int64_t bound = b.by_mlock < 0 ? b.by_nofile
                  : b.by_nofile < 0 ? b.by_mlock
                                    : std::min(b.by_mlock, b.by_nofile);
  if (bound >= 0 && bound < 64) {
    return Make("limits", CheckLevel::kWarn, "sampling limits", detail,
                "for more threads: sudo sysctl kernel.perf_event_mlock_kb=4096, ulimit -l "
                "unlimited, ulimit -n <hard limit>");
  }
  return Make("limits", CheckLevel::kPass, "sampling limits", detail);
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
        "a seccomp filter is active and most likely blocks perf_event_open: in Docker add "
        "--cap-add PERFMON (its default profile then allows it) or run with a seccomp profile "
        "that allows perf_event_open; otherwise ",
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
