// SPDX-License-Identifier: Apache-2.0
// File: gunzip.h
//
// Decompressing gzip (or zlib) input with a stated bound on the output, so
// a gzip bomb costs at most that much memory: the pprof reader and gzipped
// text go through it. Pure functions: callable from many threads at once;
// never from a signal handler (they allocate).
//
// Example:
//
//   if (IsGzip(bytes)) {
//     FLAMEKIT_ASSIGN_OR_RETURN(std::string raw, Gunzip(bytes, "cpu.pb.gz", 256 << 20));
//   }

#ifndef FLAMEKIT_PROFILE_GUNZIP_H_
#define FLAMEKIT_PROFILE_GUNZIP_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "zlib.h"  // the one gzip implementation Debian ships as a library

namespace flamekit {

// IsGzip()
//
// Whether `bytes` starts with the gzip magic (1f 8b).
bool IsGzip(absl::string_view bytes);

// Gunzip()
//
// The decompressed bytes of a gzip (or zlib) stream, at most `max_bytes`.
absl::StatusOr<std::string> Gunzip(absl::string_view bytes, absl::string_view source_name,
                                   size_t max_bytes);

// Implementation details follow.

inline bool IsGzip(absl::string_view bytes) {
  return bytes.size() >= 2 && static_cast<uint8_t>(bytes[0]) == 0x1f &&
         static_cast<uint8_t>(bytes[1]) == 0x8b;
}

inline absl::StatusOr<std::string> Gunzip(absl::string_view bytes,
                                          absl::string_view source_name, size_t max_bytes) {
  z_stream stream;
  memset(&stream, 0, sizeof(stream));
  // 15 + 32: detect gzip or zlib headers.
  if (inflateInit2(&stream, 15 + 32) != Z_OK) {
    return absl::ResourceExhaustedError("zlib inflateInit2 failed: out of memory?");
  }
  std::string out;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  constexpr size_t kChunk = size_t{1} << 20;
  size_t remaining_in = bytes.size();
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (stream.avail_in == 0) {
      const size_t give = remaining_in < (size_t{1} << 30) ? remaining_in : (size_t{1} << 30);
      stream.avail_in = static_cast<uInt>(give);
      remaining_in -= give;
    }
    const size_t old = out.size();
    if (old >= max_bytes + 1) {
      inflateEnd(&stream);
      return absl::ResourceExhaustedError(absl::StrCat(
          source_name, ": decompresses to more than ", max_bytes,
          " bytes (the bound for one profile); is it a gzip bomb? Split the profile or "
          "raise the bound"));
    }
    const size_t room = std::min(kChunk, max_bytes + 1 - old);
    out.resize(old + room);
    stream.next_out = reinterpret_cast<Bytef*>(&out[old]);
    stream.avail_out = static_cast<uInt>(room);
    rc = inflate(&stream, Z_NO_FLUSH);
    out.resize(old + room - stream.avail_out);
    if (rc == Z_BUF_ERROR && stream.avail_in == 0 && remaining_in == 0) {
      inflateEnd(&stream);
      return absl::InvalidArgumentError(absl::StrCat(
          source_name, ": the gzip data ends early (a truncated file?); copy it again"));
    }
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      inflateEnd(&stream);
      return absl::InvalidArgumentError(absl::StrCat(
          source_name, ": damaged gzip data (zlib: ",
          stream.msg != nullptr ? stream.msg : "error", "); copy the file again"));
    }
  }
  inflateEnd(&stream);
  if (out.size() > max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        source_name, ": decompresses to more than ", max_bytes,
        " bytes (the bound for one profile); is it a gzip bomb? Split the profile or "
        "raise the bound"));
  }
  return out;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_GUNZIP_H_
