// SPDX-License-Identifier: Apache-2.0
// File: cfi_program.h
//
// CfaRule, the frame of a function at one code address, and the decoder
// behind CallFrameInfo (eh_frame.h): .eh_frame records (CIE, FDE, their
// pointer encodings and augmentations) and the DWARF call frame program that
// gives the row in force at an address. Pure functions over byte views:
// no allocation beyond a small rule stack, no I/O, callable from any thread
// (not from a signal handler: std::vector may allocate).
//
// Every offset read is bounds-checked against the view (Cursor): a corrupt
// record makes the reader return nullopt or false, never read out of
// bounds. Registers are x86-64 DWARF numbers (rbp 6, rsp 7, return address
// 16). Include eh_frame.h, the interface, rather than this file.

#ifndef FLAMEKIT_SYMBOL_CFI_PROGRAM_H_
#define FLAMEKIT_SYMBOL_CFI_PROGRAM_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace flamekit {

// CfaRule
//
// The frame of the function at one code address.
struct CfaRule {
  enum class Base : uint8_t {
    kStackPointer,  // CFA = rsp + cfa_offset: the function keeps no frame here
    kFramePointer,  // CFA = rbp + cfa_offset: a frame-pointer frame
    kOther,         // another register or a DWARF expression (PLT stubs, signal frames)
  };
  Base base = Base::kOther;
  int64_t cfa_offset = 0;
  // The return address is saved at CFA + return_address_offset (-8 on
  // x86-64) when return_address_saved.
  bool return_address_saved = false;
  int64_t return_address_offset = 0;
  // The caller's rbp is saved at CFA + frame_pointer_offset when
  // frame_pointer_saved; otherwise rbp still holds the caller's value (or
  // the rule is one this reader does not follow).
  bool frame_pointer_saved = false;
  int64_t frame_pointer_offset = 0;
  // The FDE's address range, [function_start, function_end).
  uint64_t function_start = 0;
  uint64_t function_end = 0;

  // FramelessReturnSlot()
  //
  // When the function keeps no frame at this pc ("CFA = rsp + N": a
  // frameless leaf, a prologue, an epilogue), rbp still holds its
  // caller's frame pointer, so a frame-pointer walk skips the caller; its
  // return address is then the returned 8-byte word counted from sp.
  // nullopt otherwise (a frame-pointer frame, or a rule not of that form).
  std::optional<uint32_t> FramelessReturnSlot() const {
    if (base != Base::kStackPointer || !return_address_saved) return std::nullopt;
    const int64_t at = cfa_offset + return_address_offset;
    if (at < 0 || at % 8 != 0 || at / 8 > INT32_MAX) return std::nullopt;
    return static_cast<uint32_t>(at / 8);
  }
};

