// SPDX-License-Identifier: Apache-2.0
// `flamekit record`: the cli::Command over flamekit::RunRecord().
#include "examples/cli/record_command.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "flamekit/attach/record_cli.h"
#include "flamekit/attach/record_output.h"

namespace flamekit {
namespace cli {
namespace {

int RunRecordCommand(absl::Span<const std::string> args, CommandIo& io) {
  return RunRecord(std::vector<std::string>(args.begin(), args.end()), FullRecordOutput(),
                   io.out, io.err);
}

const std::string& RecordDetails() {
  static const std::string* const details = [] {
    std::string usage = RecordUsage();
    // Drop the synopsis lines: `help` prints the usage field first.
    size_t blank = usage.find("\n\n");
    return new std::string(blank == std::string::npos ? usage : usage.substr(blank + 2));
  }();
  return *details;
}

}  // namespace

Command RecordCommand() {
  return Command{
      "record",
      "Profile a running process (PID, --name REGEX) or a command it launches",
      "flamekit record [options] PID | --name REGEX | -- COMMAND [ARGS...]",
      RecordDetails().c_str(),
      RunRecordCommand,
  };
}

bool IsProfilerShForm(absl::Span<const std::string> argv) {
  if (argv.empty()) return false;
  const std::string& first = argv[0];
  if (!first.empty() && std::all_of(first.begin(), first.end(),
                                    [](char c) { return absl::ascii_isdigit(c); })) {
    return true;
  }
  static const char* const kRecordOptions[] = {
      "-d", "--duration", "-e", "--event", "-i", "--interval", "-F", "--frequency", "-f",
      "--file", "-t", "--threads", "--name", "--include", "--exclude", "--transforms",
      "--title", "--minwidth", "--inverted", "-q", "--quiet"};
  for (const char* option : kRecordOptions) {
    if (first == option || absl::StartsWith(first, std::string(option) + "=")) return true;
  }
  return false;
}

int RunProfilerShForm(absl::Span<const std::string> argv, CommandIo& io) {
  return RunRecordCommand(argv, io);
}

}  // namespace cli
}  // namespace flamekit
