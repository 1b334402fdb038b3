// SPDX-License-Identifier: Apache-2.0
// container_target.h without a container engine: cgroup lines of each
// runtime, inspect output, the seccomp hint, the record flags, and
// ResolveContainer() when the runtime CLI is missing (a real exec through
// an empty PATH) and the ID is in no cgroup. The live paths (docker
// inspect, the cgroup scan of a running container, --all) run against a
// real daemon in tools/checks/containers.sh. Runs in well under a second.
#include "examples/cli/container_target.h"

#include <stdlib.h>

#include <string>

#include "absl/status/status.h"
#include "examples/cli/record_command.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace cli {
namespace {

using ::testing::HasSubstr;

const std::string kId(64, 'a');

TEST(ContainerIdFromCgroupTest, EveryRuntimesSpelling) {
  const std::string id = "4f1c" + std::string(60, '9');
  struct Case {
    std::string text;
    std::string want;
  } cases[] = {
      {"4:memory:/docker/" + id + "\n", id},                                  // Docker, cgroup v1
      {"0::/system.slice/docker-" + id + ".scope\n", id},                     // Docker, systemd
      {"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1_2.slice/"
       "cri-containerd-" + id + ".scope\n", id},                              // containerd
      {"0::/kubepods.slice/kubepods-pod1.slice/crio-" + id + ".scope\n", id},  // CRI-O
      {"3:cpu:/kubepods/burstable/pod0b1c/" + id + "\n", id},                 // kubelet, cgroupfs
      {"0::/user.slice/user-1000.slice/libpod-" + id + ".scope\n", id},       // podman
      {"12:pids:/\n0::/init.scope\n", ""},                                    // the host
      {"4:memory:/process_api/8470df9f487f5cc330e7f2835c84bd57\n", ""},       // 32 hex: not an ID
      {"0::/docker/" + id.substr(0, 63) + "g\n", ""},                          // not hex
      {"", ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ContainerIdFromCgroup(c.text), c.want) << c.text;
  }
}

TEST(ContainerTargetTest, LooksLikeContainerId) {
  EXPECT_TRUE(LooksLikeContainerId("29535c12749e"));
  EXPECT_TRUE(LooksLikeContainerId(kId));
  EXPECT_FALSE(LooksLikeContainerId("29535c12749"));   // 11: too short to be unique
  EXPECT_FALSE(LooksLikeContainerId(kId + "a"));        // 65
  EXPECT_FALSE(LooksLikeContainerId("api-server-1"));
  EXPECT_FALSE(LooksLikeContainerId("29535C12749E"));   // Docker prints lowercase
}

TEST(ContainerTargetTest, ParseInspectOutput) {
  absl::StatusOr<ContainerTarget> t = ParseInspectOutput("api", kId + " 4242\n");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->id, kId);
  EXPECT_EQ(t->main_pid, 4242);
  absl::StatusOr<ContainerTarget> stopped = ParseInspectOutput("api", kId + " 0\n");
  EXPECT_EQ(stopped.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stopped.status().message(), HasSubstr("container api is not running"));
  for (const char* bad : {"", "4242", "zz 12", "abc 12 13", "abc -1"}) {
    EXPECT_EQ(ParseInspectOutput("api", bad).status().code(), absl::StatusCode::kInternal) << bad;
  }
}

TEST(ContainerTargetTest, SeccompHintOnlyForARefusedPerfEventOpenUnderAFilter) {
  const absl::Status refused = absl::PermissionDeniedError(
      "perf_event_open(event=cpu, process/thread 1): Operation not permitted (errno 1)");
  const std::string hint = SeccompRefusalHint(refused, "Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t1\n");
  EXPECT_THAT(hint, HasSubstr("seccomp filter"));
  EXPECT_THAT(hint, HasSubstr("perf_event_open syscall with EPERM"));
  EXPECT_THAT(hint, HasSubstr("--security-opt seccomp=examples/container/seccomp-perf.json"));
  EXPECT_THAT(hint, HasSubstr("--cap-add PERFMON (Docker 23+)"));
  EXPECT_EQ(SeccompRefusalHint(refused, "Seccomp:\t0\n"), "");
  EXPECT_EQ(SeccompRefusalHint(refused, ""), "");
  EXPECT_EQ(SeccompRefusalHint(absl::NotFoundError("perf_event_open: no process 1"),
                               "Seccomp:\t2\n"), "");
}

TEST(ContainerTargetTest, BadNamesAndRuntimesAreUsageErrors) {
  for (const char* name : {"", "-rm", "a b", "a;b", "../x"}) {
    EXPECT_EQ(ResolveContainer(name, "docker").status().code(),
              absl::StatusCode::kInvalidArgument) << name;
  }
  EXPECT_EQ(ResolveContainer("api", "lxc").status().code(), absl::StatusCode::kInvalidArgument);
}

// A real exec of `docker` through a PATH that has none.
class NoRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = getenv("PATH");
    saved_ = path ? path : "";
    setenv("PATH", "/nonexistent-flamekit-dir", 1);
  }
  void TearDown() override { setenv("PATH", saved_.c_str(), 1); }
  std::string saved_;
};

TEST_F(NoRuntimeTest, ANameNeedsTheRuntime) {
  absl::StatusOr<ContainerTarget> t = ResolveContainer("api", "docker");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(t.status().message(), HasSubstr("docker is not installed here"));
  EXPECT_THAT(t.status().message(), HasSubstr("give its ID"));
}

TEST_F(NoRuntimeTest, AnIdInNoCgroupIsNotFound) {
  absl::StatusOr<ContainerTarget> t = ResolveContainer("0123456789abcdef0123", "docker");
  EXPECT_EQ(t.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(t.status().message(), HasSubstr("no process in a cgroup of container"));
}

TEST(RecordContainerFlagsTest, ParsedAndChecked) {
  absl::StatusOr<RecordFlags> f =
      ParseRecordArgs({"--container", "api", "--all", "--runtime", "podman", "-d", "2"});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->container, "api");
  EXPECT_TRUE(f->all_processes);
  EXPECT_EQ(f->runtime, "podman");
  struct Case {
    std::vector<std::string> args;
    const char* message;
  } cases[] = {
      {{"--all", "123"}, "--all and --runtime go with --container"},
      {{"--container", "api", "123"}, "give only one of PID"},
      {{"--container", "api", "--runtime", "lxc"}, "unknown --runtime 'lxc'"},
      {{"--container", ""}, "empty --container"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<RecordFlags> bad = ParseRecordArgs(c.args);
    EXPECT_EQ(ExitCodeOf(bad.status()), kRecordUsageError) << c.message;
    EXPECT_THAT(bad.status().message(), HasSubstr(c.message));
  }
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
