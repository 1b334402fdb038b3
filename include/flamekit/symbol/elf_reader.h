// SPDX-License-Identifier: Apache-2.0
// File: elf_reader.h
//
// ElfFile reads a 64-bit little-endian ELF file (an executable, a shared
// library, a separate debug file or a vdso image): its section headers, the
// function symbols of .symtab and .dynsym, the PT_LOAD segments that place
// file offsets at virtual addresses, the GNU build id and .gnu_debuglink.
// SymbolTable answers "which function contains this address" over such
// symbols. Not for signal handlers (allocates, maps files). An ElfFile is
// immutable after Open(): its const methods may be called from many threads
// at once. A SymbolTable is likewise read-only after construction.
//
// Every offset, size and index read from the file is checked against the
// file's size before use, so truncated or corrupt files give InvalidArgument
// ("not an ELF file", "truncated: section headers end past the end of the
// file", ...) and never an out-of-bounds read. One caveat of mmap: if another
// process truncates the file while it is mapped, touching the lost pages
// raises SIGBUS; flamekit maps only files that belong to running programs
// (which the kernel keeps from being truncated while they are executing,
// ETXTBSY) or separate debug files.
//
// Example:
//
//   absl::StatusOr<std::unique_ptr<flamekit::ElfFile>> elf =
//       flamekit::ElfFile::Open("/usr/lib/x86_64-linux-gnu/libc.so.6");
//   if (!elf.ok()) return elf.status();
//   flamekit::SymbolTable table((*elf)->FunctionSymbols());
//   std::optional<uint64_t> vaddr = (*elf)->FileOffsetToVaddr(0x28000);
//   if (vaddr) {
//     if (const flamekit::ElfSymbol* s = table.Find(*vaddr)) use(s->name);
//   }

#ifndef FLAMEKIT_SYMBOL_ELF_READER_H_
#define FLAMEKIT_SYMBOL_ELF_READER_H_

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/symbol/proc_maps.h"

namespace flamekit {

// ElfSymbol
//
// A defined function symbol: [address, address + size) in the file's
// virtual addresses. `name` points into the ElfFile (or other owner) that
// produced it and lives as long as that owner.
struct ElfSymbol {
  uint64_t address = 0;
  uint64_t size = 0;
  absl::string_view name;
  // True for a global or weak symbol, false for a local (static) one.
  bool global = false;
};

// ElfSection
//
// A section header, name resolved.
struct ElfSection {
  absl::string_view name;
  uint32_t type = 0;
  uint64_t flags = 0;
  uint64_t address = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint32_t link = 0;
  uint64_t entsize = 0;
};

// ElfLoadSegment
//
// A PT_LOAD program header: file bytes [file_offset, file_offset + filesz)
// appear at virtual addresses [vaddr, vaddr + memsz).
struct ElfLoadSegment {
  uint64_t vaddr = 0;
  uint64_t memsz = 0;
  uint64_t file_offset = 0;
  uint64_t filesz = 0;
  uint32_t flags = 0;  // PF_R | PF_W | PF_X
};

class ElfFile {
 public:
  // Open()
  //
  // Maps `path` read-only and parses its headers. NotFound /
  // PermissionDenied when it cannot be opened, InvalidArgument when it is
  // not a 64-bit little-endian ELF file or its headers are corrupt.
  static absl::StatusOr<std::unique_ptr<ElfFile>> Open(absl::string_view path);

  // OpenFd()
  //
  // As Open(), from a descriptor the caller keeps ownership of (it may be
  // closed after the call). `display_name` is used in messages.
  static absl::StatusOr<std::unique_ptr<ElfFile>> OpenFd(int fd, absl::string_view display_name);

  // FromBytes()
  //
  // Parses an in-memory image (a vdso copied from /proc/PID/mem, a test
  // input). The ElfFile keeps the bytes.
  static absl::StatusOr<std::unique_ptr<ElfFile>> FromBytes(std::string bytes,
                                                            absl::string_view display_name);

  ~ElfFile();
  ElfFile(const ElfFile&) = delete;
  ElfFile& operator=(const ElfFile&) = delete;

  const std::string& display_name() const { return display_name_; }
  // The whole file image.
  absl::string_view bytes() const { return data_; }
  // ET_EXEC, ET_DYN (PIE executables and shared libraries), ET_REL, ...
  uint16_t elf_type() const { return elf_type_; }
  const std::vector<ElfSection>& sections() const { return sections_; }
  const std::vector<ElfLoadSegment>& load_segments() const { return load_segments_; }

  // FindSection()
  //
  // The first section named `name`, or nullptr.
  const ElfSection* FindSection(absl::string_view name) const;

