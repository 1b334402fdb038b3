// SPDX-License-Identifier: Apache-2.0
// File: collapsed_io.h
//
// Collapsed ("folded") text in and out: collapsed_reader.h (streaming
// parser, file and descriptor readers) and collapsed_writer.h (the writer),
// for code that wants both. Same contracts as those two headers: not
// thread-safe per parser, never from a signal handler.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(Profile profile, ReadCollapsedFile("in.txt"));
//   FLAMEKIT_RETURN_IF_ERROR(WriteCollapsedFile(profile, "out.txt"));

#ifndef FLAMEKIT_PROFILE_COLLAPSED_IO_H_
#define FLAMEKIT_PROFILE_COLLAPSED_IO_H_

#include "flamekit/profile/collapsed_reader.h"  // IWYU pragma: export
#include "flamekit/profile/collapsed_writer.h"  // IWYU pragma: export

#endif  // FLAMEKIT_PROFILE_COLLAPSED_IO_H_
