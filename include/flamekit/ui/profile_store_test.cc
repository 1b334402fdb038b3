// SPDX-License-Identifier: Apache-2.0
// Tests of ProfileStore on real files in a fresh temporary directory.

#include "flamekit/ui/profile_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "flamekit/testing/status_matchers.h"
#include "flamekit/ui/ui_codecs.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::IsOkAndHolds;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::string MakeTempDir() {
  const char* base = ::getenv("TEST_TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/store.XXXXXX";
  char* dir = ::mkdtemp(&templ[0]);
  EXPECT_NE(dir, nullptr);
  return templ;
}

Profile MakeProfile(absl::string_view event, uint64_t samples) {
  Profile profile;
  FrameId main_id = profile.InternFrame("main");
  FrameId work = profile.InternFrame("Work()");
  FrameId idle = profile.InternFrame("Idle()");
  FrameId a[] = {main_id, work};
  FrameId b[] = {main_id, idle};
  profile.AddStack(a, samples - samples / 4);
  profile.AddStack(b, samples / 4);
  profile.metadata().event = std::string(event);
  profile.metadata().start_time = absl::FromUnixSeconds(1700000000);
  profile.metadata().end_time = absl::FromUnixSeconds(1700000000) + absl::Milliseconds(2500);
  return profile;
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

TEST(ProfileFileNameTest, AcceptsOnlyThePattern) {
  ProfileFileName parsed;
  ASSERT_TRUE(ParseProfileFileName("0007-page-faults-flamegraph-20261121-104455.html", &parsed));
  EXPECT_EQ(parsed.id, 7);
  EXPECT_EQ(parsed.event, "page-faults");
  EXPECT_EQ(parsed.extension, "html");
  EXPECT_EQ(parsed.stem, "0007-page-faults-flamegraph-20261121-104455");
  EXPECT_EQ(parsed.time, absl::FromCivil(absl::CivilSecond(2026, 11, 21, 10, 44, 55),
                                         absl::UTCTimeZone()));
  for (absl::string_view bad : {
           "", "0007-cpu-flamegraph-20261121-104455.htm", "../0007-cpu-flamegraph-20261121-104455.html",
           "0007-cpu-flamegraph-20261121-104455.html/..", "/etc/passwd",
           "0007-cpu-flamegraph-20261121-1044551.html", "x007-cpu-flamegraph-20261121-104455.html",
           "0007--flamegraph-20261121-104455.html", "0007-cpu-flamegraph-20261321-104455.html",
           "0007-CPU-flamegraph-20261121-104455.html", "0007-cpu-flamegraph-20261121-104455.txt.html",
           "0007-c/u-flamegraph-20261121-104455.html", "0007-cpu-flamegraph-20261121-104455.sh",
           "..%2f0007-cpu-flamegraph-20261121-104455.html", "1234567890-cpu-flamegraph-20261121-104455.html"}) {
    EXPECT_FALSE(ParseProfileFileName(bad, nullptr)) << bad;
  }
  std::string with_nul("0007-cpu-flamegraph-20261121-104455.html");
  with_nul[4] = '\0';
  EXPECT_FALSE(ParseProfileFileName(with_nul, nullptr));
}

TEST(ProfileStoreTest, SavesListsAndLoads) {
  std::string dir = MakeTempDir();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto store, ProfileStore::Open(dir, 0, DefaultUiCodecs()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile first, store->Save(MakeProfile("cpu", 400)));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile second,
                                store->Save(MakeProfile("page-faults", 2000)));
  EXPECT_EQ(first.id, 1);
  EXPECT_EQ(second.id, 2);
  EXPECT_TRUE(ParseProfileFileName(second.html_name, nullptr));
  EXPECT_THAT(second.html_name, HasSubstr("-page-faults-flamegraph-"));
  EXPECT_TRUE(Exists(dir + "/" + second.txt_name));
  std::vector<StoredProfile> list = store->List();
  ASSERT_THAT(list, SizeIs(2));
  EXPECT_EQ(list[0].id, 2);  // newest first
  EXPECT_EQ(list[0].samples, 2000u);
  EXPECT_EQ(list[1].samples, 400u);
  EXPECT_EQ(list[1].duration, absl::Milliseconds(2500));
  EXPECT_GT(list[0].bytes, 0u);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Profile loaded, store->Load(1));
  EXPECT_EQ(loaded.total_samples(), 400u);
  EXPECT_EQ(loaded.metadata().event, "cpu");
  EXPECT_THAT(store->Load(99).status(), StatusIs(absl::StatusCode::kNotFound));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string txt, store->ReadFile(list[1].txt_name));
  EXPECT_THAT(txt, HasSubstr("main;Work() 300"));
}

