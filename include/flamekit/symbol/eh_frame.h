// SPDX-License-Identifier: Apache-2.0
// File: eh_frame.h
//
// CallFrameInfo answers, for a code address of an ELF file, where that
// function's frame is: the canonical frame address (CFA, the caller's stack
// pointer before the call) as "stack pointer + N" or "frame pointer + N",
// and where the return address and the caller's frame pointer were saved.
// It reads the DWARF call frame information every x86-64 Linux binary
// carries for exceptions, .eh_frame (found through the .eh_frame_hdr search
// table when there is one), and runs the CFA program of the one FDE that
// covers the address. Not for signal handlers (allocates). Immutable after
// Open(): const methods may be called from many threads at once; it points
// into the ElfFile, which must outlive it.
//
// Why: a frame-pointer walk from a sample taken in a function that has no
// frame of its own (gcc's leaf functions at -O1 and above, libc's system
// call wrappers, any function in its prologue or epilogue) reads the
// caller's frame pointer and so skips the caller. The CFA rule at the
// sampled pc says whether that happened ("sp + N": the function's frame is
// not set up) and where the skipped return address is (at sp + N - 8).
//
// Registers are x86-64 DWARF numbers (rbp 6, rsp 7, return address 16);
// on other machines the rules come back with Base::kOther.
//
// Every offset read from the file is bounds-checked: a corrupt table gives
// nullopt for the addresses it covers, never an out-of-bounds read.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<flamekit::CallFrameInfo>> cfi =
//       flamekit::CallFrameInfo::Open(elf);
//   if (cfi.ok()) {
//     std::optional<flamekit::CfaRule> rule = (*cfi)->RuleAt(vaddr);
//     if (rule && rule->base == flamekit::CfaRule::Base::kStackPointer &&
//         rule->return_address_saved) {
//       uint64_t ra_slot = sp + rule->cfa_offset + rule->return_address_offset;
//     }
//   }

#ifndef FLAMEKIT_SYMBOL_EH_FRAME_H_
#define FLAMEKIT_SYMBOL_EH_FRAME_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/symbol/cfi_program.h"
#include "flamekit/symbol/elf_reader.h"

namespace flamekit {

class CallFrameInfo {
 public:
  // Open()
  //
  // Indexes `elf`'s .eh_frame. NotFound when the file has none (a debug
  // file, a file stripped of it), InvalidArgument when its header is
  // corrupt.
  static absl::StatusOr<std::unique_ptr<CallFrameInfo>> Open(const ElfFile& elf);

  // RuleAt()
  //
  // The rule in force at virtual address `vaddr` (an interrupted pc; for a
  // return address ask at address - 1), or nullopt when no FDE covers it
  // or its program cannot be followed.
  std::optional<CfaRule> RuleAt(uint64_t vaddr) const;

  // ForEachRow()
  //
  // Calls fn(start, end, rule) for every row of every FDE: the rule in
  // force over [start, end). FDEs come in address order; an FDE whose
  // program cannot be followed gives no rows. For building lookup tables
  // (unwind/cfi_table.h).
  void ForEachRow(const std::function<void(uint64_t start, uint64_t end, const CfaRule& rule)>&
                      fn) const;

  // How many FDEs the index holds (from .eh_frame_hdr or a full scan).
  size_t fde_count() const;

  CallFrameInfo(const CallFrameInfo&) = delete;
  CallFrameInfo& operator=(const CallFrameInfo&) = delete;

 private:
  struct Fde {
    uint64_t start = 0;
    uint64_t end = 0;
    size_t offset = 0;  // of the FDE's length field in eh_frame_
  };
  CallFrameInfo() = default;
  std::optional<size_t> FindFdeOffset(uint64_t vaddr) const;
  // Field 0 (initial location) or 1 (FDE address) of search table entry i,
  // as a virtual address (the table holds them relative to the header).
  uint64_t TableEntry(size_t i, size_t field) const;
  // The .eh_frame offset of the FDE at virtual address `fde_vaddr`, if it
  // lies inside .eh_frame.
  std::optional<size_t> EhFrameOffset(uint64_t fde_vaddr) const;
  std::optional<CfaRule> Run(size_t fde_offset, uint64_t vaddr) const;
  absl::Status ScanAll();