namespace eh_frame_internal {


inline constexpr int kRegFramePointer = 6;    // rbp
inline constexpr int kRegStackPointer = 7;    // rsp
inline constexpr int kRegReturnAddress = 16;  // the return address column

// DW_EH_PE_* pointer encodings.
inline constexpr uint8_t kPeOmit = 0xff;
inline constexpr uint8_t kPeFormatMask = 0x0f;
inline constexpr uint8_t kPeApplicationMask = 0x70;
inline constexpr uint8_t kPeIndirect = 0x80;
inline constexpr uint8_t kPePcRel = 0x10;
inline constexpr uint8_t kPeDataRel = 0x30;

// A bounds-checked little-endian reader over a span of the file. Reads
// past the end set `ok` false and return 0, so a parser can read a whole
// record and check once.
class Cursor {
 public:
  Cursor(absl::string_view data, size_t pos, uint64_t vaddr)
      : data_(data), pos_(pos), vaddr_(vaddr) {}
  bool ok() const { return ok_; }
  size_t pos() const { return pos_; }
  // The virtual address of the next byte (for pc-relative pointers).
  uint64_t vaddr() const { return vaddr_ + pos_; }
  void Seek(size_t pos) {
    if (pos > data_.size()) ok_ = false;
    pos_ = std::min(pos, data_.size());
  }
  uint64_t Fixed(size_t n) {
    if (!ok_ || data_.size() - pos_ < n) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    memcpy(&v, data_.data() + pos_, n);  // little-endian host (x86-64, aarch64)
    pos_ += n;
    return v;
  }
  uint8_t U8() { return static_cast<uint8_t>(Fixed(1)); }
  uint64_t Uleb() {
    uint64_t v = 0;
    for (int shift = 0; ok_; shift += 7) {
      uint8_t b = U8();
      if (shift < 64) v |= uint64_t{b & 0x7fu} << shift;
      if ((b & 0x80) == 0) break;
    }
    return v;
  }
  int64_t Sleb() {
    uint64_t v = 0;
    int shift = 0;
    uint8_t b = 0;
    do {
      b = U8();
      if (shift < 64) v |= uint64_t{b & 0x7fu} << shift;
      shift += 7;
    } while (ok_ && (b & 0x80) != 0);
    if (shift < 64 && (b & 0x40) != 0) v |= ~uint64_t{0} << shift;
    return static_cast<int64_t>(v);
  }
  absl::string_view CString() {
    if (!ok_) return {};
    const void* nul = memchr(data_.data() + pos_, 0, data_.size() - pos_);
    if (nul == nullptr) {
      ok_ = false;
      return {};
    }
    size_t len = static_cast<const char*>(nul) - (data_.data() + pos_);
    absl::string_view s = data_.substr(pos_, len);
    pos_ += len + 1;
    return s;
  }
  // A pointer in DW_EH_PE `encoding`; `data_base` is what datarel is
  // relative to. Indirect pointers (which would need the loaded image) and
  // aligned ones set ok false.
  uint64_t Pointer(uint8_t encoding, uint64_t data_base) {
    if (encoding == kPeOmit) return 0;
    const uint64_t field = vaddr();
    uint64_t v = 0;
    switch (encoding & kPeFormatMask) {
      case 0x00: v = Fixed(8); break;                                           // absptr
      case 0x01: v = Uleb(); break;                                             // uleb128
      case 0x02: v = Fixed(2); break;                                           // udata2
      case 0x03: v = Fixed(4); break;                                           // udata4
      case 0x04: v = Fixed(8); break;                                           // udata8
      case 0x09: v = static_cast<uint64_t>(Sleb()); break;                      // sleb128
      case 0x0a: v = static_cast<uint64_t>(static_cast<int16_t>(Fixed(2))); break;
      case 0x0b: v = static_cast<uint64_t>(static_cast<int32_t>(Fixed(4))); break;
      case 0x0c: v = Fixed(8); break;                                           // sdata8
      default: ok_ = false; return 0;
    }
    switch (encoding & kPeApplicationMask) {
      case 0x00: break;
      case kPePcRel: v += field; break;
      case kPeDataRel: v += data_base; break;
      default: ok_ = false; return 0;  // textrel, funcrel, aligned: not used on Linux
    }
    if ((encoding & kPeIndirect) != 0) ok_ = false;
    return v;
  }

