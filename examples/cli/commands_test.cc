// SPDX-License-Identifier: Apache-2.0
//
// In-process tests of the flamekit commands: the same RunCli() main() calls,
// with string streams for output and real files in testdata/ and TEST_TMPDIR.

#include <stdlib.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "examples/cli/cli_test_util.h"
#include "examples/cli/command.h"
#include "examples/cli/flags.h"
#include "examples/cli/output.h"
#include "flamekit/profile/collapsed_io.h"

namespace flamekit {
namespace cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

const std::string kCollapsed = "testdata/collapsed/";
const std::string kTransforms = "testdata/transforms/";

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

TEST(CliTest, HelpListsEveryCommandFromTheTable) {
  CliResult r = RunFlamekit({"help"});
  EXPECT_EQ(r.code, kExitOk);
  for (const Command& c : Commands()) {
    EXPECT_THAT(r.out, HasSubstr(c.name));
    EXPECT_THAT(r.out, HasSubstr(c.summary));
  }
  EXPECT_EQ(RunFlamekit({"--help"}).code, kExitOk);
  CliResult none = RunFlamekit({});
  EXPECT_EQ(none.code, kExitUsage);
  EXPECT_THAT(none.err, HasSubstr("no command given"));
  CliResult unknown = RunFlamekit({"frobnicate"});
  EXPECT_EQ(unknown.code, kExitUsage);
  EXPECT_THAT(unknown.err, HasSubstr("unknown command 'frobnicate'"));
  EXPECT_EQ(RunFlamekit({"help", "frobnicate"}).code, kExitUsage);
}

TEST(CliTest, EveryCommandHasHelp) {
  for (const Command& c : Commands()) {
    SCOPED_TRACE(c.name);
    CliResult a = RunFlamekit({"help", c.name});
    CliResult b = RunFlamekit({c.name, "--help"});
    EXPECT_EQ(a.code, kExitOk);
    EXPECT_EQ(b.code, kExitOk);
    EXPECT_EQ(a.out, b.out);
    EXPECT_THAT(a.out, HasSubstr(std::string("usage: ") + c.usage));
    EXPECT_EQ(FindCommand(c.name), &c);
  }
}

TEST(CliTest, ConvertWritesCollapsedOutput) {
  const std::string out = TestTmp("convert_out.txt");
  CliResult r = RunFlamekit({"convert", kCollapsed + "server.txt", "-f", out});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.err, HasSubstr("wrote " + out + ": 8 stacks, 195 samples"));
  absl::StatusOr<Profile> in = ReadCollapsedFile(kCollapsed + "server.txt");
  ASSERT_TRUE(in.ok());
  EXPECT_EQ(ReadAll(out), ToCollapsedString(*in));
}

