// SPDX-License-Identifier: Apache-2.0
#include "examples/container/container_helper.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/testing/status_matchers.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using Argv = std::vector<std::string>;

std::string Runfile(absl::string_view path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/flamekit/", path);
}

std::string TempPath(absl::string_view name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp ? tmp : "/tmp", "/", name);
}

int RunHelper(const Argv& args, std::string* out, std::string* err) {
  std::ostringstream o, e;
  int code = RunContainerHelper(args, o, e);
  *out = o.str();
  *err = e.str();
  return code;
}

TEST(FlagsTextTest, DockerOptionsTestedOnDocker2010) {
  // tools/checks/containers.sh runs each of these lines against a real
  // daemon; this test keeps the text that check reads stable.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string docker, FlagsText("docker"));
  EXPECT_THAT(docker, HasSubstr("docker run --security-opt "
                                "seccomp=examples/container/seccomp-perf.json ... IMAGE\n"));
  EXPECT_THAT(docker, HasSubstr("docker run --cap-add SYS_ADMIN ... IMAGE\n"));
  EXPECT_THAT(docker, HasSubstr("docker run --cap-add PERFMON ... IMAGE\n"));
  EXPECT_THAT(docker, HasSubstr("Docker 23+"));
  EXPECT_THAT(docker, HasSubstr("flamekit record --container CONTAINER"));
  EXPECT_THAT(docker, HasSubstr("sudo sysctl -w kernel.perf_event_paranoid=1"));
  EXPECT_THAT(docker, HasSubstr("sudo sysctl -w kernel.kptr_restrict=0"));
  EXPECT_THAT(docker, HasSubstr("timer engines (ctimer, itimer) need no capability"));
  EXPECT_THAT(docker, Not(HasSubstr("Rootless")));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string podman, FlagsText("podman"));
  EXPECT_THAT(podman, HasSubstr("podman run --cap-add PERFMON"));
  EXPECT_THAT(podman, HasSubstr("Rootless podman runs in a user namespace"));
}

TEST(FlagsTextTest, KubernetesSecurityContext) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string k8s, FlagsText("kubernetes"));
  EXPECT_THAT(k8s, HasSubstr("securityContext:\n  capabilities:\n"
                             "    add: [\"PERFMON\", \"SYS_PTRACE\"]"));
  EXPECT_THAT(k8s, HasSubstr("  seccompProfile:\n    type: RuntimeDefault"));
  EXPECT_THAT(k8s, HasSubstr("kubectl debug -it POD"));
  EXPECT_THAT(k8s, HasSubstr("needs `tar`"));
  EXPECT_THAT(FlagsText("lxc").status(), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PlanContainerProfileTest, DockerStepsExactly) {
  ContainerProfileOptions o;
  o.container = "api";
  o.pid = 1;
  o.duration_s = 30;
  o.output = "out.html";
  o.flamekit = "/opt/flamekit";
  o.token = "T";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<ContainerStep> steps, PlanContainerProfile(o));
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].argv, (Argv{"docker", "cp", "/opt/flamekit", "api:/tmp/flamekit-T"}));
  EXPECT_EQ(steps[1].argv, (Argv{"docker", "exec", "api", "/tmp/flamekit-T", "record", "-d",
                                 "30", "-f", "/tmp/flamekit-T.html", "1"}));
  EXPECT_EQ(steps[2].argv, (Argv{"docker", "cp", "api:/tmp/flamekit-T.html", "out.html"}));
  EXPECT_EQ(steps[3].argv, (Argv{"docker", "exec", "api", "rm", "-f", "/tmp/flamekit-T",
                                 "/tmp/flamekit-T.html"}));
  EXPECT_FALSE(steps[2].cleanup);
  EXPECT_TRUE(steps[3].cleanup);
}

TEST(PlanContainerProfileTest, PodmanKeepsTheOutputFormatAndRecordFlags) {
  ContainerProfileOptions o;
  o.runtime = "podman";
  o.container = "db";
  o.pid = 42;
  o.duration_s = 5;
  o.output = "/tmp/x/profile.pb.gz";
  o.token = "9";
  o.record_flags = {"-e", "page-faults", "--threads"};
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<ContainerStep> steps, PlanContainerProfile(o));
  EXPECT_EQ(steps[1].argv,
            (Argv{"podman", "exec", "db", "/tmp/flamekit-9", "record", "-d", "5", "-f",
                  "/tmp/flamekit-9.pb.gz", "-e", "page-faults", "--threads", "42"}));
  EXPECT_EQ(steps[2].argv,
            (Argv{"podman", "cp", "db:/tmp/flamekit-9.pb.gz", "/tmp/x/profile.pb.gz"}));
}

