// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/elf_reader.h"
#include "flamekit/symbol/symbol_table.h"

#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

extern "C" __attribute__((noinline)) int FkElfReaderTestFunction(int x) {
  asm volatile("" ::: "memory");
  return x + 11;
}

namespace flamekit {
namespace {

using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

std::string Runfile(absl::string_view rel) {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/flamekit/", rel);
  return std::string(rel);
}

std::string ReadAll(const std::string& path) {
  absl::StatusOr<std::string> s = ReadSmallFile(path);
  return s.ok() ? *s : std::string();
}

const ElfSymbol* FindByName(const std::vector<ElfSymbol>& syms, absl::string_view name) {
  for (const ElfSymbol& s : syms) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

// The build id of this executable, read from its loaded PT_NOTE segment
// through dl_iterate_phdr: a path independent of ElfFile.
std::string BuildIdFromMemory() {
  std::string out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) -> int {
        auto* result = static_cast<std::string*>(data);
        for (int i = 0; i < info->dlpi_phnum; ++i) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_NOTE) continue;
          const char* p = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
          const char* end = p + ph.p_memsz;
          while (p + sizeof(ElfW(Nhdr)) <= end) {
            const auto* nh = reinterpret_cast<const ElfW(Nhdr)*>(p);
            const char* name = p + sizeof(*nh);
            const char* desc = name + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && memcmp(name, "GNU", 4) == 0) {
              *result = absl::BytesToHexString(absl::string_view(desc, nh->n_descsz));
              return 1;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
          }
        }
        return 1;  // the first object is the executable
      },
      &out);
  return out;
}

TEST(ElfFileTest, ReadsThisExecutable) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open("/proc/self/exe"));
  EXPECT_TRUE(elf->elf_type() == ET_DYN || elf->elf_type() == ET_EXEC);
  EXPECT_TRUE(elf->has_symtab());
  EXPECT_FALSE(elf->is_debug_only());
  EXPECT_FALSE(elf->load_segments().empty());
  EXPECT_NE(elf->FindSection(".text"), nullptr);
  EXPECT_EQ(elf->FindSection(".no_such_section"), nullptr);
  std::vector<ElfSymbol> syms = elf->FunctionSymbols();
  const ElfSymbol* fn = FindByName(syms, "FkElfReaderTestFunction");
  ASSERT_NE(fn, nullptr);
  EXPECT_GT(fn->size, 0u);
  EXPECT_TRUE(fn->global);
  // The file's vaddr and the runtime address differ by the load bias, which
  // is page aligned.
  uint64_t runtime = reinterpret_cast<uint64_t>(&FkElfReaderTestFunction);
  EXPECT_EQ((runtime - fn->address) % 4096, 0u);
  // The build id equals the one the loader mapped.
  std::string from_memory = BuildIdFromMemory();
  if (from_memory.empty()) GTEST_SKIP() << "this executable has no build id note";
  EXPECT_EQ(elf->build_id(), from_memory);
}

TEST(ElfFileTest, MapsFileOffsetsThroughLoadSegments) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open("/proc/self/exe"));
  const ElfSection* text = elf->FindSection(".text");
  ASSERT_NE(text, nullptr);
  // For an allocated section, sh_offset maps to sh_addr.
  EXPECT_EQ(elf->FileOffsetToVaddr(text->offset), text->address);
  EXPECT_EQ(elf->FileOffsetToVaddr(text->offset + 5), text->address + 5);
  // Past the last byte of every segment: nothing.
  uint64_t max_end = 0;
  for (const ElfLoadSegment& seg : elf->load_segments()) {
    max_end = std::max(max_end, seg.file_offset + seg.filesz);
  }
  EXPECT_EQ(elf->FileOffsetToVaddr(max_end + 4096 * 1024), std::nullopt);
}

TEST(ElfFileTest, LibcHasDynsymButNoSymtab) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf,
                                ElfFile::Open("/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_EQ(elf->elf_type(), ET_DYN);
  EXPECT_TRUE(elf->has_dynsym());
  if (elf->has_symtab()) GTEST_SKIP() << "this libc keeps .symtab";
  std::vector<ElfSymbol> syms = elf->FunctionSymbols();
  EXPECT_NE(FindByName(syms, "qsort"), nullptr);
  EXPECT_NE(FindByName(syms, "getpid"), nullptr);
  EXPECT_EQ(elf->build_id().size(), 40u);
}

