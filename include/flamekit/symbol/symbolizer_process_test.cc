// SPDX-License-Identifier: Apache-2.0
// Symbolizer tests that run other processes: a helper by PID, a deleted
// binary and library, a process in its own mount namespace, split debug
// files. Some need real root (map_files needs CAP_SYS_ADMIN in the initial
// user namespace, `unshare --mount` CAP_SYS_ADMIN, /proc/kallsyms
// addresses CAP_SYSLOG); each skips with the reason when it lacks it.
#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "flamekit/symbol/symbolizer.h"
#include "flamekit/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace flamekit {
namespace {

using ::flamekit::testing::IsOk;
using ::testing::HasSubstr;

std::string Runfile(absl::string_view rel) {
  const char* srcdir = getenv("TEST_SRCDIR");
  if (srcdir != nullptr) return absl::StrCat(srcdir, "/flamekit/", rel);
  return std::string(rel);
}

std::string TempDir() {
  const char* t = getenv("TEST_TMPDIR");
  return t != nullptr ? t : "/tmp";
}

// A fresh empty folder under the test's temp dir.
std::string MakeTempDir(absl::string_view name) {
  static int counter = 0;
  std::string dir = absl::StrCat(TempDir(), "/", name, "_", getpid(), "_", counter++);
  mkdir(dir.c_str(), 0755);
  return dir;
}

// A child process started from `argv` (through fork + exec) whose stdout
// we read and whose stdin we hold: it runs until we close stdin or kill it.
class Child {
 public:
  static std::unique_ptr<Child> Start(const std::vector<std::string>& argv) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) return nullptr;
    pid_t pid = fork();
    if (pid < 0) return nullptr;
    if (pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::vector<char*> args;
      for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    auto c = std::unique_ptr<Child>(new Child());
    c->pid_ = pid;
    c->stdin_ = in[1];
    c->stdout_ = fdopen(out[0], "r");
    return c;
  }
  // Reads "NAME 0xADDR" lines until "ready"; false on EOF.
  bool ReadAddresses() {
    char line[512];
    while (fgets(line, sizeof(line), stdout_) != nullptr) {
      std::string l(line);
      while (!l.empty() && l.back() == '\n') l.pop_back();
      if (l == "ready") return true;
      std::vector<std::string> parts = absl::StrSplit(l, ' ');
      uint64_t v = 0;
      if (parts.size() == 2 && absl::StartsWith(parts[1], "0x") &&
          absl::SimpleHexAtoi(parts[1].substr(2), &v)) {
        addresses_[parts[0]] = v;
      }
      lines_.push_back(l);
    }
    return false;
  }
  uint64_t address(const std::string& name) const {
    auto it = addresses_.find(name);
    return it == addresses_.end() ? 0 : it->second;
  }
  std::string output() const { return absl::StrJoin(lines_, "\n"); }
  pid_t pid() const { return pid_; }
  ~Child() {
    close(stdin_);
    if (stdout_ != nullptr) fclose(stdout_);
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }

 private:
  Child() = default;
  pid_t pid_ = -1;
  int stdin_ = -1;
  FILE* stdout_ = nullptr;
  std::map<std::string, uint64_t> addresses_;
  std::vector<std::string> lines_;
};

std::string HelperPath() { return Runfile("include/flamekit/symbol/symbol_test_helper"); }

bool CopyFile(const std::string& from, const std::string& to) {
  std::ifstream in(from, std::ios::binary);
  std::ofstream out(to, std::ios::binary);
  out << in.rdbuf();
  out.close();
  return in.good() || in.eof() ? chmod(to.c_str(), 0755) == 0 : false;
}

TEST(SymbolizerProcessTest, NamesFunctionsOfAnotherProcess) {
  std::unique_ptr<Child> child = Child::Start({HelperPath()});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid()));
  EXPECT_EQ(s->pid(), child->pid());
  Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
  EXPECT_EQ(sym.name, "FkHelperSpin");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
  EXPECT_EQ(s->Lookup(child->address("FkHelperStatic") + 1).name, "FkHelperStatic(int)");
}