  // SectionData()
  //
  // The bytes of `section` (empty for SHT_NOBITS, as in a debug file's
  // .text, and for a section that lies outside the file).
  absl::string_view SectionData(const ElfSection& section) const;

  // The GNU build id (.note.gnu.build-id) as lowercase hex, or empty.
  const std::string& build_id() const { return build_id_; }
  // The file name in .gnu_debuglink and its CRC-32, or empty / 0.
  const std::string& debuglink() const { return debuglink_; }
  uint32_t debuglink_crc() const { return debuglink_crc_; }

  bool has_symtab() const { return FindSectionOfType(SHT_SYMTAB) != nullptr; }
  bool has_dynsym() const { return FindSectionOfType(SHT_DYNSYM) != nullptr; }
  // A debug file made by `objcopy --only-keep-debug`: .text is SHT_NOBITS.
  bool is_debug_only() const;

  // FunctionSymbols()
  //
  // Every defined function (STT_FUNC, STT_GNU_IFUNC) of .symtab and
  // .dynsym, unsorted, duplicates included. Entries with a bad name offset
  // are skipped. Names point into this ElfFile.
  std::vector<ElfSymbol> FunctionSymbols() const;

  // PltSymbols()
  //
  // One "name@plt" symbol per PLT stub that calls a named function through
  // .rela.plt (x86-64 and AArch64 lazy-binding PLTs, with or without the
  // IBT .plt.sec), so a sample in a stub is not a bare file offset. Empty
  // for other machines or when the tables are missing or inconsistent.
  const std::vector<ElfSymbol>& PltSymbols() const { return plt_symbols_; }

  // FileOffsetToVaddr()
  //
  // The virtual address at which the byte at file offset `offset` is
  // loaded, from the PT_LOAD segment holding it; nullopt when none does.
  std::optional<uint64_t> FileOffsetToVaddr(uint64_t offset) const;

 private:
  ElfFile() = default;
  absl::Status Parse();
  const ElfSection* FindSectionOfType(uint32_t type) const;
  absl::Status Corrupt(absl::string_view what) const;
  void ParsePlt(uint16_t machine);

  std::string display_name_;
  // The image: either an mmap'ed file (mapped_ != nullptr) or owned_.
  void* mapped_ = nullptr;
  size_t mapped_size_ = 0;
  std::string owned_;
  absl::string_view data_;

  uint16_t elf_type_ = 0;
  std::vector<ElfSection> sections_;
  std::vector<ElfLoadSegment> load_segments_;
  std::string build_id_;
  std::string debuglink_;
  uint32_t debuglink_crc_ = 0;
  // Names of plt_symbols_; filled before plt_symbols_ points into it and
  // never changed after.
  std::vector<std::string> plt_names_;
  std::vector<ElfSymbol> plt_symbols_;
};

// Implementation details follow.

namespace symbol_internal {

template <typename T>
bool ReadStruct(absl::string_view data, uint64_t offset, T* out) {
  if (offset > data.size() || data.size() - offset < sizeof(T)) return false;
  memcpy(out, data.data() + offset, sizeof(T));
  return true;
}

// A NUL-terminated string at `offset` inside `table`, or nullopt.
inline std::optional<absl::string_view> StringAt(absl::string_view table, uint64_t offset) {
  if (offset >= table.size()) return std::nullopt;
  const char* begin = table.data() + offset;
  const void* nul = memchr(begin, '\0', table.size() - offset);
  if (nul == nullptr) return std::nullopt;
  return absl::string_view(begin, static_cast<const char*>(nul) - begin);
}

inline uint64_t AlignUp4(uint64_t v) { return (v + 3) & ~uint64_t{3}; }

// The GNU build id in a run of ELF notes, as lowercase hex, or empty.
inline std::string FindBuildIdNote(absl::string_view notes) {
  uint64_t pos = 0;
  while (pos + sizeof(Elf64_Nhdr) <= notes.size()) {
    Elf64_Nhdr nh;
    memcpy(&nh, notes.data() + pos, sizeof(nh));
    uint64_t name_pos = pos + sizeof(Elf64_Nhdr);
    uint64_t desc_pos = name_pos + AlignUp4(nh.n_namesz);
    if (desc_pos > notes.size() || nh.n_descsz > notes.size() - desc_pos) break;
    if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
        notes.substr(name_pos, 4) == absl::string_view("GNU\0", 4) && nh.n_descsz > 0) {
      return absl::BytesToHexString(notes.substr(desc_pos, nh.n_descsz));
    }
    pos = desc_pos + AlignUp4(nh.n_descsz);
  }
  return std::string();
}

}  // namespace symbol_internal

