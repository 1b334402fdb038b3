// SPDX-License-Identifier: Apache-2.0
// Symbolizer benchmarks:
//   BM_LookupWarm        cached lookups (the steady state of a profile)
//   BM_LookupUncached    a lookup that misses the address cache but hits
//                        the parsed files (new addresses in known code)
//   BM_ForSelfCold       ForSelf + first lookups in this binary and libc
//                        (reads maps, parses both ELF files, libc's debug
//                        file when libc6-dbg is installed)
//   BM_ForProcessCold    the same for another process (/bin/sleep) by PID
//   BM_KallsymsLoad      reading and indexing /proc/kallsyms
//   BM_KallsymsShared    Kallsyms::Shared() once a table is loaded (what a
//                        second Symbolizer or profiler session pays)
//   BM_KallsymsMemory    memory of one loaded /proc/kallsyms table: heap
//                        bytes held (mallinfo2), RSS held, and the RSS peak
//                        while loading (VmHWM, reset through clear_refs)
//   BM_ElfOpenLibc       open + symbol table of libc.so.6 alone
//   BM_ResidentMemory    RSS added by a ForSelf symbolizer that has parsed
//                        every executable file of this process (counters,
//                        one iteration; file pages touched count as RSS)

#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "flamekit/symbol/symbolizer.h"