// Waits (up to 5 s) until `pid` is a zombie: exited, not reaped, with no
// /proc/PID/root or map_files left.
bool WaitZombie(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    size_t paren = stat.rfind(')');
    if (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z') {
      return true;
    }
    usleep(10000);
  }
  return false;
}

// A process that exits before its files are read (a short command under
// load) still resolves: its file is opened by path here when that is the
// same inode; a different file now at that path is never read as it.
TEST(SymbolizerProcessTest, NamesFunctionsOfExitedProcessByPathWhenSameInode) {
  std::string dir = absl::StrCat(TempDir(), "/exited_", getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  for (bool replace : {false, true}) {
    SCOPED_TRACE(replace ? "file replaced after exit" : "file unchanged");
    std::string copy = absl::StrCat(dir, "/helper", replace);
    ASSERT_TRUE(CopyFile(HelperPath(), copy));
    std::unique_ptr<Child> child = Child::Start({copy});
    ASSERT_NE(child, nullptr);
    ASSERT_TRUE(child->ReadAddresses()) << child->output();
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                  Symbolizer::ForProcess(child->pid()));
    kill(child->pid(), SIGKILL);
    ASSERT_TRUE(WaitZombie(child->pid()));
    if (replace) {
      // Same bytes, another inode: made before the old one is freed, so
      // its number cannot be the old one's again.
      ASSERT_TRUE(CopyFile(HelperPath(), copy + ".new"));
      ASSERT_EQ(rename((copy + ".new").c_str(), copy.c_str()), 0);
    }
    Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
    if (replace) {
      EXPECT_NE(sym.name, "FkHelperSpin");
    } else {
      EXPECT_EQ(sym.name, "FkHelperSpin");
    }
  }
}

TEST(SymbolizerProcessTest, NamesFunctionsOfDeletedBinary) {
  std::string dir = absl::StrCat(TempDir(), "/deleted_", getpid());
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  std::string copy = dir + "/fk_deleted_helper";
  ASSERT_TRUE(CopyFile(HelperPath(), copy));
  std::unique_ptr<Child> child = Child::Start({copy});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  ASSERT_EQ(unlink(copy.c_str()), 0);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid()));
  bool saw_deleted = false;
  for (const Mapping& m : s->mappings()) saw_deleted |= m.deleted && m.path == copy;
  EXPECT_TRUE(saw_deleted);
  Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
  EXPECT_EQ(sym.name, "FkHelperSpin") << absl::StrJoin(s->Warnings(), "\n");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
  rmdir(dir.c_str());
}


std::string SymbolDir() { return Runfile("include/flamekit/symbol/"); }

// The file offset at which the stripped helper holds FkHelperSpin, from the
// debug file's symbol and the stripped file's segments.
uint64_t HelperSpinFileOffset() {
  absl::StatusOr<std::unique_ptr<ElfFile>> debug =
      ElfFile::Open(SymbolDir() + "symbol_test_helper.debug");
  absl::StatusOr<std::unique_ptr<ElfFile>> stripped =
      ElfFile::Open(SymbolDir() + "symbol_test_helper_stripped");
  if (!debug.ok() || !stripped.ok()) return 0;
  for (const ElfSymbol& s : (*debug)->FunctionSymbols()) {
    if (s.name != "FkHelperSpin") continue;
    for (const ElfLoadSegment& seg : (*stripped)->load_segments()) {
      if (s.address >= seg.vaddr && s.address < seg.vaddr + seg.filesz) {
        return s.address - seg.vaddr + seg.file_offset;
      }
    }
  }
  return 0;
}

