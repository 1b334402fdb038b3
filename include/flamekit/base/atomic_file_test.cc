// SPDX-License-Identifier: Apache-2.0
#include "flamekit/base/atomic_file.h"

#include <dirent.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class AtomicFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = std::string(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp") +
                       "/atomic_file_test.XXXXXX";
    ASSERT_NE(mkdtemp(&tmpl[0]), nullptr);
    dir_ = tmpl;
  }

  std::vector<std::string> ListDir() {
    std::vector<std::string> names;
    DIR* d = opendir(dir_.c_str());
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(name);
    }
    closedir(d);
    return names;
  }

  static std::string ReadAll(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string dir_;
};

TEST_F(AtomicFileTest, CommitPublishesCompleteFile) {
  std::string path = dir_ + "/out.txt";
  absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Open(path);
  ASSERT_THAT(writer, IsOk());
  ASSERT_THAT(writer->Write("hello "), IsOk());
  // Before Commit the destination does not exist: readers never see half a file.
  struct stat st;
  EXPECT_NE(stat(path.c_str(), &st), 0);
  ASSERT_THAT(writer->Write("world"), IsOk());
  EXPECT_EQ(writer->size(), 11u);
  ASSERT_THAT(writer->Commit(), IsOk());
  EXPECT_EQ(ReadAll(path), "hello world");
  EXPECT_THAT(ListDir(), ElementsAre("out.txt"));
}

TEST_F(AtomicFileTest, DestroyedWithoutCommitLeavesNothing) {
  std::string path = dir_ + "/out.txt";
  {
    absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Open(path);
    ASSERT_THAT(writer, IsOk());
    ASSERT_THAT(writer->Write("partial"), IsOk());
  }
  EXPECT_THAT(ListDir(), IsEmpty());
}

TEST_F(AtomicFileTest, ReplacesExistingFileWhole) {
  std::string path = dir_ + "/out.txt";
  ASSERT_THAT(WriteFileAtomically(path, "old contents that are longer"), IsOk());
  ASSERT_THAT(WriteFileAtomically(path, "new"), IsOk());
  EXPECT_EQ(ReadAll(path), "new");
}

TEST_F(AtomicFileTest, MissingDirectoryIsNotFoundWithAdvice) {
  EXPECT_THAT(WriteFileAtomically(dir_ + "/no/such/dir/out.txt", "x"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("does not exist")));
}

TEST_F(AtomicFileTest, DirectoryAsPathIsInvalidArgument) {
  EXPECT_THAT(WriteFileAtomically(dir_, "x"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is a directory")));
  EXPECT_THAT(WriteFileAtomically("", "x"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AtomicFileTest, FullDiskMapsToResourceExhausted) {
  // The message is what a user sees when the disk fills mid-write.
  EXPECT_THAT(FileWriteError(ENOSPC, "flame.html"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("no space left")));
}

TEST_F(AtomicFileTest, FileModeIsReadableByOthers) {
  std::string path = dir_ + "/out.txt";
  ASSERT_THAT(WriteFileAtomically(path, "x"), IsOk());
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IRUSR);
  EXPECT_TRUE(st.st_mode & S_IWUSR);
}

}  // namespace
}  // namespace flamekit
