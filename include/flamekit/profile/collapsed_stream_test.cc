// SPDX-License-Identifier: Apache-2.0
//
// Streaming: a large input through a pipe is read in bounded memory (the
// profile grows with distinct stacks only, not with the input).

#include <sys/resource.h>
#include <unistd.h>

#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/testing/status_matchers.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;

long MaxRssKb() {
  struct rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(CollapsedStreamTest, LargePipeInputUsesBoundedMemory) {
  constexpr size_t kStacks = 2000;
  constexpr size_t kInputBytes = size_t{256} << 20;
  // One block of kStacks distinct lines, written again and again.
  std::string block;
  for (size_t i = 0; i < kStacks; ++i) {
    absl::StrAppend(&block, "main;Server::Run();Server::Handle(Request const&);"
                            "std::vector<int, std::allocator<int> >::push_back(int const&);",
                    "Worker", i % 97, "::Step(", i, ");leaf_", i, " 1\n");
  }
  const size_t repeats = kInputBytes / block.size() + 1;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::thread writer([&] {
    for (size_t r = 0; r < repeats; ++r) {
      absl::string_view data = block;
      while (!data.empty()) {
        ssize_t n = write(fds[1], data.data(), data.size());
        if (n <= 0) break;
        data.remove_prefix(static_cast<size_t>(n));
      }
    }
    close(fds[1]);
  });
  const long before_kb = MaxRssKb();
  Profile profile;
  CollapsedReadStats stats;
  absl::Status s = ReadCollapsedFd(fds[0], "pipe", &profile, {}, &stats);
  writer.join();
  close(fds[0]);
  ASSERT_THAT(s, IsOk());
  EXPECT_EQ(stats.bytes, block.size() * repeats);
  EXPECT_EQ(profile.stack_count(), kStacks);
  EXPECT_EQ(profile.total_samples(), kStacks * repeats);
  const long growth_mb = (MaxRssKb() - before_kb) / 1024;
  // 256 MB went through; the profile of 2000 stacks needs well under 1 MB,
  // plus a 1 MB read buffer.
  EXPECT_LT(growth_mb, 24) << "read " << stats.bytes / (1 << 20) << " MB";
}

}  // namespace
}  // namespace flamekit