TEST(SymbolizerProcessTest, StrippedBinaryWithoutDebugFileGivesFileOffset) {
  std::string dir = MakeTempDir("stripped");
  std::string exe = dir + "/fk_stripped";
  ASSERT_TRUE(CopyFile(SymbolDir() + "symbol_test_helper_stripped", exe));
  std::unique_ptr<Child> child = Child::Start({exe});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  SymbolizerOptions options;
  options.debug_roots = {dir + "/no_debug_here"};
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid(), options));
  uint64_t offset = HelperSpinFileOffset();
  ASSERT_NE(offset, 0u);
  Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
  EXPECT_EQ(sym.name, absl::StrCat("fk_stripped+0x", absl::Hex(offset)));
  EXPECT_EQ(sym.kind, FrameKind::kUnknown);
}

TEST(SymbolizerProcessTest, FindsDebugFileByBuildId) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> stripped,
                                ElfFile::Open(SymbolDir() + "symbol_test_helper_stripped"));
  ASSERT_FALSE(stripped->build_id().empty());
  std::string dir = MakeTempDir("buildid");
  std::string exe = dir + "/fk_stripped";
  ASSERT_TRUE(CopyFile(SymbolDir() + "symbol_test_helper_stripped", exe));
  std::string root = dir + "/debugroot";
  std::string debug_path = BuildIdDebugPath(root, stripped->build_id());
  ASSERT_EQ(system(absl::StrCat("mkdir -p ", debug_path.substr(0, debug_path.rfind('/'))).c_str()), 0);
  ASSERT_TRUE(CopyFile(SymbolDir() + "symbol_test_helper.debug", debug_path));
  std::unique_ptr<Child> child = Child::Start({exe});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  SymbolizerOptions options;
  options.debug_roots = {root};
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid(), options));
  Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
  EXPECT_EQ(sym.name, "FkHelperSpin");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
  EXPECT_EQ(s->Lookup(child->address("FkHelperStatic")).name, "FkHelperStatic(int)");
}

TEST(SymbolizerProcessTest, FindsDebugFileByDebuglinkNextToBinary) {
  std::string dir = MakeTempDir("debuglink");
  std::string exe = dir + "/fk_stripped";
  ASSERT_TRUE(CopyFile(SymbolDir() + "symbol_test_helper_stripped", exe));
  ASSERT_EQ(mkdir((dir + "/.debug").c_str(), 0755), 0);
  ASSERT_TRUE(CopyFile(SymbolDir() + "symbol_test_helper.debug",
                       dir + "/.debug/symbol_test_helper.debug"));
  std::unique_ptr<Child> child = Child::Start({exe});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  SymbolizerOptions options;
  options.debug_roots = {};
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid(), options));
  EXPECT_EQ(s->Lookup(child->address("FkHelperSpin")).name, "FkHelperSpin");
}

TEST(SymbolizerProcessTest, RejectsDebugFileOfAnotherBuild) {
  // A file with the debuglink's name but another build id (here a shared
  // library with a .symtab): its names belong to other code, so it must
  // not be used.
  std::string dir = MakeTempDir("mismatch");
  std::string exe = dir + "/fk_stripped";
  ASSERT_TRUE(CopyFile(SymbolDir() + "symbol_test_helper_stripped", exe));
  ASSERT_TRUE(CopyFile(SymbolDir() + "libfk_symbol_test_dso.so", dir + "/symbol_test_helper.debug"));
  std::unique_ptr<Child> child = Child::Start({exe});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  SymbolizerOptions options;
  options.debug_roots = {};
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid(), options));
  Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
  EXPECT_EQ(sym.name, absl::StrCat("fk_stripped+0x", absl::Hex(HelperSpinFileOffset())));
  EXPECT_EQ(sym.kind, FrameKind::kUnknown);
}

