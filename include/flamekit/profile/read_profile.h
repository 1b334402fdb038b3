// SPDX-License-Identifier: Apache-2.0
// File: read_profile.h
//
// Reads a profile in any format flamekit writes or meets, picked by the
// content, never by the file name: collapsed text, `perf script` text,
// pprof (gzipped or raw protobuf), and flamekit's HTML and SVG flame
// graphs (their embedded stacks, profile/embedded_stacks.h). Gzipped text
// is read too. Not thread-safe per call; different files may be read on
// different threads at once. Never used from a signal handler.
//
// How the format is told (first bytes, after a UTF-8 byte order mark):
//   1f 8b                      gzip: decompressed, then told again
//   '<' after blanks           an HTML or SVG page
//   a protobuf tag of Profile  pprof (a text format never starts with one:
//   and control bytes          its bytes are printable)
//   a perf script header line  perf script (first line not blank or '#')
//   anything else              collapsed text (whose errors then say what
//                              was expected)
//
// Bounds: collapsed and perf script text stream (memory grows with distinct
// stacks; lines up to 16 MiB). Pages and pprof are read whole: at most
// ProfileReadOptions::max_input_bytes (256 MiB) from the file and, once
// decompressed, max_decompressed_bytes (256 MiB); beyond either the read
// stops with ResourceExhausted.
//
// Example:
//
//   ProfileReadInfo info;
//   FLAMEKIT_ASSIGN_OR_RETURN(Profile p, ReadProfileFile("cpu.pb.gz", {}, &info));
//   // info.format == "pprof"

#ifndef FLAMEKIT_PROFILE_READ_PROFILE_H_
#define FLAMEKIT_PROFILE_READ_PROFILE_H_

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/profile/collapsed_reader.h"
#include "flamekit/profile/embedded_stacks.h"
#include "flamekit/profile/gunzip.h"
#include "flamekit/profile/input_file.h"
#include "flamekit/profile/perf_script_reader.h"
#include "flamekit/profile/pprof_reader.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

struct ProfileReadOptions {
  // Collapsed text: skip bad lines (counted in the info's notes).
  bool lenient = false;
  // pprof: the sample type to keep (see pprof_reader.h).
  std::string sample_type;
  // Formats read whole (pages, pprof): the most bytes read from the input.
  size_t max_input_bytes = size_t{256} << 20;
  // Gzipped input: the most bytes it may decompress to.
  size_t max_decompressed_bytes = size_t{256} << 20;
  // Text formats: the longest line.
  size_t max_line_bytes = size_t{16} << 20;
};

struct ProfileReadInfo {
  // "collapsed", "perf script", "pprof", "html", "svg" (with " (gzip)"
  // when the input was gzipped text).
  std::string format;
  // What the user should know: the pprof sample type kept.
  std::vector<std::string> notes;
  // What went wrong but was allowed: lenient collapsed lines skipped.
  std::vector<std::string> warnings;
};

// ReadProfileFile()
//
// Reads `path` ("-" is standard input). Errors name the file and what to do.
absl::StatusOr<Profile> ReadProfileFile(absl::string_view path,
                                        const ProfileReadOptions& options = {},
                                        ProfileReadInfo* info = nullptr);

// ReadProfileFd()
//
// The same from an open descriptor (not closed); `source_name` names it.
absl::StatusOr<Profile> ReadProfileFd(int fd, absl::string_view source_name,
                                      const ProfileReadOptions& options = {},
                                      ProfileReadInfo* info = nullptr);

// ParseProfileBytes()
//
// The same from bytes in memory (tests, fuzzing, the UI).
absl::StatusOr<Profile> ParseProfileBytes(absl::string_view bytes,
                                          absl::string_view source_name,
                                          const ProfileReadOptions& options = {},
                                          ProfileReadInfo* info = nullptr);

// ParseFlameGraphPage()
//
// The stacks embedded in a flamekit HTML or SVG page. FailedPrecondition
// with what to do for pages without them: diff pages, pages from a
// flamekit before they were embedded, other tools' pages.
absl::StatusOr<Profile> ParseFlameGraphPage(absl::string_view page,
                                            absl::string_view source_name);

// Implementation details follow.

namespace read_profile_internal {

enum class Format { kGzip, kPage, kPprof, kPerfScript, kCollapsed };

inline absl::string_view SkipBomAndBlanks(absl::string_view s) {
  if (s.substr(0, 3) == "\xEF\xBB\xBF") s.remove_prefix(3);
  while (!s.empty() && (s[0] == ' ' || s[0] == '\t' || s[0] == '\r' || s[0] == '\n')) {
    s.remove_prefix(1);
  }
  return s;
}

inline bool HasControlBytes(absl::string_view s) {
  for (char ch : s.substr(0, 4096)) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t' && c != '\r' && c != '\n') || c == 0x7f) return true;
  }
  return false;
}