TEST(PlanContainerProfileTest, KubectlWithNamespaceAndContainer) {
  ContainerProfileOptions o;
  o.runtime = "kubectl";
  o.pod = "web-7d9f";
  o.ns = "prod";
  o.kube_container = "app";
  o.pid = 7;
  o.duration_s = 10;
  o.output = "web.svg";
  o.flamekit = "./flamekit";
  o.token = "T";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<ContainerStep> steps, PlanContainerProfile(o));
  ASSERT_EQ(steps.size(), 4u);
  EXPECT_EQ(steps[0].argv, (Argv{"kubectl", "cp", "-n", "prod", "-c", "app", "./flamekit",
                                 "web-7d9f:/tmp/flamekit-T"}));
  EXPECT_EQ(steps[1].argv,
            (Argv{"kubectl", "exec", "-n", "prod", "-c", "app", "web-7d9f", "--",
                  "/tmp/flamekit-T", "record", "-d", "10", "-f", "/tmp/flamekit-T.svg", "7"}));
  EXPECT_EQ(steps[2].argv, (Argv{"kubectl", "cp", "-n", "prod", "-c", "app",
                                 "web-7d9f:/tmp/flamekit-T.svg", "web.svg"}));
  EXPECT_EQ(steps[3].argv, (Argv{"kubectl", "exec", "-n", "prod", "-c", "app", "web-7d9f", "--",
                                 "rm", "-f", "/tmp/flamekit-T", "/tmp/flamekit-T.svg"}));
}

TEST(PlanContainerProfileTest, RejectsBadOptions) {
  struct Case {
    ContainerProfileOptions o;
    const char* message;
  };
  ContainerProfileOptions base;
  base.container = "api";
  base.pid = 1;
  std::vector<Case> cases;
  {
    Case c{base, "--pid PID is required"};
    c.o.pid = 0;
    cases.push_back(c);
  }
  {
    Case c{base, "not both"};
    c.o.pod = "p";
    cases.push_back(c);
  }
  {
    Case c{base, "unknown --runtime 'lxc'"};
    c.o.runtime = "lxc";
    cases.push_back(c);
  }
  {
    Case c{base, "is not a valid container"};
    c.o.container = "api; rm -rf /";
    cases.push_back(c);
  }
  {
    Case c{base, "kubectl needs --pod"};
    c.o.runtime = "kubectl";
    c.o.container = "";
    cases.push_back(c);
  }
  {
    Case c{base, "--namespace and -c are for --pod"};
    c.o.ns = "prod";
    cases.push_back(c);
  }
  {
    Case c{base, "-d must be a positive"};
    c.o.duration_s = 0;
    cases.push_back(c);
  }
  for (const Case& c : cases) {
    absl::Status s = PlanContainerProfile(c.o).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument)) << c.message;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.message));
  }
}

TEST(ContainerHelperTest, DryRunPrintsEachStepAndRunsNothing) {
  std::string out, err;
  ASSERT_EQ(RunHelper({"profile", "--container", "api", "--pid", "1", "-d", "30", "-f", "out.html",
                 "--flamekit", "/opt/flamekit", "--dry-run"},
                &out, &err),
            0)
      << err;
  std::string t = absl::StrCat("/tmp/flamekit-", getpid());
  EXPECT_EQ(out, absl::StrCat(
                     "[1/4] copy flamekit into api\n"
                     "+ docker cp /opt/flamekit api:", t, "\n",
                     "[2/4] record pid 1 in api for 30 s\n"
                     "+ docker exec api ", t, " record -d 30 -f ", t, ".html 1\n",
                     "[3/4] copy the result out to out.html\n"
                     "+ docker cp api:", t, ".html out.html\n",
                     "[4/4] remove flamekit and the result from api\n"
                     "+ docker exec api rm -f ", t, " ", t, ".html\n"));
  EXPECT_EQ(err, "");
  // --pod implies kubectl.
  ASSERT_EQ(RunHelper({"profile", "--pod", "web", "-n", "prod", "--pid", "1", "--dry-run"}, &out, &err),
            0)
      << err;
  EXPECT_THAT(out, HasSubstr(absl::StrCat("+ kubectl exec -n prod web -- ", t, " record -d 30")));
}