 private:
  absl::string_view data_;
  size_t pos_;
  uint64_t vaddr_;
  bool ok_ = true;
};

// One CIE or FDE record's frame: where its body starts and ends.
struct Record {
  size_t body = 0;     // after the length field
  size_t end = 0;      // one past the record
  uint32_t id = 0;     // 0 for a CIE; else the distance back to its CIE
  size_t id_pos = 0;   // where `id` was read (the CIE pointer's base)
};

// Reads the record at `pos`; nullopt at a terminator or a bad length.
inline std::optional<Record> ReadRecord(absl::string_view data, size_t pos) {
  Cursor c(data, pos, 0);
  uint64_t length = c.Fixed(4);
  if (!c.ok() || length == 0) return std::nullopt;
  if (length == 0xffffffffu) length = c.Fixed(8);  // 64-bit DWARF
  Record r;
  r.body = c.pos();
  if (!c.ok() || length > data.size() - r.body || length < 4) return std::nullopt;
  r.end = r.body + static_cast<size_t>(length);
  r.id_pos = c.pos();
  r.id = static_cast<uint32_t>(c.Fixed(4));
  return r;
}

struct Cie {
  uint64_t code_alignment = 1;
  int64_t data_alignment = 1;
  uint64_t return_address_register = kRegReturnAddress;
  uint8_t fde_encoding = 0;  // absptr
  bool has_augmentation_data = false;
  size_t instructions = 0;
  size_t end = 0;
};

inline std::optional<Cie> ReadCie(absl::string_view data, uint64_t vaddr, size_t pos) {
  std::optional<Record> r = ReadRecord(data, pos);
  if (!r || r->id != 0) return std::nullopt;
  Cursor c(data, r->id_pos + 4, vaddr);
  Cie cie;
  uint8_t version = c.U8();
  absl::string_view augmentation = c.CString();
  if (!c.ok() || (version != 1 && version != 3 && version != 4)) return std::nullopt;
  if (augmentation.find("eh") != absl::string_view::npos) c.Fixed(8);  // old gcc's EH data
  if (version == 4) c.Fixed(2);  // address size, segment selector size
  cie.code_alignment = c.Uleb();
  cie.data_alignment = c.Sleb();
  cie.return_address_register = version == 1 ? c.U8() : c.Uleb();
  if (!augmentation.empty() && augmentation[0] == 'z') {
    cie.has_augmentation_data = true;
    uint64_t size = c.Uleb();
    size_t data_end = c.pos() + static_cast<size_t>(std::min<uint64_t>(size, data.size()));
    for (char ch : augmentation.substr(1)) {
      if (ch == 'R') {
        cie.fde_encoding = c.U8();
      } else if (ch == 'L') {
        c.U8();  // LSDA encoding
      } else if (ch == 'P') {
        uint8_t encoding = c.U8();
        c.Pointer(encoding & ~kPeIndirect, 0);  // the personality routine: skipped
      } else if (ch == 'S' || ch == 'B' || ch == 'G') {
        // signal frame, AArch64 BTI/MTE keys: no data
      } else {
        break;  // unknown: the size above lets us skip the rest
      }
    }
    c.Seek(data_end);
  } else if (!augmentation.empty()) {
    return std::nullopt;  // an augmentation we cannot skip
  }
  if (!c.ok() || c.pos() > r->end) return std::nullopt;
  cie.instructions = c.pos();
  cie.end = r->end;
  return cie;
}

struct Fde {
  size_t cie = 0;
  uint64_t start = 0;
  uint64_t end = 0;
  size_t instructions = 0;
  size_t record_end = 0;
};

// The FDE at `pos` and its CIE; nullopt for a CIE, a terminator or a
// corrupt record.
inline std::optional<std::pair<Fde, Cie>> ReadFde(absl::string_view data, uint64_t vaddr,
                                                   size_t pos) {
  std::optional<Record> r = ReadRecord(data, pos);
  if (!r || r->id == 0 || r->id > r->id_pos) return std::nullopt;
  Fde fde;
  fde.cie = r->id_pos - r->id;
  std::optional<Cie> cie = ReadCie(data, vaddr, fde.cie);
  if (!cie) return std::nullopt;
  Cursor c(data, r->id_pos + 4, vaddr);
  fde.start = c.Pointer(cie->fde_encoding, 0);
  // The range is a plain number in the encoding's format.
  fde.end = fde.start + c.Pointer(cie->fde_encoding & kPeFormatMask, 0);
  if (cie->has_augmentation_data) {
    uint64_t size = c.Uleb();
    c.Seek(c.pos() + static_cast<size_t>(std::min<uint64_t>(size, data.size())));
  }
  if (!c.ok() || c.pos() > r->end) return std::nullopt;
  fde.instructions = c.pos();
  fde.record_end = r->end;
  return std::make_pair(fde, *cie);
}

// The register rules this reader follows; the rest are skipped.
struct Row {
  int cfa_register = kRegStackPointer;
  int64_t cfa_offset = 0;
  bool cfa_is_expression = false;
  bool ra_saved = false;
  int64_t ra_offset = 0;
  bool fp_saved = false;
  int64_t fp_offset = 0;
};

// Runs the CFA program in data[begin, end) from `row` up to (and not past)
// `target`; `initial` is the CIE's row, for DW_CFA_restore. Returns false
// on an instruction it does not know or a corrupt program.
// When `on_row` is set, it is called with [from, to) and the row in force
// there each time the location moves on.
using RowCallback = std::function<void(uint64_t from, uint64_t to, const Row& row)>;

inline bool RunProgram(absl::string_view data, uint64_t vaddr, size_t begin, size_t end,
                       const Cie& cie, const Row& initial, uint64_t* location, uint64_t target,
                       Row* row, const RowCallback* on_row = nullptr) {
  Cursor c(data.substr(0, end), begin, vaddr);
  std::vector<Row> stack;  // DW_CFA_remember_state
  auto set_offset = [&](uint64_t reg, int64_t offset) {
    if (reg == kRegReturnAddress || reg == cie.return_address_register) {
      row->ra_saved = true;
      row->ra_offset = offset;
    } else if (reg == kRegFramePointer) {
      row->fp_saved = true;
      row->fp_offset = offset;
    }
  };
  auto set_other = [&](uint64_t reg) {  // not "saved at CFA + N"
    if (reg == kRegReturnAddress || reg == cie.return_address_register) row->ra_saved = false;
    if (reg == kRegFramePointer) row->fp_saved = false;
  };
  auto restore = [&](uint64_t reg) {
    if (reg == kRegReturnAddress || reg == cie.return_address_register) {
      row->ra_saved = initial.ra_saved;
      row->ra_offset = initial.ra_offset;
    } else if (reg == kRegFramePointer) {
      row->fp_saved = initial.fp_saved;
      row->fp_offset = initial.fp_offset;
    }
  };
  auto move_to = [&](uint64_t to) {
    if (on_row != nullptr && to > *location) (*on_row)(*location, to, *row);
    *location = to;
    return *location <= target;
  };
  auto advance = [&](uint64_t delta) { return move_to(*location + delta * cie.code_alignment); };
  while (c.ok() && c.pos() < end) {
    uint8_t op = c.U8();
    uint8_t low = op & 0x3f;
    switch (op >> 6) {
      case 1:  // DW_CFA_advance_loc
        if (!advance(low)) return true;
        continue;
      case 2:  // DW_CFA_offset
        set_offset(low, static_cast<int64_t>(c.Uleb()) * cie.data_alignment);
        continue;
      case 3:  // DW_CFA_restore
        restore(low);
        continue;
      default:
        break;
    }
    switch (op) {
      case 0x00: break;  // nop
      case 0x01: {       // set_loc
        uint64_t to = c.Pointer(cie.fde_encoding, 0);
        if (!c.ok()) return false;
        if (!move_to(to)) return true;
        break;
      }
      case 0x02: if (!advance(c.Fixed(1))) return c.ok(); break;
      case 0x03: if (!advance(c.Fixed(2))) return c.ok(); break;
      case 0x04: if (!advance(c.Fixed(4))) return c.ok(); break;
      case 0x05: {  // offset_extended
        uint64_t reg = c.Uleb();
        set_offset(reg, static_cast<int64_t>(c.Uleb()) * cie.data_alignment);
        break;
      }
      case 0x06: restore(c.Uleb()); break;  // restore_extended
      case 0x07:                             // undefined
      case 0x08: set_other(c.Uleb()); break; // same_value
      case 0x09: {                            // register
        uint64_t reg = c.Uleb();
        c.Uleb();
        set_other(reg);
        break;
      }
      case 0x0a:  // remember_state
        if (stack.size() >= 64) return false;
        stack.push_back(*row);
        break;
      case 0x0b:  // restore_state: the whole row, CFA rule included, as
                  // libgcc does and as gcc's mid-function epilogues expect
        if (stack.empty()) return false;
        *row = stack.back();
        stack.pop_back();
        break;
      case 0x0c:  // def_cfa
        row->cfa_register = static_cast<int>(c.Uleb());
        row->cfa_offset = static_cast<int64_t>(c.Uleb());
        row->cfa_is_expression = false;
        break;
      case 0x0d:  // def_cfa_register
        row->cfa_register = static_cast<int>(c.Uleb());
        row->cfa_is_expression = false;
        break;
      case 0x0e: row->cfa_offset = static_cast<int64_t>(c.Uleb()); break;  // def_cfa_offset
      case 0x0f: {  // def_cfa_expression
        uint64_t size = c.Uleb();
        c.Seek(c.pos() + static_cast<size_t>(std::min<uint64_t>(size, data.size())));
        row->cfa_is_expression = true;
        break;
      }
      case 0x10: {  // expression
        uint64_t reg = c.Uleb();
        uint64_t size = c.Uleb();
        c.Seek(c.pos() + static_cast<size_t>(std::min<uint64_t>(size, data.size())));
        set_other(reg);
        break;
      }
      case 0x11: {  // offset_extended_sf
        uint64_t reg = c.Uleb();
        set_offset(reg, c.Sleb() * cie.data_alignment);
        break;
      }
      case 0x12:  // def_cfa_sf
        row->cfa_register = static_cast<int>(c.Uleb());
        row->cfa_offset = c.Sleb() * cie.data_alignment;
        row->cfa_is_expression = false;
        break;
      case 0x13: row->cfa_offset = c.Sleb() * cie.data_alignment; break;  // def_cfa_offset_sf
      case 0x14:  // val_offset
        set_other(c.Uleb());
        c.Uleb();
        break;
      case 0x15:  // val_offset_sf
        set_other(c.Uleb());
        c.Sleb();
        break;
      case 0x16: {  // val_expression
        uint64_t reg = c.Uleb();
        uint64_t size = c.Uleb();
        c.Seek(c.pos() + static_cast<size_t>(std::min<uint64_t>(size, data.size())));
        set_other(reg);
        break;
      }
      case 0x2e: c.Uleb(); break;  // GNU_args_size
      case 0x2f: {                 // GNU_negative_offset_extended
        uint64_t reg = c.Uleb();
        set_offset(reg, -static_cast<int64_t>(c.Uleb()) * cie.data_alignment);
        break;
      }
      default:
        return false;
    }
  }
  return c.ok();
}

// Runs the CIE's initial instructions, then the FDE's program up to
// `target` (~0: to its end), leaving the row in force there in *row and
// where the program stopped in *location; `on_row` as RunProgram's.
inline bool RunFde(absl::string_view data, uint64_t vaddr, const Fde& fde, const Cie& cie,
                   uint64_t target, Row* row, uint64_t* location,
                   const RowCallback* on_row = nullptr) {
  *row = Row();
  *location = fde.start;
  if (!RunProgram(data, vaddr, cie.instructions, cie.end, cie, *row, location, ~uint64_t{0},
                  row)) {
    return false;
  }
  const Row initial = *row;
  *location = fde.start;
  return RunProgram(data, vaddr, fde.instructions, fde.record_end, cie, initial, location, target,
                    row, on_row);
}

inline CfaRule ToRule(const Row& row, const Fde& fde) {
  CfaRule rule;
#if defined(__x86_64__)
  if (!row.cfa_is_expression && row.cfa_register == kRegStackPointer) {
    rule.base = CfaRule::Base::kStackPointer;
  } else if (!row.cfa_is_expression && row.cfa_register == kRegFramePointer) {
    rule.base = CfaRule::Base::kFramePointer;
  }
#endif
  rule.cfa_offset = row.cfa_offset;
  rule.return_address_saved = row.ra_saved;
  rule.return_address_offset = row.ra_offset;
  rule.frame_pointer_saved = row.fp_saved;
  rule.frame_pointer_offset = row.fp_offset;
  rule.function_start = fde.start;
  rule.function_end = fde.end;
  return rule;
}

}  // namespace eh_frame_internal

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_CFI_PROGRAM_H_