  absl::string_view eh_frame_;
  uint64_t eh_frame_vaddr_ = 0;
  // The .eh_frame_hdr binary search table (datarel sdata4 pairs), if usable.
  absl::string_view table_;
  uint64_t hdr_vaddr_ = 0;
  size_t table_entries_ = 0;
  // Otherwise every FDE, sorted by start.
  std::vector<Fde> fdes_;
};

// Implementation details follow.

inline absl::StatusOr<std::unique_ptr<CallFrameInfo>> CallFrameInfo::Open(const ElfFile& elf) {
  const ElfSection* frame = elf.FindSection(".eh_frame");
  if (frame == nullptr || elf.SectionData(*frame).empty()) {
    return absl::NotFoundError(
        absl::StrCat(elf.display_name(), ": no .eh_frame section (stripped of unwind tables?)"));
  }
  std::unique_ptr<CallFrameInfo> cfi(new CallFrameInfo());
  cfi->eh_frame_ = elf.SectionData(*frame);
  cfi->eh_frame_vaddr_ = frame->address;
  // The linker's search table: version 1, then the encodings of the
  // .eh_frame pointer, the count and the table. Only the table encoding
  // every Linux linker writes (datarel sdata4) is used; anything else
  // falls back to scanning .eh_frame once.
  const ElfSection* hdr = elf.FindSection(".eh_frame_hdr");
  absl::string_view hdr_data = hdr != nullptr ? elf.SectionData(*hdr) : absl::string_view();
  if (hdr_data.size() >= 4 && hdr_data[0] == 1 &&
      static_cast<uint8_t>(hdr_data[3]) == (eh_frame_internal::kPeDataRel | 0x0b)) {
    eh_frame_internal::Cursor c(hdr_data, 4, hdr->address);
    c.Pointer(static_cast<uint8_t>(hdr_data[1]), hdr->address);
    uint64_t count = c.Pointer(static_cast<uint8_t>(hdr_data[2]), hdr->address);
    if (c.ok() && count <= (hdr_data.size() - c.pos()) / 8) {
      cfi->table_ = hdr_data.substr(c.pos(), static_cast<size_t>(count) * 8);
      cfi->hdr_vaddr_ = hdr->address;
      cfi->table_entries_ = static_cast<size_t>(count);
      return cfi;
    }
  }
  FLAMEKIT_RETURN_IF_ERROR(cfi->ScanAll());
  return cfi;
}

inline absl::Status CallFrameInfo::ScanAll() {
  size_t pos = 0;
  while (pos + 4 <= eh_frame_.size()) {
    std::optional<eh_frame_internal::Record> r = eh_frame_internal::ReadRecord(eh_frame_, pos);
    if (!r) break;  // terminator
    if (r->id != 0) {
      auto fde = eh_frame_internal::ReadFde(eh_frame_, eh_frame_vaddr_, pos);
      if (fde && fde->first.end > fde->first.start) {
        fdes_.push_back(Fde{fde->first.start, fde->first.end, pos});
      }
    }
    pos = r->end;
  }
  std::sort(fdes_.begin(), fdes_.end(), [](const Fde& a, const Fde& b) { return a.start < b.start; });
  return absl::OkStatus();
}

inline size_t CallFrameInfo::fde_count() const {
  return table_entries_ > 0 ? table_entries_ : fdes_.size();
}

inline std::optional<size_t> CallFrameInfo::FindFdeOffset(uint64_t vaddr) const {
  if (table_entries_ > 0) {
    size_t lo = 0, hi = table_entries_;
    while (lo < hi) {  // first entry that starts after vaddr
      size_t mid = lo + (hi - lo) / 2;
      if (TableEntry(mid, 0) <= vaddr) lo = mid + 1; else hi = mid;
    }
    if (lo == 0) return std::nullopt;
    return EhFrameOffset(TableEntry(lo - 1, 1));
  }
  auto it = std::upper_bound(fdes_.begin(), fdes_.end(), vaddr,
                             [](uint64_t a, const Fde& f) { return a < f.start; });
  if (it == fdes_.begin()) return std::nullopt;
  --it;
  if (vaddr >= it->end) return std::nullopt;
  return it->offset;
}

inline uint64_t CallFrameInfo::TableEntry(size_t i, size_t field) const {
  // Sorted (initial location, FDE address) pairs of sdata4, each relative
  // to the start of .eh_frame_hdr.
  int32_t v;
  memcpy(&v, table_.data() + i * 8 + field * 4, 4);
  return hdr_vaddr_ + static_cast<uint64_t>(static_cast<int64_t>(v));
}

inline std::optional<size_t> CallFrameInfo::EhFrameOffset(uint64_t fde_vaddr) const {
  if (fde_vaddr < eh_frame_vaddr_ || fde_vaddr - eh_frame_vaddr_ >= eh_frame_.size()) {
    return std::nullopt;
  }
  return static_cast<size_t>(fde_vaddr - eh_frame_vaddr_);
}

inline std::optional<CfaRule> CallFrameInfo::RuleAt(uint64_t vaddr) const {
  std::optional<size_t> offset = FindFdeOffset(vaddr);
  if (!offset) return std::nullopt;
  return Run(*offset, vaddr);
}

inline std::optional<CfaRule> CallFrameInfo::Run(size_t fde_offset, uint64_t vaddr) const {
  namespace in = eh_frame_internal;
  auto record = in::ReadFde(eh_frame_, eh_frame_vaddr_, fde_offset);
  if (!record) return std::nullopt;
  const in::Fde& fde = record->first;
  const in::Cie& cie = record->second;
  if (vaddr < fde.start || vaddr >= fde.end) return std::nullopt;
  in::Row row;
  uint64_t location = 0;
  if (!in::RunFde(eh_frame_, eh_frame_vaddr_, fde, cie, vaddr, &row, &location)) {
    return std::nullopt;
  }
  return in::ToRule(row, fde);
}

inline void CallFrameInfo::ForEachRow(
    const std::function<void(uint64_t start, uint64_t end, const CfaRule& rule)>& fn) const {
  namespace in = eh_frame_internal;
  auto each_fde = [&](size_t offset) {
    auto record = in::ReadFde(eh_frame_, eh_frame_vaddr_, offset);
    if (!record || record->first.end <= record->first.start) return;
    const in::Fde& fde = record->first;
    const in::Cie& cie = record->second;
    std::vector<std::pair<std::pair<uint64_t, uint64_t>, in::Row>> rows;
    const in::RowCallback collect = [&](uint64_t from, uint64_t to, const in::Row& r) {
      rows.push_back({{from, std::min(to, fde.end)}, r});
    };
    in::Row row;
    uint64_t location = 0;
    if (!in::RunFde(eh_frame_, eh_frame_vaddr_, fde, cie, ~uint64_t{0}, &row, &location,
                    &collect)) {
      return;  // a program that cannot be followed gives no rows at all
    }
    if (location < fde.end) rows.push_back({{location, fde.end}, row});
    for (const auto& [range, r] : rows) {
      if (range.first < range.second && range.first >= fde.start) {
        fn(range.first, range.second, in::ToRule(r, fde));
      }
    }
  };
  if (table_entries_ > 0) {
    for (size_t i = 0; i < table_entries_; ++i) {
      if (std::optional<size_t> offset = EhFrameOffset(TableEntry(i, 1))) each_fde(*offset);
    }
  } else {
    for (const Fde& f : fdes_) each_fde(f.offset);
  }
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_EH_FRAME_H_