TEST(CliTest, ConvertAppliesTransformsIncludeAndExcludeInOrder) {
  CliResult r = RunFlamekit({"convert", kCollapsed + "server.txt", "-f", "-", "--transforms",
                  kTransforms + "cleanup.json", "--include=Handle", "--exclude",
                  "memcpy|malloc"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "main;(anonymous namespace)::RunServer(int, char**);Server::Run();"
            "Server::Handle(Request const&);Parser::Parse(std::basic_string_view<char, "
            "std::char_traits<char> >);Parser::ParseValue();Lexer::Next()_[i] 87\n"
            "main;(anonymous namespace)::RunServer(int, char**);Server::Run();"
            "Server::Handle(Request const&);Server::Handle(Request const&)::{lambda}::"
            "operator()() const;compress;libz.so.1+0x3a1f 9\n"
            "main;(anonymous namespace)::RunServer(int, char**);Server::Run();"
            "Server::Handle(Request const&);std::unordered_map<std::string, int>::"
            "find(std::string const&) 15\n");
}

TEST(CliTest, ConvertMergesSeveralInputs) {
  CliResult r = RunFlamekit({"convert", kCollapsed + "before.txt", kCollapsed + "after.txt",
                          "-f", "-"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const std::string h = "main;Server::Run();Server::Handle(Request const&);";
  EXPECT_EQ(r.out, h + "Cache::Lookup(Key const&) 40\n" + h + "Parser::Parse() 90\n" + h +
                       "memcpy 150\n" + "main;Server::Run();epoll_wait 20\n");
}

TEST(CliTest, ConvertMergesThreadsUnlessAsked) {
  CliResult merged = RunFlamekit({"convert", kCollapsed + "threads.txt", "-f", "-"});
  ASSERT_EQ(merged.code, kExitOk) << merged.err;
  EXPECT_THAT(merged.out, Not(HasSubstr("tid=")));
  EXPECT_THAT(merged.out,
              HasSubstr("start_thread;Worker::Loop();Server::Handle(Request const&);memcpy 50\n"));
  CliResult split = RunFlamekit({"convert", kCollapsed + "threads.txt", "-f", "-", "--threads"});
  ASSERT_EQ(split.code, kExitOk) << split.err;
  EXPECT_EQ(split.out, ToCollapsedString(*ReadCollapsedFile(kCollapsed + "threads.txt")));
  CliResult note = RunFlamekit({"convert", kCollapsed + "before.txt", "-f", "-", "--threads"});
  EXPECT_EQ(note.code, kExitOk);
  EXPECT_THAT(note.err, HasSubstr("has no per-thread stacks"));
}

TEST(CliTest, ConvertTopPrintsHotFunctions) {
  CliResult r = RunFlamekit({"convert", kCollapsed + "after.txt", "-f", TestTmp("top.txt"), "--top", "2"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Samples: 200"));
  EXPECT_THAT(r.out, HasSubstr("60.00%          120   60.00%          120  memcpy"));
  EXPECT_EQ(RunFlamekit({"convert", kCollapsed + "after.txt", "-f", "-", "--top", "0"}).code,
            kExitUsage);
}

TEST(CliTest, UsageErrorsExitTwoWithTheUsageLine) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::string in = kCollapsed + "server.txt";
  const Case cases[] = {
      {{"convert"}, "missing INPUT"},
      {{"convert", in}, "missing -f OUTPUT"},
      {{"convert", "-", in, "-", "-f", "x.txt"}, "standard input ('-') can be read only once"},
      {{"convert", in, "-f"}, "--output needs a value"},
      {{"convert", in, "-f", "a.txt", "-f", "b.txt"}, "--output given more than once"},
      {{"convert", in, "-f", "a.txt", "--bogus"}, "unknown flag --bogus"},
      {{"convert", in, "-f", "a.txt", "--threads=yes"}, "--threads takes no value"},
      {{"convert", in, "-f", "a.txt", "--top", "x"}, "--top needs a whole number"},
      {{"diff", in, "-f", "a.txt"}, "expected two profiles"},
      {{"diff", "-", "-", "-f", "a.txt"}, "only one of BASE and NEW"},
      {{"diff", in, in}, "missing -f OUTPUT"},
  };
  for (const Case& c : cases) {
    CliResult r = RunFlamekit(c.args);
    EXPECT_EQ(r.code, kExitUsage) << c.message;
    EXPECT_THAT(r.err, HasSubstr(c.message));
    EXPECT_THAT(r.err, HasSubstr("usage: flamekit " + c.args[0]));
    EXPECT_EQ(r.out, "");
  }
}

TEST(CliTest, BadInputExitsOneWithOneMessage) {
  struct Case {
    std::vector<std::string> args;
    const char* message;
  };
  const std::string in = kCollapsed + "server.txt";
  const Case cases[] = {
      {{"convert", "/nonexistent.txt", "-f", TestTmp("x.txt")}, "no such file; check the path"},
      {{"convert", kCollapsed + "bad_line.txt", "-f", TestTmp("x.txt")},
       "bad_line.txt:3: expected 'frames count'"},
      {{"convert", kCollapsed + "empty.txt", "-f", TestTmp("x.txt")}, "empty file"},
      {{"convert", in, "-f", TestTmp("x.xyz")}, "cannot tell the output format"},
      {{"convert", in, "-f", TestTmp("noext")}, "name it .html, .svg, .txt"},
      {{"convert", in, "-f", "/nonexistent/dir/x.txt"}, "directory does not exist"},
      {{"convert", in, "-f", TestTmp("x.txt"), "--include", "("}, "--include: invalid regex \"(\""},
      {{"convert", in, "-f", TestTmp("x.txt"), "--exclude", "[z-a]"}, "--exclude: invalid regex"},
      {{"convert", in, "-f", TestTmp("x.txt"), "--include", "NoSuchFunction"},
       "no samples left after the filters"},
      {{"convert", in, "-f", TestTmp("x.txt"), "--transforms", kTransforms + "bad_regex.json"},
       "bad_regex.json: entry 2: invalid regex \"(\""},
      {{"convert", in, "-f", TestTmp("x.txt"), "--transforms", kTransforms + "unknown_key.json"},
       "entry 3: unknown key \"drop\""},
      {{"diff", in, "/nonexistent.txt", "-f", TestTmp("d.txt")}, "no such file"},
      {{"diff", in, in, "-f", TestTmp("d.pb.gz")}, "a diff cannot be written as pprof"},
  };
  for (const Case& c : cases) {
    CliResult r = RunFlamekit(c.args);
    EXPECT_EQ(r.code, kExitError) << c.message << "\n" << r.err;
    EXPECT_THAT(r.err, StartsWith("flamekit " + c.args[0] + ": "));
    EXPECT_THAT(r.err, HasSubstr(c.message));
    // One message: one line.
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_FALSE(Exists(TestTmp("x.xyz")));
  EXPECT_FALSE(Exists(TestTmp("d.pb.gz")));
  EXPECT_FALSE(Exists(TestTmp("x.txt")));
}

TEST(CliTest, LenientConvertWarnsAndContinues) {
  CliResult r = RunFlamekit({"convert", kCollapsed + "bad_line.txt", "-f", "-", "--lenient"});
  ASSERT_EQ(r.code, kExitOk);
  EXPECT_EQ(r.out, "main;bar 2\nmain;foo 1\nmain;qux 4\n");
  EXPECT_THAT(r.err, HasSubstr("warning: skipped 1 bad line of 4"));
}

TEST(CliTest, DiffWritesDiffFoldedRawAndNormalized) {
  const std::string base = kCollapsed + "before.txt";
  const std::string next = kCollapsed + "after.txt";
  const std::string h = "main;Server::Run();Server::Handle(Request const&);";
  CliResult raw = RunFlamekit({"diff", base, next, "-f", "-"});
  ASSERT_EQ(raw.code, kExitOk) << raw.err;
  EXPECT_EQ(raw.out, h + "Cache::Lookup(Key const&) 0 40\n" + h + "Parser::Parse() 60 30\n" +
                         h + "memcpy 30 120\n" + "main;Server::Run();epoll_wait 10 10\n");
  const std::string out = TestTmp("diff.folded");
  CliResult norm = RunFlamekit({"diff", base, next, "-f", out, "--normalize"});
  ASSERT_EQ(norm.code, kExitOk) << norm.err;
  EXPECT_THAT(norm.err, HasSubstr("100 samples before, 200 after (before normalized)"));
  EXPECT_EQ(ReadAll(out), h + "Cache::Lookup(Key const&) 0 40\n" + h +
                              "Parser::Parse() 120 30\n" + h + "memcpy 60 120\n" +
                              "main;Server::Run();epoll_wait 20 10\n");
  // Transforms apply to both sides.
  CliResult filtered = RunFlamekit({"diff", base, next, "-f", "-", "--exclude", "^epoll_wait$",
                         "--include", "Parse"});
  ASSERT_EQ(filtered.code, kExitOk) << filtered.err;
  EXPECT_EQ(filtered.out, h + "Parser::Parse() 60 30\n");
}

TEST(FlagsTest, ParsesLongShortInlineAndPositional) {
  const FlagSpec specs[] = {{"--output", "-f", true}, {"--threads", "", false}};
  std::vector<std::string> args = {"in.txt", "-f", "o.txt", "--threads", "--", "--x", "-"};
  absl::StatusOr<ParsedArgs> p = ParseArgs(args, specs);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->positional, (std::vector<std::string>{"in.txt", "--x", "-"}));
  EXPECT_EQ(p->Value("--output"), "o.txt");
  EXPECT_TRUE(p->Has("--threads"));
  EXPECT_FALSE(p->help);
  std::vector<std::string> inline_args = {"--output=a=b.txt", "-h"};
  p = ParseArgs(inline_args, specs);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Value("--output"), "a=b.txt");
  EXPECT_TRUE(p->help);
  EXPECT_EQ(p->Value("--nothing", "fallback"), "fallback");
}

TEST(OutputTest, ExtensionsChooseTheFormat) {
  EXPECT_EQ(OutputExtension("dir.d/Profile.TXT"), ".txt");
  EXPECT_EQ(OutputExtension("dir.d/profile"), "");
  EXPECT_EQ(OutputExtension(".hidden"), "");
  EXPECT_TRUE(CheckOutputFormat("a.folded", false).ok());
  EXPECT_TRUE(CheckOutputFormat("-", true).ok());
  EXPECT_TRUE(CheckOutputFormat("a.pb.gz", false).ok());
  EXPECT_EQ(CheckOutputFormat("a.pb.gz", /*diff=*/true).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CheckOutputFormat("a.xyz", false).code(), absl::StatusCode::kInvalidArgument);
  Profile p;
  p.AddStack({p.InternFrame("main")}, 1);
  EXPECT_TRUE(WriteOutput(p, TestTmp("o.collapsed"), {}).ok());
  EXPECT_EQ(ReadAll(TestTmp("o.collapsed")), "main 1\n");
  EXPECT_EQ(WriteOutput(p, TestTmp("o.xyz"), {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(Exists(TestTmp("o.xyz")));
}

TEST(OutputTest, RenderedFormatsCarryTheRenderFlags) {
  Profile p;
  p.AddStack({p.InternFrame("main"), p.InternFrame("HandleRequest")}, 3);
  OutputOptions options;
  options.render.title = "checkout after the fix";
  ASSERT_TRUE(WriteOutput(p, TestTmp("o.html"), options).ok());
  std::string html = ReadAll(TestTmp("o.html"));
  EXPECT_THAT(html, HasSubstr("<canvas"));
  EXPECT_THAT(html, HasSubstr("checkout after the fix"));
  EXPECT_THAT(html, HasSubstr("HandleRequest"));
  // --format overrides the extension, for any file name.
  options.render.format = OutputFormat::kSvg;
  ASSERT_TRUE(WriteOutput(p, TestTmp("o.out"), options).ok());
  EXPECT_THAT(ReadAll(TestTmp("o.out")), HasSubstr("<svg"));
  options.render.format = OutputFormat::kCollapsed;
  ASSERT_TRUE(WriteOutput(p, TestTmp("o2.out"), options).ok());
  EXPECT_EQ(ReadAll(TestTmp("o2.out")), "main;HandleRequest 3\n");
}

}  // namespace
}  // namespace cli
}  // namespace flamekit
