// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/symbolizer.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

// Functions of the test binary itself. extern "C" and noinline so they are
// real, named functions in .symtab.
extern "C" __attribute__((noinline)) int FkSymbolTestTarget(int x) {
  asm volatile("" ::: "memory");
  return x * 2 + 1;
}

namespace fk_symbol_test {
__attribute__((noinline)) int CxxTarget(int x) {
  asm volatile("" ::: "memory");
  return x * 4 + 1;
}
}  // namespace fk_symbol_test

// Only in .symtab: static functions are never exported in .dynsym.
static __attribute__((noinline)) int FkStaticOnlyInSymtab(int x) {
  asm volatile("" ::: "memory");
  return x * 3 + 2;
}

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::StartsWith;

uint64_t Addr(const void* p) { return reinterpret_cast<uint64_t>(p); }
template <typename F>
uint64_t FnAddr(F* f) {
  return reinterpret_cast<uint64_t>(reinterpret_cast<void*>(f));
}

std::string Runfile(absl::string_view rel) {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/flamekit/", rel);
  return std::string(rel);
}

std::string TempDir() {
  const char* t = getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

std::string SelfExeBasename() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  std::string p(buf, n > 0 ? n : 0);
  return p.substr(p.rfind('/') + 1);
}

TEST(SymbolizerTest, NamesFunctionsOfThisExecutable) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  EXPECT_EQ(FkSymbolTestTarget(1), 3);
  Symbolizer::Symbol sym = s->Lookup(FnAddr(&FkSymbolTestTarget));
  EXPECT_EQ(sym.name, "FkSymbolTestTarget");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
  // An address inside the function, not only its first byte.
  sym = s->Lookup(FnAddr(&FkSymbolTestTarget) + 2);
  EXPECT_EQ(sym.name, "FkSymbolTestTarget");
  // A C++ function, demangled.
  sym = s->Lookup(FnAddr(&fk_symbol_test::CxxTarget));
  EXPECT_EQ(sym.name, "fk_symbol_test::CxxTarget(int)");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
}

TEST(SymbolizerTest, NamesStaticFunctionOnlyInSymtab) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  EXPECT_EQ(FkStaticOnlyInSymtab(1), 5);
  Symbolizer::Symbol sym = s->Lookup(FnAddr(&FkStaticOnlyInSymtab));
  EXPECT_EQ(sym.name, "FkStaticOnlyInSymtab(int)");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
}

TEST(SymbolizerTest, NamesLibcFunction) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  void* qsort_addr = dlsym(RTLD_DEFAULT, "qsort");
  ASSERT_NE(qsort_addr, nullptr);
  Symbolizer::Symbol sym = s->Lookup(Addr(qsort_addr));
  EXPECT_EQ(sym.name, "qsort");
  EXPECT_EQ(sym.kind, FrameKind::kLibrary);
}

TEST(SymbolizerTest, AddressBetweenSymbolsIsFileOffsetNotNeighbour) {
  // Find padding between two functions of this executable: an address no
  // symbol contains. Its name must be "exe+0xOFFSET", not the function
  // before it.
  std::string exe = "/proc/self/exe";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(exe));
  SymbolTable table(elf->FunctionSymbols());
  const ElfSection* text = elf->FindSection(".text");
  ASSERT_NE(text, nullptr);
  uint64_t gap = 0;
  const std::vector<ElfSymbol>& syms = table.symbols();
  for (size_t i = 0; i + 1 < syms.size(); ++i) {
    uint64_t end = syms[i].address + syms[i].size;
    if (syms[i].size != 0 && end < syms[i + 1].address && end >= text->address &&
        end < text->address + text->size && table.Find(end) == nullptr) {
      gap = end;
      break;
    }
  }
  ASSERT_NE(gap, 0u) << "no padding between functions in .text";
  // Runtime address: this executable's load bias from a known function.
  const ElfSymbol* target = nullptr;
  for (const ElfSymbol& sym : syms) {
    if (sym.name == "FkSymbolTestTarget") target = &sym;
  }
  ASSERT_NE(target, nullptr);
  uint64_t bias = FnAddr(&FkSymbolTestTarget) - target->address;
  // File offset of the gap, from the segment that holds it.
  uint64_t file_offset = 0;
  for (const ElfLoadSegment& seg : elf->load_segments()) {
    if (gap >= seg.vaddr && gap < seg.vaddr + seg.filesz) file_offset = gap - seg.vaddr + seg.file_offset;
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  Symbolizer::Symbol sym = s->Lookup(gap + bias);
  EXPECT_EQ(sym.name, absl::StrCat(SelfExeBasename(), "+0x", absl::Hex(file_offset)));
  EXPECT_EQ(sym.kind, FrameKind::kUnknown);
}

