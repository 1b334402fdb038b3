// SPDX-License-Identifier: Apache-2.0
// File: cli_test_util.h
//
// Runs the flamekit command line in-process for tests (RunCli with string
// streams) and names scratch files under the test's temporary directory.
// Testonly; thread-compatible.
//
// Example:
//
//   CliResult r = RunFlamekit({"convert", "in.txt", "-f", TestTmp("out.svg")});
//   EXPECT_EQ(r.code, 0) << r.err;

#ifndef FLAMEKIT_EXAMPLES_CLI_CLI_TEST_UTIL_H_
#define FLAMEKIT_EXAMPLES_CLI_CLI_TEST_UTIL_H_

#include <stdlib.h>

#include <sstream>
#include <string>
#include <vector>

#include "examples/cli/command.h"

namespace flamekit {
namespace cli {

struct CliResult {
  int code;
  std::string out;
  std::string err;
};

// RunFlamekit()
//
// `flamekit ARGS...` as the binary would run it, with its output captured.
inline CliResult RunFlamekit(std::vector<std::string> args) {
  std::ostringstream out, err;
  CommandIo io{out, err};
  int code = RunCli(args, io);
  return CliResult{code, out.str(), err.str()};
}

// TestTmp()
//
// `name` under $TEST_TMPDIR (or /tmp outside Bazel).
inline std::string TestTmp(const std::string& name) {
  const char* d = getenv("TEST_TMPDIR");
  return std::string(d ? d : "/tmp") + "/" + name;
}

}  // namespace cli
}  // namespace flamekit

#endif  // FLAMEKIT_EXAMPLES_CLI_CLI_TEST_UTIL_H_
