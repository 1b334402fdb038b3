// SPDX-License-Identifier: Apache-2.0
// File: collapsed_reader.h
//
// Reads the collapsed ("folded") stack format that FlameGraph,
// speedscope, inferno and Pyroscope read: one stack a line, frames root
// first, separated by ';', then a space and a sample count:
//
//   main;Server::Run();Handle(Request const&);memcpy 17
//
// Not thread-safe: a CollapsedParser belongs to one
// thread (different profiles may be read on different threads at once).
// Never used from a signal handler (they allocate and do I/O).
//
// Reading is streaming: input is parsed in chunks of
// CollapsedReadOptions::chunk_bytes, so memory grows only with the number of
// distinct stacks and frames, never with the file size (a 2 GB file of a few
// thousand stacks is read in a few MB).
//
// How frame text maps to FrameKind when reading (collapsed text cannot carry
// the kind of every frame, so a rule decides):
//   - a "_[k]", "_[j]" or "_[i]" suffix (FlameGraph's annotations) gives
//     kKernel, kJit or kInlined and is removed from the name;
//   - "[truncated]" is kTruncated;
//   - a root frame in brackets whose text ends in "tid=DIGITS", such as
//     "[worker-3 tid=1234]" (async-profiler's per-thread roots), is kThread,
//     named without the brackets;
//   - "[unknown]" and an unsymbolised address "OBJECT+0xHEX" (e.g.
//     "libfoo.so+0x1a2b", "libc.so.6+0x27d8a") are kUnknown;
//   - everything else is kUser. The text cannot tell a library's function
//     from the executable's, so kLibrary never comes out of the reader.
// collapsed_writer.h prints the same annotations back (and brackets around
// kThread names), so collapsed -> Profile -> collapsed reproduces every line.
//
// Errors name the file and line: "profile.txt:17: expected 'frames count'
// ...". With CollapsedReadOptions::lenient, bad lines are skipped and counted
// in CollapsedReadStats instead.
//
// Example:
//
//   CollapsedReadStats stats;
//   FLAMEKIT_ASSIGN_OR_RETURN(
//       Profile profile, ReadCollapsedFile("profile.txt", {}, &stats));

#ifndef FLAMEKIT_PROFILE_COLLAPSED_READER_H_
#define FLAMEKIT_PROFILE_COLLAPSED_READER_H_

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/profile/input_file.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

struct CollapsedReadOptions {
  // Skip bad lines (counting them in CollapsedReadStats) instead of failing.
  bool lenient = false;
  // Longest line accepted; longer ones are an error (or skipped when
  // lenient). Bounds memory for inputs that are not collapsed text.
  size_t max_line_bytes = size_t{16} << 20;
  // Read size for files.
  size_t chunk_bytes = size_t{1} << 20;
};

struct CollapsedReadStats {
  uint64_t bytes = 0;          // input bytes seen
  uint64_t lines = 0;          // lines seen, blank ones included
  uint64_t stack_lines = 0;    // valid stack lines (a count of 0 included)
  uint64_t samples = 0;        // sum of their counts (a sum past 2^64 - 1 is an error)
  uint64_t skipped_lines = 0;  // bad lines skipped (lenient mode only)
  std::string first_error;     // the message of the first skipped line
};

// CollapsedParser
//
// The streaming reader behind ReadCollapsedFile(): Feed() it any pieces of
// the text (lines may span pieces), then Finish(). Stacks go into the
// Profile given at construction, which must outlive the parser.
class CollapsedParser {
 public:
  // `source_name` prefixes error messages ("profile.txt:17: ...").
  CollapsedParser(Profile* profile, absl::string_view source_name,
                  CollapsedReadOptions options = {});

  CollapsedParser(const CollapsedParser&) = delete;
  CollapsedParser& operator=(const CollapsedParser&) = delete;

  // Feed()
  //
  // Parses the complete lines in `data` and keeps the unfinished last one.
  // Returns InvalidArgument naming the line on the first bad line (unless
  // lenient); after an error the parser is spent.
  absl::Status Feed(absl::string_view data);