// Tells the format from the first bytes (`complete`: they are all there is).
inline Format Detect(absl::string_view head) {
  if (IsGzip(head)) return Format::kGzip;
  absl::string_view text = SkipBomAndBlanks(head);
  if (!text.empty() && text[0] == '<') return Format::kPage;
  if (LooksLikePprofProto(head) && HasControlBytes(head)) return Format::kPprof;
  // The first line that is not a comment.
  while (!text.empty()) {
    size_t newline = text.find('\n');
    absl::string_view line = text.substr(0, newline);
    if (!line.empty() && line[0] != '#') {
      return IsPerfScriptHeader(line) ? Format::kPerfScript : Format::kCollapsed;
    }
    if (newline == absl::string_view::npos) break;
    text = SkipBomAndBlanks(text.substr(newline + 1));
  }
  return Format::kCollapsed;
}

// A text format fed in pieces.
class TextReader {
 public:
  TextReader(Format format, Profile* profile, absl::string_view source_name,
             const ProfileReadOptions& options) {
    if (format == Format::kPerfScript) {
      perf_.emplace(profile, source_name, options.max_line_bytes);
    } else {
      CollapsedReadOptions collapsed;
      collapsed.lenient = options.lenient;
      collapsed.max_line_bytes = options.max_line_bytes;
      collapsed_.emplace(profile, source_name, collapsed);
    }
  }
  absl::Status Feed(absl::string_view data) {
    return perf_.has_value() ? perf_->Feed(data) : collapsed_->Feed(data);
  }
  absl::Status Finish(ProfileReadInfo* info) {
    absl::Status s = perf_.has_value() ? perf_->Finish() : collapsed_->Finish();
    if (s.ok() && collapsed_.has_value() && info != nullptr &&
        collapsed_->stats().skipped_lines > 0) {
      const CollapsedReadStats& stats = collapsed_->stats();
      info->warnings.push_back(absl::StrCat(
          "skipped ", stats.skipped_lines, " bad line", stats.skipped_lines == 1 ? "" : "s",
          " of ", stats.lines, "; the first: ", stats.first_error));
    }
    return s;
  }

 private:
  std::optional<CollapsedParser> collapsed_;
  std::optional<PerfScriptParser> perf_;
};

inline const char* FormatName(Format format) {
  switch (format) {
    case Format::kPage: return "page";
    case Format::kPprof: return "pprof";
    case Format::kPerfScript: return "perf script";
    case Format::kGzip: return "gzip";
    default: return "collapsed";
  }
}

inline void SetTextMetadata(Format format, Profile* profile, absl::string_view source_name) {
  ProfileMetadata& m = profile->metadata();
  if (format == Format::kCollapsed) {
    m.engine = "collapsed text";
    m.event = "cpu";  // collapsed text cannot say; the event most profiles have
  }
  m.title = std::string(InputBaseName(source_name));
}

}  // namespace read_profile_internal

inline absl::StatusOr<Profile> ParseFlameGraphPage(absl::string_view page,
                                                   absl::string_view source_name) {
  const std::string marker = absl::StrCat("id=\"", kEmbeddedStacksElementId, "\"");
  size_t at = page.find(marker);
  if (at == absl::string_view::npos) {
    if (page.find("id=\"fk-data\"") != absl::string_view::npos) {
      if (page.find("{\"v\":1,\"diff\":true") != absl::string_view::npos) {
        return absl::FailedPreconditionError(absl::StrCat(
            source_name, ": a diff page (two profiles' differences, not one profile); "
            "give the two captures it was made from"));
      }
      return absl::FailedPreconditionError(absl::StrCat(
          source_name, ": a flame graph page from a flamekit that did not embed its "
          "stacks (it holds only the pruned drawing); convert the original profile "
          "(.txt or .pb.gz) instead, or record again"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": an HTML/SVG page without flamekit's embedded stacks; give a "
        "page written by flamekit record, watch or convert, or the profile itself "
        "(collapsed text, pprof, perf script)"));
  }
  size_t open = page.find('>', at);
  if (open == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(source_name, ": the page is cut short"));
  }
  size_t close = page.find('<', open + 1);
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": the page is cut short (the embedded stacks do not end); copy it again"));
  }
  absl::StatusOr<Profile> profile =
      DecodeEmbeddedStacks(page.substr(open + 1, close - open - 1), source_name);
  if (profile.ok() && profile->metadata().title.empty()) {
    profile->metadata().title = std::string(InputBaseName(source_name));
  }
  return profile;
}

