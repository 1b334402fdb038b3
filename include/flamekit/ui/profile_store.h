// SPDX-License-Identifier: Apache-2.0
// File: profile_store.h
//
// ProfileStore: the directory where the HTTP UI keeps its profiles. Each
// profile is a set of files sharing one stem,
//
//   <profile_id>-<event>-flamegraph-<timestamp>.html   the flame graph
//   <profile_id>-<event>-flamegraph-<timestamp>.txt    raw collapsed stacks
//   <profile_id>-<event>-flamegraph-<timestamp>.json   what the list shows
//
// (timestamp: UTC, YYYYMMDD-HHMMSS). Every file is written atomically
// (base/atomic_file.h: a '.'-prefixed temporary renamed into place), the
// .html last, so a profile is listed only once all of it is complete. A size
// cap removes the oldest complete profiles first; a temporary file that is
// still being written is never touched.
//
// Thread-safety: all methods may be called from many threads at once (an
// internal absl::Mutex serialises directory changes). Never from a signal
// handler.
//
// Requests name files; ResolveFile() is the only way from a name to a path:
// the name must match the pattern above exactly (profile_file_name.h), and
// the file must be a regular file directly inside the directory (no
// symlink, no FIFO, no "..", no NUL, nothing absolute). Anything else is
// NotFound, never a file, and is left out of List(). The directory itself
// must be private to this user (profile_dir.h).
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::unique_ptr<ProfileStore> store,
//                             ProfileStore::Open("", 256 << 20, DefaultUiCodecs()));
//   FLAMEKIT_ASSIGN_OR_RETURN(StoredProfile saved, store->Save(profile));
//   for (const StoredProfile& p : store->List()) { ... }  // newest first

#ifndef FLAMEKIT_UI_PROFILE_STORE_H_
#define FLAMEKIT_UI_PROFILE_STORE_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "flamekit/base/atomic_file.h"
#include "flamekit/base/scoped_fd.h"
#include "flamekit/base/status_macros.h"
#include "flamekit/profile/profile.h"
#include "flamekit/ui/profile_dir.h"
#include "flamekit/ui/profile_file_name.h"
#include "nlohmann/json.hpp"

namespace flamekit {

// What the list shows about one stored profile.
struct StoredProfile {
  int64_t id = 0;
  std::string event;
  absl::Time time = absl::UnixEpoch();  // from the file name (UTC, seconds)
  std::string stem;                     // "<id>-<event>-flamegraph-<timestamp>"
  std::string html_name;                // stem + ".html"
  std::string txt_name;                 // stem + ".txt"
  uint64_t samples = 0;
  uint64_t dropped_samples = 0;
  uint64_t bytes = 0;                   // all files of the profile
  absl::Duration duration = absl::ZeroDuration();
  absl::Duration interval = absl::ZeroDuration();
  uint64_t interval_events = 0;
  std::string engine;
  std::string engine_note;
  uint32_t threads = 0;
};

// Turns a Profile into the bytes of one of its files. The store calls
// `render_html` for the .html and `write_collapsed` for the .txt.
struct ProfileStoreCodecs {
  std::function<absl::StatusOr<std::string>(const Profile&)> render_html;
  std::function<std::string(const Profile&)> write_collapsed;
  std::function<absl::StatusOr<Profile>(absl::string_view text)> read_collapsed;
};

class ProfileStore {
 public:
  // Open()
  //
  // Uses (and creates, mode 0700, with missing parents) the directory `dir`;
  // an empty `dir` means DefaultDirectory(). `max_bytes` caps the total
  // size of the stored profiles (0 = no cap). Fails with a message saying
  // what to do when the path is not a writable directory of this user that
  // nobody else may write to (OpenProfileDirectory()).
  static absl::StatusOr<std::unique_ptr<ProfileStore>> Open(
      absl::string_view dir, uint64_t max_bytes, ProfileStoreCodecs codecs);

  // DefaultDirectory()
  //
  // DefaultProfileDirectory(): $STATE_DIRECTORY, $XDG_STATE_HOME/flamekit-ui
  // or ~/.local/state/flamekit-ui; never a shared temporary directory.
  static std::string DefaultDirectory() { return DefaultProfileDirectory(); }

  ProfileStore(const ProfileStore&) = delete;
  ProfileStore& operator=(const ProfileStore&) = delete;

  // Save()
  //
  // Writes the profile under the next free id, then applies the size cap
  // (never removing the profile just written). The event in the name is
  // metadata().event reduced to [a-z0-9-].
  absl::StatusOr<StoredProfile> Save(const Profile& profile);

