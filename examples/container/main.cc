// SPDX-License-Identifier: Apache-2.0
// flamekit_container: profile inside containers (see container_helper.h).
#include <iostream>
#include <string>
#include <vector>

#include "examples/container/container_helper.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return flamekit::RunContainerHelper(args, std::cout, std::cerr);
}
