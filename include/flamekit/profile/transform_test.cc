// SPDX-License-Identifier: Apache-2.0
#include "flamekit/profile/transform.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "flamekit/profile/collapsed_io.h"
#include "flamekit/testing/status_matchers.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::flamekit::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kDir[] = "testdata/transforms/";

Profile Parse(absl::string_view text) {
  absl::StatusOr<Profile> p = ParseCollapsed(text);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *std::move(p) : Profile();
}

// Applies the JSON transform list `json` to collapsed `input` and compares
// the collapsed result with `expected`.
void ExpectTransform(absl::string_view json, absl::string_view input,
                     absl::string_view expected) {
  absl::StatusOr<TransformList> list = TransformList::FromJson(json);
  ASSERT_THAT(list, IsOk()) << json;
  Profile out = ApplyTransforms(Parse(input), *list);
  EXPECT_EQ(ToCollapsedString(out), expected) << "transforms: " << json;
}

TEST(TransformTest, ReplaceRewritesNamesWithCaptureGroups) {
  // Strip template arguments (innermost first, repeatedly through the list).
  ExpectTransform(
      R"js([{"replace": "<[^<>]*>", "with": ""}, {"replace": "<[^<>]*>", "with": ""}])js",
      "main;std::vector<int, std::allocator<int> >::push_back(int const&) 2\n"
      "main;std::vector<long, std::allocator<long> >::push_back(long const&) 3\n",
      "main;std::vector::push_back(int const&) 2\n"
      "main;std::vector::push_back(long const&) 3\n");
  // Lambda numbers, with a capture group kept.
  ExpectTransform(
      R"js([{"replace": "\\{lambda\\(([^)]*)\\)#\\d+\\}", "with": "{lambda(\\1)}"}])js",
      "main;Foo::Run()::{lambda(int)#1}::operator()(int) const 1\n"
      "main;Foo::Run()::{lambda(int)#2}::operator()(int) const 4\n",
      "main;Foo::Run()::{lambda(int)}::operator()(int) const 5\n");
  // libc++ inline namespace; kinds are kept.
  ExpectTransform(R"js([{"replace": "std::__1::", "with": "std::"}])js",
                  "main;std::__1::basic_string<char>::append_[i] 1\n",
                  "main;std::basic_string<char>::append_[i] 1\n");
  // A frame renamed to "" disappears from its stack.
  ExpectTransform(R"js([{"replace": "^\\(anonymous namespace\\)::Helper$", "with": ""}])js",
                  "main;(anonymous namespace)::Helper;work 1\n", "main;work 1\n");
}

TEST(TransformTest, FilterKeepsOnlyStacksWithAMatchingFrame) {
  ExpectTransform(R"js([{"filter": "Handle"}])js",
                  "main;Server::Handle(Request const&);memcpy 3\n"
                  "main;epoll_wait 5\n"
                  "main;(anonymous namespace)::HandleSignal(int) 1\n",
                  "main;(anonymous namespace)::HandleSignal(int) 1\n"
                  "main;Server::Handle(Request const&);memcpy 3\n");
}

TEST(TransformTest, RemoveDropsStacksWithAMatchingFrame) {
  ExpectTransform(R"js([{"remove": "^epoll_wait$"}])js",
                  "main;epoll_wait 5\nmain;epoll_wait_impl 1\nmain;run;epoll_wait 2\n",
                  "main;epoll_wait_impl 1\n");
}

TEST(TransformTest, HideDropsFramesButKeepsTheRest) {
  ExpectTransform(R"js([{"hide": "^(__libc|std::function<.*>::operator\\(\\))"}])js",
                  "__libc_start_main;main;std::function<void ()>::operator()() const;Work() 3\n"
                  "__libc_start_call_main 1\n"
                  "main;Work() 2\n",
                  "main;Work() 5\n");
}