  // Finish()
  //
  // Parses the last line (which may lack a newline) and checks that the
  // input had at least one sample: an empty input, or one whose counts are
  // all 0, is an InvalidArgument (never a silently empty profile).
  absl::Status Finish();

  const CollapsedReadStats& stats() const { return stats_; }

 private:
  absl::Status ParseLine(absl::string_view line);
  absl::Status LineError(absl::string_view message, absl::string_view line);

  Profile* profile_;
  std::string source_name_;
  CollapsedReadOptions options_;
  CollapsedReadStats stats_;
  absl::Status error_;
  bool discarding_ = false;  // lenient: skipping the rest of an overlong line
  std::string carry_;        // an unfinished line from the previous Feed()
  // The previous line's frames text, where each frame ends, and its ids:
  // collapsed files are sorted, so neighbouring lines share a prefix whose
  // frames need no interning.
  std::string prev_text_;
  std::vector<size_t> prev_ends_;
  std::vector<FrameId> prev_ids_;
};

// ParseCollapsedFrame()
//
// The name and kind one frame's text stands for, by the rules in the file
// comment. `is_root` enables the thread-root rule.
std::pair<absl::string_view, FrameKind> ParseCollapsedFrame(
    absl::string_view text, bool is_root);

// ParseCollapsed()
//
// Parses collapsed text held in memory. `source_name` names it in errors.
absl::StatusOr<Profile> ParseCollapsed(absl::string_view text,
                                       absl::string_view source_name = "<input>",
                                       const CollapsedReadOptions& options = {},
                                       CollapsedReadStats* stats = nullptr);

// ReadCollapsedFile()
//
// Reads a collapsed file in chunks ("-" reads standard input). The profile's
// metadata says engine "collapsed text" and has the file name as title.
// NotFound / PermissionDenied / InvalidArgument with what to do when the
// file cannot be read or is not collapsed text.
absl::StatusOr<Profile> ReadCollapsedFile(absl::string_view path,
                                          const CollapsedReadOptions& options = {},
                                          CollapsedReadStats* stats = nullptr);

// ReadCollapsedFd()
//
// Like ReadCollapsedFile() from an open descriptor (a pipe, a socket); does
// not close it. Adds the stacks to `profile`.
absl::Status ReadCollapsedFd(int fd, absl::string_view source_name,
                             Profile* profile,
                             const CollapsedReadOptions& options = {},
                             CollapsedReadStats* stats = nullptr);

// Implementation details follow.