inline ElfFile::~ElfFile() {
  if (mapped_ != nullptr) ::munmap(mapped_, mapped_size_);
}

inline absl::StatusOr<std::unique_ptr<ElfFile>> ElfFile::Open(absl::string_view path) {
  std::string p(path);
  // O_NONBLOCK: opening a FIFO must not hang (OpenFd then rejects it).
  ScopedFd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) return symbol_internal::FileErrorStatus(errno, "cannot open ELF file", path);
  return OpenFd(fd.get(), path);
}

inline absl::StatusOr<std::unique_ptr<ElfFile>> ElfFile::OpenFd(int fd,
                                                                absl::string_view display_name) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return symbol_internal::FileErrorStatus(errno, "cannot stat", display_name);
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(display_name, ": not an ELF file (not a regular file)"));
  }
  if (st.st_size == 0) {
    return absl::InvalidArgumentError(absl::StrCat(display_name, ": not an ELF file (empty)"));
  }
  std::unique_ptr<ElfFile> elf(new ElfFile());
  elf->display_name_ = std::string(display_name);
  void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot mmap ", display_name));
  }
  elf->mapped_ = p;
  elf->mapped_size_ = static_cast<size_t>(st.st_size);
  elf->data_ = absl::string_view(static_cast<const char*>(p), elf->mapped_size_);
  FLAMEKIT_RETURN_IF_ERROR(elf->Parse());
  return elf;
}

inline absl::StatusOr<std::unique_ptr<ElfFile>> ElfFile::FromBytes(std::string bytes,
                                                                   absl::string_view display_name) {
  std::unique_ptr<ElfFile> elf(new ElfFile());
  elf->display_name_ = std::string(display_name);
  elf->owned_ = std::move(bytes);
  elf->data_ = elf->owned_;
  FLAMEKIT_RETURN_IF_ERROR(elf->Parse());
  return elf;
}

inline absl::Status ElfFile::Corrupt(absl::string_view what) const {
  return absl::InvalidArgumentError(
      absl::StrCat(display_name_, ": corrupt ELF file (", what,
                   "); the file may be truncated or damaged: reinstall it or rebuild it"));
}

