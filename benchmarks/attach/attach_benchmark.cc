// SPDX-License-Identifier: Apache-2.0
// Benchmarks of `flamekit record` against a real target process:
//
//   BM_TargetOverhead1kHz   the target's CPU time per fixed chunk of work with
//                           and without `record -i 1ms` attached, in one run
//                           (phases interleaved off/on so drift cancels);
//                           counters: overhead_pct (target: < 3.6, what
//                           `perf record -F 999 -g` costs here; measured
//                           beside it as perf_overhead_pct), cli_cpu_pct
//                           (the CLI's CPU as % of one core over 4 s runs,
//                           start-up included: reading kallsyms and ELF
//                           symbol tables is most of it; < 2)
//   BM_EndOfCaptureToHtml   a 30 s capture at 1 kHz of a 2-thread target,
//                           stopped with SIGINT; the time from the signal to
//                           the written HTML (target: < 0.5 s); also the
//                           CLI's CPU over the whole 30 s run (cli_cpu_pct)
//   BM_DecodeAndFold        in-process: decode perf sample records and fold
//                           them into a Profile (per-sample CLI cost)
//
// Build and run once with -c opt:
//   bazel run -c opt //benchmarks/attach:attach_benchmark
// FLAMEKIT_BENCHMARK_QUICK=1 shortens the phases (a smoke run; noisy).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "flamekit/attach/attach.h"
#include "flamekit/perf/perf_record.h"

namespace flamekit {
namespace {

bool Quick() {
  const char* q = getenv("FLAMEKIT_BENCHMARK_QUICK");
  return q != nullptr && q[0] == '1';
}

// A data dependency of this binary: next to it in its runfiles tree.
std::string DataPath(const std::string& rel) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  std::string self = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "";
  for (const std::string& candidate :
       {absl::StrCat(self, ".runfiles/flamekit/", rel),
        absl::StrCat(getenv("RUNFILES_DIR") ? getenv("RUNFILES_DIR") : "", "/flamekit/", rel),
        rel}) {
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return rel;
}

struct Child {
  pid_t pid = -1;
  int out = -1;  // its stdout (or -1)
  int err = -1;  // its stderr (or -1)
};

Child Spawn(const std::vector<std::string>& args, bool capture_out, bool capture_err) {
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  if (capture_out && pipe2(out, O_CLOEXEC) != 0) return {};
  if (capture_err && pipe2(err, O_CLOEXEC) != 0) return {};
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDWR);
    dup2(devnull, 0);
    dup2(capture_out ? out[1] : devnull, 1);
    dup2(capture_err ? err[1] : devnull, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  if (capture_out) close(out[1]);
  if (capture_err) close(err[1]);
  return Child{pid, out[0], err[0]};
}

// Reads the target's "ready" line, then its per-chunk CPU ns lines, each
// tagged with the phase that was current when it arrived.
class ChunkReader {
 public:
  explicit ChunkReader(int fd) : fd_(fd), thread_([this] { Loop(); }) {}
  ~ChunkReader() {
    done_ = true;
    thread_.join();
  }
  void set_phase(int phase) {
    std::lock_guard<std::mutex> lock(mu_);
    phase_ = phase;
    phase_start_ = absl::Now();
  }
  std::vector<double> Take(int phase) {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<double> out;
    for (const auto& [p, ns] : chunks_) {
      if (p == phase) out.push_back(ns);
    }
    return out;
  }