TEST(ContainerHelperTest, UsageErrors) {
  std::string out, err;
  EXPECT_EQ(RunHelper({}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("missing command"));
  EXPECT_EQ(RunHelper({"profile", "--container", "api", "--pid", "x"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--pid 'x' is not a positive number"));
  EXPECT_EQ(RunHelper({"profile", "--container"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("--container needs a value"));
  EXPECT_EQ(RunHelper({"flags", "--runtime", "rkt"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("unknown --runtime 'rkt'"));
  EXPECT_EQ(RunHelper({"frobnicate"}, &out, &err), 2);
  EXPECT_THAT(err, HasSubstr("usage:"));
  EXPECT_EQ(RunHelper({"flags", "--runtime=kubernetes"}, &out, &err), 0);
  EXPECT_THAT(out, HasSubstr("securityContext:"));
}

TEST(ExecuteStepsTest, StopsAtTheFirstFailureButStillCleansUp) {
  std::string log = TempPath("steps.log");
  std::remove(log.c_str());
  auto sh = [&](const std::string& script) {
    return Argv{"/bin/sh", "-c", absl::StrCat(script, " >> ", log)};
  };
  std::vector<ContainerStep> steps = {
      {"one", sh("echo one")},
      {"fails", {"/bin/sh", "-c", "exit 3"}},
      {"skipped", sh("echo two")},
      {"cleanup", sh("echo cleanup"), true},
  };
  std::ostringstream out;
  absl::Status s = ExecuteSteps(steps, out, /*dry_run=*/false);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnknown));
  EXPECT_THAT(std::string(s.message()), HasSubstr("step 2 (fails) failed: /bin/sh exited with status 3"));
  std::ifstream in(log);
  std::stringstream ran;
  ran << in.rdbuf();
  EXPECT_EQ(ran.str(), "one\ncleanup\n");
  EXPECT_THAT(out.str(), HasSubstr("[4/4] cleanup"));
  EXPECT_THAT(out.str(), Not(HasSubstr("[3/4]")));
}

TEST(ExecuteStepsTest, MissingProgramIsNotFound) {
  std::ostringstream out;
  absl::Status s =
      ExecuteSteps({{"x", {"flamekit-no-such-program-xyz", "cp"}}}, out, /*dry_run=*/false);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(std::string(s.message()), HasSubstr("is not installed or not in PATH"));
}

TEST(CheckStaticBinaryTest, TellsStaticFromDynamic) {
  EXPECT_THAT(CheckStaticBinary(Runfile("examples/container/static_hello_bin")), IsOk());
  absl::Status dynamic = CheckStaticBinary("/proc/self/exe");  // this test: dynamic
  EXPECT_THAT(dynamic, StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(std::string(dynamic.message()), HasSubstr("--config=static"));
  EXPECT_THAT(CheckStaticBinary("/etc/hostname"), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(CheckStaticBinary("/no/such/flamekit"), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ContainerHelperTest, RealPathStopsClearlyWithoutAContainerEngine) {
  if (!container_internal::FindInPath("docker").empty()) {
    GTEST_SKIP() << "docker is installed here; this test covers machines without it";
  }
  std::string out, err;
  EXPECT_EQ(RunHelper({"profile", "--container", "api", "--pid", "1", "--flamekit",
                 Runfile("examples/container/static_hello_bin")},
                &out, &err),
            1);
  EXPECT_THAT(err, HasSubstr("'docker' is not installed or not in PATH"));
  EXPECT_THAT(out, HasSubstr("[1/4] copy flamekit into api"));
  EXPECT_THAT(out, HasSubstr("[4/4] remove flamekit"));  // cleanup still attempted
  // A dynamic binary is refused before anything runs.
  EXPECT_EQ(RunHelper({"profile", "--container", "api", "--pid", "1", "--flamekit", "/proc/self/exe"},
                &out, &err),
            1);
  EXPECT_THAT(err, HasSubstr("dynamically linked"));
}

}  // namespace
}  // namespace flamekit
