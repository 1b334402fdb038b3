// SPDX-License-Identifier: Apache-2.0
// File: record_continuous.h
//
// `flamekit record --continuous --every 10s --push URL [--label k=v ...]
// PID|--name RE|--container NAME`: profiles the target in back-to-back
// windows and hands each one, as gzipped pprof, to a ProfilePusher
// (trigger/pyroscope_push.h), which POSTs it to a Pyroscope-compatible
// /ingest with the labels host, pid, build_id and container (when known)
// plus the user's. Runs until SIGINT/SIGTERM, -d (total), or the target
// exits.
//
// The profiled process is never blocked or slowed by the network: it is
// profiled from outside (perf events), and the send happens on the
// pusher's own thread; a window that cannot be queued is dropped and
// counted, never waited for. Memory is bounded: at most
// kContinuousMaxQueue windows (and kContinuousMaxQueueBytes) wait, plus the
// one being sent and the one being profiled. At exit the last windows get
// at most the push timeout to go out; the counts are printed.
//
// Main thread only, inside RunRecord() (whose SIGINT/SIGTERM handlers set
// `stop`).

#ifndef FLAMEKIT_EXAMPLES_CLI_RECORD_CONTINUOUS_H_
#define FLAMEKIT_EXAMPLES_CLI_RECORD_CONTINUOUS_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "examples/cli/command.h"

namespace flamekit {
namespace cli {

struct ParsedArgs;
struct RecordFlags;

// Windows waiting to be sent, and their bytes (the bound on memory).
inline constexpr size_t kContinuousMaxQueue = 4;
inline constexpr size_t kContinuousMaxQueueBytes = 8 << 20;

// ContinuousFlags
//
// The --continuous part of `record`'s command line.
struct ContinuousFlags {
  bool enabled = false;                        // --continuous
  absl::Duration every = absl::Seconds(10);    // --every: one window's length
  std::string push_url;                        // --push URL
  std::string app;                             // --app; "" = the target's name
  std::map<std::string, std::string> labels;   // --label k=v (repeated)
};

// ParseContinuousFlags()
//
// Fills flags->continuous from `args`, and refuses what does not go with
// it (-f/--format, -- COMMAND, -e alloc|live|lock, --all). InvalidArgument,
// tagged as a usage error, naming the fix.
absl::Status ParseContinuousFlags(const ParsedArgs& args, RecordFlags* flags);

// RunContinuousRecord()
//
// The loop, for the resolved target `pid` (`container_id` when known from
// --container; otherwise read from its cgroup). Exit code: 0 when at least
// one window was sent (or none was made), kRecordPushFailed when windows
// were made and none could be sent; the other record codes for attach
// failures.
int RunContinuousRecord(const RecordFlags& flags, pid_t pid, absl::string_view container_id,
                        const std::atomic<bool>* stop, CommandIo& io);

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_RECORD_CONTINUOUS_H_