TEST(SymbolizerProcessTest, NamesFunctionsOfDeletedLibrary) {
  std::string dir = MakeTempDir("deleted_lib");
  std::string lib = dir + "/libfk_deleted.so";
  ASSERT_TRUE(CopyFile(SymbolDir() + "libfk_symbol_test_dso.so", lib));
  std::unique_ptr<Child> child = Child::Start({HelperPath(), lib});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  ASSERT_NE(child->address("FkDsoTarget"), 0u) << child->output();
  ASSERT_EQ(unlink(lib.c_str()), 0);
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid()));
  const Mapping* m = nullptr;
  for (const Mapping& map : s->mappings()) {
    if (map.Contains(child->address("FkDsoTarget"))) m = &map;
  }
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->deleted);
  EXPECT_EQ(m->path, lib);
  Symbolizer::Symbol sym = s->Lookup(child->address("FkDsoTarget"));
  std::string map_files = absl::StrCat("/proc/", child->pid(), "/map_files/", m->MapFilesName());
  int fd = open(map_files.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // Without CAP_SYS_ADMIN the old inode is out of reach: the frame keeps
    // the library's name and offset, and a warning says what to do.
    EXPECT_THAT(sym.name, ::testing::StartsWith("libfk_deleted.so+0x"));
    EXPECT_EQ(sym.kind, FrameKind::kUnknown);
    EXPECT_THAT(absl::StrJoin(s->Warnings(), "\n"), HasSubstr("CAP_SYS_ADMIN"));
    GTEST_SKIP() << "cannot open " << map_files << " (" << strerror(errno)
                 << "): needs CAP_SYS_ADMIN in the initial user namespace; checked the fallback";
  }
  close(fd);
  EXPECT_EQ(sym.name, "FkDsoTarget") << absl::StrJoin(s->Warnings(), "\n");
  EXPECT_EQ(sym.kind, FrameKind::kLibrary);
}

TEST(SymbolizerProcessTest, NamesFunctionsOfProcessInOwnMountNamespace) {
  // The helper runs from a tmpfs mounted in its own mount namespace over an
  // empty folder: the host sees the empty folder, only /proc/PID/root
  // reaches the binary.
  std::string dir = MakeTempDir("mntns");
  std::string inner = dir + "/fk_ns_helper";
  std::string script = absl::StrCat("mount -t tmpfs fkns ", dir, " && cp ", HelperPath(), " ",
                                    inner, " && exec ", inner);
  std::unique_ptr<Child> child = Child::Start(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script});
  ASSERT_NE(child, nullptr);
  if (!child->ReadAddresses()) {
    GTEST_SKIP() << "cannot run a process in its own mount namespace here (unshare --mount "
                    "needs CAP_SYS_ADMIN): "
                 << child->output();
  }
  ASSERT_NE(access(inner.c_str(), F_OK), 0) << "the binary should be invisible from the host";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid()));
  bool saw = false;
  for (const Mapping& m : s->mappings()) saw |= m.path == inner && !m.deleted;
  EXPECT_TRUE(saw);
  Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
  EXPECT_EQ(sym.name, "FkHelperSpin") << absl::StrJoin(s->Warnings(), "\n");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
  // Its libc also resolves (through its root, which here is the host's).
  EXPECT_EQ(s->Lookup(child->address("FkHelperStatic")).name, "FkHelperStatic(int)");
}

TEST(SymbolizerProcessTest, NamesVdsoFunctionsOfAnotherProcess) {
  std::unique_ptr<Child> child = Child::Start({HelperPath()});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid()));
  const Mapping* vdso = nullptr;
  for (const Mapping& m : s->mappings()) {
    if (m.IsVdso()) vdso = &m;
  }
  if (vdso == nullptr) GTEST_SKIP() << "the child has no [vdso]";
  // Where __vdso_clock_gettime sits in the image (same kernel, same image:
  // read from our own vdso, at the child's address).
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::vector<Mapping> own, ReadProcMaps(0));
  uint64_t offset = 0;
  for (const Mapping& m : own) {
    if (!m.IsVdso()) continue;
    std::string bytes(reinterpret_cast<const char*>(m.start), m.size());
    FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::FromBytes(bytes, "vdso"));
    for (const ElfSymbol& sym : elf->FunctionSymbols()) {
      if (sym.name == "__vdso_clock_gettime") offset = sym.address;
    }
  }
  ASSERT_NE(offset, 0u);
  Symbolizer::Symbol sym = s->Lookup(vdso->start + offset + 2);
  EXPECT_THAT(sym.name, HasSubstr("clock_gettime")) << absl::StrJoin(s->Warnings(), "\n");
  EXPECT_EQ(sym.kind, FrameKind::kLibrary);
}

