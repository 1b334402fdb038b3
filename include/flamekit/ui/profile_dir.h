// SPDX-License-Identifier: Apache-2.0
// File: profile_dir.h
//
// The safety of the UI's profile directory. Whatever is in it is served in
// the UI's origin, so
//   - the default is private to the UI's user: $STATE_DIRECTORY (a systemd
//     service's own state dir), else $XDG_STATE_HOME/flamekit-ui, else
//     ~/.local/state/flamekit-ui; never a shared temporary directory, where
//     another user could create it first;
//   - OpenProfileDirectory() creates it mode 0700 and then checks what it
//     opened (fstat on the descriptor, the default opened with O_NOFOLLOW):
//     owned by this process's effective uid, writable by nobody else (the
//     default: no access for anybody else at all); anything else is refused
//     with one message saying what to do;
//   - ReadStoredFile() opens with O_NOFOLLOW | O_NONBLOCK and reads only a
//     regular file (fstat on the descriptor): a symlink, a FIFO (which would
//     block open() and read() forever) or a device is "not found".
//
// Thread-safety: pure functions over the file system; safe from any
// ordinary thread. Never from a signal handler.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string dir, OpenProfileDirectory(""));
//   absl::StatusOr<std::string> page = ReadStoredFile(dir + "/" + name);

#ifndef FLAMEKIT_UI_PROFILE_DIR_H_
#define FLAMEKIT_UI_PROFILE_DIR_H_

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/scoped_fd.h"

namespace flamekit {

// DefaultProfileDirectory()
//
// $STATE_DIRECTORY (its first entry), else $XDG_STATE_HOME/flamekit-ui,
// else $HOME/.local/state/flamekit-ui (HOME unset: the passwd entry's).
// Empty when none of them is known.
std::string DefaultProfileDirectory();

// OpenProfileDirectory()
//
// Creates `dir` (empty: DefaultProfileDirectory()) with mode 0700 and any
// missing parents, checks it as the banner says, and returns its resolved
// absolute path. FailedPrecondition/PermissionDenied with what to do
// otherwise.
absl::StatusOr<std::string> OpenProfileDirectory(absl::string_view dir);

// ReadStoredFile()
//
// The contents of the regular file `path`; NotFound for a symlink, FIFO,
// device, directory or a missing file. Never blocks on a FIFO.
absl::StatusOr<std::string> ReadStoredFile(const std::string& path);

// StoredFileBytes()
//
// The size of `path` if it is a regular file (not followed), else 0.
uint64_t StoredFileBytes(const std::string& path);

// Implementation details follow.

namespace ui_internal {

inline absl::Status MakeDirectories(const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError("empty directory name");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string prefix = path.substr(0, pos);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot create the profile directory ", prefix, ": ", strerror(errno),
          "; choose a writable directory (--dir)"));
    }
  }
  return absl::OkStatus();
}

inline std::string AbsoluteEnv(const char* name) {
  const char* value = ::getenv(name);
  if (value == nullptr || value[0] != '/') return "";
  std::string s(value);
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace ui_internal

inline std::string DefaultProfileDirectory() {
  std::string state = ui_internal::AbsoluteEnv("STATE_DIRECTORY");
  if (!state.empty()) return state.substr(0, state.find(':'));
  std::string xdg = ui_internal::AbsoluteEnv("XDG_STATE_HOME");
  if (!xdg.empty()) return absl::StrCat(xdg, "/flamekit-ui");
  std::string home = ui_internal::AbsoluteEnv("HOME");
  if (home.empty()) {
    struct passwd pw;
    struct passwd* found = nullptr;
    std::vector<char> buffer(16384);
    if (::getpwuid_r(::geteuid(), &pw, buffer.data(), buffer.size(), &found) == 0 &&
        found != nullptr && pw.pw_dir != nullptr && pw.pw_dir[0] == '/') {
      home = pw.pw_dir;
    }
  }
  if (home.empty()) return "";
  return absl::StrCat(home, "/.local/state/flamekit-ui");
}

inline absl::StatusOr<std::string> OpenProfileDirectory(absl::string_view dir) {
  const bool is_default = dir.empty();
  std::string path = is_default ? DefaultProfileDirectory() : std::string(dir);
  if (path.empty()) {
    return absl::FailedPreconditionError(
        "no place for the profiles: neither $XDG_STATE_HOME nor a home directory is known; "
        "give a directory of this user (--dir)");
  }
  if (path.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("the profile directory name contains a NUL byte");
  }
  absl::Status made = ui_internal::MakeDirectories(path);
  if (!made.ok()) return made;
  // The default must be the directory itself, not a link to one; a
  // directory the user names may be reached through links.
  std::string resolved = path;
  if (!is_default) {
    char* real = ::realpath(path.c_str(), nullptr);
    if (real == nullptr) {
      return absl::NotFoundError(absl::StrCat("cannot resolve the profile directory ", path,
                                              ": ", strerror(errno)));
    }
    resolved = real;
    ::free(real);
  }
  int fd = ::open(resolved.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ELOOP || err == ENOTDIR) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, " is not a directory", is_default ? " (a symlink or a file is in the way)" : "",
          "; remove it, or give --dir a directory for the profiles"));
    }
    return absl::PermissionDeniedError(absl::StrCat("cannot open the profile directory ",
                                                    resolved, ": ", strerror(err),
                                                    "; choose another (--dir)"));
  }
  ScopedFd owned(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a directory; give --dir a directory for the profiles"));
  }
  // Whatever is in the directory is served in the UI's origin: only this
  // user may be able to put files there.
  if (st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the profile directory %s is owned by uid %d, not by this process (uid %d): that user "
        "could plant pages the UI would serve; remove it (rm -r %s) or choose another (--dir)",
        resolved, st.st_uid, ::geteuid(), resolved));
  }
  const mode_t forbidden = is_default ? 077 : 022;
  if ((st.st_mode & forbidden) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "the profile directory %s has mode %04o: other users could %s; chmod 700 %s, or choose "
        "another (--dir)",
        resolved, st.st_mode & 07777,
        (st.st_mode & 022) != 0 ? "plant pages the UI would serve" : "read its profiles",
        resolved));
  }
  if (::faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) != 0) {
    return absl::PermissionDeniedError(absl::StrCat(
        "the profile directory ", resolved, " is not writable; choose another (--dir)"));
  }
  return resolved;
}

inline absl::StatusOr<std::string> ReadStoredFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
  // writer forever (and reads from it too); it is refused below anyway.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return absl::NotFoundError("no such profile file");
  ScopedFd owned(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::NotFoundError("no such profile file");
  }
  std::string data;
  data.reserve(static_cast<size_t>(st.st_size));
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::ErrnoToStatus(errno, absl::StrCat("reading ", path));
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  return data;
}

inline uint64_t StoredFileBytes(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_PROFILE_DIR_H_