TEST(ProfileStoreTest, IdsContinueAfterReopen) {
  std::string dir = MakeTempDir();
  {
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto store, ProfileStore::Open(dir, 0, DefaultUiCodecs()));
    ASSERT_THAT(store->Save(MakeProfile("cpu", 10)), IsOk());
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto store, ProfileStore::Open(dir, 0, DefaultUiCodecs()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile p, store->Save(MakeProfile("cpu", 10)));
  EXPECT_EQ(p.id, 2);
}

TEST(ProfileStoreTest, CapRemovesOldestFirstAndNeverTemporaries) {
  std::string dir = MakeTempDir();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto probe, ProfileStore::Open(dir + "/probe", 0,
                                                               DefaultUiCodecs()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile one, probe->Save(MakeProfile("cpu", 100)));
  // Room for two profiles of this size, not three.
  uint64_t cap = one.bytes * 2 + one.bytes / 2;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto store, ProfileStore::Open(dir + "/capped", cap,
                                                               DefaultUiCodecs()));
  // A file a writer is still writing (AtomicFileWriter's '.' temporary).
  std::string temp = dir + "/capped/.0001-cpu-flamegraph-20261121-104455.html.tmp.abcdef";
  { std::ofstream(temp) << std::string(cap * 2, 'x'); }
  for (int i = 0; i < 4; ++i) ASSERT_THAT(store->Save(MakeProfile("cpu", 100)), IsOk());
  std::vector<StoredProfile> list = store->List();
  ASSERT_THAT(list, SizeIs(2));
  EXPECT_EQ(list[0].id, 4);
  EXPECT_EQ(list[1].id, 3);
  EXPECT_LE(store->TotalBytes(), cap);
  EXPECT_TRUE(Exists(temp));
  // The first profiles are gone entirely, all three files.
  EXPECT_FALSE(Exists(dir + "/capped/" + list[1].txt_name.replace(0, 4, "0001")));
}

TEST(ProfileStoreTest, ResolveRefusesEverythingOutsideThePattern) {
  std::string dir = MakeTempDir();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto store, ProfileStore::Open(dir + "/p", 0,
                                                               DefaultUiCodecs()));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(StoredProfile p, store->Save(MakeProfile("cpu", 100)));
  EXPECT_THAT(store->ResolveFile(p.html_name), IsOk());
  // A symlink with a valid name pointing out of the directory.
  { std::ofstream(dir + "/secret.txt") << "secret"; }
  std::string link_name = "0099-cpu-flamegraph-20261121-104455.txt";
  ASSERT_EQ(::symlink((dir + "/secret.txt").c_str(), (dir + "/p/" + link_name).c_str()), 0);
  std::string link_html = "0099-cpu-flamegraph-20261121-104455.html";
  ASSERT_EQ(::symlink((dir + "/secret.txt").c_str(), (dir + "/p/" + link_html).c_str()), 0);
  for (absl::string_view name :
       {absl::string_view(link_name), absl::string_view(link_html), absl::string_view("../secret.txt"),
        absl::string_view("/etc/passwd"), absl::string_view("%2e%2e%2fsecret.txt"),
        absl::string_view(".."), absl::string_view("")}) {
    EXPECT_THAT(store->ResolveFile(name), StatusIs(absl::StatusCode::kNotFound)) << name;
    EXPECT_THAT(store->ReadFile(name), StatusIs(absl::StatusCode::kNotFound)) << name;
  }
  // The json sidecar is not served either.
  std::string json = p.stem + ".json";
  EXPECT_THAT(store->ResolveFile(json), StatusIs(absl::StatusCode::kNotFound));
  // Symlinked profiles are not listed.
  EXPECT_THAT(store->List(), SizeIs(1));
}

TEST(ProfileStoreTest, DeleteAllRemovesProfilesOnly) {
  std::string dir = MakeTempDir();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(auto store, ProfileStore::Open(dir, 0, DefaultUiCodecs()));
  ASSERT_THAT(store->Save(MakeProfile("cpu", 100)), IsOk());
  ASSERT_THAT(store->Save(MakeProfile("wall", 100)), IsOk());
  { std::ofstream(dir + "/notes.md") << "keep me"; }
  EXPECT_THAT(store->DeleteAll(), IsOkAndHolds(2u));
  EXPECT_THAT(store->List(), SizeIs(0));
  EXPECT_TRUE(Exists(dir + "/notes.md"));
  EXPECT_EQ(store->TotalBytes(), 0u);
}

TEST(ProfileStoreTest, OpenExplainsABadDirectory) {
  std::string dir = MakeTempDir();
  { std::ofstream(dir + "/file") << "x"; }
  absl::StatusOr<std::unique_ptr<ProfileStore>> store =
      ProfileStore::Open(dir + "/file", 0, DefaultUiCodecs());
  EXPECT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("--dir"));
}

}  // namespace
}  // namespace flamekit
