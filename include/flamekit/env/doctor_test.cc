// SPDX-License-Identifier: Apache-2.0
#include "flamekit/env/doctor.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/perf_event.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace flamekit {
namespace {

using ::testing::HasSubstr;

std::string Runfile(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/flamekit/", path);
}

// ---- Pure checks ----

TEST(DoctorChecksTest, ParanoidLevelsSayWhatTheyAllow) {
  EXPECT_EQ(CheckPerfEventParanoid(-1, false).level, CheckLevel::kPass);
  EXPECT_EQ(CheckPerfEventParanoid(1, false).level, CheckLevel::kPass);
  DoctorCheck two = CheckPerfEventParanoid(2, false);
  EXPECT_EQ(two.level, CheckLevel::kWarn);
  EXPECT_THAT(two.detail, HasSubstr("user-space frames only"));
  EXPECT_THAT(two.fix, HasSubstr("kernel.perf_event_paranoid=1"));
  DoctorCheck three = CheckPerfEventParanoid(3, false);
  EXPECT_EQ(three.level, CheckLevel::kFail);
  EXPECT_THAT(three.fix, HasSubstr("CAP_PERFMON"));
  EXPECT_EQ(CheckPerfEventParanoid(3, true).level, CheckLevel::kPass);
  DoctorCheck missing = CheckPerfEventParanoid(std::nullopt, false);
  EXPECT_EQ(missing.level, CheckLevel::kFail);
  EXPECT_THAT(missing.fix, HasSubstr("timer engine"));
}

TEST(DoctorChecksTest, KptrRestrictTrustsWhatKallsymsShows) {
  EXPECT_EQ(CheckKptrRestrict(0, true).level, CheckLevel::kPass);
  DoctorCheck hidden = CheckKptrRestrict(0, false);
  EXPECT_EQ(hidden.level, CheckLevel::kWarn);
  EXPECT_THAT(hidden.detail, HasSubstr("zero addresses"));
  EXPECT_EQ(CheckKptrRestrict(std::nullopt, std::nullopt).level, CheckLevel::kWarn);
}

TEST(DoctorChecksTest, SeccompAndCapabilities) {
  EXPECT_EQ(CheckSeccomp(0, 0).level, CheckLevel::kPass);
  DoctorCheck filter = CheckSeccomp(2, 1);
  EXPECT_EQ(filter.level, CheckLevel::kWarn);
  EXPECT_THAT(filter.detail, HasSubstr("(1 filters)"));
  EXPECT_EQ(CheckSeccomp(1, std::nullopt).level, CheckLevel::kFail);

  // Docker's default set: no PERFMON, SYS_ADMIN or SYS_PTRACE.
  DoctorCheck docker = CheckCapabilities(0x00000000a80425fbULL, false);
  EXPECT_EQ(docker.level, CheckLevel::kWarn);
  EXPECT_THAT(docker.detail,
              HasSubstr("none of CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE"));
  EXPECT_THAT(docker.detail, ::testing::Not(HasSubstr("none of;")));
  DoctorCheck all = CheckCapabilities(0x000001ffffffffffULL, false);
  EXPECT_EQ(all.level, CheckLevel::kPass);
  EXPECT_EQ(CheckCapabilities(0x000001ffffffffffULL, true).level, CheckLevel::kWarn)
      << "capabilities inside a user namespace do not count for perf";
  DoctorCheck perfmon = CheckCapabilities((1ULL << kCapPerfmon) | (1ULL << kCapSysPtrace), false);
  EXPECT_EQ(perfmon.level, CheckLevel::kPass);
  EXPECT_THAT(perfmon.detail, HasSubstr("has CAP_PERFMON, CAP_SYS_PTRACE; lacks CAP_SYS_ADMIN"));
}

TEST(DoctorChecksTest, ThreadBoundFollowsTheKernelsAccounting) {
  long page_kb = sysconf(_SC_PAGESIZE) / 1024;
  // 516 kB x 2 CPUs + 8 MiB memlock, 9-page (36 kB) rings.
  ThreadBound b = ComputeThreadBound(516, 2, 8u << 20, false, 1024, 8);
  EXPECT_EQ(b.by_mlock, (516 * 2 + 8192) / (9 * page_kb));
  EXPECT_EQ(b.by_nofile, 1024 - 32);
  EXPECT_EQ(ComputeThreadBound(516, 2, 0, true, 1024, 8).by_mlock, -1);
  EXPECT_EQ(ComputeThreadBound(516, 2, RLIM_INFINITY, false, RLIM_INFINITY, 8).by_mlock, -1);
  DoctorCheck few = CheckLimits(64, 1, 0, false, 1024, 4096, 8);
  EXPECT_EQ(few.level, CheckLevel::kWarn);
  EXPECT_THAT(few.fix, HasSubstr("perf_event_mlock_kb"));
  EXPECT_EQ(CheckLimits(516, 2, 8u << 20, false, 1024, 4096, 8).level, CheckLevel::kPass);
}

TEST(DoctorChecksTest, RecommendationOrder) {
  TimerProbe works;
  works.signals = 3;
  TimerProbe broken;
  broken.status = absl::PermissionDeniedError("no");
  DoctorReport r;
  Recommend(true, broken, broken, &r);
  EXPECT_EQ(r.recommended_event, "cpu");
  Recommend(false, works, works, &r);
  EXPECT_EQ(r.recommended_event, "ctimer");
  EXPECT_THAT(r.recommendation, HasSubstr("perf_event_open is not allowed"));
  Recommend(false, broken, works, &r);
  EXPECT_EQ(r.recommended_event, "itimer");
  Recommend(false, broken, TimerProbe{}, &r);
  EXPECT_EQ(r.recommended_event, "none");
}

// ---- Container detection on fake roots (testdata/env/*_root) ----

TEST(DetectContainerTest, RecognisesRuntimes) {
  ContainerEvidence docker = DetectContainer(Runfile("testdata/env/docker_root"));
  EXPECT_TRUE(docker.dockerenv);
  EXPECT_EQ(docker.runtime(), "docker");
  EXPECT_FALSE(docker.user_namespace);

  ContainerEvidence k8s = DetectContainer(Runfile("testdata/env/k8s_root"));
  EXPECT_EQ(k8s.cgroup_hint, "kubepods");
  EXPECT_EQ(k8s.runtime(), "kubernetes");

  ContainerEvidence podman = DetectContainer(Runfile("testdata/env/podman_root"));
  EXPECT_TRUE(podman.containerenv);
  EXPECT_EQ(podman.runtime(), "podman");
  EXPECT_TRUE(podman.user_namespace) << "rootless podman maps uid 0 to 1000";

  ContainerEvidence host = DetectContainer(Runfile("testdata/env/host_root"));
  EXPECT_FALSE(host.in_container());
  EXPECT_EQ(CheckContainer(host).detail, "not in a container");
  EXPECT_THAT(CheckContainer(docker).detail,
              HasSubstr("flamekit_container flags --runtime docker"));
}

TEST(DetectContainerTest, NamespacesDifferingFromPidOne) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string root = absl::StrCat(tmp ? tmp : "/tmp", "/nsroot-", getpid());
  for (const char* d : {"", "/proc", "/proc/self", "/proc/self/ns", "/proc/1", "/proc/1/ns"}) {
    ::mkdir((root + d).c_str(), 0755);
  }
  ASSERT_EQ(::symlink("pid:[4026531836]", (root + "/proc/1/ns/pid").c_str()), 0);
  ASSERT_EQ(::symlink("pid:[4026532000]", (root + "/proc/self/ns/pid").c_str()), 0);
  ASSERT_EQ(::symlink("mnt:[4026531841]", (root + "/proc/1/ns/mnt").c_str()), 0);
  ASSERT_EQ(::symlink("mnt:[4026531841]", (root + "/proc/self/ns/mnt").c_str()), 0);
  ContainerEvidence e = DetectContainer(root);
  EXPECT_EQ(e.namespaces_differ, std::vector<std::string>{"pid"});
  EXPECT_TRUE(e.in_container());
  EXPECT_THAT(CheckContainer(e).detail, HasSubstr("pid namespace differs from pid 1's"));
}