TEST(SymbolizerTest, LibraryAddressWithoutSymbolIsFileOffset) {
  // liblzma (and most of Debian's libraries) export few symbols and keep no
  // .symtab: an address inside .text that no .dynsym symbol covers must be
  // named lib+0xOFFSET, whatever exported function precedes it.
  void* handle = dlopen("liblzma.so.5", RTLD_NOW);
  if (handle == nullptr) GTEST_SKIP() << "liblzma.so.5 not installed: " << dlerror();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  const Mapping* lib = nullptr;
  for (const Mapping& m : s->mappings()) {
    if (m.executable && absl::StrContains(m.path, "liblzma.so")) lib = &m;
  }
  ASSERT_NE(lib, nullptr);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(lib->path));
  if (elf->has_symtab()) GTEST_SKIP() << "liblzma has a .symtab here";
  SymbolTable table(elf->FunctionSymbols());
  // Walk the executable mapping for an address no symbol covers, with an
  // exported symbol before it.
  uint64_t found = 0, offset = 0;
  for (uint64_t a = lib->start + 0x100; a < lib->end; a += 0x40) {
    uint64_t off = a - lib->start + lib->file_offset;
    std::optional<uint64_t> vaddr = elf->FileOffsetToVaddr(off);
    if (!vaddr || table.Find(*vaddr) != nullptr) continue;
    bool has_preceding = false;
    for (const ElfSymbol& sym : table.symbols()) has_preceding |= sym.address < *vaddr;
    if (!has_preceding) continue;
    found = a;
    offset = off;
    break;
  }
  ASSERT_NE(found, 0u);
  Symbolizer::Symbol sym = s->Lookup(found);
  std::string base = lib->path.substr(lib->path.rfind('/') + 1);
  EXPECT_EQ(sym.name, absl::StrCat(base, "+0x", absl::Hex(offset)));
  EXPECT_EQ(sym.kind, FrameKind::kUnknown);
  dlclose(handle);
}