TEST(SymbolizerProcessTest, KeepsNamingAfterTargetExits) {
  std::unique_ptr<Child> child = Child::Start({HelperPath()});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid()));
  uint64_t spin = child->address("FkHelperSpin");
  uint64_t stat = child->address("FkHelperStatic");
  EXPECT_EQ(s->Lookup(spin).name, "FkHelperSpin");
  pid_t pid = child->pid();
  child.reset();  // kills and reaps it
  // The maps are gone: Refresh says so, and the parsed file still names
  // addresses (a profile's late samples are symbolized after the exit).
  EXPECT_THAT(s->Refresh(), ::flamekit::testing::StatusIs(absl::StatusCode::kNotFound,
                                                          HasSubstr(absl::StrCat(pid))));
  EXPECT_EQ(s->Lookup(spin).name, "FkHelperSpin");
  EXPECT_EQ(s->Lookup(stat).name, "FkHelperStatic(int)");
}

TEST(SymbolizerProcessTest, IgnoresPerfMapOwnedBySomeoneElse) {
  std::string dir = MakeTempDir("perfmap_owner");
  size_t len = 4096;
  void* code = mmap(nullptr, len, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(code, MAP_FAILED);
  std::string path = absl::StrCat(dir, "/perf-", getpid(), ".map");
  {
    std::ofstream map(path);
    map << absl::StrCat(absl::Hex(reinterpret_cast<uint64_t>(code))) << " 100 planted_name\n";
  }
  if (geteuid() != 0 || chown(path.c_str(), 4321, 4321) != 0) {
    munmap(code, len);
    GTEST_SKIP() << "cannot give a file to another user here (needs root)";
  }
  SymbolizerOptions options;
  options.perf_map_dir = dir;
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf(options));
  EXPECT_EQ(s->Lookup(reinterpret_cast<uint64_t>(code) + 4).name, "[unknown]");
  EXPECT_THAT(absl::StrJoin(s->Warnings(), "\n"), HasSubstr("owned by uid 4321"));
  munmap(code, len);
}

TEST(SymbolizerProcessTest, FindsDebugFileInsideMountNamespace) {
  // A stripped binary and its debug file (by .gnu_debuglink, in .debug/
  // next to it) exist only inside the process's mount namespace: the host
  // lookup misses, the one through /proc/PID/root finds it.
  std::string dir = MakeTempDir("mntns_debug");
  std::string inner = dir + "/fk_ns_stripped";
  std::string script = absl::StrCat(
      "mount -t tmpfs fkns ", dir, " && mkdir ", dir, "/.debug && cp ", SymbolDir(),
      "symbol_test_helper_stripped ", inner, " && cp ", SymbolDir(), "symbol_test_helper.debug ",
      dir, "/.debug/ && exec ", inner);
  std::unique_ptr<Child> child = Child::Start(
      {"/usr/bin/unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script});
  ASSERT_NE(child, nullptr);
  if (!child->ReadAddresses()) {
    GTEST_SKIP() << "cannot run a process in its own mount namespace here (unshare --mount "
                    "needs CAP_SYS_ADMIN): "
                 << child->output();
  }
  ASSERT_NE(access((dir + "/.debug/symbol_test_helper.debug").c_str(), F_OK), 0);
  SymbolizerOptions options;
  options.debug_roots = {};
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid(), options));
  Symbolizer::Symbol sym = s->Lookup(child->address("FkHelperSpin"));
  EXPECT_EQ(sym.name, "FkHelperSpin") << absl::StrJoin(s->Warnings(), "\n");
  EXPECT_EQ(sym.kind, FrameKind::kUser);
}

