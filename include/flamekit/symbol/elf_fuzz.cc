// SPDX-License-Identifier: Apache-2.0
// Fuzz target: ElfFile::FromBytes on arbitrary bytes, then every accessor,
// a symbol table over what it found, and its call frame information
// (.eh_frame rules, as the profiler's unwinder reads them). Must never
// crash or read out of bounds (run under ASan by the fuzz config and the
// replay test).
#include <stddef.h>
#include <stdint.h>

#include <string>

#include "flamekit/symbol/eh_frame.h"
#include "flamekit/symbol/elf_reader.h"
#include "flamekit/symbol/symbol_table.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto elf = flamekit::ElfFile::FromBytes(std::move(bytes), "fuzz");
  if (!elf.ok()) return 0;
  for (const flamekit::ElfSection& s : (*elf)->sections()) (*elf)->SectionData(s);
  flamekit::SymbolTable table((*elf)->FunctionSymbols());
  for (const flamekit::ElfSymbol& s : table.symbols()) table.Find(s.address + s.size / 2);
  for (uint64_t off = 0; off < 0x2000; off += 0x80) (*elf)->FileOffsetToVaddr(off);
  (void)(*elf)->is_debug_only();
  (void)(*elf)->FindSection(".text");
  auto cfi = flamekit::CallFrameInfo::Open(**elf);
  if (cfi.ok()) {
    size_t rows = 0;
    (*cfi)->ForEachRow([&](uint64_t start, uint64_t end, const flamekit::CfaRule&) {
      if (++rows < 64) {
        (void)(*cfi)->RuleAt(start);
        (void)(*cfi)->RuleAt(end - 1);
      }
    });
    for (uint64_t pc = 0; pc < 0x10000; pc += 0x101) (void)(*cfi)->RuleAt(pc);
  }
  return 0;
}