TEST(SymbolizerTest, FindsLibraryLoadedAfterCreationOnRefresh) {
  SymbolizerOptions options;
  options.refresh_on_miss = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  std::string path = Runfile("include/flamekit/symbol/libfk_symbol_test_dso.so");
  void* handle = dlopen(path.c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  void* fn = dlsym(handle, "FkDsoTarget");
  void* cxx = dlsym(handle, "_ZN7fk_test12DsoCxxTargetEi");
  ASSERT_NE(fn, nullptr);
  ASSERT_NE(cxx, nullptr);
  // Not mapped when the symbolizer read maps.
  EXPECT_EQ(s->Lookup(Addr(fn)).name, "[unknown]");
  ASSERT_THAT(s->Refresh(), IsOk());
  Symbolizer::Symbol sym = s->Lookup(Addr(fn));
  EXPECT_EQ(sym.name, "FkDsoTarget");
  EXPECT_EQ(sym.kind, FrameKind::kLibrary);
  EXPECT_EQ(s->Lookup(Addr(cxx)).name, "fk_test::DsoCxxTarget(int)");
  dlclose(handle);
}

TEST(SymbolizerTest, RefreshOnMissFindsNewLibraryWithoutExplicitRefresh) {
  SymbolizerOptions options;
  options.refresh_interval = absl::ZeroDuration();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  std::string path = Runfile("include/flamekit/symbol/libfk_symbol_test_dso.so");
  void* handle = dlopen(path.c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  void* fn = dlsym(handle, "FkDsoTarget");
  ASSERT_NE(fn, nullptr);
  EXPECT_EQ(s->Lookup(Addr(fn)).name, "FkDsoTarget");
  dlclose(handle);
}

TEST(SymbolizerTest, ParsesEachFileOnceAndCachesAddresses) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  s->Lookup(FnAddr(&FkSymbolTestTarget));
  size_t parsed = s->files_parsed();
  EXPECT_EQ(parsed, 1u);
  s->Lookup(FnAddr(&fk_symbol_test::CxxTarget));
  s->Lookup(FnAddr(&FkStaticOnlyInSymtab));
  EXPECT_EQ(s->files_parsed(), parsed);
  EXPECT_EQ(s->cached_addresses(), 3u);
  // Refresh forgets addresses but keeps parsed files.
  ASSERT_THAT(s->Refresh(), IsOk());
  EXPECT_EQ(s->cached_addresses(), 0u);
  EXPECT_EQ(s->Lookup(FnAddr(&FkSymbolTestTarget)).name, "FkSymbolTestTarget");
  EXPECT_EQ(s->files_parsed(), parsed);
}

TEST(SymbolizerTest, ForProcessOfMissingPidIsNotFound) {
  // A pid that existed and is gone: a reaped child.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(0);
  int status;
  waitpid(pid, &status, 0);
  EXPECT_THAT(Symbolizer::ForProcess(pid),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no process")));
  EXPECT_THAT(Symbolizer::ForProcess(-5), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Symbolizer::ForProcess(0), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(SymbolizerTest, NamesJitCodeFromPerfMap) {
  std::string dir = absl::StrCat(TempDir(), "/perfmap_", getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  size_t len = 4096 * 4;
  void* code = mmap(nullptr, len, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(code, MAP_FAILED);
  uint64_t base = Addr(code);
  {
    std::ofstream map(absl::StrCat(dir, "/perf-", getpid(), ".map"));
    map << absl::StrCat(absl::Hex(base)) << " 100 LazyCompile:*fib /app/fib.js:3\n";
    map << "0x" << absl::StrCat(absl::Hex(base + 0x200)) << " 0x80 Interpreter\n";
  }
  SymbolizerOptions options;
  options.perf_map_dir = dir;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  Symbolizer::Symbol sym = s->Lookup(base + 0x10);
  EXPECT_EQ(sym.name, "LazyCompile:*fib /app/fib.js:3");
  EXPECT_EQ(sym.kind, FrameKind::kJit);
  EXPECT_EQ(s->Lookup(base + 0x27f).name, "Interpreter");
  // Between the two entries: nobody's code.
  sym = s->Lookup(base + 0x150);
  EXPECT_EQ(sym.kind, FrameKind::kUnknown);
  EXPECT_EQ(sym.name, "[unknown]");
  munmap(code, len);
  unlink(absl::StrCat(dir, "/perf-", getpid(), ".map").c_str());
  rmdir(dir.c_str());
}

TEST(SymbolizerTest, RestrictedKallsymsGivesKernelPlaceholder) {
  std::string path = absl::StrCat(TempDir(), "/kallsyms_zero_", getpid());
  {
    std::ofstream f(path);
    f << "0000000000000000 T _text\n0000000000000000 T schedule\n0000000000000000 t foo\t[mod]\n";
  }
  SymbolizerOptions options;
  options.kallsyms_path = path;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  Symbolizer::Symbol sym = s->Lookup(0xffffffff81000010ull);
  EXPECT_EQ(sym.name, "[kernel]");
  EXPECT_EQ(sym.kind, FrameKind::kKernel);
  std::vector<std::string> warnings = s->Warnings();
  ASSERT_FALSE(warnings.empty());
  EXPECT_THAT(warnings.back(), HasSubstr("kptr_restrict to 0"));
  unlink(path.c_str());
}

TEST(SymbolizerTest, NamesVdsoFunctions) {
  uint64_t vdso = getauxval(AT_SYSINFO_EHDR);
  if (vdso == 0) GTEST_SKIP() << "no vdso";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  const Mapping* m = nullptr;
  for (const Mapping& map : s->mappings()) {
    if (map.IsVdso()) m = &map;
  }
  ASSERT_NE(m, nullptr);
  std::string bytes(reinterpret_cast<const char*>(m->start), m->size());
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::FromBytes(bytes, "[vdso]"));
  uint64_t target = 0;
  for (const ElfSymbol& sym : elf->FunctionSymbols()) {
    if (sym.name == "__vdso_clock_gettime") target = sym.address;
  }
  ASSERT_NE(target, 0u);
  Symbolizer::Symbol sym = s->Lookup(m->start + target + 1);
  EXPECT_THAT(sym.name, HasSubstr("clock_gettime"));
  EXPECT_EQ(sym.kind, FrameKind::kLibrary);
}

}  // namespace
}  // namespace flamekit
