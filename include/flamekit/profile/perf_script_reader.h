// SPDX-License-Identifier: Apache-2.0
// File: perf_script_reader.h
//
// Reads `perf script` text as perf writes it by default, with call chains
// (`perf record -g`: a header line, then one "\tADDR SYMBOL+0xOFF (DSO)"
// line a frame, leaf first, then a blank line) or without (the one frame
// on the header line). Streaming like collapsed_reader.h: memory grows with
// distinct stacks, not the file; a line longer than max_line_bytes is an
// error. Not thread-safe per parser; never from a signal handler.
//
// How samples become stacks (as stackcollapse-perf.pl does, minus the
// process-name root):
//   - each sample counts 1; frames are reversed to root first;
//   - "+0xOFF" is dropped from symbols; a "[unknown]" symbol becomes
//     "DSO+0xADDR" (kUnknown, flamekit's spelling of an unnamed address)
//     or "[unknown]" when perf did not know the DSO either;
//   - DSO "[kernel.kallsyms]" (or any "[kernel...]") gives kKernel, a
//     "*.so*" DSO kLibrary, anything else kUser;
//   - the event is the header's event name without modifiers ("cpu-clock:u"
//     -> "cpu-clock"), and cpu-clock and task-clock are called "cpu", the
//     name flamekit records them under, so `diff perf.txt flame.html` works.
//     Samples of two events in one file are refused (perf script --event).
//
// Example:
//
//   Profile profile;
//   PerfScriptParser parser(&profile, "perf.txt");
//   FLAMEKIT_RETURN_IF_ERROR(parser.Feed(text));
//   FLAMEKIT_RETURN_IF_ERROR(parser.Finish());

#ifndef FLAMEKIT_PROFILE_PERF_SCRIPT_READER_H_
#define FLAMEKIT_PROFILE_PERF_SCRIPT_READER_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/profile/input_file.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

// IsPerfScriptHeader()
//
// Whether `line` is a `perf script` sample header ("comm pid [cpu]
// secs.usecs: [period] event:"). Fills the event (modifiers removed) and
// what follows it (the frame, when perf printed no call chains).
bool IsPerfScriptHeader(absl::string_view line, std::string* event = nullptr,
                        absl::string_view* rest = nullptr, uint64_t* period = nullptr);

class PerfScriptParser {
 public:
  PerfScriptParser(Profile* profile, absl::string_view source_name,
                   size_t max_line_bytes = size_t{16} << 20);
  PerfScriptParser(const PerfScriptParser&) = delete;
  PerfScriptParser& operator=(const PerfScriptParser&) = delete;

  // Feed()
  //
  // Parses the complete lines in `data`. InvalidArgument naming the line on
  // a line that is neither a header, a frame nor blank.
  absl::Status Feed(absl::string_view data);

  // Finish()
  //
  // Ends the last sample; InvalidArgument when there were no samples.
  absl::Status Finish();

  uint64_t samples() const { return samples_; }

 private:
  absl::Status Line(absl::string_view line);
  absl::Status Error(absl::string_view what, absl::string_view line);
  absl::Status AddFrame(absl::string_view text, absl::string_view line);
  void EndSample();

  Profile* profile_;
  std::string source_name_;
  size_t max_line_bytes_;
  std::string carry_;
  absl::Status error_;
  uint64_t line_number_ = 0;
  uint64_t samples_ = 0;
  bool in_sample_ = false;
  std::vector<FrameId> leaf_first_;
  std::vector<FrameId> root_first_;
};

// Implementation details follow.

