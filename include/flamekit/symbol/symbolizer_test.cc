// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/symbol_table.h"
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

#include <algorithm>
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
  // libc's own qsort (RTLD_DEFAULT could find a sanitizer's interceptor).
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  ASSERT_NE(libc, nullptr) << dlerror();
  void* qsort_addr = dlsym(libc, "qsort");
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

TEST(SymbolizerTest, LookupAllRereadsMapsForAnAddressInNoMappingHoweverRecentTheLastRead) {
  // A profile keeps the first name it gets for an address: a batch must not
  // answer "[unknown]" for a library loaded just after the last re-read.
  SymbolizerOptions options;
  options.refresh_interval = absl::Hours(1);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  std::string path = Runfile("include/flamekit/symbol/libfk_symbol_test_dso.so");
  void* handle = dlopen(path.c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  uint64_t fn = Addr(dlsym(handle, "FkDsoTarget"));
  ASSERT_NE(fn, 0u);
  // A single lookup is rate-limited (maps were read at creation)...
  EXPECT_EQ(s->Lookup(fn).name, "[unknown]");
  // ...a batch is not.
  std::vector<Symbolizer::Symbol> named = s->LookupAll({FnAddr(&FkSymbolTestTarget), fn});
  ASSERT_EQ(named.size(), 2u);
  EXPECT_EQ(named[0].name, "FkSymbolTestTarget");
  EXPECT_EQ(named[1].name, "FkDsoTarget");
  EXPECT_EQ(named[1].kind, FrameKind::kLibrary);
  dlclose(handle);
}

TEST(SymbolizerTest, RefreshIfLibrariesChangedLearnsALibraryBeforeItIsUnloaded) {
  SymbolizerOptions options;
  options.refresh_on_miss = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  // Nothing loaded since creation: no re-read (the profiler asks every tick).
  EXPECT_FALSE(s->RefreshIfLibrariesChanged());
  std::string path = Runfile("include/flamekit/symbol/libfk_symbol_test_dso.so");
  void* handle = dlopen(path.c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  uint64_t fn = Addr(dlsym(handle, "FkDsoTarget"));
  ASSERT_NE(fn, 0u);
  EXPECT_TRUE(s->RefreshIfLibrariesChanged());
  EXPECT_FALSE(s->RefreshIfLibrariesChanged());
  ASSERT_EQ(dlclose(handle), 0);
  bool still_mapped = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<Mapping> now, ReadProcMaps(0));
  for (const Mapping& m : now) still_mapped |= m.Contains(fn);
  if (still_mapped) GTEST_SKIP() << "dlclose did not unmap the library";
  EXPECT_TRUE(s->RefreshIfLibrariesChanged());
  // Never looked up while it was loaded, named after it is gone.
  EXPECT_EQ(s->Lookup(fn).name, "FkDsoTarget");
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
  options.refresh_interval = absl::ZeroDuration();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  Symbolizer::Symbol sym = s->Lookup(base + 0x10);
  EXPECT_EQ(sym.name, "LazyCompile:*fib /app/fib.js:3");
  EXPECT_EQ(sym.kind, FrameKind::kJit);
  EXPECT_EQ(s->Lookup(base + 0x27f).name, "Interpreter");
  // Between the two entries: nobody's code (yet).
  sym = s->Lookup(base + 0x150);
  EXPECT_EQ(sym.kind, FrameKind::kUnknown);
  EXPECT_EQ(sym.name, "[unknown]");
  // perf reports JIT memory as "//anon" in MMAP2 records (attach mode):
  // still anonymous, still named from the perf map.
  Mapping anon;
  anon.start = base;
  anon.end = base + len;
  anon.executable = true;
  anon.path = "//anon";
  s->AddMapping(anon);
  EXPECT_EQ(s->Lookup(base + 0x10).name, "LazyCompile:*fib /app/fib.js:3");
  EXPECT_EQ(s->Lookup(base + 0x10).kind, FrameKind::kJit);
  // The runtime compiles more code and appends it: found without Refresh().
  {
    std::ofstream map(absl::StrCat(dir, "/perf-", getpid(), ".map"), std::ios::app);
    map << absl::StrCat(absl::Hex(base + 0x140)) << " 20 LazyCompile:*later\n";
  }
  sym = s->Lookup(base + 0x150);
  EXPECT_EQ(sym.name, "LazyCompile:*later");
  EXPECT_EQ(sym.kind, FrameKind::kJit);
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

TEST(SymbolizerTest, NamesLibcInternalFunctionFromInstalledDebugFile) {
  // Debian's libc keeps only .dynsym; libc6-dbg installs its .symtab under
  // /usr/lib/debug/.build-id/. A local (static) libc function can only be
  // named through that file.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  const Mapping* libc = nullptr;
  for (const Mapping& m : s->mappings()) {
    if (m.executable && absl::EndsWith(m.path, "/libc.so.6")) libc = &m;
  }
  ASSERT_NE(libc, nullptr);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(libc->path));
  absl::StatusOr<std::string> debug_path = FindDebugFile(*elf, libc->path);
  if (!debug_path.ok()) GTEST_SKIP() << "no libc debug file: " << debug_path.status();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> debug, ElfFile::Open(*debug_path));
  SymbolTable dynsym(elf->FunctionSymbols());
  // A local function of decent size, inside this executable mapping, that
  // .dynsym does not cover.
  const ElfSymbol* pick = nullptr;
  uint64_t runtime = 0;
  std::vector<ElfSymbol> debug_symbols = debug->FunctionSymbols();
  SymbolTable all(debug_symbols);
  for (const ElfSymbol& sym : debug_symbols) {
    if (sym.global || sym.size < 64 || dynsym.Find(sym.address + 8) != nullptr) continue;
    const ElfSymbol* innermost = all.Find(sym.address + 8);
    if (innermost == nullptr || innermost->name != sym.name) continue;  // nested or aliased
    for (const ElfLoadSegment& seg : elf->load_segments()) {
      if (sym.address < seg.vaddr || sym.address >= seg.vaddr + seg.filesz) continue;
      uint64_t off = sym.address - seg.vaddr + seg.file_offset;
      if (off >= libc->file_offset && off - libc->file_offset < libc->size()) {
        runtime = libc->start + (off - libc->file_offset) + 8;
        pick = &sym;
      }
    }
    if (pick != nullptr) break;
  }
  ASSERT_NE(pick, nullptr);
  Symbolizer::Symbol sym = s->Lookup(runtime);
  EXPECT_EQ(sym.name, Demangle(pick->name));
  EXPECT_EQ(sym.kind, FrameKind::kLibrary);
  // Without debug files the same address is libc.so.6+0xOFFSET.
  SymbolizerOptions options;
  options.use_debug_files = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> plain, Symbolizer::ForSelf(options));
  EXPECT_EQ(plain->Lookup(runtime).name,
            absl::StrCat("libc.so.6+0x", absl::Hex(runtime - libc->start + libc->file_offset)));
}

