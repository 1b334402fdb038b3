// SPDX-License-Identifier: Apache-2.0
// File: metric_source.h
//
// Metric sources for `flamekit watch`: one number per poll.
//   ProcessCpuSource   CPU use of a process in percent of one core, from
//                      utime+stime in /proc/PID/stat between two polls
//   ProcessRssSource   resident set size in bytes, from /proc/PID/statm
//   PrometheusSource   one selected series of a Prometheus text page;
//                      counters as a per-second rate between polls, gauges
//                      (and untyped) as they are
//
// Thread-safety: a source is thread-compatible: one thread polls it. Not
// async-signal-safe. Poll() never blocks longer than its own timeout (the
// HTTP fetch's), and a failed poll leaves the source usable: the next poll
// may succeed (an endpoint restarting) or keep failing with the same clear
// message (a process that exited).
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(auto cpu, ProcessCpuSource::Create(pid));
//   absl::SleepFor(absl::Seconds(1));
//   absl::StatusOr<std::optional<double>> v = cpu->Poll();
//   // *v: percent of one core used since Create() (nullopt never for CPU).

#ifndef FLAMEKIT_TRIGGER_METRIC_SOURCE_H_
#define FLAMEKIT_TRIGGER_METRIC_SOURCE_H_

#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/trigger/metric_selector.h"

namespace flamekit {

// MetricSource
//
// What the watcher polls. Poll() returns the current value, nullopt when a
// rate has no previous reading yet (the first poll of a counter), or an
// error that says what went wrong and what to do.
class MetricSource {
 public:
  virtual ~MetricSource() = default;

  // Poll()
  //
  // Reads the metric now.
  virtual absl::StatusOr<std::optional<double>> Poll() = 0;

  // Name()
  //
  // Short, file-name-safe name of the metric for capture names and logs:
  // "cpu", "rss", or the selector's metric name.
  virtual std::string Name() const = 0;

  // Describe()
  //
  // One line for humans: "CPU of pid 1234 (% of one core)".
  virtual std::string Describe() const = 0;

  // IsTargetGone()
  //
  // Whether `poll_error` means the watched thing is gone for good (a
  // process that exited), so watching should end; false for errors a later
  // poll may not have (an endpoint restarting).
  virtual bool IsTargetGone(const absl::Status& poll_error) const {
    (void)poll_error;
    return false;
  }
};

// ProcStatTimes
//
// The fields of /proc/PID/stat the CPU source uses.
struct ProcStatTimes {
  char state = '?';
  uint64_t utime_ticks = 0;
  uint64_t stime_ticks = 0;
  uint64_t start_ticks = 0;  // since boot; tells a reused PID apart
};

// ParseProcStat()
//
// Parses the text of /proc/PID/stat (the command name may hold spaces and
// parentheses: fields are counted after the last ')'). InvalidArgument on
// malformed text.
absl::StatusOr<ProcStatTimes> ParseProcStat(absl::string_view text);

// ReadProcStat()
//
// Reads /proc/PID/stat. NotFound "process PID exited" when it is gone or a
// zombie.
absl::StatusOr<ProcStatTimes> ReadProcStat(pid_t pid);

// ProcessCpuSource
//
// Percent of one core the process used between polls (200 = two cores
// busy). The first value covers the time since Create(). Resolution is one
// clock tick (10 ms of CPU at USER_HZ=100), i.e. 1 % at a 1 s poll.
class ProcessCpuSource : public MetricSource {
 public:
  // Create()
  //
  // Takes the baseline reading. NotFound when the process does not exist.
  static absl::StatusOr<std::unique_ptr<ProcessCpuSource>> Create(pid_t pid);

  absl::StatusOr<std::optional<double>> Poll() override;
  std::string Name() const override { return "cpu"; }
  std::string Describe() const override {
    return absl::StrCat("CPU of pid ", pid_, " (% of one core)");
  }
  bool IsTargetGone(const absl::Status& e) const override { return absl::IsNotFound(e); }

 private:
  ProcessCpuSource(pid_t pid, ProcStatTimes base, absl::Time when)
      : pid_(pid), last_(base), last_time_(when) {}
  pid_t pid_;
  ProcStatTimes last_;
  absl::Time last_time_;
};

// ProcessRssSource
//
// Resident set size in bytes (/proc/PID/statm field 2 times the page size).
class ProcessRssSource : public MetricSource {
 public:
  // Create()
  //
  // NotFound when the process does not exist.
  static absl::StatusOr<std::unique_ptr<ProcessRssSource>> Create(pid_t pid);

