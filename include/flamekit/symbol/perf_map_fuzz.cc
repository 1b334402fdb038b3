// SPDX-License-Identifier: Apache-2.0
// Fuzz target: the two line-oriented symbol formats, perf map files and
// /proc/kallsyms, on arbitrary text.
#include <stddef.h>
#include <stdint.h>

#include <string>

#include "flamekit/symbol/kallsyms.h"
#include "flamekit/symbol/perf_map.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto map = flamekit::PerfMap::Parse(text, "fuzz");
  if (map.ok()) map->Find(0x7f0000001000);
  auto k = flamekit::Kallsyms::Parse(text, "fuzz");
  if (k.ok()) k->Find(0xffffffff81000000);
  return 0;
}