TEST(ElfFileTest, SplitDebugFilesFromGenrule) {
  std::string dir = Runfile("include/flamekit/symbol/");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> full,
                                ElfFile::Open(dir + "symbol_test_helper"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> stripped,
                                ElfFile::Open(dir + "symbol_test_helper_stripped"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> debug,
                                ElfFile::Open(dir + "symbol_test_helper.debug"));
  ASSERT_FALSE(full->build_id().empty()) << "the toolchain does not emit build ids";
  EXPECT_EQ(stripped->build_id(), full->build_id());
  EXPECT_EQ(debug->build_id(), full->build_id());
  EXPECT_FALSE(stripped->has_symtab());
  EXPECT_EQ(FindByName(stripped->FunctionSymbols(), "FkHelperSpin"), nullptr);
  EXPECT_EQ(stripped->debuglink(), "symbol_test_helper.debug");
  EXPECT_NE(stripped->debuglink_crc(), 0u);
  EXPECT_TRUE(debug->is_debug_only());
  EXPECT_TRUE(debug->has_symtab());
  std::vector<ElfSymbol> debug_symbols = debug->FunctionSymbols();
  std::vector<ElfSymbol> full_symbols = full->FunctionSymbols();
  const ElfSymbol* in_debug = FindByName(debug_symbols, "FkHelperSpin");
  const ElfSymbol* in_full = FindByName(full_symbols, "FkHelperSpin");
  ASSERT_NE(in_debug, nullptr);
  ASSERT_NE(in_full, nullptr);
  EXPECT_EQ(in_debug->address, in_full->address);
  EXPECT_EQ(in_debug->size, in_full->size);
}

TEST(ElfFileTest, ReadsTinyStaticExecutableExactly) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf,
                                ElfFile::Open(Runfile("testdata/elf/tiny_static.elf")));
  EXPECT_EQ(elf->elf_type(), ET_EXEC);
  EXPECT_TRUE(elf->has_symtab());
  EXPECT_FALSE(elf->has_dynsym());
  EXPECT_EQ(elf->build_id().size(), 40u);
  std::vector<ElfSymbol> syms = elf->FunctionSymbols();
  ASSERT_EQ(syms.size(), 3u);
  const ElfSymbol* helper = FindByName(syms, "helper");
  const ElfSymbol* global = FindByName(syms, "tiny_global");
  const ElfSymbol* start = FindByName(syms, "_start");
  ASSERT_TRUE(helper && global && start);
  EXPECT_EQ(helper->address, 0x40010cu);
  EXPECT_EQ(helper->size, 4u);
  EXPECT_FALSE(helper->global);
  EXPECT_EQ(global->address, 0x400110u);
  EXPECT_EQ(global->size, 9u);
  EXPECT_TRUE(global->global);
  EXPECT_EQ(start->address, 0x400119u);
  EXPECT_EQ(start->size, 10u);
  // One RX segment at 0x400000 from offset 0: offset 0x110 is tiny_global.
  SymbolTable table(syms);
  std::optional<uint64_t> vaddr = elf->FileOffsetToVaddr(0x112);
  ASSERT_TRUE(vaddr.has_value());
  EXPECT_EQ(*vaddr, 0x400112u);
  EXPECT_EQ(table.Find(*vaddr)->name, "tiny_global");
  EXPECT_EQ(table.Find(0x400123), nullptr);  // past _start's 10 bytes
}

TEST(ElfFileTest, FindsBuildIdThroughProgramHeadersWithoutSections) {
  std::string bytes = ReadAll(Runfile("testdata/elf/tiny_static.elf"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> full, ElfFile::FromBytes(bytes, "tiny"));
  ASSERT_FALSE(full->build_id().empty());
  // Drop the section header table (e_shoff = e_shnum = e_shstrndx = 0).
  Elf64_Ehdr eh;
  memcpy(&eh, bytes.data(), sizeof(eh));
  eh.e_shoff = 0;
  eh.e_shnum = 0;
  eh.e_shstrndx = 0;
  memcpy(&bytes[0], &eh, sizeof(eh));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> bare, ElfFile::FromBytes(bytes, "bare"));
  EXPECT_TRUE(bare->sections().empty());
  EXPECT_TRUE(bare->FunctionSymbols().empty());
  EXPECT_EQ(bare->build_id(), full->build_id());
  EXPECT_EQ(bare->FileOffsetToVaddr(0x110), 0x400110u);
}

// "name@plt" labels objdump puts on the stubs of `section`, by address.
std::map<uint64_t, std::string> ObjdumpPltLabels(const std::string& file, const char* section) {
  std::map<uint64_t, std::string> out;
  std::string cmd = absl::StrCat("objdump -d -j ", section, " ", file, " 2>/dev/null");
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char line[1024];
  while (fgets(line, sizeof(line), p) != nullptr) {
    // 0000000000000760 <read@plt>:
    absl::string_view l(line);
    size_t lt = l.find(" <"), gt = l.find(">:");
    if (lt == absl::string_view::npos || gt == absl::string_view::npos || gt < lt) continue;
    std::string name(l.substr(lt + 2, gt - lt - 2));
    if (!absl::EndsWith(name, "@plt") || absl::StartsWith(name, "*ABS*")) continue;
    uint64_t addr = 0;
    if (absl::SimpleHexAtoi(l.substr(0, lt), &addr)) out[addr] = name;
  }
  pclose(p);
  return out;
}

