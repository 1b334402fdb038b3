// SPDX-License-Identifier: Apache-2.0
// File: cfi_table.h
//
// CfiTable holds the call frame rules of a process's loaded code (from
// each file's .eh_frame, see symbol/cfi_table_builder.h) as one sorted
// array of 16-byte rows, and UnwindWithCfi() walks a stack with it:
// through code built without frame pointers (most of Debian's libraries)
// as well as through code built with them, and through leaf functions,
// prologues and epilogues where a frame-pointer walk skips a caller.
//
// Thread and signal safety: AddRow(), Finish() and Merge() are for one
// ordinary thread, and no walk may use the table during a Merge(); a table
// handed to a signal handler is not changed again. Find() and
// UnwindWithCfi() are async-signal-safe (no allocation, no lock, no system
// call; every stack read is inside the thread's stack bounds, so a wrong
// rule or a corrupt stack ends the walk and never faults).
//
// x86-64 only: on other machines no rows are added and the walk is the
// frame-pointer walk.
//
// Example:
//
//   flamekit::CfiTable table;
//   table.AddRow(0x401000, 0x401020, flamekit::CfiRow::kStackPointer, 8, 0);
//   table.Finish();
//   flamekit::UnwindResult r = flamekit::UnwindWithCfi(
//       {regs.pc, regs.fp, regs.sp}, bounds, &table, frames, kMaxStackFrames);

#ifndef FLAMEKIT_UNWIND_CFI_TABLE_H_
#define FLAMEKIT_UNWIND_CFI_TABLE_H_

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "flamekit/unwind/frame_pointer.h"
#include "flamekit/unwind/stack_bounds.h"

namespace flamekit {

// CfiRow
//
// From `pc` up to the next row's pc: CFA = (rsp or rbp) + cfa_offset; the
// return address is at CFA - 8; the caller's rbp is at CFA + rbp_offset
// when rbp_offset is not 0 (else rbp still holds it). kNone: no rule the
// walk can follow (a gap between functions, a PLT stub, a DWARF
// expression): the frame-pointer step is used there.
struct CfiRow {
  enum Kind : uint8_t { kNone = 0, kStackPointer = 1, kFramePointer = 2 };
  uint64_t pc = 0;
  int32_t cfa_offset = 0;
  int16_t rbp_offset = 0;
  uint8_t kind = kNone;
  uint8_t reserved = 0;
};
static_assert(sizeof(CfiRow) == 16, "CfiRow is kept to 16 bytes");

class CfiTable {
 public:
  CfiTable() = default;
  CfiTable(const CfiTable&) = delete;
  CfiTable& operator=(const CfiTable&) = delete;

  // AddRow()
  //
  // The rule over [start, end). Rows may come in any order; overlapping
  // rows are not expected (one file's FDEs do not overlap, and mappings do
  // not). Offsets that do not fit the row's fields make it a kNone row.
  void AddRow(uint64_t start, uint64_t end, CfiRow::Kind kind, int64_t cfa_offset,
              int64_t rbp_offset);

  // Finish()
  //
  // Sorts the rows and merges neighbours with the same rule. Call once,
  // before the table is handed to a signal handler.
  void Finish();

  // Merge()
  //
  // Adds the rows of `part`, another finished table (one more file's
  // rules), as one block: the cost is a copy of the rows, not a sort, so a
  // profiler can grow its table file by file as walks reach them. Where
  // the two overlap (a mapping replaced by another), `part` wins over the
  // range from its first row to its last, and after its last rule there is
  // none up to our next row. Both must be Finish()ed.
  void Merge(const CfiTable& part);

  // Find()
  //
  // The row in force at `pc`, or nullptr when `pc` lies before the first
  // row. Async-signal-safe.
  const CfiRow* Find(uint64_t pc) const;

  size_t size() const { return rows_.size(); }
  size_t bytes() const { return rows_.capacity() * sizeof(CfiRow); }

