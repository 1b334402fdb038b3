// SPDX-License-Identifier: Apache-2.0
// The embedded profiler with unwind = "dwarf": whole stacks through code
// built without frame pointers (as Debian builds its libraries), where the
// frame-pointer walk loses every frame of that code.

#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "flamekit/profiler.h"
#include "flamekit/testing/status_matchers.h"
#include "flamekit/testing/thread_cpu.h"
#include "flamekit/unwind/cfi_test_chain.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

using ::flamekit::testing::ThreadCpuSeconds;

// Called at the bottom of the frameless chain: spins for 0.4 s of CPU.
__attribute__((noinline)) uint64_t SpinAtTheBottom(uint64_t work) {
  const double until = ThreadCpuSeconds() + 0.4;
  volatile uint64_t x = work;
  while (ThreadCpuSeconds() < until) {
    for (int i = 0; i < 10000; ++i) x = x + i;
  }
  return x;
}

struct ChainCounts {
  uint64_t spinning = 0;    // samples with SpinAtTheBottom on the stack
  uint64_t whole = 0;       // ... and the chain above it, in order
  std::string engine_note;
  std::string example;      // a stack without the chain
};

ChainCounts ProfileTheChain(const std::string& event, const std::string& unwind) {
  ChainCounts counts;
  Profiler& profiler = Profiler::Global();
  ProfilerOptions options;
  options.event = event;
  options.unwind = unwind;
  options.interval = absl::Milliseconds(1);
  absl::Status started = profiler.Start(options);
  EXPECT_THAT(started, IsOk());
  if (!started.ok()) return counts;
  std::thread worker([] { cfi_test::ChainOuter(1, SpinAtTheBottom); });
  worker.join();
  absl::StatusOr<Profile> profile = profiler.Stop();
  EXPECT_TRUE(profile.ok()) << profile.status();
  if (!profile.ok()) return counts;
  counts.engine_note = profile->metadata().engine_note;
  profile->ForEachStack([&](absl::Span<const FrameId> stack, uint64_t count) {
    std::vector<std::string> names;
    for (FrameId id : stack) names.push_back(profile->frame(id).name);
    const std::string joined = absl::StrJoin(names, ";");
    if (!absl::StrContains(joined, "SpinAtTheBottom")) return;
    counts.spinning += count;
    // Root first: Outer, Middle, Inner, then the spinner.
    if (absl::StrContains(joined, "ChainOuter") &&
        joined.find("ChainOuter") < joined.find("ChainMiddle") &&
        joined.find("ChainMiddle") < joined.find("ChainInner") &&
        joined.find("ChainInner") < joined.find("SpinAtTheBottom")) {
      counts.whole += count;
    } else if (counts.example.empty()) {
      counts.example = joined;
    }
  });
  return counts;
}

TEST(ProfilerDwarfTest, UnknownUnwindModeIsRejected) {
  ProfilerOptions options;
  options.unwind = "guess";
  EXPECT_THAT(Profiler::Global().Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unwind")));
}

class ProfilerDwarfEngineTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ProfilerDwarfEngineTest, WholeStacksThroughCodeWithoutFramePointers) {
#if defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "ThreadSanitizer defers signals to the next call it intercepts";
#endif
#if !defined(__x86_64__)
  GTEST_SKIP() << "CFI unwinding is x86-64 only";
#endif
  ChainCounts fp = ProfileTheChain(GetParam(), "fp");
  ChainCounts dwarf = ProfileTheChain(GetParam(), "dwarf");
  RecordProperty("fp_whole_of_spinning", absl::StrCat(fp.whole, "/", fp.spinning));
  RecordProperty("dwarf_whole_of_spinning", absl::StrCat(dwarf.whole, "/", dwarf.spinning));
  RecordProperty("dwarf_note", dwarf.engine_note);
  ASSERT_GT(dwarf.spinning, 50u) << dwarf.engine_note;
  EXPECT_THAT(dwarf.engine_note, HasSubstr("unwind=dwarf"));
  EXPECT_GE(dwarf.whole, dwarf.spinning * 95 / 100)
      << dwarf.whole << " of " << dwarf.spinning << "; e.g. " << dwarf.example;
  // What the mode is for: frame pointers alone do not see the chain.
  EXPECT_LT(fp.whole, fp.spinning / 10) << fp.whole << " of " << fp.spinning;
}

// dlopen()/dlclose() while sampling: the collector rebuilds the table,
// publishes it, and frees the old one once no handler can hold it (ASan
// watches this in CI); the library's code is sampled and named.
TEST(ProfilerDwarfTest, DlopenAndDlcloseWhileUnwindingWithRules) {
  const char* srcdir = getenv("TEST_SRCDIR");
  const std::string path = absl::StrCat(srcdir ? srcdir : ".",
                                        "/flamekit/include/flamekit/libfk_profiler_test_dso.so");
  Profiler& profiler = Profiler::Global();
  ProfilerOptions options;
  options.event = "ctimer";
  options.unwind = "dwarf";
  options.interval = absl::Milliseconds(2);
  ASSERT_THAT(profiler.Start(options), IsOk());
  for (int round = 0; round < 3; ++round) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle, nullptr) << dlerror();
    auto burn = reinterpret_cast<uint64_t (*)(double)>(dlsym(handle, "FkDsoBurn"));
    ASSERT_NE(burn, nullptr);
    burn(0.3);
    ASSERT_EQ(dlclose(handle), 0);
  }
  absl::StatusOr<Profile> profile = profiler.Stop();
  ASSERT_TRUE(profile.ok()) << profile.status();
  uint64_t burning = 0, under_the_test = 0;
  profile->ForEachStack([&](absl::Span<const FrameId> stack, uint64_t count) {
    std::vector<std::string> names;
    for (FrameId id : stack) names.push_back(profile->frame(id).name);
    const std::string joined = absl::StrJoin(names, ";");
    if (!absl::StrContains(joined, "FkDsoBurn")) return;
    burning += count;
    if (absl::StrContains(joined, "DlopenAndDlcloseWhileUnwindingWithRules")) under_the_test += count;
  });
  EXPECT_GT(burning, 50u);
  EXPECT_GE(under_the_test, burning * 9 / 10) << under_the_test << " of " << burning;
}

INSTANTIATE_TEST_SUITE_P(Engines, ProfilerDwarfEngineTest, ::testing::Values("cpu", "itimer"));

}  // namespace
}  // namespace flamekit
