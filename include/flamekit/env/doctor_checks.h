// SPDX-License-Identifier: Apache-2.0
// File: doctor_checks.h
//
// The pure checks of `flamekit doctor` (doctor.h): each takes what was read
// from the machine (a sysctl value, CapEff, container evidence, limits) and
// returns one PASS/WARN/FAIL line with the fix, so tests can inject any
// reading. DetectContainer() and the env_internal file helpers read files
// under a root directory (fixtures in tests). Pure functions and file
// reads: thread-safe; not for signal handlers.
//
// Example:
//
//   DoctorCheck c = CheckKptrRestrict(/*kptr_restrict=*/0, /*shows=*/false,
//                                     /*paranoid=*/2);   // PASS, says why

#ifndef FLAMEKIT_ENV_DOCTOR_CHECKS_H_
#define FLAMEKIT_ENV_DOCTOR_CHECKS_H_

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

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
}  // namespace env_internal

inline absl::string_view CheckLevelName(CheckLevel level) {
  switch (level) {
    case CheckLevel::kPass: return "PASS";
    case CheckLevel::kWarn: return "WARN";
    case CheckLevel::kFail: return "FAIL";
  }
  return "?";
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
                           "CAP_SYS_ADMIN (Docker 20.10) or CAP_PERFMON (Docker 23+)"),
              "if perf_event_open fails below: docker run --security-opt "
              "seccomp=examples/container/seccomp-perf.json (Docker's default profile plus "
              "perf_event_open), or --cap-add PERFMON on Docker 23+ (SYS_ADMIN on 20.10)");
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

}  // namespace flamekit

#endif  // FLAMEKIT_ENV_DOCTOR_CHECKS_H_
