// SPDX-License-Identifier: Apache-2.0
// Writes the golden files golden_test compares against:
//   bazel run //include/flamekit/render:golden_gen -- "$PWD/testdata/golden"
// (tools/update_goldens.sh does this). Inputs have fixed timestamps, so the
// output is reproducible byte for byte.

#include <stdio.h>

#include <string>

#include "flamekit/render/golden_cases.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: golden_gen OUTPUT_DIR\n");
    return 2;
  }
  for (const flamekit::render_testing::GoldenCase& c : flamekit::render_testing::GoldenCases()) {
    std::string path = std::string(argv[1]) + "/" + c.file_name;
    absl::StatusOr<std::string> bytes = flamekit::render_testing::RenderGoldenCase(c);
    absl::Status status =
        bytes.ok() ? flamekit::WriteFileAtomically(path, *bytes) : bytes.status();
    if (!status.ok()) {
      fprintf(stderr, "%s: %s\n", path.c_str(), status.ToString().c_str());
      return 1;
    }
    printf("wrote %s\n", path.c_str());
  }
  return 0;
}