namespace flamekit {
namespace {

std::vector<uint64_t> SomeAddresses() {
  std::vector<uint64_t> out;
  const char* const kLibc[] = {"qsort", "getpid", "malloc", "free", "memcpy", "strlen",
                               "read", "write", "printf", "fopen"};
  for (const char* name : kLibc) {
    void* p = dlsym(RTLD_DEFAULT, name);
    if (p != nullptr) out.push_back(reinterpret_cast<uint64_t>(p) + 1);
  }
  out.push_back(reinterpret_cast<uint64_t>(&SomeAddresses));
  out.push_back(reinterpret_cast<uint64_t>(&benchmark::Initialize) + 4);
  return out;
}

void BM_LookupWarm(benchmark::State& state) {
  auto s = Symbolizer::ForSelf();
  if (!s.ok()) return state.SkipWithError(s.status().ToString().c_str());
  std::vector<uint64_t> addrs = SomeAddresses();
  for (uint64_t a : addrs) (*s)->Lookup(a);
  size_t i = 0;
  for (auto _ : state) {
    Symbolizer::Symbol sym = (*s)->Lookup(addrs[i]);
    benchmark::DoNotOptimize(sym);
    if (++i == addrs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupWarm);

void BM_LookupUncached(benchmark::State& state) {
  SymbolizerOptions options;
  options.max_cached_addresses = 1;  // every lookup misses the address cache
  auto s = Symbolizer::ForSelf(options);
  if (!s.ok()) return state.SkipWithError(s.status().ToString().c_str());
  std::vector<uint64_t> addrs = SomeAddresses();
  for (uint64_t a : addrs) (*s)->Lookup(a);
  size_t i = 0;
  for (auto _ : state) {
    Symbolizer::Symbol sym = (*s)->Lookup(addrs[i] + (state.iterations() & 7));
    benchmark::DoNotOptimize(sym);
    if (++i == addrs.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LookupUncached);

void BM_ForSelfCold(benchmark::State& state) {
  std::vector<uint64_t> addrs = SomeAddresses();
  SymbolizerOptions options;
  options.use_debug_files = state.range(0) != 0;
  for (auto _ : state) {
    auto s = Symbolizer::ForSelf(options);
    if (!s.ok()) return state.SkipWithError(s.status().ToString().c_str());
    for (uint64_t a : addrs) benchmark::DoNotOptimize((*s)->Lookup(a));
  }
  state.SetLabel(options.use_debug_files ? "with debug files" : "no debug files");
}
BENCHMARK(BM_ForSelfCold)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_ForProcessCold(benchmark::State& state) {
  pid_t pid = fork();
  if (pid == 0) {
    execl("/bin/sleep", "sleep", "60", static_cast<char*>(nullptr));
    _exit(127);
  }
  usleep(50 * 1000);  // let it exec
  SymbolizerOptions options;
  options.use_debug_files = state.range(0) != 0;
  for (auto _ : state) {
    auto s = Symbolizer::ForProcess(pid, options);
    if (!s.ok()) {
      state.SkipWithError(s.status().ToString().c_str());
      break;
    }
    // One address in each executable file mapping (sleep, libc, ld.so).
    for (const Mapping& m : (*s)->mappings()) {
      if (m.executable && m.IsFile()) benchmark::DoNotOptimize((*s)->Lookup(m.start + 0x100));
    }
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  state.SetLabel(options.use_debug_files ? "with debug files" : "no debug files");
}
BENCHMARK(BM_ForProcessCold)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond);

void BM_KallsymsLoad(benchmark::State& state) {
  size_t n = 0;
  for (auto _ : state) {
    auto k = Kallsyms::Load();
    if (!k.ok()) return state.SkipWithError(k.status().ToString().c_str());
    n = k->size();
  }
  state.counters["symbols"] = static_cast<double>(n);
}
BENCHMARK(BM_KallsymsLoad)->Unit(benchmark::kMillisecond);

void BM_KallsymsShared(benchmark::State& state) {
  auto first = Kallsyms::Shared();
  if (!first.ok()) return state.SkipWithError(first.status().ToString().c_str());
  if ((*first)->restricted()) return state.SkipWithError("restricted: nothing is shared");
  for (auto _ : state) {
    auto k = Kallsyms::Shared();
    benchmark::DoNotOptimize(k);
  }
}
BENCHMARK(BM_KallsymsShared)->Unit(benchmark::kMicrosecond);

double StatusFieldMb(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(strlen(field))) / 1024;  // kB
  }
  return 0;
}

// Heap bytes in use: small chunks plus mmap'd ones.
double HeapInUseMb() {
  struct mallinfo2 mi = mallinfo2();
  return static_cast<double>(mi.uordblks + mi.hblkhd) / (1 << 20);
}

void BM_KallsymsMemory(benchmark::State& state) {
  for (auto _ : state) {
    // "5" resets VmHWM to the current RSS (proc(5), Linux 4.0+), so the peak
    // read afterwards is this load's.
    std::ofstream("/proc/self/clear_refs") << "5";
    double rss_before = StatusFieldMb("VmRSS:");
    double heap_before = HeapInUseMb();
    auto k = Kallsyms::Load();
    if (!k.ok()) return state.SkipWithError(k.status().ToString().c_str());
    state.counters["heap_held_mb"] = HeapInUseMb() - heap_before;
    state.counters["rss_held_mb"] = StatusFieldMb("VmRSS:") - rss_before;
    state.counters["rss_peak_added_mb"] = StatusFieldMb("VmHWM:") - rss_before;
    state.counters["symbols"] = static_cast<double>(k->size());
  }
}
BENCHMARK(BM_KallsymsMemory)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_ElfOpenLibc(benchmark::State& state) {
  size_t n = 0;
  for (auto _ : state) {
    auto elf = ElfFile::Open("/lib/x86_64-linux-gnu/libc.so.6");
    if (!elf.ok()) return state.SkipWithError(elf.status().ToString().c_str());
    SymbolTable table((*elf)->FunctionSymbols());
    n = table.size();
  }
  state.counters["symbols"] = static_cast<double>(n);
}
BENCHMARK(BM_ElfOpenLibc)->Unit(benchmark::kMicrosecond);

long ResidentKb() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

void BM_ResidentMemory(benchmark::State& state) {
  SymbolizerOptions options;
  options.use_debug_files = state.range(0) != 0;
  for (auto _ : state) {
    long before = ResidentKb();
    auto s = Symbolizer::ForSelf(options);
    if (!s.ok()) return state.SkipWithError(s.status().ToString().c_str());
    size_t lookups = 0;
    for (const Mapping& m : (*s)->mappings()) {
      if (!m.executable || !m.IsFile()) continue;
      for (uint64_t a = m.start; a < m.end; a += 64) {  // a warm cache of many addresses
        benchmark::DoNotOptimize((*s)->Lookup(a));
        ++lookups;
      }
    }
    long after = ResidentKb();
    state.counters["rss_added_kb"] = static_cast<double>(after - before);
    state.counters["files"] = static_cast<double>((*s)->files_parsed());
    state.counters["cached_addresses"] = static_cast<double>((*s)->cached_addresses());
  }
  state.SetLabel(options.use_debug_files ? "with debug files" : "no debug files");
}
BENCHMARK(BM_ResidentMemory)->Arg(0)->Arg(1)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace flamekit
