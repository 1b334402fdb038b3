// SPDX-License-Identifier: Apache-2.0
// File: alert_webhook.h
//
// Captures started by Alertmanager: ParseAlertmanagerWebhook() reads the
// webhook payload (version "4", what Alertmanager 0.25 POSTs to a
// webhook_config receiver), and AlertReceiver turns each firing alert into
// at most one capture: it maps the alert's labels to a process (a label
// holding the PID, else a label holding a command-line regex as `--name`
// takes), debounces repeats of the same alert (its fingerprint), runs one
// capture at a time, keeps a cooldown after each, and stops capturing once
// a count or disk budget is used. Every decision, with the alert's
// fingerprint and labels, is one line of watch.jsonl; each capture gets
// `<capture>.alert.json` beside it holding the alert it answers.
//
// Thread-safety: Handle() may be called from many HTTP worker threads at
// once (state behind a std::mutex); it never waits for a capture: captures
// run on the receiver's one worker thread, so a webhook is answered at
// once. The destructor waits for a running capture to end. Not
// async-signal-safe.
//
// Example:
//
//   AlertReceiverOptions o;
//   o.watch.dir = "/var/tmp/captures";
//   FLAMEKIT_ASSIGN_OR_RETURN(auto r, AlertReceiver::Create(o, capture_for_pid));
//   absl::StatusOr<std::vector<AlertDecision>> d = r->Handle(request_body);

#ifndef FLAMEKIT_TRIGGER_ALERT_WEBHOOK_H_
#define FLAMEKIT_TRIGGER_ALERT_WEBHOOK_H_

#include <sys/stat.h>
#include <sys/types.h>

#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "flamekit/trigger/metric_watch.h"

namespace flamekit {

// Alert: one alert of a webhook payload.
struct Alert {
  std::string status;  // "firing" or "resolved"
  std::map<std::string, std::string> labels;
  std::string fingerprint;
  std::string starts_at;
};

// AlertBatch: the payload.
struct AlertBatch {
  std::string version;
  std::string status;
  std::string receiver;
  std::string group_key;
  std::vector<Alert> alerts;
};

// ParseAlertmanagerWebhook()
//
// InvalidArgument saying what is wrong for anything that is not a version
// "4" payload with an alerts array (an alert without a fingerprint gets
// one from its sorted labels, as Alertmanager's own is).
absl::StatusOr<AlertBatch> ParseAlertmanagerWebhook(absl::string_view body);

// PidCaptureFn: captures process `pid` into request.path (completely or
// not at all).
using PidCaptureFn = std::function<absl::Status(pid_t pid, const CaptureRequest& request)>;

// PidFinder: the one process whose command line matches a regex
// (FindSingleProcess() in the CLI).
using PidFinder = std::function<absl::StatusOr<pid_t>(const std::string& regex)>;

// AlertReceiverOptions
struct AlertReceiverOptions {
  // dir, event, duration, and trigger.cooldown / max_captures /
  // max_disk_bytes; id and the threshold are unused.
  WatchOptions watch;
  std::string pid_label = "pid";          // a label holding the PID
  std::string name_label = "process";     // else one holding a --name regex
  pid_t default_pid = 0;                  // else this process (0: none)
  absl::Duration debounce = absl::Minutes(10);  // the same fingerprint again
};

// AlertDecision: what Handle() did with one alert.
struct AlertDecision {
  std::string fingerprint;
  // "queued", "resolved", "debounced", "busy", "cooldown", "exhausted",
  // "no_target"
  std::string outcome;
  std::string message;
};

// AlertReceiver
class AlertReceiver {
 public:
  // Create()
  //
  // Creates watch.dir and opens the log (watch.log_path, default
  // dir/watch.jsonl). `finder` may be null (then only the PID label maps).
  static absl::StatusOr<std::unique_ptr<AlertReceiver>> Create(AlertReceiverOptions options,
                                                               PidCaptureFn capture,
                                                               PidFinder finder = nullptr);
  ~AlertReceiver();
  AlertReceiver(const AlertReceiver&) = delete;
  AlertReceiver& operator=(const AlertReceiver&) = delete;