TEST(DoctorTest, FakeDockerRootWithoutProbes) {
  DoctorOptions o;
  o.root = Runfile("testdata/env/docker_root");
  o.probe = false;
  DoctorReport r = RunDoctor(o);
  ASSERT_NE(r.Find("seccomp"), nullptr);
  EXPECT_EQ(r.Find("seccomp")->level, CheckLevel::kWarn);
  EXPECT_EQ(r.Find("capabilities")->level, CheckLevel::kWarn);
  // No /proc/sys in the fake root: perf events look absent.
  EXPECT_EQ(r.Find("perf_event_paranoid")->level, CheckLevel::kFail);
  EXPECT_EQ(r.exit_code(), 1);
  std::string text = FormatDoctorText(r);
  EXPECT_THAT(text, HasSubstr("WARN  seccomp: 2: a filter is active (1 filters)"));
  EXPECT_THAT(text, HasSubstr("      fix: "));
  EXPECT_THAT(text, HasSubstr("recommended event: "));
}

// ---- Live: this machine, checked against direct syscalls ----

int RawPerfOpen(uint32_t type, uint64_t config) {
  perf_event_attr attr = {};
  attr.size = sizeof(attr);
  attr.type = type;
  attr.config = config;
  attr.sample_period = 10000000;
  attr.exclude_kernel = 1;
  attr.disabled = 1;
  int fd = static_cast<int>(syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC));
  int e = errno;
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  return e;
}

