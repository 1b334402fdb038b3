// SPDX-License-Identifier: Apache-2.0
// File: scoped_fd.h
//
// ScopedFd owns one file descriptor and closes it on destruction. Not
// thread-safe (one owner at a time); movable, not copyable. Closing retries
// nothing: close(2) must not be retried on EINTR on Linux.
//
// Example:
//
//   flamekit::ScopedFd fd(open(path, O_RDONLY | O_CLOEXEC));
//   if (!fd) return absl::ErrnoToStatus(errno, path);
//   read(fd.get(), buf, n);

#ifndef FLAMEKIT_BASE_SCOPED_FD_H_
#define FLAMEKIT_BASE_SCOPED_FD_H_

#include <unistd.h>

#include <utility>

namespace flamekit {

class ScopedFd {
 public:
  ScopedFd() = default;
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() { reset(); }
  ScopedFd(ScopedFd&& other) noexcept : fd_(other.release()) {}
  ScopedFd& operator=(ScopedFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;

  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }

  // release()
  //
  // Gives up ownership and returns the descriptor (-1 if none).
  int release() { return std::exchange(fd_, -1); }

  // reset()
  //
  // Closes the owned descriptor, if any, and takes `fd`.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace flamekit

#endif  // FLAMEKIT_BASE_SCOPED_FD_H_