  // Handle()
  //
  // One webhook body: a decision per alert, or InvalidArgument for a body
  // that is not a version 4 payload. Returns at once.
  absl::StatusOr<std::vector<AlertDecision>> Handle(absl::string_view body);

  // WaitIdle()
  //
  // Waits until no capture runs or waits, at most `timeout`; whether idle.
  bool WaitIdle(absl::Duration timeout);

  int captures() const;
  int64_t disk_used() const;
  const std::string& log_path() const { return log_->path(); }

 private:
  struct Job {
    pid_t pid;
    Alert alert;
    CaptureRequest request;
  };
  AlertReceiver(AlertReceiverOptions options, PidCaptureFn capture, PidFinder finder,
                std::unique_ptr<WatchLog> log)
      : options_(std::move(options)), capture_(std::move(capture)),
        finder_(std::move(finder)), log_(std::move(log)), trigger_(options_.watch.trigger) {}
  AlertDecision Decide(const Alert& alert, absl::Time now);  // mu_ held
  void Loop();
  void Log(absl::Time when, nlohmann::json fields);  // mu_ held

  const AlertReceiverOptions options_;
  PidCaptureFn capture_;
  PidFinder finder_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<WatchLog> log_;                           // guarded by mu_
  Trigger trigger_;                                         // guarded by mu_
  absl::flat_hash_map<std::string, absl::Time> last_seen_;  // guarded by mu_
  std::deque<Job> pending_;                                 // guarded by mu_
  bool running_ = false;                                    // guarded by mu_
  bool stopping_ = false;                                   // guarded by mu_
  std::thread worker_;
};

// Implementation details follow.

namespace trigger_internal {

inline nlohmann::json LabelsJson(const std::map<std::string, std::string>& labels) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [k, v] : labels) out[k] = v;
  return out;
}

inline std::string StringField(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace trigger_internal

inline absl::StatusOr<AlertBatch> ParseAlertmanagerWebhook(absl::string_view body) {
  using trigger_internal::StringField;
  nlohmann::json doc = nlohmann::json::parse(body.begin(), body.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::InvalidArgumentError(
        "the body is not JSON: expected Alertmanager's webhook payload (version 4)");
  }
  AlertBatch batch;
  batch.version = StringField(doc, "version");
  if (batch.version != "4") {
    return absl::InvalidArgumentError(absl::StrCat(
        "webhook payload version '", batch.version,
        "' is not supported: expected \"4\" (Alertmanager 0.x webhook_configs)"));
  }
  batch.status = StringField(doc, "status");
  batch.receiver = StringField(doc, "receiver");
  batch.group_key = StringField(doc, "groupKey");
  auto alerts = doc.find("alerts");
  if (alerts == doc.end() || !alerts->is_array()) {
    return absl::InvalidArgumentError("webhook payload without an \"alerts\" array");
  }
  for (const nlohmann::json& a : *alerts) {
    if (!a.is_object()) return absl::InvalidArgumentError("an alert is not an object");
    Alert alert;
    alert.status = StringField(a, "status");
    alert.fingerprint = StringField(a, "fingerprint");
    alert.starts_at = StringField(a, "startsAt");
    auto labels = a.find("labels");
    if (labels != a.end() && labels->is_object()) {
      for (auto it = labels->begin(); it != labels->end(); ++it) {
        if (it.value().is_string()) alert.labels[it.key()] = it.value().get<std::string>();
      }
    }
    if (alert.fingerprint.empty()) {
      std::string key;
      for (const auto& [k, v] : alert.labels) absl::StrAppend(&key, k, "=", v, ";");
      alert.fingerprint = absl::StrCat("labels:", std::hash<std::string>()(key));
    }
    batch.alerts.push_back(std::move(alert));
  }
  return batch;
}

inline absl::StatusOr<std::unique_ptr<AlertReceiver>> AlertReceiver::Create(
    AlertReceiverOptions options, PidCaptureFn capture, PidFinder finder) {
  if (!capture) return absl::InvalidArgumentError("the alert receiver needs a capture");
  if (options.watch.id.empty()) options.watch.id = "alert";
  // One firing alert is one poll over the line.
  options.watch.trigger.direction = TriggerDirection::kAbove;
  options.watch.trigger.threshold = 0;
  options.watch.trigger.consecutive = 1;
  if (options.debounce < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--debounce must be 0 or positive");
  }
  absl::Status valid = ValidateWatchOptions(options.watch);
  if (!valid.ok()) return valid;
  if (options.watch.dir.empty()) options.watch.dir = ".";
  std::error_code ec;
  std::filesystem::create_directories(options.watch.dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create the output directory ", options.watch.dir, ": ", ec.message(),
        "; choose a writable --dir"));
  }
  if (options.watch.log_path.empty()) options.watch.log_path = options.watch.dir + "/watch.jsonl";
  absl::StatusOr<std::unique_ptr<WatchLog>> log = WatchLog::Open(options.watch.log_path);
  if (!log.ok()) return log.status();
  std::unique_ptr<AlertReceiver> r(new AlertReceiver(std::move(options), std::move(capture),
                                                     std::move(finder), std::move(*log)));
  r->worker_ = std::thread([p = r.get()] { p->Loop(); });
  return r;
}

