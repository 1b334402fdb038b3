// SPDX-License-Identifier: Apache-2.0
// File: perf_map.h
//
// PerfMap reads a JIT runtime's perf map file, /tmp/perf-PID.map: one line
// per generated function, "START SIZE NAME" with START and SIZE in hex
// (with or without "0x") and NAME the rest of the line (it may contain
// spaces). This is the format perf(1), V8 (--perf-basic-prof), the JVM's
// perf-map-agent, LuaJIT, .NET and others write. Not for signal handlers
// (allocates, reads files). Immutable after construction: const methods may
// be called from many threads at once.
//
// Example:
//
//   absl::StatusOr<flamekit::PerfMap> map = flamekit::PerfMap::Load("/tmp/perf-42.map");
//   if (map.ok()) {
//     if (const flamekit::ElfSymbol* s = map->Find(pc)) name = s->name;  // FrameKind::kJit
//   }

#ifndef FLAMEKIT_SYMBOL_PERF_MAP_H_
#define FLAMEKIT_SYMBOL_PERF_MAP_H_

#include <stdint.h>

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
#include "flamekit/symbol/symbol_table.h"
#include "flamekit/symbol/proc_maps.h"

namespace flamekit {

class PerfMap {
 public:
  PerfMap() = default;

  // Load()
  //
  // Reads and parses a perf map file. NotFound when it does not exist.
  static absl::StatusOr<PerfMap> Load(absl::string_view path);

  // Parse()
  //
  // Parses perf map text. A runtime may be appending while we read, so a
  // last line without its newline is ignored; any other malformed line is
  // an InvalidArgument "PATH:LINE: ..." error. Later entries for the same
  // address win (a JIT reuses code memory).
  static absl::StatusOr<PerfMap> Parse(std::string text, absl::string_view source = "perf map");

  // Find()
  //
  // The entry containing `address`, or nullptr.
  const ElfSymbol* Find(uint64_t address) const { return table_.Find(address); }
  size_t size() const { return table_.size(); }

 private:
  // Names point into *text_, which must not move: keep it on the heap.
  std::unique_ptr<std::string> text_;
  SymbolTable table_;
};

// Implementation details follow.

inline absl::StatusOr<PerfMap> PerfMap::Load(absl::string_view path) {
  absl::StatusOr<std::string> text = ReadSmallFile(path);
  if (!text.ok()) return text.status();
  return Parse(*std::move(text), path);
}

inline absl::StatusOr<PerfMap> PerfMap::Parse(std::string text, absl::string_view source) {
  PerfMap map;
  map.text_ = std::make_unique<std::string>(std::move(text));
  absl::string_view rest = *map.text_;
  std::vector<ElfSymbol> symbols;
  size_t line_no = 0;
  while (!rest.empty()) {
    size_t nl = rest.find('\n');
    if (nl == absl::string_view::npos) break;  // partial last line: being written
    absl::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) continue;
    absl::string_view fields = line;
    absl::string_view start_text = symbol_internal::NextField(&fields);
    absl::string_view size_text = symbol_internal::NextField(&fields);
    while (!fields.empty() && (fields[0] == ' ' || fields[0] == '\t')) fields.remove_prefix(1);
    auto strip0x = [](absl::string_view s) {
      if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s.remove_prefix(2);
      return s;
    };
    uint64_t start = 0, size = 0;
    if (!symbol_internal::ParseHex64(strip0x(start_text), &start) ||
        !symbol_internal::ParseHex64(strip0x(size_text), &size) || fields.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ":", line_no, ": expected 'START SIZE NAME' with hex START and SIZE, got \"",
          absl::CHexEscape(line.substr(0, 200)), "\""));
    }
    symbols.push_back(ElfSymbol{start, size, fields, true});
  }
  // Later lines win: mark order in `global` is not enough, so keep only the
  // last entry per start address before building the table.
  std::vector<ElfSymbol> latest;
  latest.reserve(symbols.size());
  {
    std::vector<size_t> order(symbols.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return symbols[a].address < symbols[b].address;
    });
    for (size_t k = 0; k < order.size(); ++k) {
      if (k + 1 < order.size() && symbols[order[k + 1]].address == symbols[order[k]].address) {
        continue;
      }
      latest.push_back(symbols[order[k]]);
    }
  }
  map.table_ = SymbolTable(std::move(latest));
  return map;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_PERF_MAP_H_
