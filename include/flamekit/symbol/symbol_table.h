// SPDX-License-Identifier: Apache-2.0
// File: symbol_table.h
//
// SymbolTable: an ELF file's function symbols (elf_reader.h's
// ElfFile::FunctionSymbols()) sorted for address lookup. Immutable after
// construction: Find() may be called from many threads at once; not for
// signal handlers (the constructor allocates).

#ifndef FLAMEKIT_SYMBOL_SYMBOL_TABLE_H_
#define FLAMEKIT_SYMBOL_SYMBOL_TABLE_H_

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "flamekit/symbol/elf_reader.h"

namespace flamekit {

// SymbolTable
//
// Function symbols sorted for lookup. Find() returns the symbol whose range
// [address, address + size) contains the address (the smallest when
// several nest), and nullptr when none does: never the nearest preceding
// symbol, which in a stripped library is usually the wrong function. A
// zero-size symbol contains only its own address. Among aliases (same
// address and size) a global name is preferred over a local one.
class SymbolTable {
 public:
  SymbolTable() = default;
  explicit SymbolTable(std::vector<ElfSymbol> symbols);

  // Find()
  //
  // The symbol containing `address`, or nullptr.
  const ElfSymbol* Find(uint64_t address) const;

  size_t size() const { return symbols_.size(); }
  bool empty() const { return symbols_.empty(); }
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }

 private:
  static constexpr size_t kMaxNestedWalk = 4096;
  std::vector<ElfSymbol> symbols_;      // sorted by address
  std::vector<uint64_t> max_end_;       // max end of symbols_[0..i]
};

inline SymbolTable::SymbolTable(std::vector<ElfSymbol> symbols) : symbols_(std::move(symbols)) {
  // Sort by address; among equal addresses put the preferred name first
  // (sized before zero-size, global before local, then by name so the
  // choice does not depend on table order).
  std::sort(symbols_.begin(), symbols_.end(), [](const ElfSymbol& a, const ElfSymbol& b) {
    if (a.address != b.address) return a.address < b.address;
    if ((a.size != 0) != (b.size != 0)) return a.size != 0;
    if (a.global != b.global) return a.global;
    if (a.size != b.size) return a.size < b.size;
    return a.name < b.name;
  });
  // Drop exact duplicates (the same function in .symtab and .dynsym) and
  // aliases of a kept entry.
  std::vector<ElfSymbol> unique;
  unique.reserve(symbols_.size());
  for (const ElfSymbol& s : symbols_) {
    if (!unique.empty() && unique.back().address == s.address &&
        (unique.back().size == s.size || s.size == 0)) {
      continue;
    }
    unique.push_back(s);
  }
  symbols_ = std::move(unique);
  max_end_.resize(symbols_.size());
  uint64_t max_end = 0;
  for (size_t i = 0; i < symbols_.size(); ++i) {
    uint64_t end = symbols_[i].address + std::max<uint64_t>(symbols_[i].size, 1);
    if (end < symbols_[i].address) end = UINT64_MAX;  // overflow in a corrupt file
    max_end = std::max(max_end, end);
    max_end_[i] = max_end;
  }
}

inline const ElfSymbol* SymbolTable::Find(uint64_t address) const {
  auto it = std::upper_bound(
      symbols_.begin(), symbols_.end(), address,
      [](uint64_t a, const ElfSymbol& s) { return a < s.address; });
  // Walk back over the symbols starting at or before `address` while one
  // of them may still reach it; keep the innermost (latest-starting) match.
  // The walk is capped so that a corrupt file with one huge symbol cannot
  // make every lookup linear; past the cap the answer is "no symbol",
  // which is safe (file+offset), never a wrong name.
  size_t steps = 0;
  for (size_t i = static_cast<size_t>(it - symbols_.begin()); i > 0; --i) {
    if (max_end_[i - 1] <= address || ++steps > kMaxNestedWalk) break;
    const ElfSymbol& s = symbols_[i - 1];
    uint64_t size = std::max<uint64_t>(s.size, 1);
    if (address - s.address < size) return &s;
  }
  return nullptr;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_SYMBOL_TABLE_H_