inline AlertReceiver::~AlertReceiver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    pending_.clear();
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

inline void AlertReceiver::Log(absl::Time when, nlohmann::json fields) {
  log_->Write(when, std::move(fields)).IgnoreError();
}

inline AlertDecision AlertReceiver::Decide(const Alert& alert, absl::Time now) {
  AlertDecision d;
  d.fingerprint = alert.fingerprint;
  if (alert.status != "firing") {
    d.outcome = "resolved";
    return d;
  }
  auto seen = last_seen_.find(alert.fingerprint);
  if (seen != last_seen_.end() && now - seen->second < options_.debounce) {
    d.outcome = "debounced";
    d.message = absl::StrCat("the same alert was taken ",
                             absl::FormatDuration(absl::Trunc(now - seen->second,
                                                              absl::Seconds(1))),
                             " ago (debounce ", absl::FormatDuration(options_.debounce), ")");
    return d;
  }
  // The Trigger keeps the caps and the cooldown; one alert is one poll
  // over the line (consecutive = 1).
  TriggerDecision t = trigger_.Observe(1.0, now);
  if (t == TriggerDecision::kExhausted) {
    d.outcome = "exhausted";
    d.message = "the capture count or disk budget is used up";
    return d;
  }
  if (t == TriggerDecision::kCoolingDown) {
    d.outcome = "cooldown";
    d.message = "a capture ended less than --cooldown ago";
    return d;
  }
  if (running_ || !pending_.empty()) {
    d.outcome = "busy";
    d.message = "another capture is running (one at a time)";
    return d;
  }
  pid_t pid = 0;
  auto p = alert.labels.find(options_.pid_label);
  auto n = alert.labels.find(options_.name_label);
  if (p != alert.labels.end() && absl::SimpleAtoi(p->second, &pid) && pid > 0) {
  } else if (n != alert.labels.end() && finder_) {
    absl::StatusOr<pid_t> found = finder_(n->second);
    if (!found.ok()) {
      d.outcome = "no_target";
      d.message = std::string(found.status().message());
      return d;
    }
    pid = *found;
  } else if (options_.default_pid > 0) {
    pid = options_.default_pid;
  } else {
    d.outcome = "no_target";
    d.message = absl::StrCat("the alert has no '", options_.pid_label, "' label (a PID) nor a '",
                             options_.name_label,
                             "' label (a command-line regex): add one in the alert rule's "
                             "labels, or name yours with --pid-label/--name-label");
    return d;
  }
  last_seen_[alert.fingerprint] = now;
  std::string alertname = alert.labels.count("alertname") ? alert.labels.at("alertname") : "";
  std::string reason = trigger_internal::FileSafe(absl::StrCat("alert-", alertname));
  Job job;
  job.pid = pid;
  job.alert = alert;
  job.request.reason = reason;
  job.request.value = 1;
  job.request.fired_at = now;
  job.request.duration = options_.watch.duration;
  std::string base =
      CaptureFileName(absl::StrCat(pid), options_.watch.event, now, reason);
  std::string path = options_.watch.dir + "/" + base;
  struct stat st;
  for (int i = 2; ::stat(path.c_str(), &st) == 0; ++i) {
    path = absl::StrCat(options_.watch.dir, "/", base.substr(0, base.size() - 5), "-", i,
                        ".html");
  }
  job.request.path = path;
  pending_.push_back(std::move(job));
  cv_.notify_all();
  d.outcome = "queued";
  d.message = path;
  return d;
}

