// SPDX-License-Identifier: Apache-2.0
// File: errno_saver.h
//
// ErrnoSaver keeps errno unchanged across a scope. Async-signal-safe: a
// signal handler opens with one so the interrupted code never sees errno
// change under it (signal-safety(7) asks handlers to save and restore it).
//
// Example:
//
//   void OnSignal(int, siginfo_t*, void*) {
//     flamekit::ErrnoSaver errno_saver;
//     ...
//   }

#ifndef FLAMEKIT_BASE_ERRNO_SAVER_H_
#define FLAMEKIT_BASE_ERRNO_SAVER_H_

#include <errno.h>

namespace flamekit {

class ErrnoSaver {
 public:
  ErrnoSaver() : saved_errno_(errno) {}
  ~ErrnoSaver() { errno = saved_errno_; }
  ErrnoSaver(const ErrnoSaver&) = delete;
  ErrnoSaver& operator=(const ErrnoSaver&) = delete;

  // The errno value at construction.
  int saved() const { return saved_errno_; }

 private:
  const int saved_errno_;
};

}  // namespace flamekit

#endif  // FLAMEKIT_BASE_ERRNO_SAVER_H_