  // List()
  //
  // Every complete profile, newest (highest id) first.
  std::vector<StoredProfile> List() const;

  // Find()
  //
  // The profile with this id, or NotFound.
  absl::StatusOr<StoredProfile> Find(int64_t id) const;

  // Load()
  //
  // The profile read back from its .txt, with the metadata from its .json.
  absl::StatusOr<Profile> Load(int64_t id) const;

  // ResolveFile()
  //
  // The absolute path of the stored file `name` (a .html or .txt of a
  // complete profile), or NotFound for anything else (see the banner).
  absl::StatusOr<std::string> ResolveFile(absl::string_view name) const;

  // ReadFile()
  //
  // ResolveFile() and read it (ReadStoredFile(): O_NOFOLLOW | O_NONBLOCK,
  // regular files only).
  absl::StatusOr<std::string> ReadFile(absl::string_view name) const;

  // DeleteAll()
  //
  // Removes every complete profile (files a writer still holds as
  // '.'-temporaries are left alone). Returns how many profiles went.
  absl::StatusOr<size_t> DeleteAll();

  // TotalBytes()
  //
  // Bytes of all complete profiles.
  uint64_t TotalBytes() const;

  const std::string& directory() const { return dir_; }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  ProfileStore(std::string dir, uint64_t max_bytes, ProfileStoreCodecs codecs)
      : dir_(std::move(dir)), max_bytes_(max_bytes), codecs_(std::move(codecs)) {}