  absl::StatusOr<std::optional<double>> Poll() override;
  std::string Name() const override { return "rss"; }
  std::string Describe() const override {
    return absl::StrCat("RSS of pid ", pid_, " (bytes)");
  }
  bool IsTargetGone(const absl::Status& e) const override { return absl::IsNotFound(e); }

 private:
  ProcessRssSource(pid_t pid, uint64_t start_ticks) : pid_(pid), start_ticks_(start_ticks) {}
  pid_t pid_;
  uint64_t start_ticks_;
};

// PageFetcher
//
// Returns the body of a metrics page; FetchUrl() in production (see
// http_fetch.h), a file reader or anything else that returns real text in
// tools and tests.
using PageFetcher = std::function<absl::StatusOr<std::string>()>;

// PrometheusSource
//
// One selector over a page. Counters become a per-second rate between two
// successful polls (so the first poll returns nullopt); a counter that went
// down (the service restarted) restarts the rate from the new value. Several
// matching series are summed (as PromQL's sum() would).
class PrometheusSource : public MetricSource {
 public:
  PrometheusSource(std::string url, MetricSelector selector, PageFetcher fetch)
      : url_(std::move(url)), selector_(std::move(selector)), fetch_(std::move(fetch)) {}

  absl::StatusOr<std::optional<double>> Poll() override;
  std::string Name() const override { return selector_.name(); }
  std::string Describe() const override {
    return absl::StrCat(selector_.text(), " at ", url_);
  }
  // The family type seen at the last successful poll.
  MetricType last_type() const { return last_type_; }

 private:
  std::string url_;
  MetricSelector selector_;
  PageFetcher fetch_;
  std::optional<double> last_counter_;
  absl::Time last_counter_time_;
  MetricType last_type_ = MetricType::kUntyped;
};

// Implementation details follow.

namespace trigger_internal {

inline absl::Time MonotonicNow() {
  // Rates need a clock that never jumps; absl::Now() is wall time.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::TimeFromTimespec(ts);
}

inline absl::StatusOr<std::string> ReadProcFile(const std::string& path, pid_t pid) {
  std::FILE* f = std::fopen(path.c_str(), "re");
  if (f == nullptr) {
    int e = errno;
    if (e == ENOENT || e == ESRCH) {
      return absl::NotFoundError(absl::StrCat(
          "process ", pid, " does not exist (or has exited): no ", path));
    }
    return absl::ErrnoToStatus(e, absl::StrCat("open ", path));
  }
  std::string out;
  char buf[1024];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.append(buf, n);
  bool failed = std::ferror(f) != 0;
  int e = errno;
  std::fclose(f);
  if (failed) {
    if (e == ESRCH) {
      return absl::NotFoundError(absl::StrCat("process ", pid, " exited while reading ", path));
    }
    return absl::ErrnoToStatus(e, absl::StrCat("read ", path));
  }
  return out;
}

}  // namespace trigger_internal

inline absl::StatusOr<ProcStatTimes> ParseProcStat(absl::string_view text) {
  size_t close = text.rfind(')');
  if (close == absl::string_view::npos) {
    return absl::InvalidArgumentError("malformed /proc/PID/stat: no ')' after the command name");
  }
  std::vector<absl::string_view> f =
      absl::StrSplit(text.substr(close + 1), ' ', absl::SkipEmpty());
  // f[0] is field 3 (state); utime is field 14, stime 15, starttime 22.
  if (f.size() < 20) {
    return absl::InvalidArgumentError(
        absl::StrCat("malformed /proc/PID/stat: ", f.size() + 2, " fields, expected 22+"));
  }
  ProcStatTimes t;
  t.state = f[0].empty() ? '?' : f[0][0];
  if (!absl::SimpleAtoi(f[11], &t.utime_ticks) || !absl::SimpleAtoi(f[12], &t.stime_ticks) ||
      !absl::SimpleAtoi(f[19], &t.start_ticks)) {
    return absl::InvalidArgumentError("malformed /proc/PID/stat: utime/stime/starttime");
  }
  return t;
}

inline absl::StatusOr<ProcStatTimes> ReadProcStat(pid_t pid) {
  absl::StatusOr<std::string> text =
      trigger_internal::ReadProcFile(absl::StrCat("/proc/", pid, "/stat"), pid);
  if (!text.ok()) return text.status();
  absl::StatusOr<ProcStatTimes> t = ParseProcStat(*text);
  if (!t.ok()) return t.status();
  if (t->state == 'Z' || t->state == 'X') {
    return absl::NotFoundError(absl::StrCat("process ", pid, " has exited (zombie)"));
  }
  return t;
}

inline absl::StatusOr<std::unique_ptr<ProcessCpuSource>> ProcessCpuSource::Create(pid_t pid) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("bad pid ", pid));
  absl::StatusOr<ProcStatTimes> t = ReadProcStat(pid);
  if (!t.ok()) return t.status();
  return std::unique_ptr<ProcessCpuSource>(
      new ProcessCpuSource(pid, *t, trigger_internal::MonotonicNow()));
}

