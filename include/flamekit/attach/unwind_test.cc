// SPDX-License-Identifier: Apache-2.0
// --unwind fp|dwarf|auto on Debian's own binaries, built without frame
// pointers: redis-server under a small redis-benchmark load (the test
// starts both on a free loopback port and stops them), and xz compressing.
// The share of stacks that reach `main` (redis) and that the rules walk to
// the outermost frame (both) is printed and checked; and a perf ring of
// garbage callchains (bit 62/63 set, zero, kernel addresses in user
// context) makes no frame up and no thread frame without -t.
//
// Cost: ~1 s of capture per mode, ~6 s in all; tagged exclusive (the
// sample counts compete with compiles for 2 cores).

#include <fcntl.h>
#include <linux/perf_event.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/attach/attach.h"
#include "flamekit/attach/sample_stacks.h"
#include "flamekit/attach/target_symbols.h"
#include "flamekit/attach/test_util.h"
#include "flamekit/collect/cfi_table_builder.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using attach_testing::ArgvOf;

// A child with stdout/stderr to /dev/null; SIGKILLed and reaped when
// destroyed (so a failing test leaves nothing running).
class Child {
 public:
  explicit Child(const std::vector<std::string>& args) {
    std::vector<char*> argv = ArgvOf(args);
    pid_ = fork();
    if (pid_ == 0) {
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      execvp(argv[0], argv.data());
      _exit(127);
    }
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  bool Alive() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

bool Installed(const char* path) { return access(path, X_OK) == 0; }

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  int port = -1;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  close(fd);
  return port;
}

bool Connects(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
  close(fd);
  return ok;
}

struct Shares {
  uint64_t samples = 0;
  double main = 0;      // share of samples with a frame named "main"
  double complete = 0;  // share of rule walks that reached the outermost frame
  uint64_t thread_frames = 0;
  uint64_t lost = 0;
  std::string skip;
};

// Records `pid` for `duration` at 1 kHz with `unwind`.
Shares Record(pid_t pid, AttachUnwind unwind, absl::Duration duration) {
  Shares out;
  AttachOptions options;
  options.pid = pid;
  options.duration = duration;
  options.period = PerfPeriod::Interval(absl::Milliseconds(1));
  options.unwind = unwind;
  absl::StatusOr<std::unique_ptr<AttachSession>> session = AttachSession::Create(options, nullptr);
  if (!session.ok()) {
    out.skip = session.status().ToString();
    return out;
  }
  absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> symbols =
      SymbolizerAttachSymbols::ForProcess(pid);
  if (!symbols.ok()) {
    out.skip = symbols.status().ToString();
    return out;
  }
  (*session)->set_symbols(std::move(*symbols));
  EXPECT_TRUE((*session)->Run().ok());
  const AttachProgress stats = (*session)->stats();
  out.lost = stats.lost_samples;
  Profile profile = (*session)->TakeProfile();
  uint64_t main = 0;
  profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t count) {
    out.samples += count;
    bool has_main = false;
    for (FrameId f : frames) {
      if (profile.frame(f).name == "main") has_main = true;
      if (profile.frame(f).kind == FrameKind::kThread) out.thread_frames += count;
    }
    if (has_main) main += count;
  });
  out.main = out.samples > 0 ? static_cast<double>(main) / out.samples : 0;
  out.complete = stats.rule_walks > 0
                     ? static_cast<double>(stats.rule_walks_complete) / stats.rule_walks
                     : 0;
  return out;
}