  std::vector<StoredProfile> ListLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const StoredProfile& profile) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EnforceCapLocked(int64_t keep_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const uint64_t max_bytes_;
  const ProfileStoreCodecs codecs_;
  mutable absl::Mutex mu_;
};

// Implementation details follow.

namespace ui_internal {

inline std::string MetadataJson(const Profile& profile, absl::Duration duration) {
  const ProfileMetadata& m = profile.metadata();
  nlohmann::json j;
  j["samples"] = profile.total_samples();
  j["dropped_samples"] = m.dropped_samples + m.lost_samples;
  j["duration_ms"] = absl::ToInt64Milliseconds(duration);
  j["interval_ns"] = absl::ToInt64Nanoseconds(m.interval);
  j["interval_events"] = m.interval_events;
  j["event"] = m.event;
  j["engine"] = m.engine;
  j["engine_note"] = m.engine_note;
  j["threads"] = m.threads;
  j["title"] = m.title;
  j["transforms_json"] = m.transforms_json;
  if (m.start_time != absl::InfinitePast()) {
    j["start_time_unix_ms"] = absl::ToUnixMillis(m.start_time);
  }
  if (m.end_time != absl::InfinitePast()) {
    j["end_time_unix_ms"] = absl::ToUnixMillis(m.end_time);
  }
  return j.dump(2);
}

// Fills the list fields from the .json beside a profile; a missing or bad
// file leaves them zero (the profile is still listed and served).
inline void ReadMetadataJson(absl::string_view text, StoredProfile* out,
                             ProfileMetadata* metadata) {
  nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  auto u64 = [&](const char* key) -> uint64_t {
    auto it = j.find(key);
    return it != j.end() && it->is_number_unsigned() ? it->get<uint64_t>()
           : it != j.end() && it->is_number_integer() && it->get<int64_t>() > 0
               ? static_cast<uint64_t>(it->get<int64_t>())
               : 0;
  };
  auto str = [&](const char* key) -> std::string {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  out->samples = u64("samples");
  out->dropped_samples = u64("dropped_samples");
  out->duration = absl::Milliseconds(static_cast<int64_t>(u64("duration_ms")));
  out->interval = absl::Nanoseconds(static_cast<int64_t>(u64("interval_ns")));
  out->interval_events = u64("interval_events");
  out->engine = str("engine");
  out->engine_note = str("engine_note");
  out->threads = static_cast<uint32_t>(u64("threads"));
  if (metadata != nullptr) {
    metadata->event = str("event");
    metadata->engine = out->engine;
    metadata->engine_note = out->engine_note;
    metadata->interval = out->interval;
    metadata->interval_events = out->interval_events;
    metadata->dropped_samples = out->dropped_samples;
    metadata->threads = out->threads;
    metadata->title = str("title");
    metadata->transforms_json = str("transforms_json");
    if (j.contains("start_time_unix_ms")) {
      metadata->start_time = absl::FromUnixMillis(static_cast<int64_t>(u64("start_time_unix_ms")));
    }
    if (j.contains("end_time_unix_ms")) {
      metadata->end_time = absl::FromUnixMillis(static_cast<int64_t>(u64("end_time_unix_ms")));
    }
  }
}

}  // namespace ui_internal

inline absl::StatusOr<std::unique_ptr<ProfileStore>> ProfileStore::Open(
    absl::string_view dir, uint64_t max_bytes, ProfileStoreCodecs codecs) {
  if (!codecs.render_html || !codecs.write_collapsed || !codecs.read_collapsed) {
    return absl::InvalidArgumentError("ProfileStore needs all three codecs");
  }
  FLAMEKIT_ASSIGN_OR_RETURN(std::string resolved, OpenProfileDirectory(dir));
  return std::unique_ptr<ProfileStore>(
      new ProfileStore(std::move(resolved), max_bytes, std::move(codecs)));
}

inline std::vector<StoredProfile> ProfileStore::ListLocked() const {
  std::vector<StoredProfile> result;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) return result;
  std::vector<ProfileFileName> html;
  while (struct dirent* entry = ::readdir(d)) {
    ProfileFileName parsed;
    if (!ParseProfileFileName(entry->d_name, &parsed)) continue;
    if (parsed.extension == "html") html.push_back(std::move(parsed));
  }
  ::closedir(d);
  for (ProfileFileName& name : html) {
    StoredProfile p;
    p.id = name.id;
    p.event = name.event;
    p.time = name.time;
    p.stem = name.stem;
    p.html_name = absl::StrCat(name.stem, ".html");
    p.txt_name = absl::StrCat(name.stem, ".txt");
    std::string base = absl::StrCat(dir_, "/", name.stem);
    uint64_t html_bytes = StoredFileBytes(base + ".html");
    if (html_bytes == 0) continue;  // a symlink, FIFO or something else: not ours
    p.bytes = html_bytes + StoredFileBytes(base + ".txt") +
              StoredFileBytes(base + ".json");
    absl::StatusOr<std::string> meta = ReadStoredFile(base + ".json");
    if (meta.ok()) ui_internal::ReadMetadataJson(*meta, &p, nullptr);
    result.push_back(std::move(p));
  }
  std::sort(result.begin(), result.end(), [](const StoredProfile& a, const StoredProfile& b) {
    if (a.id != b.id) return a.id > b.id;
    return a.stem > b.stem;
  });
  return result;
}

inline std::vector<StoredProfile> ProfileStore::List() const {
  absl::ReaderMutexLock lock(&mu_);
  return ListLocked();
}

inline absl::StatusOr<StoredProfile> ProfileStore::Find(int64_t id) const {
  for (StoredProfile& p : List()) {
    if (p.id == id) return std::move(p);
  }
  return absl::NotFoundError(absl::StrCat("no profile with id ", id,
                                          "; GET /api/profiles lists the stored ones"));
}

inline absl::StatusOr<Profile> ProfileStore::Load(int64_t id) const {
  FLAMEKIT_ASSIGN_OR_RETURN(StoredProfile p, Find(id));
  std::string base = absl::StrCat(dir_, "/", p.stem);
  FLAMEKIT_ASSIGN_OR_RETURN(std::string text, ReadStoredFile(base + ".txt"));
  FLAMEKIT_ASSIGN_OR_RETURN(Profile profile, codecs_.read_collapsed(text));
  absl::StatusOr<std::string> meta = ReadStoredFile(base + ".json");
  if (meta.ok()) {
    StoredProfile ignored;
    ui_internal::ReadMetadataJson(*meta, &ignored, &profile.metadata());
  }
  if (profile.metadata().event.empty()) profile.metadata().event = p.event;
  return profile;
}

inline absl::StatusOr<std::string> ProfileStore::ResolveFile(absl::string_view name) const {
  ProfileFileName parsed;
  if (!ParseProfileFileName(name, &parsed) || parsed.extension == "json") {
    return absl::NotFoundError("no such profile file");
  }
  std::string path = absl::StrCat(dir_, "/", name);
  struct stat st;
  // lstat: a symlink (even one pointing inside) is not a stored file.
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::NotFoundError("no such profile file");
  }
  // Only complete profiles: the .html is renamed into place last.
  struct stat html_st;
  std::string html = absl::StrCat(dir_, "/", parsed.stem, ".html");
  if (::lstat(html.c_str(), &html_st) != 0 || !S_ISREG(html_st.st_mode)) {
    return absl::NotFoundError("no such profile file");
  }
  return path;
}