TEST(DoctorTest, LiveReportAgreesWithDirectSyscalls) {
  DoctorReport r = RunDoctor();
  std::string text = FormatDoctorText(r);
  int cpu = RawPerfOpen(PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK);
  ASSERT_NE(r.Find("perf_cpu"), nullptr) << text;
  if (cpu == 0) {
    EXPECT_EQ(r.Find("perf_cpu")->level, CheckLevel::kPass) << text;
    EXPECT_EQ(r.recommended_event, "cpu") << text;
  } else {
    EXPECT_EQ(r.Find("perf_cpu")->level, CheckLevel::kFail) << text;
    EXPECT_NE(r.recommended_event, "cpu") << text;
  }
  int hw = RawPerfOpen(PERF_TYPE_HARDWARE, PERF_COUNT_HW_CPU_CYCLES);
  if (hw == ENOENT || hw == ENODEV || hw == EOPNOTSUPP) {
    EXPECT_EQ(r.Find("perf_hardware")->level, CheckLevel::kWarn) << text;
    EXPECT_THAT(r.Find("perf_hardware")->detail, HasSubstr("no PMU")) << text;
  } else if (hw == 0) {
    EXPECT_EQ(r.Find("perf_hardware")->level, CheckLevel::kPass) << text;
  }
  // Timers deliver SIGPROF on any Linux without a sandbox forbidding them.
  EXPECT_EQ(r.Find("timer_itimer")->level, CheckLevel::kPass) << text;
  EXPECT_EQ(r.Find("timer_ctimer")->level, CheckLevel::kPass) << text;
  for (const char* id : {"perf_event_paranoid", "kptr_restrict", "container", "seccomp",
                         "capabilities", "perf_kernel", "limits"}) {
    EXPECT_NE(r.Find(id), nullptr) << id;
  }
  std::string json = FormatDoctorJson(r);
  nlohmann::json j = nlohmann::json::parse(json);
  EXPECT_EQ(j["checks"].size(), r.checks.size());
  EXPECT_EQ(j["recommended_event"], r.recommended_event);
  EXPECT_EQ(j["exit_code"], r.exit_code());
}

}  // namespace
}  // namespace flamekit