void ExpectPltMatchesObjdump(const std::string& file) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(file));
  const char* section = elf->FindSection(".plt.sec") != nullptr ? ".plt.sec" : ".plt";
  std::map<uint64_t, std::string> expected = ObjdumpPltLabels(file, section);
  if (expected.empty()) GTEST_SKIP() << "objdump gave no @plt labels for " << file;
  std::map<uint64_t, std::string> got;
  for (const ElfSymbol& s : elf->PltSymbols()) got[s.address] = std::string(s.name);
  EXPECT_EQ(got, expected) << file;
}

TEST(ElfFileTest, PltStubsMatchObjdumpForHelper) {
  ExpectPltMatchesObjdump(Runfile("include/flamekit/symbol/symbol_test_helper"));
}

TEST(ElfFileTest, PltStubsMatchObjdumpForIbtPltSec) {
  std::string file = Runfile("include/flamekit/symbol/symbol_test_helper_ibt");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(file));
  if (elf->FindSection(".plt.sec") == nullptr) GTEST_SKIP() << "the linker made no .plt.sec";
  ExpectPltMatchesObjdump(file);
}

TEST(ElfFileTest, PltStubsMatchObjdumpWithBindNow) {
  std::string file = Runfile("include/flamekit/symbol/symbol_test_helper_now");
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(file));
  EXPECT_EQ(elf->FindSection(".got.plt"), nullptr);
  ExpectPltMatchesObjdump(file);
}

TEST(ElfFileTest, PltStubsMatchObjdumpForLibc) {
  ExpectPltMatchesObjdump("/lib/x86_64-linux-gnu/libc.so.6");
}

