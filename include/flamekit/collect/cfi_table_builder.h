// SPDX-License-Identifier: Apache-2.0
// File: cfi_table_builder.h
//
// BuildCfiTable() turns the .eh_frame of every executable file mapped in a
// process (as a Symbolizer knows them) into one CfiTable
// (unwind/cfi_table.h) that a signal handler can unwind with. Not for
// signal handlers (allocates, parses files); uses the Symbolizer, so the
// caller holds whatever guards it.
//
// Example:
//
//   CfiTableStats stats;
//   std::unique_ptr<flamekit::CfiTable> table = flamekit::BuildCfiTable(*symbolizer, &stats);
//   // stats.rows rows, table->bytes() bytes, from stats.files files.

#ifndef FLAMEKIT_COLLECT_CFI_TABLE_BUILDER_H_
#define FLAMEKIT_COLLECT_CFI_TABLE_BUILDER_H_

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <memory>

#include "flamekit/symbol/eh_frame.h"
#include "flamekit/symbol/symbolizer.h"
#include "flamekit/unwind/cfi_table.h"

namespace flamekit {

struct CfiTableStats {
  size_t mappings = 0;  // executable mappings with .eh_frame
  size_t rows = 0;      // rows in the finished table
  size_t bytes = 0;     // its size
};

// BuildCfiTable()
//
// Rows for every executable mapping `symbolizer` knows whose file has
// .eh_frame; code without it (JIT code, stripped files) is left to the
// frame-pointer step. Never fails: an empty table unwinds like frame
// pointers. `want`, when given, picks the mappings to cover (a profiler
// that only needs the files its samples pass through skips the rest: most
// of the cost is in files such as libcrypto that no sample visits).
std::unique_ptr<CfiTable> BuildCfiTable(
    Symbolizer& symbolizer, CfiTableStats* stats = nullptr,
    const std::function<bool(const Mapping& mapping)>& want = nullptr);

// Implementation details follow.

inline std::unique_ptr<CfiTable> BuildCfiTable(
    Symbolizer& symbolizer, CfiTableStats* stats,
    const std::function<bool(const Mapping& mapping)>& want) {
  auto table = std::make_unique<CfiTable>();
  CfiTableStats counts;
#if defined(__x86_64__)
  symbolizer.ForEachCallFrameInfo([&](const Mapping& m, const CallFrameInfo& cfi, int64_t bias) {
    ++counts.mappings;
    cfi.ForEachRow([&](uint64_t start, uint64_t end, const CfaRule& rule) {
      const uint64_t lo = start + static_cast<uint64_t>(bias);
      const uint64_t hi = end + static_cast<uint64_t>(bias);
      if (lo < m.start || hi > m.end) return;  // another mapping of the file holds it
      CfiRow::Kind kind = CfiRow::kNone;
      // The walk assumes the return address at CFA - 8, as on every x86-64
      // frame but hand-written oddities, which it then steps by fp.
      if (rule.return_address_saved && rule.return_address_offset == -8) {
        if (rule.base == CfaRule::Base::kStackPointer) kind = CfiRow::kStackPointer;
        if (rule.base == CfaRule::Base::kFramePointer) kind = CfiRow::kFramePointer;
      }
      table->AddRow(lo, hi, kind, rule.cfa_offset,
                    rule.frame_pointer_saved ? rule.frame_pointer_offset : 0);
    });
  }, want);
#endif
  table->Finish();
  counts.rows = table->size();
  counts.bytes = table->bytes();
  if (stats != nullptr) *stats = counts;
  return table;
}

}  // namespace flamekit

#endif  // FLAMEKIT_COLLECT_CFI_TABLE_BUILDER_H_
