// SPDX-License-Identifier: Apache-2.0
// Uses flamekit from another workspace: proves the public target, the include
// paths ("flamekit/...") and the dependency stand-ins work from outside.
#include <stdio.h>

#include "flamekit/base/atomic_file.h"

int main() {
  absl::Status written = flamekit::WriteFileAtomically("/dev/null/x", "x");
  printf("consumer built against flamekit: %s\n", written.ok() ? "ok" : "error path works");
  return 0;
}