TEST(AttachUnwindTest, RedisStacksReachMainWithTheRules) {
  for (const char* tool : {"/usr/bin/redis-server", "/usr/bin/redis-benchmark"}) {
    if (!Installed(tool)) GTEST_SKIP() << tool << " missing; bash tools/setup.sh installs it";
  }
  const int port = FreeLoopbackPort();
  ASSERT_GT(port, 0);
  const std::string dir = attach_testing::TempDir();
  Child server({"/usr/bin/redis-server", "--port", absl::StrCat(port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", dir});
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!Connects(port) && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  ASSERT_TRUE(Connects(port)) << "redis-server did not listen on 127.0.0.1:" << port;
  // A bounded load: at most 20 s (killed with the test's end anyway).
  Child load({"timeout", "20", "/usr/bin/redis-benchmark", "-p", absl::StrCat(port), "-q", "-n",
              "100000000", "-c", "8", "-t", "set,get,lpush,incr"});
  absl::SleepFor(absl::Milliseconds(300));
  Shares fp = Record(server.pid(), AttachUnwind::kFramePointers, absl::Seconds(1));
  if (!fp.skip.empty()) GTEST_SKIP() << fp.skip;
  Shares dwarf = Record(server.pid(), AttachUnwind::kDwarf, absl::Seconds(1));
  Shares autos = Record(server.pid(), AttachUnwind::kAuto, absl::Seconds(1));
  printf("redis-server: reaching main: fp %.1f%% of %llu, dwarf %.1f%% of %llu (%.1f%% complete, "
         "%llu lost), auto %.1f%% of %llu\n",
         100 * fp.main, static_cast<unsigned long long>(fp.samples), 100 * dwarf.main,
         static_cast<unsigned long long>(dwarf.samples), 100 * dwarf.complete,
         static_cast<unsigned long long>(dwarf.lost), 100 * autos.main,
         static_cast<unsigned long long>(autos.samples));
  // Enough samples for the shares (a 2-core machine loaded by builds gives
  // redis-server a fraction of a CPU).
  ASSERT_GT(dwarf.samples, 50u) << "redis-server was not busy";
  ASSERT_GT(autos.samples, 50u) << "redis-server was not busy";
  EXPECT_GE(dwarf.main, 0.95);
  EXPECT_GE(autos.main, 0.95);
  // Debian's redis-server has no frame pointers: the chain cannot do it.
  EXPECT_LT(fp.main, dwarf.main);
  EXPECT_EQ(dwarf.thread_frames + autos.thread_frames + fp.thread_frames, 0u);
}

TEST(AttachUnwindTest, XzStacksAreWalkedToTheOutermostFrame) {
  if (!Installed("/usr/bin/xz")) GTEST_SKIP() << "xz missing; bash tools/setup.sh installs it";
  // Compresses 24 MB of pseudo-random words (~5 s of xz -6 here; killed
  // when the test ends): busy in liblzma, which has no symbols and no
  // frame pointers.
  const std::string input = attach_testing::TempDir() + "/words.txt";
  {
    FILE* f = fopen(input.c_str(), "we");
    ASSERT_NE(f, nullptr);
    uint64_t x = 88172645463325252ULL;
    std::string line;
    for (int i = 0; i < 24 * 1024 * 16; ++i) {  // 64-byte lines
      line.clear();
      for (int c = 0; c < 63; ++c) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        line.push_back(static_cast<char>('a' + (x % 20)));
      }
      line.push_back('\n');
      fwrite(line.data(), 1, line.size(), f);
    }
    fclose(f);
  }
  Child xz({"/usr/bin/xz", "-6", "-T1", "-c", input});
  const pid_t xz_pid = xz.pid();
  absl::SleepFor(absl::Milliseconds(200));
  ASSERT_TRUE(xz.Alive()) << "xz did not start";
  Shares dwarf = Record(xz_pid, AttachUnwind::kDwarf, absl::Seconds(1));
  if (!dwarf.skip.empty()) GTEST_SKIP() << dwarf.skip;
  printf("xz: %.1f%% of %llu rule walks reached the outermost frame\n", 100 * dwarf.complete,
         static_cast<unsigned long long>(dwarf.samples));
  ASSERT_GT(dwarf.samples, 50u) << "xz was not busy";
  EXPECT_GE(dwarf.complete, 0.95);
}

// A function of this test binary, for an address in its own file.
__attribute__((noinline)) int ThisBinarysCode(int x) { return x * 3 + 1; }

// The rules cover the files walks reach, one at a time, and only those:
// building every mapped file's rules up front was half of a redis
// capture's CPU (libcrypto, libssl). Each file is asked about once, and a
// file added later keeps the rules of those before it.
TEST(TargetSymbolsTest, RulesCoverOnlyTheFilesWalksReach) {
  absl::StatusOr<std::unique_ptr<SymbolizerAttachSymbols>> symbols =
      SymbolizerAttachSymbols::ForProcess(getpid());
  ASSERT_TRUE(symbols.ok()) << symbols.status();
  const uint64_t ours = reinterpret_cast<uint64_t>(&ThisBinarysCode);
  const uint64_t libc = reinterpret_cast<uint64_t>(&getpid);
  ASSERT_NE(ours, 0u);
  ASSERT_NE(libc, 0u);
  const CfiTable* rules = (*symbols)->FrameRules();
  ASSERT_NE(rules, nullptr);
  EXPECT_EQ(rules->size(), 0u) << "rules before any walk asked for a file";

  EXPECT_TRUE((*symbols)->WantFrameRulesAt(ours));
  EXPECT_FALSE((*symbols)->WantFrameRulesAt(ours + 1)) << "the same file asked for twice";
  rules = (*symbols)->FrameRules();
  ASSERT_NE(rules->Find(ours), nullptr);
  EXPECT_NE(rules->Find(ours)->kind, CfiRow::kNone);
  EXPECT_TRUE(rules->Find(libc) == nullptr || rules->Find(libc)->kind == CfiRow::kNone);
  const size_t one_file = rules->size();

  EXPECT_TRUE((*symbols)->WantFrameRulesAt(libc));
  EXPECT_FALSE((*symbols)->WantFrameRulesAt(0)) << "no file there";
  std::vector<char> heap(64);
  const uint64_t on_heap = reinterpret_cast<uint64_t>(heap.data());
  EXPECT_FALSE((*symbols)->WantFrameRulesAt(on_heap)) << "an anonymous mapping has no rules";
  EXPECT_FALSE((*symbols)->WantFrameRulesAt(on_heap)) << "nor the second time";
  rules = (*symbols)->FrameRules();
  ASSERT_NE(rules->Find(libc), nullptr);
  EXPECT_NE(rules->Find(libc)->kind, CfiRow::kNone);
  EXPECT_NE(rules->Find(ours)->kind, CfiRow::kNone) << "the first file's rules were lost";
  EXPECT_GT(rules->size(), one_file);

  // Every mapped file's rules (libstdc++, libm, libgcc_s, the loader...):
  // more than the two files asked for.
  std::unique_ptr<CfiTable> all = BuildCfiTable((*symbols)->symbolizer());
  EXPECT_LT(rules->size(), all->size());
}

// Garbage in the kernel's chain: what a frame-pointer walk through code
// without frame pointers returns. None of it may become a frame (and
// certainly no "[tid=" thread frame without -t); the stack is marked
// truncated where the garbage starts.
TEST(SampleStacksTest, GarbageCallchainsInventNothing) {
  const uint64_t kUser = static_cast<uint64_t>(PERF_CONTEXT_USER);
  const uint64_t kKernel = static_cast<uint64_t>(PERF_CONTEXT_KERNEL);
  const std::vector<std::vector<uint64_t>> chains = {
      {kUser, 0x401000, 0x6418ec8348d38948ULL, 0x402000},   // bit 62
      {kUser, 0x401000, 0x8000000000401000ULL, 0x402000},   // bit 63
      {kUser, 0x401000, 0, 0x402000},                        // zero
      {kUser, 0x401000, 0xffffffff81000000ULL, 0x402000},   // kernel address as user
      {kKernel, 0x401000, kUser, 0x401000, 0x48ec8348d38948ULL},  // user address as kernel
  };
  for (AttachUnwind unwind : {AttachUnwind::kFramePointers, AttachUnwind::kAuto}) {
    attach_internal::SampleStacks stacks(unwind);
    StackFolder folder(StackFolderOptions{/*per_thread=*/false});
    AttachProgress progress;
    for (const auto& chain : chains) {
      PerfSample sample;
      sample.pid = 7;
      sample.tid = 1221822791;
      sample.callchain = chain;
      RawSample raw;
      ASSERT_TRUE(stacks.Build(sample, nullptr, &raw, &progress));
      for (uint64_t pc : raw.pcs) {
        EXPECT_TRUE(pc == 0x401000) << std::hex << pc << " became a frame";
      }
      EXPECT_TRUE(raw.truncated);
      folder.Add(raw);
    }
    for (uint64_t a : folder.TakeUnnamed()) folder.SetName(a, FrameName{"f", FrameKind::kUser});
    Profile profile;
    folder.AddTo(profile, [](uint32_t) { return std::string("redis-server"); });
    profile.ForEachStack([&](absl::Span<const FrameId> frames, uint64_t) {
      for (FrameId f : frames) {
        EXPECT_NE(profile.frame(f).kind, FrameKind::kThread);
        EXPECT_FALSE(absl::StrContains(profile.frame(f).name, "tid=")) << profile.frame(f).name;
      }
    });
  }
}

}  // namespace
}  // namespace flamekit