TEST(SymbolizerTest, AddMappingMakesNewCodeKnownWithoutRefresh) {
  SymbolizerOptions options;
  options.refresh_on_miss = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  std::string path = Runfile("include/flamekit/symbol/libfk_symbol_test_dso.so");
  void* handle = dlopen(path.c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  uint64_t fn = Addr(dlsym(handle, "FkDsoTarget"));
  EXPECT_EQ(s->Lookup(fn).name, "[unknown]");
  // What a PERF_RECORD_MMAP2 record would report for the library's code.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<Mapping> maps, ReadProcMaps(0));
  const Mapping* code = nullptr;
  for (const Mapping& m : maps) {
    if (m.Contains(fn)) code = &m;
  }
  ASSERT_NE(code, nullptr);
  s->AddMapping(*code);
  Symbolizer::Symbol sym = s->Lookup(fn);
  EXPECT_EQ(sym.name, "FkDsoTarget");
  EXPECT_EQ(sym.kind, FrameKind::kLibrary);
  dlclose(handle);
}

TEST(SymbolizerTest, AddMappingReplacesOverlappedRanges) {
  SymbolizerOptions options;
  options.refresh_on_miss = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  Mapping big;
  big.start = 0x100000;
  big.end = 0x200000;
  big.file_offset = 0x1000;
  big.path = "/nonexistent/big.so";
  big.executable = true;
  s->AddMapping(big);
  Mapping mid = big;
  mid.start = 0x140000;
  mid.end = 0x150000;
  mid.file_offset = 0;
  mid.path = "/nonexistent/mid.so";
  s->AddMapping(mid);
  std::vector<Mapping> in_range;
  for (const Mapping& m : s->mappings()) {
    if (m.start >= 0x100000 && m.end <= 0x200000) in_range.push_back(m);
  }
  ASSERT_EQ(in_range.size(), 3u);
  EXPECT_EQ(in_range[0].end, 0x140000u);
  EXPECT_EQ(in_range[1].path, "/nonexistent/mid.so");
  EXPECT_EQ(in_range[2].start, 0x150000u);
  EXPECT_EQ(in_range[2].file_offset, 0x1000u + 0x50000u);
  // Unreadable files still give a file+offset name and a warning.
  EXPECT_EQ(s->Lookup(0x150010).name, "big.so+0x51010");
  EXPECT_EQ(s->Lookup(0x140010).name, "mid.so+0x10");
  EXPECT_THAT(absl::StrJoin(s->Warnings(), "\n"), HasSubstr("/nonexistent/big.so"));
}

TEST(SymbolizerTest, UnmappedAndPseudoAddresses) {
  SymbolizerOptions options;
  options.refresh_on_miss = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  EXPECT_EQ(s->Lookup(0).name, "[unknown]");
  EXPECT_EQ(s->Lookup(0x10).kind, FrameKind::kUnknown);
  int on_stack = 0;
  EXPECT_EQ(s->Lookup(Addr(&on_stack)).name, "[stack]");
}

TEST(SymbolizerTest, PerfMapThatIsAFifoDoesNotHang) {
  std::string dir = absl::StrCat(TempDir(), "/perfmap_fifo_", getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(mkfifo(absl::StrCat(dir, "/perf-", getpid(), ".map").c_str(), 0644), 0);
  size_t len = 4096;
  void* code = mmap(nullptr, len, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(code, MAP_FAILED);
  SymbolizerOptions options;
  options.perf_map_dir = dir;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  EXPECT_EQ(s->Lookup(Addr(code)).name, "[unknown]");
  EXPECT_THAT(absl::StrJoin(s->Warnings(), "\n"), HasSubstr("not a regular file"));
  munmap(code, len);
}

TEST(SymbolizerTest, AddressCacheIsBounded) {
  SymbolizerOptions options;
  options.max_cached_addresses = 2;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(s->Lookup(FnAddr(&FkSymbolTestTarget) + i % 4).name, "FkSymbolTestTarget");
    EXPECT_LE(s->cached_addresses(), 2u);
  }
}

TEST(SymbolizerTest, NamesCodeOfLibraryUnloadedBeforeSymbolizing) {
  // A profile sampled code in a library that was dlclose'd before the
  // collector got to symbolize it (and maps were re-read since).
  SymbolizerOptions options;
  options.refresh_on_miss = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  std::string path = Runfile("include/flamekit/symbol/libfk_symbol_test_dso.so");
  void* handle = dlopen(path.c_str(), RTLD_NOW);
  ASSERT_NE(handle, nullptr) << dlerror();
  uint64_t fn = Addr(dlsym(handle, "FkDsoTarget"));
  uint64_t cxx = Addr(dlsym(handle, "_ZN7fk_test12DsoCxxTargetEi"));
  ASSERT_THAT(s->Refresh(), IsOk());  // sees the library, parses nothing yet
  ASSERT_EQ(dlclose(handle), 0);
  bool still_mapped = false;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<Mapping> now, ReadProcMaps(0));
  for (const Mapping& m : now) still_mapped |= m.Contains(fn);
  if (still_mapped) GTEST_SKIP() << "dlclose did not unmap the library";
  ASSERT_THAT(s->Refresh(), IsOk());  // the library is gone from maps
  EXPECT_EQ(s->Lookup(fn).name, "FkDsoTarget");
  EXPECT_EQ(s->Lookup(cxx).name, "fk_test::DsoCxxTarget(int)");
  // Something mapped over the old range replaces it.
  const Mapping* old = nullptr;
  for (const Mapping& m : s->mappings()) {
    if (m.Contains(fn)) old = &m;
  }
  ASSERT_NE(old, nullptr);
  uint64_t page = fn & ~uint64_t{4095};
  void* over = mmap(reinterpret_cast<void*>(page), 4096, PROT_READ,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (over == MAP_FAILED || Addr(over) != page) GTEST_SKIP() << "cannot map over the old range";
  ASSERT_THAT(s->Refresh(), IsOk());
  EXPECT_EQ(s->Lookup(fn).name, "[unknown]");
  munmap(over, 4096);
}

TEST(SymbolizerTest, NamesPltStubs) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open("/proc/self/exe"));
  if (elf->PltSymbols().empty()) GTEST_SKIP() << "this executable has no PLT";
  uint64_t target = 0;
  for (const ElfSymbol& sym : elf->FunctionSymbols()) {
    if (sym.name == "FkSymbolTestTarget") target = sym.address;
  }
  ASSERT_NE(target, 0u);
  uint64_t bias = FnAddr(&FkSymbolTestTarget) - target;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  const ElfSymbol& stub = elf->PltSymbols().front();
  Symbolizer::Symbol sym = s->Lookup(stub.address + bias + 4);
  EXPECT_EQ(sym.name, stub.name);
  EXPECT_TRUE(absl::EndsWith(sym.name, "@plt"));
  EXPECT_EQ(sym.kind, FrameKind::kUser);
}

}  // namespace
}  // namespace flamekit
