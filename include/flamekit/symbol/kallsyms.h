// SPDX-License-Identifier: Apache-2.0
// File: kallsyms.h
//
// Kallsyms reads the kernel's symbol table, /proc/kallsyms ("ADDR TYPE NAME
// [MODULE]" per line), to name kernel addresses from perf callchains. The
// kernel shows real addresses only when kptr_restrict is 0 and the reader
// has CAP_SYSLOG or perf_event_paranoid is 1 or lower (kptr_restrict 1:
// CAP_SYSLOG needed; 2: never). Otherwise every address reads as zero: Load() still succeeds but restricted() is
// true and Find() finds nothing, so callers show such frames as "[kernel]".
// Not for signal handlers (allocates, reads files). Immutable after Load():
// const methods may be called from many threads at once.
//
// Kernel symbols have no sizes; a text symbol is taken to end where the next
// symbol of any kind (text or data) starts, which in the kernel's complete
// table is where the function ends. The last symbol of the table has no
// known end and matches only its own address.
//
// Example:
//
//   absl::StatusOr<flamekit::Kallsyms> k = flamekit::Kallsyms::Load();
//   if (k.ok() && !k->restricted()) {
//     if (const flamekit::ElfSymbol* s = k->Find(pc)) name = s->name;
//   }

#ifndef FLAMEKIT_SYMBOL_KALLSYMS_H_
#define FLAMEKIT_SYMBOL_KALLSYMS_H_

#include <stdint.h>

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/symbol/elf_reader.h"
#include "flamekit/symbol/proc_maps.h"

namespace flamekit {

// IsKernelAddress()
//
// True for an address in the upper (kernel) half of the x86-64 / arm64
// address space.
inline bool IsKernelAddress(uint64_t address) { return (address >> 63) != 0; }

class Kallsyms {
 public:
  Kallsyms() = default;

  // Load()
  //
  // Reads `path` (default /proc/kallsyms).
  static absl::StatusOr<Kallsyms> Load(absl::string_view path = "/proc/kallsyms");

  // Parse()
  //
  // Parses kallsyms text; a malformed line is an InvalidArgument error
  // naming `source` and the line number.
  static absl::StatusOr<Kallsyms> Parse(std::string text, absl::string_view source = "kallsyms");

  // restricted()
  //
  // True when every address was zero: the kernel hides them (see the file
  // comment for the settings that reveal them).
  bool restricted() const { return restricted_; }

  // Find()
  //
  // The text symbol containing `address`, or nullptr.
  const ElfSymbol* Find(uint64_t address) const { return table_.Find(address); }
  size_t size() const { return table_.size(); }

 private:
  std::unique_ptr<std::string> text_;  // names point into it
  SymbolTable table_;
  bool restricted_ = false;
};

// Implementation details follow.

inline absl::StatusOr<Kallsyms> Kallsyms::Load(absl::string_view path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path);
  if (!text.ok()) return text.status();
  return Parse(*std::move(text), path);
}

inline absl::StatusOr<Kallsyms> Kallsyms::Parse(std::string text, absl::string_view source) {
  Kallsyms k;
  k.text_ = std::make_unique<std::string>(std::move(text));
  struct Entry {
    uint64_t address;
    absl::string_view name;
    bool is_text;
  };
  std::vector<Entry> entries;
  absl::string_view rest = *k.text_;
  size_t line_no = 0;
  bool any_nonzero = false;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    absl::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == absl::string_view::npos ? rest.size() : nl + 1);
    ++line_no;
    if (line.empty()) continue;
    absl::string_view fields = line;
    absl::string_view addr_text = symbol_internal::NextField(&fields);
    absl::string_view type = symbol_internal::NextField(&fields);
    absl::string_view name = symbol_internal::NextField(&fields);  // "[module]" follows
    uint64_t address = 0;
    if (!symbol_internal::ParseHex64(addr_text, &address) || type.size() != 1 || name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_no, ": expected 'ADDRESS TYPE NAME [MODULE]', got \"",
                       absl::CHexEscape(line.substr(0, 200)), "\""));
    }
    if (address != 0) any_nonzero = true;
    char t = type[0];
    entries.push_back(Entry{address, name, t == 't' || t == 'T' || t == 'w' || t == 'W'});
  }
  if (!any_nonzero) {
    k.restricted_ = true;
    return k;
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.address < b.address; });
  std::vector<ElfSymbol> symbols;
  symbols.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!entries[i].is_text || entries[i].address == 0) continue;
    // Ends at the next symbol with a higher address.
    size_t j = i + 1;
    while (j < entries.size() && entries[j].address == entries[i].address) ++j;
    uint64_t size = j < entries.size() ? entries[j].address - entries[i].address : 0;
    symbols.push_back(ElfSymbol{entries[i].address, size, entries[i].name, true});
  }
  k.table_ = SymbolTable(std::move(symbols));
  return k;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_KALLSYMS_H_
