// SPDX-License-Identifier: Apache-2.0
// File: replay_main.cc
//
// main() for a fuzz target's corpus-replay test: runs
// LLVMFuzzerTestOneInput once on every file named on the command line, so
// the seed corpus and every crash a fuzzer found (saved beside it) run in
// the ordinary test suite and under the sanitizers. Fails when no input was
// given: a replay test that replays nothing proves nothing.

#include <stdint.h>
#include <stdio.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  int replayed = 0;
  for (int i = 1; i < argc; ++i) {
    std::ifstream in(argv[i], std::ios::binary);
    if (!in) {
      fprintf(stderr, "cannot read %s\n", argv[i]);
      return 1;
    }
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                            std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++replayed;
  }
  printf("replayed %d inputs\n", replayed);
  return replayed > 0 ? 0 : 1;
}
