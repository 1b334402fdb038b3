// SPDX-License-Identifier: Apache-2.0
// File: watch_log.h
//
// watch.jsonl: the one-JSON-object-per-line log of `flamekit watch` (polls
// that failed, captures with their reason, value and file, alerts received),
// so captures can be lined up with a dashboard.
//
// Thread-safety: a WatchLog is thread-compatible: one thread writes it (the
// watcher's, or the alert receiver's under its own lock). Not
// async-signal-safe.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(auto log, WatchLog::Open(dir + "/watch.jsonl"));
//   log->Write(absl::Now(), {{"event", "start"}}).IgnoreError();

#ifndef FLAMEKIT_TRIGGER_WATCH_LOG_H_
#define FLAMEKIT_TRIGGER_WATCH_LOG_H_

#include <cerrno>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace flamekit {


// WatchLog
//
// Appends JSON lines: {"time": RFC 3339 UTC, "unix_ms", "event", ...}.
// Each line is written with one write and flushed, so a crash leaves only
// whole lines.
class WatchLog {
 public:
  static absl::StatusOr<std::unique_ptr<WatchLog>> Open(const std::string& path);
  ~WatchLog() {
    if (file_ != nullptr) std::fclose(file_);
  }
  WatchLog(const WatchLog&) = delete;
  WatchLog& operator=(const WatchLog&) = delete;

  // Write()
  //
  // Adds "time" and "unix_ms" for `when` to `fields` and appends the line.
  absl::Status Write(absl::Time when, nlohmann::json fields);
  const std::string& path() const { return path_; }

 private:
  WatchLog(std::FILE* file, std::string path) : file_(file), path_(std::move(path)) {}
  std::FILE* file_;
  std::string path_;
};

// Implementation details follow.

inline absl::StatusOr<std::unique_ptr<WatchLog>> WatchLog::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) {
    return absl::ErrnoToStatus(errno, absl::StrCat("cannot open the watch log ", path,
                                                   "; choose a writable --dir"));
  }
  return std::unique_ptr<WatchLog>(new WatchLog(f, path));
}

inline absl::Status WatchLog::Write(absl::Time when, nlohmann::json fields) {
  nlohmann::json line = nlohmann::json::object();
  line["time"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", when, absl::UTCTimeZone());
  line["unix_ms"] = absl::ToUnixMillis(when);
  for (auto& item : fields.items()) line[item.key()] = item.value();
  // dump() with error_handler::replace: a label value with invalid UTF-8
  // must not throw out of the watcher.
  std::string text = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size() ||
      std::fflush(file_) != 0) {
    return absl::ErrnoToStatus(errno, absl::StrCat("write ", path_));
  }
  return absl::OkStatus();
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_WATCH_LOG_H_