TEST(TransformTest, CollapseRecursionMergesDirectRepeatsOnly) {
  ExpectTransform(R"js([{"collapse_recursion": true}])js",
                  "main;Parser::ParseValue();Parser::ParseValue();Parser::ParseValue();lex 2\n"
                  "main;a;b;a 1\n"
                  "main;Parser::ParseValue();lex 3\n",
                  "main;Parser::ParseValue();lex 5\nmain;a;b;a 1\n");
  // Same name, different kind: not a repeat.
  ExpectTransform(R"js([{"collapse_recursion": true}])js", "main;f;f_[k];f_[k] 1\n",
                  "main;f;f_[k] 1\n");
  // false switches the entry off.
  ExpectTransform(R"js([{"collapse_recursion": false}])js", "a;a 1\n", "a;a 1\n");
}

TEST(TransformTest, MaxDepthKeepsRootFramesAndMarksTheCut) {
  ExpectTransform(R"js([{"max_depth": 2}])js",
                  "a;b;c;d 1\na;b;e 2\na;b 4\na 8\n",
                  "a 8\na;b 4\na;b;[truncated] 3\n");
  Profile p = ApplyTransforms(Parse("a;b;c 1\n"), *TransformList::FromJson(R"js([{"max_depth": 1}])js"));
  ASSERT_EQ(p.stack_count(), 1u);
  EXPECT_EQ(p.frame(p.stack(0)[1]).kind, FrameKind::kTruncated);
}

TEST(TransformTest, AppliesInOrderAndRecordsTheListInMetadata) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TransformList list,
                                TransformList::ReadFile(std::string(kDir) + "cleanup.json"));
  EXPECT_EQ(list.size(), 6u);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      Profile input, ReadCollapsedFile("testdata/collapsed/server.txt"));
  input.metadata().dropped_samples = 7;
  Profile out = ApplyTransforms(input, list);
  EXPECT_EQ(out.metadata().dropped_samples, 7u);
  EXPECT_EQ(out.metadata().transforms_json, list.ToJson());
  const std::string text = ToCollapsedString(out);
  EXPECT_THAT(text, Not(HasSubstr("epoll_wait")));
  EXPECT_THAT(text, Not(HasSubstr("__libc_start_main")));
  EXPECT_THAT(text, Not(HasSubstr("std::__1::")));
  EXPECT_THAT(text, HasSubstr("std::unordered_map<std::string, int>::find(std::string const&) 15\n"));
  EXPECT_THAT(text, HasSubstr("Server::Handle(Request const&)::{lambda}::operator()() const;memcpy 23\n"));
  EXPECT_THAT(text, HasSubstr("Parser::ParseValue();Lexer::Next()_[i] 87\n"));
  EXPECT_EQ(out.total_samples(), input.total_samples() - 41);

  // A second application appends to the recorded list.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TransformList more,
                                TransformList::FromJson(R"js([{"hide": "^main$"}])js"));
  Profile twice = ApplyTransforms(out, more);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TransformList recorded,
                                TransformList::FromJson(twice.metadata().transforms_json));
  EXPECT_EQ(recorded.size(), 7u);
}

TEST(TransformTest, JsonRoundTrips) {
  const std::string json =
      R"js([{"replace":"std::__1::","with":"std::"},{"remove":"^epoll_wait$"},)js"
      R"js({"filter":"Handle"},{"hide":"^__libc"},{"collapse_recursion":true},)js"
      R"js({"max_depth":40}])js";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TransformList list, TransformList::FromJson(json));
  EXPECT_EQ(list.ToJson(), json);
  ASSERT_EQ(list.size(), 6u);
  EXPECT_EQ(list.transforms()[0].type(), TransformType::kReplace);
  EXPECT_EQ(list.transforms()[0].with(), "std::");
  EXPECT_EQ(list.transforms()[5].max_depth(), 40);
  EXPECT_EQ(TransformList().ToJson(), "[]");
}