namespace perf_script_internal {

inline bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

inline absl::string_view Trim(absl::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// "ADDR SYMBOL (DSO)" -> symbol and dso. False when it is not that shape.
inline bool SplitFrame(absl::string_view text, absl::string_view* address,
                       absl::string_view* symbol, absl::string_view* dso) {
  text = Trim(text);
  size_t i = 0;
  while (i < text.size() && IsHex(text[i])) ++i;
  if (i == 0 || i > 16 || i == text.size() || text[i] != ' ') return false;
  *address = text.substr(0, i);
  text = Trim(text.substr(i));
  if (text.empty() || text.back() != ')') return false;
  // The DSO is the last parenthesised part: symbols may hold parentheses
  // ("f(int)"), DSO paths rarely do, so match from the end.
  size_t open = text.rfind(" (");
  if (open == absl::string_view::npos) {
    if (text.front() != '(') return false;
    *symbol = absl::string_view();
    *dso = text.substr(1, text.size() - 2);
    return true;
  }
  *symbol = Trim(text.substr(0, open));
  *dso = text.substr(open + 2, text.size() - open - 3);
  return true;
}

}  // namespace perf_script_internal

inline bool IsPerfScriptHeader(absl::string_view line, std::string* event,
                               absl::string_view* rest, uint64_t* period) {
  using perf_script_internal::Trim;
  // The timestamp "SECS.USECS:" anchors the line: comm (which may hold
  // spaces) and pid/tid and [cpu] come before it, period and event after.
  size_t pos = 0;
  while (true) {
    size_t colon = line.find(": ", pos);
    if (colon == absl::string_view::npos) {
      if (!line.empty() && line.back() == ':') colon = line.size() - 1;
      else return false;
    }
    size_t start = colon;
    while (start > 0 && ((line[start - 1] >= '0' && line[start - 1] <= '9') ||
                         line[start - 1] == '.')) {
      --start;
    }
    absl::string_view stamp = line.substr(start, colon - start);
    const size_t dot = stamp.find('.');
    if (start > 0 && line[start - 1] == ' ' && dot != absl::string_view::npos && dot > 0 &&
        dot + 1 < stamp.size() && stamp.find('.', dot + 1) == absl::string_view::npos) {
      // Before the stamp: "comm pid" at least.
      absl::string_view before = Trim(line.substr(0, start));
      if (before.find(' ') == absl::string_view::npos) return false;
      absl::string_view after = Trim(line.substr(colon + 1));
      // Optional period, then "event:" (the event may carry ":u" etc.).
      size_t space = after.find(' ');
      absl::string_view first = after.substr(0, space);
      uint64_t p = 1;
      if (!first.empty() && absl::SimpleAtoi(first, &p) && space != absl::string_view::npos) {
        after = Trim(after.substr(space));
      }
      size_t end = after.find(": ");
      if (end == absl::string_view::npos) {
        if (after.empty() || after.back() != ':') return false;
        end = after.size() - 1;
      }
      absl::string_view name = after.substr(0, end);
      if (name.empty() || name.find(' ') != absl::string_view::npos) return false;
      name = name.substr(0, name.find(':'));
      if (event != nullptr) *event = std::string(name);
      if (rest != nullptr) *rest = Trim(after.substr(end + 1));
      if (period != nullptr) *period = p;
      return true;
    }
    pos = colon + 1;
    if (pos >= line.size()) return false;
  }
}

inline PerfScriptParser::PerfScriptParser(Profile* profile, absl::string_view source_name,
                                          size_t max_line_bytes)
    : profile_(profile), source_name_(source_name), max_line_bytes_(max_line_bytes) {
  profile_->metadata().event.clear();
}

inline absl::Status PerfScriptParser::Error(absl::string_view what, absl::string_view line) {
  std::string excerpt(line.substr(0, 60));
  for (char& c : excerpt) {
    if (static_cast<unsigned char>(c) < 0x20) c = '?';
  }
  error_ = absl::InvalidArgumentError(absl::StrCat(
      source_name_, ":", line_number_, ": ", what, "; got \"", excerpt, "\"",
      line.size() > 60 ? "..." : "",
      " (give `perf script` output as perf prints it, with or without -g)"));
  return error_;
}

inline absl::Status PerfScriptParser::AddFrame(absl::string_view text, absl::string_view line) {
  absl::string_view address, symbol, dso;
  if (!perf_script_internal::SplitFrame(text, &address, &symbol, &dso)) {
    return Error("expected a frame 'ADDRESS SYMBOL (DSO)'", line);
  }
  // "name+0x1f" -> "name".
  if (size_t plus = symbol.rfind("+0x"); plus != absl::string_view::npos && plus > 0) {
    bool hex = plus + 3 < symbol.size();
    for (char c : symbol.substr(plus + 3)) hex = hex && perf_script_internal::IsHex(c);
    if (hex) symbol = symbol.substr(0, plus);
  }
  const bool kernel = dso.substr(0, 7) == "[kernel";
  FrameId id;
  if (symbol.empty() || symbol == "[unknown]") {
    if (dso.empty() || dso == "[unknown]") {
      id = profile_->InternFrame("[unknown]", FrameKind::kUnknown);
    } else {
      id = profile_->InternFrame(absl::StrCat(InputBaseName(dso), "+0x", address),
                                 FrameKind::kUnknown);
    }
  } else {
    FrameKind kind = kernel                                       ? FrameKind::kKernel
                     : dso.find(".so") != absl::string_view::npos ? FrameKind::kLibrary
                                                                  : FrameKind::kUser;
    id = profile_->InternFrame(symbol, kind);
  }
  leaf_first_.push_back(id);
  return absl::OkStatus();
}

inline void PerfScriptParser::EndSample() {
  if (!in_sample_) return;
  in_sample_ = false;
  root_first_.assign(leaf_first_.rbegin(), leaf_first_.rend());
  if (root_first_.empty()) {
    root_first_.push_back(profile_->InternFrame("[unknown]", FrameKind::kUnknown));
  }
  profile_->AddStack(root_first_, 1);
  ++samples_;
  leaf_first_.clear();
}

inline absl::Status PerfScriptParser::Line(absl::string_view line) {
  ++line_number_;
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  absl::string_view trimmed = perf_script_internal::Trim(line);
  if (trimmed.empty()) {
    EndSample();
    return absl::OkStatus();
  }
  if (trimmed.front() == '#') return absl::OkStatus();  // perf script --header
  if (line.front() == '\t' && in_sample_) return AddFrame(trimmed, line);
  std::string event;
  absl::string_view rest;
  uint64_t period = 0;
  if (!IsPerfScriptHeader(line, &event, &rest, &period)) {
    if (in_sample_) return AddFrame(trimmed, line);
    return Error("expected a sample header 'COMM PID SECS.USECS: [PERIOD] EVENT:'", line);
  }
  EndSample();
  if (event == "cpu-clock" || event == "task-clock") event = "cpu";
  ProfileMetadata& m = profile_->metadata();
  if (m.event.empty()) {
    m.event = event;
    if (event == "cpu" && period > 1 && period < (uint64_t{1} << 40)) {
      m.interval = absl::Nanoseconds(static_cast<int64_t>(period));
    }
  } else if (m.event != event) {
    return Error(absl::StrCat("samples of two events ('", m.event, "' and '", event,
                              "') in one file; keep one with `perf script --event NAME`"),
                 line);
  }
  in_sample_ = true;
  if (!rest.empty()) return AddFrame(rest, line);  // no call chains: one frame
  return absl::OkStatus();
}

inline absl::Status PerfScriptParser::Feed(absl::string_view data) {
  if (!error_.ok()) return error_;
  while (!data.empty()) {
    size_t newline = data.find('\n');
    const size_t len = newline == absl::string_view::npos ? data.size() : newline;
    if (carry_.size() + len > max_line_bytes_) {
      ++line_number_;
      error_ = absl::InvalidArgumentError(absl::StrCat(
          source_name_, ":", line_number_, ": line longer than ", max_line_bytes_,
          " bytes: this does not look like perf script output"));
      return error_;
    }
    if (newline == absl::string_view::npos) {
      carry_.append(data.data(), data.size());
      return absl::OkStatus();
    }
    absl::Status s;
    if (!carry_.empty()) {
      carry_.append(data.data(), len);
      s = Line(carry_);
      carry_.clear();
    } else {
      s = Line(data.substr(0, len));
    }
    if (!s.ok()) return s;
    data.remove_prefix(len + 1);
  }
  return absl::OkStatus();
}

inline absl::Status PerfScriptParser::Finish() {
  if (!error_.ok()) return error_;
  if (!carry_.empty()) {
    absl::Status s = Line(carry_);
    carry_.clear();
    if (!s.ok()) return s;
  }
  EndSample();
  if (samples_ == 0) {
    error_ = absl::InvalidArgumentError(absl::StrCat(
        source_name_, ": no samples in this perf script output"));
    return error_;
  }
  ProfileMetadata& m = profile_->metadata();
  m.engine = "perf script";
  return absl::OkStatus();
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_PERF_SCRIPT_READER_H_
