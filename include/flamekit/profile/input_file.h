// SPDX-License-Identifier: Apache-2.0
// File: input_file.h
//
// Opening and reading the files profile readers take: one errno -> message
// mapping (what to do, not just what failed), descriptors opened O_CLOEXEC
// and refused when they are directories, and a whole-file read with a stated byte bound,
// for formats that cannot be parsed as a stream (pprof, HTML pages).
// Not thread-safe per call site; different files may be read on different
// threads at once. Never used from a signal handler (allocates, does I/O).
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string bytes,
//                             ReadInputBounded(fd, "cpu.pb.gz", 256 << 20));

#ifndef FLAMEKIT_PROFILE_INPUT_FILE_H_
#define FLAMEKIT_PROFILE_INPUT_FILE_H_

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/scoped_fd.h"

namespace flamekit {

// InputBaseName()
//
// The last path component ("cpu.txt" of "/tmp/cpu.txt").
absl::string_view InputBaseName(absl::string_view path);

// InputReadError()
//
// The status for an errno met opening or reading `path`, with what to do.
absl::Status InputReadError(int error_number, absl::string_view path);

// OpenInputFile()
//
// Opens `path` read-only; a directory is refused with InvalidArgument. A
// FIFO is read as a stream, as the user asked (`convert <(zcat x.gz)`).
absl::StatusOr<ScopedFd> OpenInputFile(absl::string_view path);

// ReadInputBounded()
//
// Appends everything `fd` holds to `out`, failing with ResourceExhausted
// ("larger than N bytes") as soon as more than `max_bytes` arrive, so a
// huge or endless input costs at most `max_bytes` of memory.
absl::Status ReadInputBounded(int fd, absl::string_view source_name, size_t max_bytes,
                              std::string* out);

// Implementation details follow.

inline absl::string_view InputBaseName(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

inline absl::Status InputReadError(int error_number, absl::string_view path) {
  switch (error_number) {
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(absl::StrCat(
          "cannot read ", path, ": no such file; check the path"));
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot read ", path, ": permission denied; check its permissions "
          "or run as its owner"));
    case EISDIR:
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot read ", path, ": it is a directory; give a profile file"));
    default:
      return absl::ErrnoToStatus(error_number,
                                 absl::StrCat("cannot read ", path));
  }
}

inline absl::StatusOr<ScopedFd> OpenInputFile(absl::string_view path) {
  std::string name(path);
  int fd;
  do {
    fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return InputReadError(errno, path);
  ScopedFd closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return InputReadError(errno, path);
  if (S_ISDIR(st.st_mode)) return InputReadError(EISDIR, path);
  return closer;
}

inline absl::Status ReadInputBounded(int fd, absl::string_view source_name, size_t max_bytes,
                                     std::string* out) {
  constexpr size_t kChunk = size_t{1} << 20;
  while (true) {
    const size_t old = out->size();
    out->resize(old + kChunk);
    ssize_t n = ::read(fd, &(*out)[old], kChunk);
    if (n < 0) {
      out->resize(old);
      if (errno == EINTR) continue;
      return InputReadError(errno, source_name);
    }
    out->resize(old + static_cast<size_t>(n));
    if (n == 0) return absl::OkStatus();
    if (out->size() > max_bytes) {
      out->clear();
      out->shrink_to_fit();
      return absl::ResourceExhaustedError(absl::StrCat(
          source_name, ": larger than ", max_bytes,
          " bytes, the most this format is read whole; trim the profile or raise the "
          "bound (ProfileReadOptions::max_input_bytes)"));
    }
  }
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_INPUT_FILE_H_