inline absl::Status ElfFile::Parse() {
  using symbol_internal::ReadStruct;
  if (data_.size() < SELFMAG || memcmp(data_.data(), ELFMAG, SELFMAG) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(display_name_, ": not an ELF file (no \\177ELF magic)"));
  }
  if (data_.size() < EI_NIDENT) {
    return absl::InvalidArgumentError(absl::StrCat(display_name_, ": truncated ELF header"));
  }
  unsigned char cls = static_cast<unsigned char>(data_[EI_CLASS]);
  unsigned char enc = static_cast<unsigned char>(data_[EI_DATA]);
  if (cls != ELFCLASS64) {
    return absl::InvalidArgumentError(absl::StrCat(
        display_name_, ": ", cls == ELFCLASS32 ? "a 32-bit ELF file" : "an ELF file of unknown class",
        "; flamekit reads only 64-bit ELF (profile 64-bit processes)"));
  }
  if (enc != ELFDATA2LSB) {
    return absl::InvalidArgumentError(
        absl::StrCat(display_name_, ": a big-endian ELF file; flamekit reads only little-endian ELF"));
  }
  Elf64_Ehdr eh;
  if (!ReadStruct(data_, 0, &eh)) {
    return absl::InvalidArgumentError(absl::StrCat(display_name_, ": truncated ELF header"));
  }
  elf_type_ = eh.e_type;

  // Program headers: PT_LOAD segments.
  if (eh.e_phnum != 0) {
    if (eh.e_phentsize != sizeof(Elf64_Phdr)) return Corrupt("bad e_phentsize");
    for (uint32_t i = 0; i < eh.e_phnum; ++i) {
      Elf64_Phdr ph;
      if (!ReadStruct(data_, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr), &ph)) {
        return Corrupt("program headers end past the end of the file");
      }
      if (ph.p_type != PT_LOAD) continue;
      ElfLoadSegment seg;
      seg.vaddr = ph.p_vaddr;
      seg.memsz = ph.p_memsz;
      seg.file_offset = ph.p_offset;
      seg.filesz = ph.p_filesz;
      seg.flags = ph.p_flags;
      load_segments_.push_back(seg);
    }
  }

  // Section headers (a file with none, e.g. a stripped-to-the-bone one, is
  // still usable through its segments).
  if (eh.e_shoff != 0) {
    if (eh.e_shentsize != sizeof(Elf64_Shdr)) return Corrupt("bad e_shentsize");
    Elf64_Shdr first;
    if (!ReadStruct(data_, eh.e_shoff, &first)) {
      return Corrupt("section headers start past the end of the file");
    }
    uint64_t shnum = eh.e_shnum;
    uint64_t shstrndx = eh.e_shstrndx;
    if (shnum == 0) shnum = first.sh_size;            // extended numbering
    if (shstrndx == SHN_XINDEX) shstrndx = first.sh_link;
    uint64_t max_count = (data_.size() - eh.e_shoff) / sizeof(Elf64_Shdr);
    if (shnum > max_count) return Corrupt("section headers end past the end of the file");
    std::vector<Elf64_Shdr> raw(shnum);
    for (uint64_t i = 0; i < shnum; ++i) {
      ReadStruct(data_, eh.e_shoff + i * sizeof(Elf64_Shdr), &raw[i]);
    }
    absl::string_view shstrtab;
    if (shstrndx != SHN_UNDEF && shstrndx < shnum) {
      const Elf64_Shdr& s = raw[shstrndx];
      if (s.sh_type != SHT_NOBITS && s.sh_offset <= data_.size() &&
          s.sh_size <= data_.size() - s.sh_offset) {
        shstrtab = data_.substr(s.sh_offset, s.sh_size);
      }
    }
    sections_.reserve(shnum);
    for (const Elf64_Shdr& s : raw) {
      ElfSection sec;
      sec.name = symbol_internal::StringAt(shstrtab, s.sh_name).value_or(absl::string_view());
      sec.type = s.sh_type;
      sec.flags = s.sh_flags;
      sec.address = s.sh_addr;
      sec.offset = s.sh_offset;
      sec.size = s.sh_size;
      sec.link = s.sh_link;
      sec.entsize = s.sh_entsize;
      sections_.push_back(sec);
    }
  }

  // Build id: the first NT_GNU_BUILD_ID note of any SHT_NOTE section.
  for (const ElfSection& sec : sections_) {
    if (sec.type == SHT_NOTE && build_id_.empty()) {
      build_id_ = symbol_internal::FindBuildIdNote(SectionData(sec));
    }
  }

  // No section headers (a file stripped of them, a memory image): the
  // note may still be found through the PT_NOTE program headers.
  if (build_id_.empty() && eh.e_phnum != 0) {
    for (uint32_t i = 0; i < eh.e_phnum && build_id_.empty(); ++i) {
      Elf64_Phdr ph;
      if (!ReadStruct(data_, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr), &ph)) break;
      if (ph.p_type != PT_NOTE || ph.p_offset > data_.size() ||
          ph.p_filesz > data_.size() - ph.p_offset) {
        continue;
      }
      build_id_ = symbol_internal::FindBuildIdNote(data_.substr(ph.p_offset, ph.p_filesz));
    }
  }

  ParsePlt(eh.e_machine);

  // .gnu_debuglink: a file name, padding to 4 bytes, a CRC-32.
  if (const ElfSection* link = FindSection(".gnu_debuglink")) {
    absl::string_view d = SectionData(*link);
    std::optional<absl::string_view> name = symbol_internal::StringAt(d, 0);
    if (name && !name->empty()) {
      uint64_t crc_pos = symbol_internal::AlignUp4(name->size() + 1);
      debuglink_ = std::string(*name);
      if (crc_pos + 4 <= d.size()) memcpy(&debuglink_crc_, d.data() + crc_pos, 4);
    }
  }
  return absl::OkStatus();
}

