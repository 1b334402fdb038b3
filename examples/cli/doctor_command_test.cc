// SPDX-License-Identifier: Apache-2.0
// `flamekit doctor` as a command: usage, and the binary run under a seccomp
// filter that forbids perf_event_open and in a user namespace. The checks
// themselves are tested in include/flamekit/env/doctor_test.cc.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
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

#include "absl/strings/str_cat.h"
#include "examples/cli/command.h"
#include "flamekit/env/doctor.h"
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

int RunDoctorCommand(std::vector<std::string> args, std::ostream& out, std::ostream& err) {
  args.insert(args.begin(), "doctor");
  cli::CommandIo io{out, err};
  return cli::RunCli(args, io);
}

TEST(DoctorCommandTest, UsageErrorsAndHelp) {
  std::ostringstream out, err;
  EXPECT_EQ(RunDoctorCommand({"--bogus"}, out, err), 2);
  EXPECT_THAT(err.str(), HasSubstr("unknown flag --bogus"));
  EXPECT_THAT(err.str(), HasSubstr("usage: flamekit doctor"));
  std::ostringstream out2;
  EXPECT_EQ(RunDoctorCommand({"--help"}, out2, err), 0);
  EXPECT_THAT(out2.str(), HasSubstr("--json"));
}

// ---- Under a seccomp filter that forbids perf_event_open ----

// Runs flamekit doctor --json in a child whose seccomp filter makes
// perf_event_open fail with `errno_value`; returns its exit status and
// output.
std::pair<int, std::string> RunDoctorUnderSeccomp(int errno_value) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, "pipe failed"};
  std::string binary = Runfile("examples/cli/flamekit");
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_perf_event_open, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (errno_value & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog = {static_cast<unsigned short>(sizeof(filter) / sizeof(filter[0])), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
      _exit(99);
    }
    execl(binary.c_str(), "flamekit", "doctor", "--json", static_cast<char*>(nullptr));
    _exit(98);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

TEST(DoctorSeccompTest, PerfForbiddenBySeccompFailsCpuAndRecommendsATimer) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "the seccomp filter in this test is written for x86_64";
#endif
  for (int errno_value : {EPERM, ENOSYS}) {
    auto [code, out] = RunDoctorUnderSeccomp(errno_value);
    if (code == 99) GTEST_SKIP() << "this sandbox does not allow installing a seccomp filter";
    ASSERT_NE(code, 98) << "cannot exec flamekit doctor";
    EXPECT_EQ(code, 1) << out;
    nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
    std::string cpu_level, seccomp_level, cpu_fix;
    for (const auto& c : j["checks"]) {
      if (c["id"] == "perf_cpu") {
        cpu_level = c["level"];
        cpu_fix = c["fix"];
      }
      if (c["id"] == "seccomp") seccomp_level = c["level"];
    }
    EXPECT_EQ(cpu_level, "FAIL") << "errno " << errno_value << ": " << out;
    EXPECT_EQ(seccomp_level, "WARN") << out;
    EXPECT_THAT(cpu_fix, HasSubstr("seccomp")) << out;
    EXPECT_EQ(j["recommended_event"], "ctimer") << out;
    EXPECT_THAT(j["recommendation"].get<std::string>(), HasSubstr("needs no permission"));
  }
}

// ---- In a user namespace (as rootless containers run) ----

TEST(DoctorUserNamespaceTest, CapabilitiesThereDoNotCountForPerf) {
  std::string binary = Runfile("examples/cli/flamekit");
  std::string cmd = absl::StrCat("unshare -r ", binary, " doctor --json 2>&1");
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  int status = pclose(p);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  if (j.is_discarded()) {
    GTEST_SKIP() << "cannot create a user namespace here (exit " << status << "): " << out;
  }
  std::map<std::string, nlohmann::json> checks;
  for (const auto& c : j["checks"]) checks[c["id"]] = c;
  EXPECT_THAT(checks["container"]["detail"].get<std::string>(), HasSubstr("user namespace"));
  EXPECT_EQ(checks["capabilities"]["level"], "WARN") << out;
  EXPECT_THAT(checks["capabilities"]["detail"].get<std::string>(),
              HasSubstr("in a user namespace: these are not the host's"));
  std::optional<int64_t> paranoid = env_internal::ReadInt("/proc/sys/kernel/perf_event_paranoid");
  if (paranoid.has_value() && *paranoid >= 2) {
    // Root in a user namespace is not root for perf: no kernel frames.
    EXPECT_EQ(checks["perf_kernel"]["level"], "WARN") << out;
    EXPECT_EQ(checks["perf_event_paranoid"]["level"], *paranoid == 2 ? "WARN" : "FAIL") << out;
  }
}

}  // namespace
}  // namespace flamekit