inline absl::StatusOr<std::optional<double>> ProcessCpuSource::Poll() {
  absl::StatusOr<ProcStatTimes> t = ReadProcStat(pid_);
  absl::Time now = trigger_internal::MonotonicNow();
  if (!t.ok()) return t.status();
  if (t->start_ticks != last_.start_ticks) {
    return absl::NotFoundError(absl::StrCat(
        "process ", pid_, " has exited; the PID now belongs to another process"));
  }
  static const long kTicksPerSecond = sysconf(_SC_CLK_TCK);
  double cpu_seconds =
      static_cast<double>((t->utime_ticks + t->stime_ticks) -
                          (last_.utime_ticks + last_.stime_ticks)) /
      static_cast<double>(kTicksPerSecond > 0 ? kTicksPerSecond : 100);
  double wall = absl::ToDoubleSeconds(now - last_time_);
  last_ = *t;
  last_time_ = now;
  if (wall <= 0) return std::optional<double>(0.0);
  return std::optional<double>(100.0 * cpu_seconds / wall);
}

inline absl::StatusOr<std::unique_ptr<ProcessRssSource>> ProcessRssSource::Create(pid_t pid) {
  if (pid <= 0) return absl::InvalidArgumentError(absl::StrCat("bad pid ", pid));
  absl::StatusOr<ProcStatTimes> t = ReadProcStat(pid);
  if (!t.ok()) return t.status();
  return std::unique_ptr<ProcessRssSource>(new ProcessRssSource(pid, t->start_ticks));
}

inline absl::StatusOr<std::optional<double>> ProcessRssSource::Poll() {
  absl::StatusOr<ProcStatTimes> t = ReadProcStat(pid_);
  if (!t.ok()) return t.status();
  if (t->start_ticks != start_ticks_) {
    return absl::NotFoundError(absl::StrCat(
        "process ", pid_, " has exited; the PID now belongs to another process"));
  }
  absl::StatusOr<std::string> text =
      trigger_internal::ReadProcFile(absl::StrCat("/proc/", pid_, "/statm"), pid_);
  if (!text.ok()) return text.status();
  std::vector<absl::string_view> f = absl::StrSplit(*text, ' ', absl::SkipEmpty());
  uint64_t pages = 0;
  if (f.size() < 2 || !absl::SimpleAtoi(f[1], &pages)) {
    return absl::InternalError(absl::StrCat("malformed /proc/", pid_, "/statm: ", *text));
  }
  static const long kPageSize = sysconf(_SC_PAGESIZE);
  return std::optional<double>(static_cast<double>(pages) * static_cast<double>(kPageSize));
}

inline absl::StatusOr<std::optional<double>> PrometheusSource::Poll() {
  absl::StatusOr<std::string> body = fetch_();
  absl::Time now = trigger_internal::MonotonicNow();
  if (!body.ok()) return body.status();
  absl::StatusOr<PrometheusPage> page = ParsePrometheusText(*body, url_);
  if (!page.ok()) return page.status();
  absl::StatusOr<SelectedValue> v = SelectValue(*page, selector_);
  if (!v.ok()) {
    return absl::Status(v.status().code(), absl::StrCat(url_, ": ", v.status().message()));
  }
  last_type_ = v->type;
  if (!v->cumulative()) {
    last_counter_.reset();
    return std::optional<double>(v->value);
  }
  std::optional<double> previous = last_counter_;
  absl::Time previous_time = last_counter_time_;
  last_counter_ = v->value;
  last_counter_time_ = now;
  if (!previous.has_value()) return std::optional<double>();
  double seconds = absl::ToDoubleSeconds(now - previous_time);
  if (seconds <= 0) return std::optional<double>();
  // A counter that went down was reset (the service restarted): Prometheus'
  // rate() counts the new value as the increase since the reset.
  double increase = v->value >= *previous ? v->value - *previous : v->value;
  return std::optional<double>(increase / seconds);
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_METRIC_SOURCE_H_