inline absl::StatusOr<Profile> ParseProfileBytes(absl::string_view bytes,
                                                 absl::string_view source_name,
                                                 const ProfileReadOptions& options,
                                                 ProfileReadInfo* info) {
  using read_profile_internal::Format;
  Format format = read_profile_internal::Detect(bytes);
  std::string inflated;
  bool gzipped = false;
  if (format == Format::kGzip) {
    absl::StatusOr<std::string> raw =
        Gunzip(bytes, source_name, options.max_decompressed_bytes);
    if (!raw.ok()) return raw.status();
    inflated = *std::move(raw);
    bytes = inflated;
    gzipped = true;
    format = read_profile_internal::Detect(bytes);
    if (format == Format::kGzip) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_name, ": gzip inside gzip; decompress it once (gunzip) and retry"));
    }
  }
  if (info != nullptr) {
    info->format = read_profile_internal::FormatName(format);
    if (gzipped && format != Format::kPprof) info->format += " (gzip)";
  }
  switch (format) {
    case Format::kPage: {
      absl::StatusOr<Profile> p = ParseFlameGraphPage(bytes, source_name);
      if (info != nullptr) {
        absl::string_view start = read_profile_internal::SkipBomAndBlanks(bytes);
        info->format = start.substr(0, 4) == "<svg" || start.substr(0, 5) == "<?xml" ? "svg"
                                                                                     : "html";
        if (gzipped) info->format += " (gzip)";
      }
      return p;
    }
    case Format::kPprof: {
      PprofReadOptions pprof;
      pprof.sample_type = options.sample_type;
      pprof.max_decompressed_bytes = options.max_decompressed_bytes;
      PprofReadInfo pprof_info;
      absl::StatusOr<Profile> p = ParsePprof(bytes, source_name, pprof, &pprof_info);
      if (p.ok() && info != nullptr && !pprof_info.note.empty()) {
        info->notes.push_back(pprof_info.note);
      }
      return p;
    }
    default: {
      Profile profile;
      read_profile_internal::SetTextMetadata(format, &profile, source_name);
      read_profile_internal::TextReader reader(format, &profile, source_name, options);
      absl::Status s = reader.Feed(bytes);
      if (s.ok()) s = reader.Finish(info);
      if (!s.ok()) return s;
      return profile;
    }
  }
}

inline absl::StatusOr<Profile> ReadProfileFd(int fd, absl::string_view source_name,
                                             const ProfileReadOptions& options,
                                             ProfileReadInfo* info) {
  using read_profile_internal::Format;
  // Enough of the start to tell the format (a pipe may give less per read).
  constexpr size_t kHead = 64 << 10;
  std::string head;
  head.resize(kHead);
  size_t have = 0;
  while (have < kHead) {
    ssize_t n = ::read(fd, &head[have], kHead - have);
    if (n < 0) {
      if (errno == EINTR) continue;
      return InputReadError(errno, source_name);
    }
    if (n == 0) break;
    have += static_cast<size_t>(n);
  }
  head.resize(have);
  const bool complete = have < kHead;
  Format format = read_profile_internal::Detect(head);
  if (format == Format::kCollapsed || format == Format::kPerfScript) {
    // Stream the rest.
    Profile profile;
    read_profile_internal::SetTextMetadata(format, &profile, source_name);
    if (info != nullptr) info->format = read_profile_internal::FormatName(format);
    read_profile_internal::TextReader reader(format, &profile, source_name, options);
    absl::Status s = reader.Feed(head);
    if (s.ok() && !complete) {
      constexpr size_t kChunk = size_t{1} << 20;
      std::unique_ptr<char[]> buffer(new char[kChunk]);
      while (s.ok()) {
        ssize_t n = ::read(fd, buffer.get(), kChunk);
        if (n < 0) {
          if (errno == EINTR) continue;
          s = InputReadError(errno, source_name);
          break;
        }
        if (n == 0) break;
        s = reader.Feed(absl::string_view(buffer.get(), static_cast<size_t>(n)));
      }
    }
    if (s.ok()) s = reader.Finish(info);
    if (!s.ok()) return s;
    return profile;
  }
  if (!complete) {
    absl::Status s = ReadInputBounded(fd, source_name, options.max_input_bytes, &head);
    if (!s.ok()) return s;
  }
  return ParseProfileBytes(head, source_name, options, info);
}

inline absl::StatusOr<Profile> ReadProfileFile(absl::string_view path,
                                               const ProfileReadOptions& options,
                                               ProfileReadInfo* info) {
  if (path == "-") {
    absl::StatusOr<Profile> p = ReadProfileFd(STDIN_FILENO, "<stdin>", options, info);
    if (p.ok()) p->metadata().title = "stdin";
    return p;
  }
  absl::StatusOr<ScopedFd> fd = OpenInputFile(path);
  if (!fd.ok()) return fd.status();
  return ReadProfileFd(fd->get(), path, options, info);
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_READ_PROFILE_H_
