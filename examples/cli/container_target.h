// SPDX-License-Identifier: Apache-2.0
// File: container_target.h
//
// `flamekit record --container NAME|ID`: which host processes a container
// is. Main thread only (ResolveContainer() forks the runtime's CLI and
// waits for it); not async-signal-safe. The parsing helpers are pure and
// thread-safe.
//
// A container is found two ways, the first that works:
//   1. the runtime's own answer: `docker inspect --type container --format
//      '{{.Id}} {{.State.Pid}}' NAME` (or podman), run with a bound of
//      kContainerInspectTimeout and kContainerInspectMaxBytes of output;
//   2. when the runtime CLI is missing or cannot reach its daemon (a node
//      without the CLI, a socket only root may open) and NAME looks like a
//      container ID (12 to 64 hex digits): the processes whose
//      /proc/PID/cgroup names a cgroup of that ID (Docker's /docker/ID and
//      docker-ID.scope, containerd's cri-containerd-ID, CRI-O's crio-ID,
//      and kubepods/.../ID), the main one being the one whose parent is
//      not in the container.
// Every process of the container (for --all) is then listed the second
// way, by cgroup, from /proc (bounded by the number of processes).
//
// Example:
//
//   absl::StatusOr<ContainerTarget> t = ResolveContainer("api", "docker");
//   if (t.ok()) attach to t->main_pid; --all: every pid in t->pids.

#ifndef FLAMEKIT_EXAMPLES_CLI_CONTAINER_TARGET_H_
#define FLAMEKIT_EXAMPLES_CLI_CONTAINER_TARGET_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace flamekit {
namespace cli {

inline constexpr absl::Duration kContainerInspectTimeout = absl::Seconds(10);
inline constexpr size_t kContainerInspectMaxBytes = 4096;

struct ContainerTarget {
  std::string id;             // the full ID (64 hex digits for Docker)
  pid_t main_pid = 0;         // host PID of the container's main process
  std::vector<pid_t> pids;    // host PIDs of every process in its cgroup, main first
  std::string found_by;       // "docker inspect" or "cgroup scan"
};

// ContainerIdFromCgroup()
//
// The container ID in /proc/PID/cgroup text (any line, v1 or v2), or ""
// when the process is in no container cgroup this recognizes.
std::string ContainerIdFromCgroup(absl::string_view cgroup_text);

// LooksLikeContainerId()
//
// 12 to 64 lowercase hex digits: a full or short Docker/containerd ID.
bool LooksLikeContainerId(absl::string_view text);

// ParseInspectOutput()
//
// "ID PID" as the inspect format above prints it; FailedPrecondition when
// PID is 0 (the container exists but is not running).
absl::StatusOr<ContainerTarget> ParseInspectOutput(absl::string_view name,
                                                   absl::string_view output);

// ResolveContainer()
//
// NAME (a name, full ID or unique ID prefix) to its processes, as above.
// `runtime` is "docker" or "podman". Errors say what to do: NotFound "no
// container NAME", FailedPrecondition for a stopped container or a
// runtime that cannot be asked, InvalidArgument for an unsafe NAME.
absl::StatusOr<ContainerTarget> ResolveContainer(absl::string_view name,
                                                 absl::string_view runtime);

// SeccompRefusalHint()
//
// When `status` is a refused perf_event_open (PermissionDenied naming it)
// and `self_status` (/proc/self/status text) says a seccomp filter is on
// (Seccomp: 2), the sentence that names the filter as the likely cause and
// the least privilege that lifts it; "" otherwise. Docker's default profile
// refuses perf_event_open with EPERM whatever perf_event_paranoid says, so
// perf's own message (which blames the paranoid level) would mislead.
std::string SeccompRefusalHint(const absl::Status& status, absl::string_view self_status);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_CONTAINER_TARGET_H_