TEST(ElfFileTest, RejectsHandMadeBadFiles) {
  struct Case {
    const char* file;
    const char* message;
  };
  const Case kCases[] = {
      {"elf32_header.bin", "a 32-bit ELF file"},
      {"elf64_big_endian_header.bin", "big-endian"},
      {"elf64_section_headers_past_end.bin", "section headers start past the end"},
      {"elf64_program_headers_past_end.bin", "program headers end past the end"},
      {"not_elf.txt", "not an ELF file"},
      {"truncated_magic.bin", "not an ELF file"},
  };
  for (const Case& c : kCases) {
    std::string path = Runfile(absl::StrCat("testdata/elf/", c.file));
    EXPECT_THAT(ElfFile::Open(path),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.file;
  }
}

TEST(ElfFileTest, OpenErrorsAreClear) {
  EXPECT_THAT(ElfFile::Open("/nonexistent/libfoo.so"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/libfoo.so")));
  EXPECT_THAT(ElfFile::Open("/proc/self"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a regular file")));
  EXPECT_THAT(ElfFile::FromBytes("", "empty"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an ELF file")));
  std::string header_only("\177ELF\2\1\1", 7);
  EXPECT_THAT(ElfFile::FromBytes(header_only, "short"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("truncated ELF header")));
}

// Runs every accessor of a parsed file, so a corrupt input that parsed
// still gets its tables walked.
void Exercise(const ElfFile& elf) {
  for (const ElfSection& s : elf.sections()) elf.SectionData(s);
  SymbolTable table(elf.FunctionSymbols());
  for (const ElfSymbol& s : table.symbols()) {
    table.Find(s.address);
    ASSERT_LE(s.name.size(), 1u << 20);
  }
  for (uint64_t off = 0; off < 0x4000; off += 0x100) elf.FileOffsetToVaddr(off);
  (void)elf.build_id();
  (void)elf.is_debug_only();
}

TEST(ElfFileTest, TruncatedCopiesFailCleanly) {
  std::string bytes = ReadAll(Runfile("include/flamekit/symbol/symbol_test_helper"));
  ASSERT_GT(bytes.size(), 4096u);
  int rejected = 0;
  for (size_t len = 0; len < bytes.size(); len += (len < 256 ? 1 : 97)) {
    absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::FromBytes(bytes.substr(0, len), "cut");
    if (elf.ok()) {
      Exercise(**elf);
    } else {
      ++rejected;
      EXPECT_EQ(elf.status().code(), absl::StatusCode::kInvalidArgument) << len;
    }
  }
  // Section headers sit at the end of the file: every real cut loses them.
  EXPECT_GT(rejected, 100);
}

TEST(ElfFileTest, RandomMutationsNeverCrash) {
  std::string bytes = ReadAll(Runfile("include/flamekit/symbol/symbol_test_helper"));
  ASSERT_GT(bytes.size(), 4096u);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 3000; ++i) {
    std::string copy = bytes;
    int flips = 1 + static_cast<int>(rng() % 16);
    for (int j = 0; j < flips; ++j) {
      // Mostly the headers (ELF header, program headers, section headers at
      // the end), sometimes anywhere.
      size_t pos;
      switch (rng() % 3) {
        case 0: pos = rng() % 512; break;
        case 1: pos = copy.size() - 1 - rng() % std::min<size_t>(copy.size(), 2048); break;
        default: pos = rng() % copy.size();
      }
      copy[pos] = static_cast<char>(rng() & 0xff);
    }
    absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::FromBytes(copy, "mutated");
    if (elf.ok()) Exercise(**elf);
  }
  for (int i = 0; i < 2000; ++i) {
    std::string random(rng() % 2048, '\0');
    for (char& c : random) c = static_cast<char>(rng() & 0xff);
    if (random.size() >= 6 && rng() % 2 == 0) memcpy(&random[0], "\177ELF\2\1", 6);
    absl::StatusOr<std::unique_ptr<ElfFile>> elf = ElfFile::FromBytes(random, "random");
    if (elf.ok()) Exercise(**elf);
  }
}

TEST(SymbolTableTest, FindsContainingSymbolNeverNeighbour) {
  SymbolTable table({
      {0x1000, 0x100, "a", true},
      {0x1200, 0x10, "b", true},
      {0x1300, 0, "zero_size", true},
  });
  EXPECT_EQ(table.Find(0xfff), nullptr);
  ASSERT_NE(table.Find(0x1000), nullptr);
  EXPECT_EQ(table.Find(0x1000)->name, "a");
  EXPECT_EQ(table.Find(0x10ff)->name, "a");
  EXPECT_EQ(table.Find(0x1100), nullptr);  // after a, before b: nobody's
  EXPECT_EQ(table.Find(0x11ff), nullptr);
  EXPECT_EQ(table.Find(0x1205)->name, "b");
  EXPECT_EQ(table.Find(0x1210), nullptr);
  ASSERT_NE(table.Find(0x1300), nullptr);
  EXPECT_EQ(table.Find(0x1300)->name, "zero_size");
  EXPECT_EQ(table.Find(0x1301), nullptr);
  EXPECT_EQ(table.Find(UINT64_MAX), nullptr);
}

TEST(SymbolTableTest, NestedSymbolsGiveInnermost) {
  SymbolTable table({
      {0x1000, 0x1000, "outer", true},
      {0x1400, 0x100, "inner", false},
      {0x1800, 0x10, "inner2", true},
  });
  EXPECT_EQ(table.Find(0x1010)->name, "outer");
  EXPECT_EQ(table.Find(0x1450)->name, "inner");
  EXPECT_EQ(table.Find(0x1500)->name, "outer");  // back in outer after inner
  EXPECT_EQ(table.Find(0x1808)->name, "inner2");
  EXPECT_EQ(table.Find(0x1900)->name, "outer");
  EXPECT_EQ(table.Find(0x2000), nullptr);
}

TEST(SymbolTableTest, AliasesPreferGlobalSizedNames) {
  SymbolTable table({
      {0x1000, 0x20, "local_alias", false},
      {0x1000, 0, "label", true},
      {0x1000, 0x20, "global_name", true},
      {0x1000, 0x20, "global_name", true},  // .symtab and .dynsym both
  });
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.Find(0x1010)->name, "global_name");
}

TEST(SymbolTableTest, HugeSizesDoNotOverflow) {
  SymbolTable table({
      {UINT64_MAX - 0x10, 0x100, "wraps", true},
      {0x10, 0x10, "small", true},
  });
  EXPECT_EQ(table.Find(0x15)->name, "small");
  EXPECT_EQ(table.Find(0x25), nullptr);
  ASSERT_NE(table.Find(UINT64_MAX - 1), nullptr);
}

TEST(SymbolTableTest, HugeCorruptSymbolDoesNotMakeLookupsLinear) {
  // One symbol claims the whole address space, 100k small ones follow:
  // lookups of addresses between the small ones stay fast, and never name a
  // small neighbour.
  std::vector<ElfSymbol> syms;
  syms.push_back({0x1000, UINT64_MAX / 2, "huge", true});
  for (uint64_t i = 0; i < 100000; ++i) syms.push_back({0x10000 + i * 0x100, 0x10, "small", true});
  SymbolTable table(std::move(syms));
  for (uint64_t i = 0; i < 100000; i += 97) {
    const ElfSymbol* s = table.Find(0x10000 + i * 0x100 + 0x80);
    if (s != nullptr) {
      EXPECT_EQ(s->name, "huge");
    }
  }
  EXPECT_EQ(table.Find(0x10000 + 0x05)->name, "small");
  EXPECT_EQ(table.Find(0x2000)->name, "huge");
}

}  // namespace
}  // namespace flamekit