 private:
  std::vector<CfiRow> rows_;
  // Where each added row ends, paired by index until Finish() turns the
  // ends into kNone rows.
  std::vector<uint64_t> ends_;
};

// UnwindWithCfi()
//
// As UnwindFramePointers() (frame_pointer.h): writes the leaf pc, then one
// return address per frame, into frames[0..max_frames). Each frame is
// stepped by its CFI row (looked up at the pc for the leaf, at the return
// address - 1 above it), or by the frame-pointer record where the row is
// kNone or missing. The stack pointer must grow at every step. A null
// `table` gives the frame-pointer walk. Async-signal-safe; never faults.
//
// `read_offset`: the stack word of address A is read at A + read_offset,
// so another process's stack, copied into this one (a perf sample's
// PERF_SAMPLE_STACK_USER bytes), is walked by this same code with its own
// addresses; `bounds` is then the copied range. 0: this thread's stack.
UnwindResult UnwindWithCfi(const FramePointerStart& start, const StackBounds& bounds,
                           const CfiTable* table, uint64_t* frames, size_t max_frames,
                           uint64_t read_offset = 0);

// Implementation details follow.

inline void CfiTable::AddRow(uint64_t start, uint64_t end, CfiRow::Kind kind,
                             int64_t cfa_offset, int64_t rbp_offset) {
  if (start >= end) return;
  CfiRow row;
  row.pc = start;
  row.kind = kind;
  if (cfa_offset < INT32_MIN || cfa_offset > INT32_MAX || rbp_offset < INT16_MIN ||
      rbp_offset > INT16_MAX) {
    row.kind = CfiRow::kNone;
  } else {
    row.cfa_offset = static_cast<int32_t>(cfa_offset);
    row.rbp_offset = static_cast<int16_t>(rbp_offset);
  }
  rows_.push_back(row);
  ends_.push_back(end);
}

inline void CfiTable::Finish() {
  // Each row's end becomes a kNone row, unless another row starts there.
  // Rows usually come sorted and apart (a file's FDEs in address order):
  // then one pass does it, without the sort below (which was most of a
  // large table's build).
  bool sorted_apart = true;
  for (size_t i = 1; i < rows_.size() && sorted_apart; ++i) {
    sorted_apart = rows_[i - 1].pc < rows_[i].pc && ends_[i - 1] <= rows_[i].pc;
  }
  if (sorted_apart) {
    std::vector<CfiRow> merged;
    merged.reserve(rows_.size() + rows_.size() / 4 + 1);
    auto push = [&merged](const CfiRow& row) {
      if (!merged.empty() && merged.back().kind == row.kind &&
          merged.back().cfa_offset == row.cfa_offset &&
          merged.back().rbp_offset == row.rbp_offset) {
        return;  // the same rule goes on
      }
      merged.push_back(row);
    };
    for (size_t i = 0; i < rows_.size(); ++i) {
      push(rows_[i]);
      if (i + 1 == rows_.size() || ends_[i] != rows_[i + 1].pc) {
        CfiRow gap;
        gap.pc = ends_[i];
        push(gap);
      }
    }
    merged.shrink_to_fit();
    rows_ = std::move(merged);
    ends_.clear();
    ends_.shrink_to_fit();
    return;
  }
  std::vector<CfiRow> all;
  all.reserve(rows_.size() * 2);
  for (size_t i = 0; i < rows_.size(); ++i) {
    all.push_back(rows_[i]);
    CfiRow gap;
    gap.pc = ends_[i];
    all.push_back(gap);
  }
  // Stable: a real row and a gap at the same pc keep the order below.
  std::stable_sort(all.begin(), all.end(), [](const CfiRow& a, const CfiRow& b) {
    if (a.pc != b.pc) return a.pc < b.pc;
    return a.kind > b.kind;  // at one pc, a real row wins over a gap
  });
  std::vector<CfiRow> merged;
  merged.reserve(all.size());
  for (size_t i = 0; i < all.size(); ++i) {
    const CfiRow& row = all[i];
    if (i > 0 && all[i - 1].pc == row.pc) continue;  // a gap under a real row
    if (!merged.empty() && merged.back().kind == row.kind &&
        merged.back().cfa_offset == row.cfa_offset &&
        merged.back().rbp_offset == row.rbp_offset) {
      continue;  // the same rule goes on
    }
    merged.push_back(row);
  }
  merged.shrink_to_fit();
  rows_ = std::move(merged);
  ends_.clear();
  ends_.shrink_to_fit();
}

inline void CfiTable::Merge(const CfiTable& part) {
  if (part.rows_.empty()) return;
  const uint64_t first = part.rows_.front().pc;
  const uint64_t last = part.rows_.back().pc;  // the gap after its last rule
  auto by_pc = [](const CfiRow& row, uint64_t pc) { return row.pc < pc; };
  // Rows of ours inside the part's range give way to it.
  auto from = std::lower_bound(rows_.begin(), rows_.end(), first, by_pc);
  auto to = std::lower_bound(from, rows_.end(), last, by_pc);
  from = rows_.erase(from, to);
  // A row of ours at `last` (the next file starts where this one ends)
  // takes the place of the part's gap there.
  const bool next_at_last = from != rows_.end() && from->pc == last;
  const auto part_end = next_at_last ? part.rows_.end() - 1 : part.rows_.end();
  rows_.insert(from, part.rows_.begin(), part_end);
}

inline const CfiRow* CfiTable::Find(uint64_t pc) const {
  // A hand-written binary search: std::upper_bound is fine in a handler
  // too, but this keeps the signal path free of anything that might be
  // instrumented or out of line.
  size_t lo = 0, hi = rows_.size();
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (rows_[mid].pc <= pc) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo == 0 ? nullptr : &rows_[lo - 1];
}

namespace unwind_internal {
// Out of the lambda so the sanitizers leave it alone too (another frame's
// stack words may sit in what ASan counts as a redzone).
FLAMEKIT_UNWIND_NO_SANITIZE inline uint64_t ReadStackWord(uint64_t address) {
  return *reinterpret_cast<const uint64_t*>(address);
}
}  // namespace unwind_internal

FLAMEKIT_UNWIND_NO_SANITIZE
inline UnwindResult UnwindWithCfi(const FramePointerStart& start, const StackBounds& bounds,
                                  const CfiTable* table, uint64_t* frames, size_t max_frames,
                                  uint64_t read_offset) {
  // The word at stack address `a` (already checked against `bounds`).
  auto word = [read_offset](uint64_t a) { return unwind_internal::ReadStackWord(a + read_offset); };
  UnwindResult result;
  if (max_frames == 0) return result;
  frames[0] = start.pc;
  result.frame_count = 1;
  if (!bounds.known()) return result;
  uint64_t pc = start.pc;
  uint64_t sp = start.sp;
  uint64_t fp = start.fp;
  bool leaf = true;
  while (true) {
    // A return address points after the call: its row is the call's.
    const CfiRow* row = table != nullptr ? table->Find(leaf ? pc : pc - 1) : nullptr;
    uint64_t return_address = 0;
    uint64_t next_fp = fp;
    uint64_t next_sp = 0;
    if (row != nullptr && row->kind != CfiRow::kNone) {
      const uint64_t base = row->kind == CfiRow::kStackPointer ? sp : fp;
      const uint64_t cfa = base + static_cast<uint64_t>(static_cast<int64_t>(row->cfa_offset));
      if (cfa <= sp || cfa - sp > kMaxFrameBytes || (cfa & 7) != 0) break;
      if (!bounds.Contains(cfa - 8, 8)) break;
      return_address = word(cfa - 8);
      if (row->rbp_offset != 0) {
        const uint64_t slot = cfa + static_cast<uint64_t>(static_cast<int64_t>(row->rbp_offset));
        if (!bounds.Contains(slot, 8)) break;
        next_fp = word(slot);
      }
      next_sp = cfa;
    } else {
      // x86_64 frame records are {saved fp, return address} at fp.
      if (fp == 0) {
        result.complete = true;  // the outermost frame clears rbp
        break;
      }
      if ((fp & 7) != 0 || fp < sp) break;
      if (!leaf && fp - sp > kMaxFrameBytes) break;
      if (!bounds.Contains(fp, 16)) break;
      return_address = word(fp + 8);
      next_fp = word(fp);
      next_sp = fp + 16;
    }
    if (return_address == 0) {
      result.complete = true;
      break;
    }
    if (result.frame_count == max_frames) {
      result.truncated = true;
      break;
    }
    frames[result.frame_count++] = return_address;
    pc = return_address;
    sp = next_sp;
    fp = next_fp;
    leaf = false;
  }
  return result;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UNWIND_CFI_TABLE_H_