 private:
  void Loop() {
    std::string buf;
    while (!done_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char tmp[4096];
      ssize_t n = read(fd_, tmp, sizeof(tmp));
      if (n <= 0) break;
      buf.append(tmp, static_cast<size_t>(n));
      size_t nl;
      while ((nl = buf.find('\n')) != std::string::npos) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        double ns = 0;
        if (!absl::SimpleAtod(line, &ns)) continue;
        std::lock_guard<std::mutex> lock(mu_);
        // Skip chunks that may straddle a phase change.
        if (absl::Now() - phase_start_ < absl::Milliseconds(200)) continue;
        chunks_.emplace_back(phase_, ns);
      }
    }
  }
  int fd_;
  std::atomic<bool> done_{false};
  std::mutex mu_;
  int phase_ = -1;
  absl::Time phase_start_ = absl::Now();
  std::vector<std::pair<int, double>> chunks_;
  std::thread thread_;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Runs `args` to completion; its CPU seconds (user + system) and wall time.
bool RunTimed(const std::vector<std::string>& args, double* cpu_s, double* wall_s) {
  absl::Time t0 = absl::Now();
  Child c = Spawn(args, false, false);
  int status = 0;
  rusage ru{};
  wait4(c.pid, &status, 0, &ru);
  *wall_s += absl::ToDoubleSeconds(absl::Now() - t0);
  *cpu_s += absl::ToDoubleSeconds(absl::DurationFromTimeval(ru.ru_utime) +
                                  absl::DurationFromTimeval(ru.ru_stime));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

void BM_TargetOverhead1kHz(benchmark::State& state) {
  const std::string workload = DataPath("testdata/attach/attach_workload");
  const std::string tool = DataPath("include/flamekit/attach/record_tool");
  const bool have_perf = access("/usr/bin/perf", X_OK) == 0;
  const int rounds = Quick() ? 1 : 4;
  const double phase_s = Quick() ? 1.0 : 4.0;
  std::string out = absl::StrCat("/tmp/flamekit_overhead_", getpid(), ".html");
  std::string perf_out = absl::StrCat("/tmp/flamekit_overhead_", getpid(), ".perf.data");
  for (auto _ : state) {
    Child target = Spawn({workload, "bench", "0"}, /*capture_out=*/true, false);
    char ready[64];
    if (target.pid <= 0 || read(target.out, ready, sizeof(ready)) <= 0) {
      state.SkipWithError("workload did not start");
      return;
    }
    const std::string pid = absl::StrCat(target.pid);
    ChunkReader reader(target.out);
    double cli_cpu_s = 0, cli_wall_s = 0, perf_cpu_s = 0, perf_wall_s = 0;
    bool failed = false;
    // Phases: 0 = nothing attached, 1 = flamekit record, 2 = perf record,
    // interleaved so that drift in the machine's load cancels.
    for (int r = 0; r < rounds && !failed; ++r) {
      reader.set_phase(0);
      absl::SleepFor(absl::Seconds(phase_s));
      reader.set_phase(1);
      if (!RunTimed({tool, "record", "-q", "-i", "1ms", "-d", absl::StrCat(phase_s), "-f", out,
                     pid},
                    &cli_cpu_s, &cli_wall_s)) {
        state.SkipWithError("record failed (perf events unavailable?)");
        failed = true;
      }
      if (have_perf) {
        reader.set_phase(0);
        absl::SleepFor(absl::Seconds(phase_s));
        reader.set_phase(2);
        if (!RunTimed({"/usr/bin/perf", "record", "-q", "-F", "999", "-g", "-o", perf_out, "-p",
                       pid, "--", "sleep", absl::StrCat(phase_s)},
                      &perf_cpu_s, &perf_wall_s)) {
          perf_wall_s = -1;
        }
      }
    }
    reader.set_phase(-1);
    kill(target.pid, SIGKILL);
    waitpid(target.pid, nullptr, 0);
    if (failed) return;
    double off = Median(reader.Take(0));
    double on = Median(reader.Take(1));
    state.counters["chunks_off"] = static_cast<double>(reader.Take(0).size());
    state.counters["chunks_on"] = static_cast<double>(reader.Take(1).size());
    state.counters["chunk_ms_off"] = off / 1e6;
    state.counters["overhead_pct"] = off > 0 ? (on / off - 1) * 100 : 0;
    state.counters["cli_cpu_pct"] = cli_wall_s > 0 ? 100 * cli_cpu_s / cli_wall_s : 0;
    if (have_perf && perf_wall_s > 0) {
      double perf_on = Median(reader.Take(2));
      state.counters["perf_overhead_pct"] = off > 0 ? (perf_on / off - 1) * 100 : 0;
      state.counters["perf_cpu_pct"] = 100 * perf_cpu_s / perf_wall_s;
    }
  }
  unlink(out.c_str());
  unlink(perf_out.c_str());
}
BENCHMARK(BM_TargetOverhead1kHz)->Iterations(1)->UseRealTime()->Unit(benchmark::kSecond);

void BM_EndOfCaptureToHtml(benchmark::State& state) {
  const std::string workload = DataPath("testdata/attach/attach_workload");
  const std::string tool = DataPath("include/flamekit/attach/record_tool");
  const absl::Duration capture = Quick() ? absl::Seconds(2) : absl::Seconds(30);
  std::string out = absl::StrCat("/tmp/flamekit_end_", getpid(), ".html");
  for (auto _ : state) {
    Child target = Spawn({workload, "spin2", "0"}, true, false);
    char ready[64];
    if (target.pid <= 0 || read(target.out, ready, sizeof(ready)) <= 0) {
      state.SkipWithError("workload did not start");
      return;
    }
    Child cli = Spawn({tool, "record", "-i", "1ms", "-f", out, absl::StrCat(target.pid)}, false,
                      true);
    absl::SleepFor(capture);
    absl::Time stop = absl::Now();
    kill(cli.pid, SIGINT);
    std::string err;
    char buf[4096];
    ssize_t n;
    while ((n = read(cli.err, buf, sizeof(buf))) > 0) err.append(buf, static_cast<size_t>(n));
    int status = 0;
    rusage ru{};
    wait4(cli.pid, &status, 0, &ru);
    double seconds = absl::ToDoubleSeconds(absl::Now() - stop);
    double cli_cpu_s = absl::ToDoubleSeconds(absl::DurationFromTimeval(ru.ru_utime) +
                                             absl::DurationFromTimeval(ru.ru_stime));
    state.counters["cli_cpu_pct"] = 100 * cli_cpu_s / absl::ToDoubleSeconds(capture);
    kill(target.pid, SIGKILL);
    waitpid(target.pid, nullptr, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      state.SkipWithError(("record failed: " + err).c_str());
      return;
    }
    struct stat st;
    state.counters["end_to_html_ms"] = seconds * 1000;
    state.counters["html_kib"] = stat(out.c_str(), &st) == 0 ? st.st_size / 1024.0 : 0;
    size_t at = err.find(" samples");
    size_t start = err.rfind(' ', at == std::string::npos ? 0 : at - 1);
    double samples = 0;
    if (at != std::string::npos && start != std::string::npos) {
      absl::SimpleAtod(err.substr(start + 1, at - start - 1), &samples);
    }
    state.counters["samples"] = samples;
  }
  unlink(out.c_str());
}
BENCHMARK(BM_EndOfCaptureToHtml)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

// Synthetic PERF_RECORD_SAMPLE records with 12-frame callchains over 64
// distinct stacks, decoded and folded as the session does.
void BM_DecodeAndFold(benchmark::State& state) {
  constexpr int kFrames = 12;
  std::vector<std::vector<uint64_t>> records;
  for (int s = 0; s < 64; ++s) {
    std::vector<uint64_t> r;
    r.push_back(0);  // header, filled below
    r.push_back(0x400000 + s * 16);            // ip
    r.push_back((uint64_t{42} << 32) | 42);    // pid, tid
    r.push_back(1000 + s);                     // time
    r.push_back(kFrames + 1);                  // nr
    r.push_back(static_cast<uint64_t>(PERF_CONTEXT_USER));
    for (int f = 0; f < kFrames; ++f) r.push_back(0x400000 + (s % (f + 1)) * 64 + f * 4096);
    perf_event_header h{PERF_RECORD_SAMPLE, 0, static_cast<uint16_t>(r.size() * 8)};
    memcpy(r.data(), &h, sizeof(h));
    records.push_back(std::move(r));
  }
  struct FoldSink : PerfRecordSink {
    Profile profile;
    absl::flat_hash_map<uint64_t, FrameId> cache;
    std::vector<FrameId> stack;
    void OnSample(const PerfSample& s) override {
      stack.clear();
      ForEachCallchainFrame(s.callchain, [&](uint64_t a, bool) {
        auto it = cache.find(a);
        if (it == cache.end()) {
          it = cache.emplace(a, profile.InternFrame(absl::StrCat("f", a))).first;
        }
        stack.push_back(it->second);
      });
      std::reverse(stack.begin(), stack.end());
      profile.AddStack(stack, 1);
    }
  } sink;
  PerfRecordCounts counts;
  size_t i = 0;
  for (auto _ : state) {
    const auto& r = records[i++ & 63];
    DecodePerfRecord(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(r.data()), r.size() * 8),
                     kDefaultPerfSampleType, sink, counts);
  }
  benchmark::DoNotOptimize(sink.profile.total_samples());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeAndFold);

}  // namespace
}  // namespace flamekit