inline void ElfFile::ParsePlt(uint16_t machine) {
  // Lazy-binding PLT layout: a header (16 bytes on x86-64, 32 on AArch64),
  // then one 16-byte stub per .got.plt slot after the 3 reserved ones; with
  // IBT (x86-64 -fcf-protection) the stubs called by code are in .plt.sec,
  // 16 bytes each, without a header.
  uint64_t header;
  if (machine == EM_X86_64) {
    header = 16;
  } else if (machine == EM_AARCH64) {
    header = 32;
  } else {
    return;
  }
  const ElfSection* rela = FindSection(".rela.plt");
  // The slot a relocation fills tells which stub jumps through it. Linked
  // with -z now, .got.plt may be folded into .got: then stubs follow the
  // relocations' order.
  const ElfSection* got = FindSection(".got.plt");
  const ElfSection* plt_sec = FindSection(".plt.sec");
  const ElfSection* plt = FindSection(".plt");
  if (rela == nullptr || plt == nullptr || rela->link >= sections_.size()) return;
  const ElfSection& dynsym = sections_[rela->link];
  if (dynsym.link >= sections_.size()) return;
  absl::string_view relocs = SectionData(*rela);
  absl::string_view syms = SectionData(dynsym);
  absl::string_view strtab = SectionData(sections_[dynsym.link]);
  const ElfSection& stubs = plt_sec != nullptr ? *plt_sec : *plt;
  uint64_t first = plt_sec != nullptr ? 0 : header;
  std::vector<std::pair<uint64_t, std::string>> found;
  size_t count = relocs.size() / sizeof(Elf64_Rela);
  for (size_t i = 0; i < count; ++i) {
    Elf64_Rela r;
    memcpy(&r, relocs.data() + i * sizeof(r), sizeof(r));
    uint64_t sym_index = ELF64_R_SYM(r.r_info);
    if (sym_index == 0) continue;  // IRELATIVE: no name
    uint64_t index = i;  // the stub's index among the stubs
    if (got != nullptr) {
      // .got.plt: 3 reserved slots, then one per stub.
      if (r.r_offset < got->address + 24 || r.r_offset - got->address >= got->size) continue;
      index = (r.r_offset - got->address) / 8 - 3;
    }
    if (index > stubs.size / 16) continue;
    uint64_t stub = stubs.address + first + index * 16;
    if (stub < stubs.address || stub + 16 > stubs.address + stubs.size) continue;
    Elf64_Sym sym;
    if (sym_index >= syms.size() / sizeof(Elf64_Sym)) continue;
    memcpy(&sym, syms.data() + sym_index * sizeof(sym), sizeof(sym));
    std::optional<absl::string_view> name = symbol_internal::StringAt(strtab, sym.st_name);
    if (!name || name->empty()) continue;
    found.emplace_back(stub, absl::StrCat(*name, "@plt"));
  }
  plt_names_.reserve(found.size());
  for (auto& f : found) plt_names_.push_back(std::move(f.second));
  // plt_names_ no longer grows: its strings stay where they are.
  for (size_t i = 0; i < found.size(); ++i) {
    plt_symbols_.push_back(ElfSymbol{found[i].first, 16, plt_names_[i], false});
  }
}

inline const ElfSection* ElfFile::FindSection(absl::string_view name) const {
  for (const ElfSection& s : sections_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

inline const ElfSection* ElfFile::FindSectionOfType(uint32_t type) const {
  for (const ElfSection& s : sections_) {
    if (s.type == type) return &s;
  }
  return nullptr;
}

inline absl::string_view ElfFile::SectionData(const ElfSection& section) const {
  if (section.type == SHT_NOBITS || section.offset > data_.size() ||
      section.size > data_.size() - section.offset) {
    return absl::string_view();
  }
  return data_.substr(section.offset, section.size);
}

inline bool ElfFile::is_debug_only() const {
  const ElfSection* text = FindSection(".text");
  return text != nullptr && text->type == SHT_NOBITS;
}

inline std::vector<ElfSymbol> ElfFile::FunctionSymbols() const {
  std::vector<ElfSymbol> out;
  for (const ElfSection& sec : sections_) {
    if (sec.type != SHT_SYMTAB && sec.type != SHT_DYNSYM) continue;
    if (sec.entsize != 0 && sec.entsize != sizeof(Elf64_Sym)) continue;
    if (sec.link >= sections_.size()) continue;
    absl::string_view syms = SectionData(sec);
    absl::string_view strtab = SectionData(sections_[sec.link]);
    size_t count = syms.size() / sizeof(Elf64_Sym);
    out.reserve(out.size() + count);
    for (size_t i = 1; i < count; ++i) {  // entry 0 is the null symbol
      Elf64_Sym sym;
      memcpy(&sym, syms.data() + i * sizeof(Elf64_Sym), sizeof(sym));
      unsigned type = ELF64_ST_TYPE(sym.st_info);
      if (type != STT_FUNC && type != STT_GNU_IFUNC) continue;
      if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0) continue;
      std::optional<absl::string_view> name = symbol_internal::StringAt(strtab, sym.st_name);
      if (!name || name->empty()) continue;
      unsigned bind = ELF64_ST_BIND(sym.st_info);
      out.push_back(ElfSymbol{sym.st_value, sym.st_size, *name,
                              bind == STB_GLOBAL || bind == STB_WEAK});
    }
  }
  return out;
}

inline std::optional<uint64_t> ElfFile::FileOffsetToVaddr(uint64_t offset) const {
  for (const ElfLoadSegment& seg : load_segments_) {
    if (offset >= seg.file_offset && offset - seg.file_offset < seg.filesz) {
      return seg.vaddr + (offset - seg.file_offset);
    }
  }
  return std::nullopt;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_ELF_READER_H_