inline absl::StatusOr<std::string> ProfileStore::ReadFile(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  FLAMEKIT_ASSIGN_OR_RETURN(std::string path, ResolveFile(name));
  return ReadStoredFile(path);
}

inline void ProfileStore::RemoveLocked(const StoredProfile& profile) {
  std::string base = absl::StrCat(dir_, "/", profile.stem);
  // The .html first: from then on the profile is no longer listed.
  ::unlink((base + ".html").c_str());
  ::unlink((base + ".txt").c_str());
  ::unlink((base + ".json").c_str());
}

inline void ProfileStore::EnforceCapLocked(int64_t keep_id) {
  if (max_bytes_ == 0) return;
  std::vector<StoredProfile> all = ListLocked();  // newest first
  uint64_t total = 0;
  for (const StoredProfile& p : all) total += p.bytes;
  for (auto it = all.rbegin(); it != all.rend() && total > max_bytes_; ++it) {
    if (it->id == keep_id) continue;
    RemoveLocked(*it);
    total -= it->bytes;
  }
}

inline absl::StatusOr<StoredProfile> ProfileStore::Save(const Profile& profile) {
  const ProfileMetadata& m = profile.metadata();
  absl::Duration duration = absl::ZeroDuration();
  if (m.start_time != absl::InfinitePast() && m.end_time != absl::InfinitePast() &&
      m.end_time > m.start_time) {
    duration = m.end_time - m.start_time;
  }
  // Render before taking the lock: it is the slow part.
  FLAMEKIT_ASSIGN_OR_RETURN(std::string html, codecs_.render_html(profile));
  std::string collapsed = codecs_.write_collapsed(profile);
  std::string meta = ui_internal::MetadataJson(profile, duration);

  absl::MutexLock lock(&mu_);
  int64_t next_id = 1;
  DIR* d = ::opendir(dir_.c_str());
  if (d == nullptr) {
    return absl::NotFoundError(absl::StrCat("the profile directory ", dir_,
                                            " is gone; restart the UI or recreate it"));
  }
  while (struct dirent* entry = ::readdir(d)) {
    ProfileFileName parsed;
    if (ParseProfileFileName(entry->d_name, &parsed)) {
      next_id = std::max(next_id, parsed.id + 1);
    }
  }
  ::closedir(d);
  if (next_id > 999999999) next_id = 1;  // ids wrap after a billion profiles
  std::string event = ui_internal::SanitizeEventName(m.event);
  absl::Time when = m.end_time != absl::InfinitePast() ? m.end_time : absl::Now();
  std::string stem = absl::StrCat(absl::StrFormat("%04d", next_id), "-", event, "-flamegraph-",
                                  absl::FormatTime("%Y%m%d-%H%M%S", when, absl::UTCTimeZone()));
  std::string base = absl::StrCat(dir_, "/", stem);
  absl::Status status = WriteFileAtomically(base + ".json", meta);
  if (status.ok()) status = WriteFileAtomically(base + ".txt", collapsed);
  if (status.ok()) status = WriteFileAtomically(base + ".html", html);
  if (!status.ok()) {
    ::unlink((base + ".json").c_str());
    ::unlink((base + ".txt").c_str());
    return status;
  }
  EnforceCapLocked(next_id);
  for (StoredProfile& p : ListLocked()) {
    if (p.id == next_id) return std::move(p);
  }
  return absl::InternalError(absl::StrCat("profile ", stem, " vanished right after saving"));
}

inline absl::StatusOr<size_t> ProfileStore::DeleteAll() {
  absl::MutexLock lock(&mu_);
  std::vector<StoredProfile> all = ListLocked();
  for (const StoredProfile& p : all) RemoveLocked(p);
  // Leftover .txt/.json of profiles whose .html went missing.
  DIR* d = ::opendir(dir_.c_str());
  if (d != nullptr) {
    std::vector<std::string> stray;
    while (struct dirent* entry = ::readdir(d)) {
      ProfileFileName parsed;
      if (ParseProfileFileName(entry->d_name, &parsed)) stray.push_back(entry->d_name);
    }
    ::closedir(d);
    for (const std::string& name : stray) {
      std::string path = absl::StrCat(dir_, "/", name);
      struct stat st;
      if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) ::unlink(path.c_str());
    }
  }
  return all.size();
}

inline uint64_t ProfileStore::TotalBytes() const {
  uint64_t total = 0;
  for (const StoredProfile& p : List()) total += p.bytes;
  return total;
}

}  // namespace flamekit

#endif  // FLAMEKIT_UI_PROFILE_STORE_H_
