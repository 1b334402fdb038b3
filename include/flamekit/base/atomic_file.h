// SPDX-License-Identifier: Apache-2.0
// File: atomic_file.h
//
// Files that are either complete or absent. AtomicFileWriter writes to a
// temporary file beside the destination and renames it into place on
// Commit(); if anything fails, or the writer is destroyed uncommitted, the
// temporary file is removed and the destination is untouched. Not
// thread-safe (one writer, one thread); not for signal handlers.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(AtomicFileWriter out,
//                             AtomicFileWriter::Open("flame.html"));
//   FLAMEKIT_RETURN_IF_ERROR(out.Write(html));
//   FLAMEKIT_RETURN_IF_ERROR(out.Commit());
//
//   // Or, for one string:
//   FLAMEKIT_RETURN_IF_ERROR(WriteFileAtomically("flame.html", html));

#ifndef FLAMEKIT_BASE_ATOMIC_FILE_H_
#define FLAMEKIT_BASE_ATOMIC_FILE_H_

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/scoped_fd.h"

namespace flamekit {

// FileWriteError()
//
// Turns an errno from writing `path` into a Status whose message says what
// to do: a full disk, a missing directory or a permission problem.
absl::Status FileWriteError(int error_number, absl::string_view path);

class AtomicFileWriter {
 public:
  // Open()
  //
  // Creates a temporary file in the directory of `path` (mode 0644 before
  // umask). Fails if the directory does not exist or is not writable.
  static absl::StatusOr<AtomicFileWriter> Open(absl::string_view path);

  AtomicFileWriter(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter& operator=(AtomicFileWriter&& other) noexcept;
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  // Removes the temporary file unless Commit() succeeded.
  ~AtomicFileWriter();

  // Write()
  //
  // Appends `data`, retrying short writes and EINTR.
  absl::Status Write(absl::string_view data);

  // Commit()
  //
  // Flushes to disk and renames the temporary file over the destination.
  // After a failure the destination is unchanged and the writer is spent.
  absl::Status Commit();

  const std::string& path() const { return path_; }
  // Bytes written so far.
  size_t size() const { return size_; }

 private:
  AtomicFileWriter(std::string path, std::string temp_path, ScopedFd fd)
      : path_(std::move(path)), temp_path_(std::move(temp_path)),
        fd_(std::move(fd)) {}
  void Abandon();

  std::string path_;
  std::string temp_path_;
  ScopedFd fd_;
  size_t size_ = 0;
};

// WriteFileAtomically()
//
// Writes `contents` to `path` through an AtomicFileWriter.
absl::Status WriteFileAtomically(absl::string_view path,
                                 absl::string_view contents);

// Implementation details follow.

inline absl::Status FileWriteError(int error_number, absl::string_view path) {
  switch (error_number) {
    case ENOSPC:
    case EDQUOT:
      return absl::ResourceExhaustedError(absl::StrCat(
          "cannot write ", path, ": no space left on the device; free some "
          "space or write somewhere else"));
    case ENOENT:
    case ENOTDIR:
      return absl::NotFoundError(absl::StrCat(
          "cannot write ", path, ": its directory does not exist; create it "
          "or choose another path"));
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::PermissionDeniedError(absl::StrCat(
          "cannot write ", path, ": permission denied; choose a writable "
          "directory"));
    case EISDIR:
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot write ", path, ": it is a directory; give a file name"));
    default:
      return absl::ErrnoToStatus(error_number, absl::StrCat("cannot write ", path));
  }
}

inline absl::StatusOr<AtomicFileWriter> AtomicFileWriter::Open(
    absl::string_view path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("output path is empty");
  }
  std::string destination(path);
  struct stat st;
  if (::stat(destination.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return FileWriteError(EISDIR, path);
  }
  // The temporary name starts with '.' so directory listings (the UI's
  // profile list) never show a half-written file.
  size_t slash = destination.rfind('/');
  std::string dir = slash == std::string::npos ? "" : destination.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? destination : destination.substr(slash + 1);
  std::string temp_path = absl::StrCat(dir, ".", base, ".tmp.XXXXXX");
  int fd = ::mkostemp(&temp_path[0], O_CLOEXEC);
  if (fd < 0) return FileWriteError(errno, path);
  // mkostemp creates 0600; a profile is an ordinary file a user shares.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0644 & ~mask);
  return AtomicFileWriter(std::move(destination), std::move(temp_path), ScopedFd(fd));
}

inline AtomicFileWriter::AtomicFileWriter(AtomicFileWriter&& other) noexcept
    : path_(std::move(other.path_)),
      temp_path_(std::exchange(other.temp_path_, std::string())),
      fd_(std::move(other.fd_)),
      size_(other.size_) {}

inline AtomicFileWriter& AtomicFileWriter::operator=(
    AtomicFileWriter&& other) noexcept {
  if (this != &other) {
    Abandon();
    path_ = std::move(other.path_);
    temp_path_ = std::exchange(other.temp_path_, std::string());
    fd_ = std::move(other.fd_);
    size_ = other.size_;
  }
  return *this;
}

inline AtomicFileWriter::~AtomicFileWriter() { Abandon(); }

inline void AtomicFileWriter::Abandon() {
  fd_.reset();
  if (!temp_path_.empty()) {
    ::unlink(temp_path_.c_str());
    temp_path_.clear();
  }
}

inline absl::Status AtomicFileWriter::Write(absl::string_view data) {
  if (!fd_) return absl::FailedPreconditionError("file writer already closed");
  while (!data.empty()) {
    ssize_t n = ::write(fd_.get(), data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status error = FileWriteError(errno, path_);
      Abandon();
      return error;
    }
    data.remove_prefix(static_cast<size_t>(n));
    size_ += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

inline absl::Status AtomicFileWriter::Commit() {
  if (!fd_) return absl::FailedPreconditionError("file writer already closed");
  // fsync before rename: otherwise a crash can leave the new name pointing
  // at an empty file on some file systems.
  if (::fsync(fd_.get()) != 0 && errno != EINVAL) {
    absl::Status error = FileWriteError(errno, path_);
    Abandon();
    return error;
  }
  int fd = fd_.release();
  if (::close(fd) != 0 && errno != EINTR) {
    absl::Status error = FileWriteError(errno, path_);
    Abandon();
    return error;
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    absl::Status error = FileWriteError(errno, path_);
    Abandon();
    return error;
  }
  temp_path_.clear();
  return absl::OkStatus();
}

inline absl::Status WriteFileAtomically(absl::string_view path,
                                        absl::string_view contents) {
  absl::StatusOr<AtomicFileWriter> writer = AtomicFileWriter::Open(path);
  if (!writer.ok()) return writer.status();
  absl::Status written = writer->Write(contents);
  if (!written.ok()) return written;
  return writer->Commit();
}

}  // namespace flamekit

#endif  // FLAMEKIT_BASE_ATOMIC_FILE_H_