namespace collapsed_internal {

inline bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

inline bool IsHexDigit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

// Length of the common prefix of a and b, compared 8 bytes at a time.
inline size_t CommonPrefix(absl::string_view a, absl::string_view b) {
  const size_t n = a.size() < b.size() ? a.size() : b.size();
  size_t i = 0;
  while (i + 8 <= n) {
    uint64_t x, y;
    memcpy(&x, a.data() + i, 8);
    memcpy(&y, b.data() + i, 8);
    if (x != y) {
      // Little-endian: the lowest differing byte is the first one.
      return i + static_cast<size_t>(__builtin_ctzll(x ^ y) / 8);
    }
    i += 8;
  }
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

inline constexpr absl::string_view kBinaryMessage =
    "binary data (control or NUL bytes): this is not collapsed text; give a "
    "file of 'frame;frame;frame COUNT' lines";

// Whether a line holds bytes no text format has: NUL or other control
// characters except tab and carriage return.
inline bool LooksBinary(absl::string_view line) {
  for (char ch : line) {
    unsigned char c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t' && c != '\r') || c == 0x7f) return true;
  }
  return false;
}

// A short, printable excerpt of a bad line for error messages.
inline std::string Excerpt(absl::string_view line) {
  constexpr size_t kMax = 60;
  std::string out = "\"";
  for (size_t i = 0; i < line.size() && i < kMax; ++i) {
    unsigned char c = static_cast<unsigned char>(line[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += '"';
  if (line.size() > kMax) absl::StrAppend(&out, "... (", line.size(), " bytes)");
  return out;
}

}  // namespace collapsed_internal


inline std::pair<absl::string_view, FrameKind> ParseCollapsedFrame(
    absl::string_view text, bool is_root) {
  const size_t n = text.size();
  if (n > 4 && text[n - 4] == '_' && text[n - 3] == '[' && text[n - 1] == ']') {
    switch (text[n - 2]) {
      case 'k': return {text.substr(0, n - 4), FrameKind::kKernel};
      case 'j': return {text.substr(0, n - 4), FrameKind::kJit};
      case 'i': return {text.substr(0, n - 4), FrameKind::kInlined};
      default: break;
    }
  }
  if (n == 0) return {text, FrameKind::kUser};
  if (text[0] == '[' && text[n - 1] == ']') {
    if (text == kTruncatedFrameName) return {text, FrameKind::kTruncated};
    if (text == "[unknown]") return {text, FrameKind::kUnknown};
    if (is_root) {
      absl::string_view inner = text.substr(1, n - 2);
      size_t digits = inner.size();
      while (digits > 0 && inner[digits - 1] >= '0' && inner[digits - 1] <= '9') {
        --digits;
      }
      if (digits < inner.size() && digits >= 4 &&
          inner.substr(digits - 4, 4) == "tid=" &&
          (digits == 4 || inner[digits - 5] == ' ')) {
        return {inner, FrameKind::kThread};
      }
    }
    return {text, FrameKind::kUser};
  }
  // OBJECT+0xHEX with no blanks: an address perf or flamekit could not name.
  if (n > 4 && collapsed_internal::IsHexDigit(text[n - 1])) {
    size_t i = n;
    while (i > 0 && collapsed_internal::IsHexDigit(text[i - 1])) --i;
    if (i >= 4 && text[i - 1] == 'x' && text[i - 2] == '0' && text[i - 3] == '+' &&
        text.substr(0, i - 3).find_first_of(" \t(<") == absl::string_view::npos) {
      return {text, FrameKind::kUnknown};
    }
  }
  return {text, FrameKind::kUser};
}

inline CollapsedParser::CollapsedParser(Profile* profile,
                                        absl::string_view source_name,
                                        CollapsedReadOptions options)
    : profile_(profile), source_name_(source_name), options_(options) {}

inline absl::Status CollapsedParser::LineError(absl::string_view message,
                                               absl::string_view line) {
  std::string text;
  if (collapsed_internal::LooksBinary(line)) {
    // A bad line with control bytes: say what the input probably is rather
    // than what one line lacks. Decided per line, so the verdict does not
    // depend on how the input was split into chunks.
    text = absl::StrCat(source_name_, ":", stats_.lines, ": ",
                        collapsed_internal::kBinaryMessage);
  } else {
    text = absl::StrCat(source_name_, ":", stats_.lines, ": ", message);
    if (!line.empty()) absl::StrAppend(&text, "; got ", collapsed_internal::Excerpt(line));
  }
  if (options_.lenient) {
    ++stats_.skipped_lines;
    if (stats_.first_error.empty()) stats_.first_error = std::move(text);
    return absl::OkStatus();
  }
  error_ = absl::InvalidArgumentError(std::move(text));
  return error_;
}

inline absl::Status CollapsedParser::ParseLine(absl::string_view line) {
  using collapsed_internal::IsBlank;
  ++stats_.lines;
  // A UTF-8 byte order mark from a Windows editor goes, at the start of
  // any line: `cat a.txt b.txt` puts b's mid-file. Only at line starts, so
  // no root frame read here begins with one and write(read(x)) reads back
  // the same (the fuzzer found a BOM root sorted first, then stripped).
  if (line.size() >= 3 && line.substr(0, 3) == "\xEF\xBB\xBF") line.remove_prefix(3);
  size_t end = line.size();
  while (end > 0 && IsBlank(line[end - 1])) --end;
  if (end == 0) return absl::OkStatus();  // blank line
  if (memchr(line.data(), '\0', end) != nullptr) {
    return LineError(collapsed_internal::kBinaryMessage, line.substr(0, end));
  }
  // The count: the digits after the last blank.
  size_t digits = end;
  while (digits > 0 && line[digits - 1] >= '0' && line[digits - 1] <= '9') --digits;
  if (digits == end || digits == 0 || !IsBlank(line[digits - 1])) {
    return LineError(
        "expected 'frames count' (frames separated by ';', a space, then an "
        "integer sample count)", line.substr(0, end));
  }
  uint64_t count = 0;
  bool overflow = false;
  for (size_t i = digits; i < end && !overflow; ++i) {
    overflow = __builtin_mul_overflow(count, uint64_t{10}, &count) ||
               __builtin_add_overflow(count, static_cast<uint64_t>(line[i] - '0'), &count);
  }
  if (overflow) {
    return LineError("sample count too large (more than 2^64 - 1)",
                     line.substr(0, end));
  }
  size_t frames_end = digits - 1;
  while (frames_end > 0 && IsBlank(line[frames_end - 1])) --frames_end;
  if (frames_end == 0) {
    return LineError("expected 'frames count' but there are no frames before "
                     "the count", line.substr(0, end));
  }
  absl::string_view frames = line.substr(0, frames_end);

  // Reuse the frames this line shares with the previous one.
  const size_t common = collapsed_internal::CommonPrefix(frames, prev_text_);
  size_t reuse = 0;
  size_t start = 0;
  if (common == frames.size() && common == prev_text_.size()) {
    reuse = prev_ids_.size();
    start = frames.size() + 1;
  } else {
    while (reuse < prev_ends_.size() && prev_ends_[reuse] < common) ++reuse;
    start = reuse == 0 ? 0 : prev_ends_[reuse - 1] + 1;
  }
  prev_ids_.resize(reuse);
  prev_ends_.resize(reuse);
  // start is frames.size() + 1 when the whole line was reused.
  while (start <= frames.size()) {
    const char* semi = static_cast<const char*>(
        memchr(frames.data() + start, ';', frames.size() - start));
    const size_t stop = semi == nullptr
                            ? frames.size()
                            : static_cast<size_t>(semi - frames.data());
    if (stop == start) {
      prev_text_.clear();  // the cache would describe a line never added
      prev_ends_.clear();
      prev_ids_.clear();
      return LineError(
          "empty frame name (';' at the start or end, or two in a row)",
          line.substr(0, end));
    }
    auto [name, kind] = ParseCollapsedFrame(frames.substr(start, stop - start),
                                            prev_ids_.empty());
    prev_ids_.push_back(profile_->InternFrame(name, kind));
    prev_ends_.push_back(stop);
    if (semi == nullptr) break;
    start = stop + 1;
  }
  prev_text_.assign(frames.data(), frames.size());
  // The total must stay exact: a saturated sum shows every share wrong
  // (three stacks at 50 % each) without a word.
  uint64_t total = 0;
  if (__builtin_add_overflow(stats_.samples, count, &total)) {
    return LineError("the sample counts add up to more than 2^64 - 1; this file cannot "
                     "be one profile (split it, or scale its counts down)",
                     line.substr(0, end));
  }
  profile_->AddStack(prev_ids_, count);
  ++stats_.stack_lines;
  stats_.samples = total;
  return absl::OkStatus();
}

inline absl::Status CollapsedParser::Feed(absl::string_view data) {
  if (!error_.ok()) return error_;
  stats_.bytes += data.size();
  while (!data.empty()) {
    const char* newline =
        static_cast<const char*>(memchr(data.data(), '\n', data.size()));
    if (discarding_) {  // lenient: the rest of an overlong line
      if (newline == nullptr) return absl::OkStatus();
      data.remove_prefix(static_cast<size_t>(newline - data.data()) + 1);
      discarding_ = false;
      continue;
    }
    const size_t len = newline == nullptr
                           ? data.size()
                           : static_cast<size_t>(newline - data.data());
    if (carry_.size() + len > options_.max_line_bytes) {
      carry_.clear();
      carry_.shrink_to_fit();
      ++stats_.lines;
      absl::Status s = LineError(
          absl::StrCat("line longer than ", options_.max_line_bytes,
                       " bytes: this does not look like collapsed text"),
          absl::string_view());
      if (!s.ok()) return s;
      if (newline == nullptr) {
        discarding_ = true;
        return absl::OkStatus();
      }
      data.remove_prefix(len + 1);
      continue;
    }
    if (newline == nullptr) {
      carry_.append(data.data(), data.size());
      return absl::OkStatus();
    }
    absl::Status s;
    if (!carry_.empty()) {
      carry_.append(data.data(), len);
      s = ParseLine(carry_);
      carry_.clear();
    } else {
      s = ParseLine(data.substr(0, len));
    }
    if (!s.ok()) return s;
    data.remove_prefix(len + 1);
  }
  return absl::OkStatus();
}

inline absl::Status CollapsedParser::Finish() {
  if (!error_.ok()) return error_;
  if (discarding_) {
    discarding_ = false;
  } else if (!carry_.empty()) {
    absl::Status s = ParseLine(carry_);
    carry_.clear();
    if (!s.ok()) return s;
  }
  if (stats_.stack_lines == 0) {
    if (stats_.skipped_lines > 0) {
      error_ = absl::InvalidArgumentError(absl::StrCat(
          source_name_, ": no valid lines (", stats_.skipped_lines,
          " skipped; the first: ", stats_.first_error, ")"));
    } else if (stats_.bytes == 0) {
      error_ = absl::InvalidArgumentError(absl::StrCat(
          source_name_, ": empty file; expected lines of "
          "'frame;frame;frame COUNT'"));
    } else {
      error_ = absl::InvalidArgumentError(absl::StrCat(
          source_name_, ": no stacks, only blank lines; expected lines of "
          "'frame;frame;frame COUNT'"));
    }
    return error_;
  }
  if (stats_.samples == 0) {
    error_ = absl::InvalidArgumentError(absl::StrCat(
        source_name_, ": no samples: every stack has a count of 0"));
    return error_;
  }
  return absl::OkStatus();
}

inline absl::StatusOr<Profile> ParseCollapsed(absl::string_view text,
                                              absl::string_view source_name,
                                              const CollapsedReadOptions& options,
                                              CollapsedReadStats* stats) {
  Profile profile;
  profile.metadata().engine = "collapsed text";
  profile.metadata().title = std::string(InputBaseName(source_name));
  CollapsedParser parser(&profile, source_name, options);
  absl::Status s = parser.Feed(text);
  if (s.ok()) s = parser.Finish();
  if (stats != nullptr) *stats = parser.stats();
  if (!s.ok()) return s;
  return profile;
}

inline absl::Status ReadCollapsedFd(int fd, absl::string_view source_name,
                                    Profile* profile,
                                    const CollapsedReadOptions& options,
                                    CollapsedReadStats* stats) {
  CollapsedParser parser(profile, source_name, options);
  const size_t chunk = options.chunk_bytes == 0 ? size_t{1} << 20 : options.chunk_bytes;
  std::unique_ptr<char[]> buffer(new char[chunk]);
  absl::Status s;
  while (true) {
    ssize_t n = ::read(fd, buffer.get(), chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      s = InputReadError(errno, source_name);
      break;
    }
    if (n == 0) {
      s = parser.Finish();
      break;
    }
    s = parser.Feed(absl::string_view(buffer.get(), static_cast<size_t>(n)));
    if (!s.ok()) break;
  }
  if (stats != nullptr) *stats = parser.stats();
  return s;
}

inline absl::StatusOr<Profile> ReadCollapsedFile(absl::string_view path,
                                                 const CollapsedReadOptions& options,
                                                 CollapsedReadStats* stats) {
  Profile profile;
  profile.metadata().engine = "collapsed text";
  if (path == "-") {
    profile.metadata().title = "stdin";
    absl::Status s = ReadCollapsedFd(STDIN_FILENO, "<stdin>", &profile, options, stats);
    if (!s.ok()) return s;
    return profile;
  }
  absl::StatusOr<ScopedFd> fd = OpenInputFile(path);
  if (!fd.ok()) return fd.status();
  profile.metadata().title = std::string(InputBaseName(path));
  absl::Status s = ReadCollapsedFd(fd->get(), path, &profile, options, stats);
  if (!s.ok()) return s;
  return profile;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_COLLAPSED_READER_H_