TEST(SymbolizerProcessTest, AnotherUsersProcessIsPermissionDenied) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  // A child that becomes `nobody` and tries to symbolize us (root): the
  // kernel hides root's maps from it.
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t parent = getpid();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    std::string result;
    if (setgid(65534) != 0 || setuid(65534) != 0) {
      result = "setuid failed";
    } else {
      absl::StatusOr<std::unique_ptr<Symbolizer>> s = Symbolizer::ForProcess(parent);
      result = s.ok() ? "ok" : s.status().ToString();
    }
    ssize_t ignored = write(fds[1], result.data(), result.size());
    (void)ignored;
    _exit(0);
  }
  close(fds[1]);
  std::string result;
  char buf[1024];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) result.append(buf, n);
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  if (result == "setuid failed") GTEST_SKIP() << "cannot switch to uid 65534 here";
  EXPECT_THAT(result, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(result, HasSubstr("run as the process's user or as root"));
}

TEST(SymbolizerProcessTest, NamesFunctionsOfStaticNonPieExecutable) {
  std::string exe = SymbolDir() + "symbol_test_helper_static";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<ElfFile> elf, ElfFile::Open(exe));
  if (elf->elf_type() != ET_EXEC) GTEST_SKIP() << "the toolchain built a PIE anyway";
  std::unique_ptr<Child> child = Child::Start({exe});
  ASSERT_NE(child, nullptr);
  ASSERT_TRUE(child->ReadAddresses()) << child->output();
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s,
                                Symbolizer::ForProcess(child->pid()));
  EXPECT_EQ(s->Lookup(child->address("FkHelperSpin")).name, "FkHelperSpin");
  // libc's read() lives in the executable here: a kUser frame.
  uint64_t read_vaddr = 0;
  for (const ElfSymbol& sym : elf->FunctionSymbols()) {
    if (sym.name == "read" || sym.name == "__libc_read") read_vaddr = sym.address;
  }
  ASSERT_NE(read_vaddr, 0u);
  Symbolizer::Symbol sym = s->Lookup(read_vaddr + 1);  // ET_EXEC: vaddr == runtime address
  EXPECT_THAT(sym.name, HasSubstr("read"));
  EXPECT_EQ(sym.kind, FrameKind::kUser);
  for (const Mapping& m : s->mappings()) EXPECT_FALSE(absl::StrContains(m.path, "libc.so"));
}

TEST(SymbolizerProcessTest, NamesRealKernelFunctions) {
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(Kallsyms k, Kallsyms::Load());
  if (k.restricted()) {
    GTEST_SKIP() << "/proc/kallsyms shows zero addresses to this process (kptr_restrict, or "
                    "perf_event_paranoid > 1 without CAP_SYSLOG)";
  }
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::string text, ReadSmallFile("/proc/kallsyms"));
  uint64_t addr = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    if (f.size() >= 3 && (f[1] == "T" || f[1] == "t") && f[2] == "schedule") {
      ASSERT_TRUE(absl::SimpleHexAtoi(f[0], &addr));
    }
  }
  if (addr == 0) GTEST_SKIP() << "no 'schedule' in /proc/kallsyms";
  FLAMEKIT_ASSERT_OK_AND_ASSIGN(std::unique_ptr<Symbolizer> s, Symbolizer::ForSelf());
  Symbolizer::Symbol sym = s->Lookup(addr + 1);
  EXPECT_EQ(sym.name, "schedule");
  EXPECT_EQ(sym.kind, FrameKind::kKernel);
}

}  // namespace
}  // namespace flamekit