TEST(TransformTest, BadTransformFilesNameTheEntry) {
  EXPECT_THAT(TransformList::ReadFile(std::string(kDir) + "bad_regex.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("testdata/transforms/bad_regex.json: entry 2: "
                                 "invalid regex \"(\": missing )")));
  EXPECT_THAT(TransformList::ReadFile(std::string(kDir) + "unknown_key.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown_key.json: entry 3: unknown key \"drop\"; "
                                 "expected one of replace")));
  EXPECT_THAT(TransformList::ReadFile(std::string(kDir) + "not_a_list.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expected a JSON list of transforms")));
  EXPECT_THAT(TransformList::ReadFile(std::string(kDir) + "missing.json"),
              StatusIs(absl::StatusCode::kNotFound));

  struct Case {
    const char* json;
    const char* message;
  };
  const Case cases[] = {
      {"[{\"remove\": ", "t.json: not valid JSON"},
      {"", "t.json: not valid JSON"},
      {"[3]", "t.json: entry 1: expected an object"},
      {"[{}]", "entry 1: empty entry"},
      {R"js([{"hide": "a"}, {"with": "b"}])js", "entry 2: \"with\" without \"replace\""},
      {R"js([{"filter": "a", "remove": "b"}])js", "entry 1: has both"},
      {R"js([{"replace": "a"}])js", "entry 1: \"replace\" needs a \"with\" string"},
      {R"js([{"replace": "a", "with": 3}])js", "\"replace\" needs a \"with\" string"},
      {R"js([{"replace": "(a)", "with": "\\2"}])js", "entry 1: invalid rewrite"},
      {R"js([{"hide": "a", "with": "b"}])js", "\"with\" belongs to \"replace\""},
      {R"js([{"remove": 5}])js", "\"remove\" takes a regex string"},
      {R"js([{"max_depth": 0}])js", "entry 1: max_depth must be a positive number"},
      {R"js([{"max_depth": "10"}])js", "\"max_depth\" takes a whole number"},
      {R"js([{"max_depth": 2.5}])js", "\"max_depth\" takes a whole number"},
      {R"js([{"collapse_recursion": 1}])js", "takes true or false"},
      {R"js([{"filter": "a++(", "x": 1}])js", "unknown key \"x\""},
      {R"js([{"filter": "[z-a]"}])js", "invalid regex \"[z-a]\""},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(TransformList::FromJson(c.json, "t.json"),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.message)))
        << c.json;
  }
}

TEST(TransformTest, OneListAppliesFromManyThreadsAtOnce) {
  // The contract: a TransformList and a const Profile may be shared by
  // threads (UI requests). Run under --config=tsan to check for races.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TransformList list,
                                TransformList::ReadFile(std::string(kDir) + "cleanup.json"));
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(const Profile input,
                                ReadCollapsedFile("testdata/collapsed/server.txt"));
  const std::string expected = ToCollapsedString(ApplyTransforms(input, list));
  std::vector<std::string> results(4);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) results[t] = ToCollapsedString(ApplyTransforms(input, list));
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& r : results) EXPECT_EQ(r, expected);
}

TEST(TransformTest, EmptyListReturnsACopy) {
  Profile p = Parse("a;b 1\n");
  Profile out = ApplyTransforms(p, TransformList());
  EXPECT_EQ(ToCollapsedString(out), "a;b 1\n");
  EXPECT_EQ(out.metadata().transforms_json, "");
}

TEST(TransformTest, EventsColumnFollowsItsStacks) {
  Profile in;
  const FrameId m = in.InternFrame("main");
  const FrameId x = in.InternFrame("Parse<int>");
  const FrameId y = in.InternFrame("Parse<long>");
  const FrameId z = in.InternFrame("Idle");
  const FrameId sx[] = {m, x}, sy[] = {m, y}, sz[] = {m, z};
  in.AddStack(sx, 4096, 1);
  in.AddStack(sy, 8192, 2);
  in.AddStack(sz, 64, 9);
  // replace folds Parse<int> and Parse<long>: bytes and counts add up.
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(
      TransformList list,
      TransformList::FromJson(R"js([{"replace": "<[^<>]*>", "with": ""}, {"remove": "Idle"}])js"));
  Profile out = ApplyTransforms(in, list);
  ASSERT_TRUE(out.has_events());
  ASSERT_EQ(out.stack_count(), 1u);
  EXPECT_EQ(out.stack_count_at(0), 12288u);
  EXPECT_EQ(out.stack_events_at(0), 3u);
  // Nothing left: the column stays (pprof still offers the counts type).
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(TransformList none,
                                TransformList::FromJson(R"js([{"filter": "^nothing$"}])js"));
  Profile empty = ApplyTransforms(in, none);
  EXPECT_EQ(empty.stack_count(), 0u);
  EXPECT_TRUE(empty.has_events());
}

}  // namespace
}  // namespace flamekit