inline absl::StatusOr<std::vector<AlertDecision>> AlertReceiver::Handle(absl::string_view body) {
  absl::StatusOr<AlertBatch> batch = ParseAlertmanagerWebhook(body);
  absl::Time now = absl::Now();
  std::lock_guard<std::mutex> lock(mu_);
  if (!batch.ok()) {
    Log(now, {{"event", "alert_refused"}, {"message", batch.status().ToString()}});
    return batch.status();
  }
  std::vector<AlertDecision> out;
  for (const Alert& alert : batch->alerts) {
    AlertDecision d = Decide(alert, now);
    nlohmann::json line = {{"event", "alert"},
                           {"outcome", d.outcome},
                           {"fingerprint", alert.fingerprint},
                           {"status", alert.status},
                           {"labels", trigger_internal::LabelsJson(alert.labels)},
                           {"group_key", batch->group_key}};
    if (!d.message.empty()) line["message"] = d.message;
    Log(now, std::move(line));
    out.push_back(std::move(d));
  }
  return out;
}

inline void AlertReceiver::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    Job job = std::move(pending_.front());
    pending_.pop_front();
    running_ = true;
    lock.unlock();
    absl::Status captured = capture_(job.pid, job.request);
    absl::Time end = absl::Now();
    int64_t bytes = 0;
    struct stat st;
    if (::stat(job.request.path.c_str(), &st) == 0) bytes = st.st_size;
    // The alert beside the profile: what it answers, in the same
    // write-then-rename way as the profile itself.
    nlohmann::json alert = {{"fingerprint", job.alert.fingerprint},
                            {"status", job.alert.status},
                            {"startsAt", job.alert.starts_at},
                            {"labels", trigger_internal::LabelsJson(job.alert.labels)},
                            {"pid", job.pid},
                            {"profile", job.request.path}};
    if (captured.ok()) {
      std::string side = job.request.path + ".alert.json";
      std::string tmp = side + ".tmp";
      std::FILE* f = std::fopen(tmp.c_str(), "we");
      std::string text = alert.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
      bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
      if (f != nullptr) ok = std::fclose(f) == 0 && ok;
      if (!ok || std::rename(tmp.c_str(), side.c_str()) != 0) std::remove(tmp.c_str());
    }
    lock.lock();
    running_ = false;
    trigger_.RecordCapture(end, bytes);
    nlohmann::json line = {{"event", captured.ok() ? "capture" : "capture_failed"},
                           {"reason", job.request.reason},
                           {"fingerprint", job.alert.fingerprint},
                           {"labels", trigger_internal::LabelsJson(job.alert.labels)},
                           {"pid", job.pid},
                           {"fired_at", absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ",
                                                         job.request.fired_at,
                                                         absl::UTCTimeZone())},
                           {"bytes", bytes},
                           {"captures", trigger_.captures()},
                           {"disk_used", trigger_.disk_used()}};
    if (captured.ok()) {
      line["file"] = job.request.path;
    } else {
      line["message"] = captured.ToString();
    }
    Log(end, std::move(line));
    cv_.notify_all();
  }
}

inline bool AlertReceiver::WaitIdle(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return !running_ && pending_.empty(); });
}

inline int AlertReceiver::captures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trigger_.captures();
}

inline int64_t AlertReceiver::disk_used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return trigger_.disk_used();
}

}  // namespace flamekit

#endif  // FLAMEKIT_TRIGGER_ALERT_WEBHOOK_H_
