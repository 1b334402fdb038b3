// SPDX-License-Identifier: Apache-2.0
#include "flamekit/base/proc_files.h"

#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;

std::string TempPath(const char* name) {
  const char* dir = getenv("TEST_TMPDIR");
  return std::string(dir != nullptr ? dir : "/tmp") + "/" + name + std::to_string(getpid());
}

TEST(ProcFilesTest, ReadsWholeAndIntegerFiles) {
  std::string path = TempPath("int");
  FILE* f = fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs(" 42\n", f);
  fclose(f);
  EXPECT_THAT(ReadSmallFile(path), IsOk());
  EXPECT_EQ(*ReadSmallFile(path), " 42\n");
  EXPECT_EQ(*ReadSmallFile(path, 2), " 4");
  EXPECT_EQ(*ReadIntFile(path), 42);
  unlink(path.c_str());
  EXPECT_THAT(ReadSmallFile(path), StatusIs(absl::StatusCode::kNotFound));
}

TEST(ProcFilesTest, RefusesAFifoWithoutWaitingForAWriter) {
  // A FIFO where a file was expected must not hang the reader (a UI that
  // lists its directory, a symbolizer reading a planted path).
  std::string path = TempPath("fifo");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  absl::StatusOr<std::string> read = ReadSmallFile(path);
  EXPECT_THAT(read, StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(read.status().message(), HasSubstr("not a regular file"));
  unlink(path.c_str());
}

TEST(ProcFilesTest, NamesThisProcessItsThreadsAndItsCommand) {
  std::thread worker([] {
    pthread_setname_np(pthread_self(), "fk-proc-test");
    usleep(200000);
  });
  usleep(50000);
  std::vector<pid_t> tids = ListProcessThreads(0);
  EXPECT_THAT(tids, Contains(getpid()));
  EXPECT_GE(tids.size(), 2u);
  EXPECT_TRUE(std::is_sorted(tids.begin(), tids.end()));
  EXPECT_EQ(ListProcessThreads(getpid()), tids);
  bool named = false;
  for (pid_t tid : tids) named |= ThreadName(getpid(), tid) == "fk-proc-test";
  EXPECT_TRUE(named);
  worker.join();
  EXPECT_THAT(ProcessCommandLine(0), HasSubstr("proc_files_test"));
  EXPECT_TRUE(ProcessAlive(getpid()));
}

TEST(ProcFilesTest, AZombieAndAMissingProcessAreNotAlive) {
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(0);
  // Not reaped yet: a zombie until waitpid().
  for (int i = 0; i < 200 && ProcessAlive(child); ++i) usleep(10000);
  EXPECT_FALSE(ProcessAlive(child));
  EXPECT_TRUE(ListProcessThreads(child).size() <= 1u);
  waitpid(child, nullptr, 0);
  EXPECT_FALSE(ProcessAlive(child));
  EXPECT_TRUE(ListProcessThreads(child).empty());
  EXPECT_EQ(ProcessCommandLine(child), "");
}

}  // namespace
}  // namespace flamekit
