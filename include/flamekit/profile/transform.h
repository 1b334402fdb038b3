// SPDX-License-Identifier: Apache-2.0
// File: transform.h
//
// Ordered stack transforms, the same list for the CLI (--transforms
// FILE.json, --include, --exclude), the UI and the API:
//
//   replace             rewrite frame names: every match of a regex is
//                       replaced by a rewrite string with \1-style capture
//                       groups (RE2::GlobalReplace); a frame whose name
//                       becomes empty is dropped from its stacks
//   filter              keep only stacks with a frame matching a regex
//   remove              drop stacks with a frame matching a regex
//   hide                drop frames matching a regex, keep the rest of the
//                       stack (a stack left with no frames is dropped)
//   collapse_recursion  a frame directly repeated (a;b;b;b;c) becomes one
//   max_depth           keep the N frames nearest the root, then a
//                       "[truncated]" frame (FrameKind::kTruncated)
//
// Regexes are RE2 syntax and match anywhere in the name unless anchored
// (^...$). Frames that become equal after a replace merge, and so do stacks.
//
// JSON form (nlohmann JSON; entries are numbered from 1 in errors):
//
//   [{"replace": "std::__1::", "with": "std::"},
//    {"remove": "^epoll_wait$"}, {"filter": "Handle"}, {"hide": "^__libc"},
//    {"collapse_recursion": true}, {"max_depth": 40}]
//
// Thread safety: a TransformList is immutable once built; RE2 objects are
// safe for concurrent matching, so one list may be applied from many
// threads at once (e.g. UI requests). ApplyTransforms() is a pure function.
// Not for signal handlers (everything here allocates). RE2 and nlohmann
// JSON enter profile/ only through this header.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(TransformList list,
//                             TransformList::ReadFile("transforms.json"));
//   FLAMEKIT_ASSIGN_OR_RETURN(Transform keep, Transform::Filter("Handle"));
//   list.Add(std::move(keep));
//   Profile shown = ApplyTransforms(profile, list);

#ifndef FLAMEKIT_PROFILE_TRANSFORM_H_
#define FLAMEKIT_PROFILE_TRANSFORM_H_

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "nlohmann/json.hpp"
#include "re2/re2.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

enum class TransformType : uint8_t {
  kReplace,
  kFilter,
  kRemove,
  kHide,
  kCollapseRecursion,
  kMaxDepth,
};

// TransformTypeName()
//
// The JSON key of a transform type: "replace", "filter", ...
absl::string_view TransformTypeName(TransformType type);

// Transform
//
// One step. Built by the factories, which check the regex (InvalidArgument
// with RE2's explanation when it does not compile). Copies share the
// compiled regex.
class Transform {
 public:
  static absl::StatusOr<Transform> Replace(absl::string_view pattern,
                                           absl::string_view with);
  static absl::StatusOr<Transform> Filter(absl::string_view pattern);
  static absl::StatusOr<Transform> Remove(absl::string_view pattern);
  static absl::StatusOr<Transform> Hide(absl::string_view pattern);
  static Transform CollapseRecursion();
  // `depth` must be at least 1.
  static absl::StatusOr<Transform> MaxDepth(int64_t depth);

  TransformType type() const { return type_; }
  // The regex (replace, filter, remove, hide), else empty.
  const std::string& pattern() const { return pattern_; }
  // The rewrite string of a replace, else empty.
  const std::string& with() const { return with_; }
  // The depth of a max_depth, else 0.
  int64_t max_depth() const { return max_depth_; }
  // The compiled regex, or null for collapse_recursion and max_depth.
  const RE2* regex() const { return regex_.get(); }

 private:
  Transform() = default;
  static absl::StatusOr<Transform> WithRegex(TransformType type,
                                             absl::string_view pattern);

  TransformType type_ = TransformType::kCollapseRecursion;
  std::string pattern_;
  std::string with_;
  int64_t max_depth_ = 0;
  std::shared_ptr<const RE2> regex_;
};

// TransformList
//
// Transforms applied in order.
class TransformList {
 public:
  TransformList() = default;

  // FromJson()
  //
  // Parses the JSON form. Errors are InvalidArgument naming `source_name`
  // and the entry: `transforms.json: entry 2: invalid regex "(": missing ):
  // (`, `... entry 3: unknown key "drop"; expected one of ...`.
  static absl::StatusOr<TransformList> FromJson(
      absl::string_view json, absl::string_view source_name = "transforms");

  // ReadFile()
  //
  // Reads and parses a JSON file (at most 1 MB).
  static absl::StatusOr<TransformList> ReadFile(absl::string_view path);

  // ToJson()
  //
  // The compact JSON form; FromJson(ToJson()) gives an equal list.
  std::string ToJson() const;

  void Add(Transform transform) { transforms_.push_back(std::move(transform)); }
  // Appends all of `other`.
  void Append(const TransformList& other);

  absl::Span<const Transform> transforms() const { return transforms_; }
  size_t size() const { return transforms_.size(); }
  bool empty() const { return transforms_.empty(); }

 private:
  std::vector<Transform> transforms_;
};

// ApplyTransform()
//
// `profile` after one transform. Metadata is kept unchanged.
Profile ApplyTransform(const Profile& profile, const Transform& transform);

// ApplyTransforms()
//
// `profile` after every transform of `list`, in order. Keeps the metadata
// and records the list in metadata().transforms_json (appended to a list
// already recorded there). An empty list returns a copy.
Profile ApplyTransforms(const Profile& profile, const TransformList& list);

// Implementation details follow.

namespace transform_internal {

inline constexpr FrameId kUnmapped = ~FrameId{0};

inline constexpr absl::string_view kKnownKeys =
    "replace (with \"with\"), filter, remove, hide, collapse_recursion, "
    "max_depth";

inline absl::string_view ToStringView(const re2::StringPiece& s) {
  return absl::string_view(s.data(), s.size());
}

// Copies `in` into a new profile stack by stack: `fn(in_stack, &kept)`
// fills `kept` with the in-profile ids to keep (in order) and returns false
// to drop the stack; setting `*truncated` appends a "[truncated]" frame.
template <typename StackFn>
Profile Rebuild(const Profile& in, StackFn fn) {
  Profile out;
  out.metadata() = in.metadata();
  if (in.has_events()) out.EnableEvents();
  std::vector<FrameId> map(in.frame_count(), kUnmapped);
  std::vector<FrameId> kept;
  std::vector<FrameId> translated;
  for (size_t i = 0; i < in.stack_count(); ++i) {
    kept.clear();
    bool truncated = false;
    if (!fn(in.stack(i), &kept, &truncated)) continue;
    translated.clear();
    for (FrameId id : kept) {
      FrameId& mapped = map[id];
      if (mapped == kUnmapped) {
        const Frame& f = in.frame(id);
        mapped = out.InternFrame(f.name, f.kind);
      }
      translated.push_back(mapped);
    }
    if (truncated) {
      translated.push_back(out.InternFrame(kTruncatedFrameName, FrameKind::kTruncated));
    }
    // The events column (allocations behind bytes) travels with its stack.
    if (in.has_events()) {
      out.AddStack(translated, in.stack_count_at(i), in.stack_events_at(i));
    } else {
      out.AddStack(translated, in.stack_count_at(i));
    }
  }
  return out;
}

// Lazily evaluated "does frame id match" cache.
class MatchCache {
 public:
  MatchCache(const Profile& profile, const RE2& re)
      : profile_(profile), re_(re), state_(profile.frame_count(), -1) {}
  bool Matches(FrameId id) {
    int8_t& s = state_[id];
    if (s < 0) {
      const std::string& name = profile_.frame(id).name;
      s = RE2::PartialMatch(re2::StringPiece(name.data(), name.size()), re_) ? 1 : 0;
    }
    return s == 1;
  }

 private:
  const Profile& profile_;
  const RE2& re_;
  std::vector<int8_t> state_;
};

inline absl::Status EntryError(absl::string_view source, size_t entry,
                               absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat(source, ": entry ", entry, ": ", message));
}

}  // namespace transform_internal

inline absl::string_view TransformTypeName(TransformType type) {
  switch (type) {
    case TransformType::kReplace: return "replace";
    case TransformType::kFilter: return "filter";
    case TransformType::kRemove: return "remove";
    case TransformType::kHide: return "hide";
    case TransformType::kCollapseRecursion: return "collapse_recursion";
    case TransformType::kMaxDepth: return "max_depth";
  }
  return "unknown";
}

inline absl::StatusOr<Transform> Transform::WithRegex(TransformType type,
                                                      absl::string_view pattern) {
  RE2::Options options;
  options.set_log_errors(false);  // the error goes into the Status instead
  auto regex = std::make_shared<RE2>(re2::StringPiece(pattern.data(), pattern.size()),
                                     options);
  if (!regex->ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid regex \"", pattern, "\": ", regex->error()));
  }
  Transform t;
  t.type_ = type;
  t.pattern_ = std::string(pattern);
  t.regex_ = std::move(regex);
  return t;
}

inline absl::StatusOr<Transform> Transform::Replace(absl::string_view pattern,
                                                    absl::string_view with) {
  absl::StatusOr<Transform> t = WithRegex(TransformType::kReplace, pattern);
  if (!t.ok()) return t;
  std::string error;
  if (!t->regex_->CheckRewriteString(re2::StringPiece(with.data(), with.size()),
                                     &error)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid rewrite \"", with, "\" for regex \"", pattern, "\": ", error,
        " (\\1..\\9 name capture groups, \\\\ is a backslash)"));
  }
  t->with_ = std::string(with);
  return t;
}

inline absl::StatusOr<Transform> Transform::Filter(absl::string_view pattern) {
  return WithRegex(TransformType::kFilter, pattern);
}

inline absl::StatusOr<Transform> Transform::Remove(absl::string_view pattern) {
  return WithRegex(TransformType::kRemove, pattern);
}

inline absl::StatusOr<Transform> Transform::Hide(absl::string_view pattern) {
  return WithRegex(TransformType::kHide, pattern);
}

inline Transform Transform::CollapseRecursion() {
  Transform t;
  t.type_ = TransformType::kCollapseRecursion;
  return t;
}

inline absl::StatusOr<Transform> Transform::MaxDepth(int64_t depth) {
  if (depth < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_depth must be a positive number of frames, not ", depth));
  }
  Transform t;
  t.type_ = TransformType::kMaxDepth;
  t.max_depth_ = depth;
  return t;
}

inline void TransformList::Append(const TransformList& other) {
  transforms_.insert(transforms_.end(), other.transforms_.begin(),
                     other.transforms_.end());
}

inline absl::StatusOr<TransformList> TransformList::FromJson(
    absl::string_view json, absl::string_view source_name) {
  using transform_internal::EntryError;
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(json.begin(), json.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": not valid JSON (", e.what(), "); expected a list such "
        "as [{\"remove\": \"^epoll_wait$\"}]"));
  }
  if (!doc.is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": expected a JSON list of transforms such as "
        "[{\"remove\": \"^epoll_wait$\"}], got a ", doc.type_name()));
  }
  TransformList list;
  size_t entry = 0;
  for (const nlohmann::json& item : doc) {
    ++entry;
    if (!item.is_object()) {
      return EntryError(source_name, entry, absl::StrCat(
          "expected an object such as {\"remove\": \"^epoll_wait$\"}, got a ",
          item.type_name()));
    }
    const std::string* op = nullptr;
    for (auto it = item.begin(); it != item.end(); ++it) {
      const std::string& key = it.key();
      if (key == "with") continue;
      if (key != "replace" && key != "filter" && key != "remove" &&
          key != "hide" && key != "collapse_recursion" && key != "max_depth") {
        return EntryError(source_name, entry, absl::StrCat(
            "unknown key \"", key, "\"; expected one of ",
            transform_internal::kKnownKeys));
      }
      if (op != nullptr) {
        return EntryError(source_name, entry, absl::StrCat(
            "has both \"", *op, "\" and \"", key,
            "\"; give one transform per entry"));
      }
      op = &key;
    }
    if (op == nullptr) {
      return EntryError(source_name, entry, absl::StrCat(
          item.contains("with") ? "\"with\" without \"replace\"" : "empty entry",
          "; expected one of ", transform_internal::kKnownKeys));
    }
    const nlohmann::json& value = item.at(*op);
    if (*op != "replace" && item.contains("with")) {
      return EntryError(source_name, entry, absl::StrCat(
          "\"with\" belongs to \"replace\", not \"", *op, "\""));
    }
    absl::StatusOr<Transform> t = absl::InternalError("unset");
    if (*op == "collapse_recursion") {
      if (!value.is_boolean()) {
        return EntryError(source_name, entry,
                          "\"collapse_recursion\" takes true or false");
      }
      if (!value.get<bool>()) continue;  // switched off: nothing to do
      t = Transform::CollapseRecursion();
    } else if (*op == "max_depth") {
      if (!value.is_number_integer()) {
        return EntryError(source_name, entry,
                          "\"max_depth\" takes a whole number of frames, e.g. 40");
      }
      t = Transform::MaxDepth(value.get<int64_t>());
    } else {
      if (!value.is_string()) {
        return EntryError(source_name, entry, absl::StrCat(
            "\"", *op, "\" takes a regex string, got a ", value.type_name()));
      }
      const std::string& pattern = value.get_ref<const std::string&>();
      if (*op == "replace") {
        auto with = item.find("with");
        if (with == item.end() || !with->is_string()) {
          return EntryError(source_name, entry,
                            "\"replace\" needs a \"with\" string (\"\" deletes "
                            "the match)");
        }
        t = Transform::Replace(pattern, with->get_ref<const std::string&>());
      } else if (*op == "filter") {
        t = Transform::Filter(pattern);
      } else if (*op == "remove") {
        t = Transform::Remove(pattern);
      } else {
        t = Transform::Hide(pattern);
      }
    }
    if (!t.ok()) return EntryError(source_name, entry, t.status().message());
    list.Add(*std::move(t));
  }
  return list;
}

inline absl::StatusOr<TransformList> TransformList::ReadFile(absl::string_view path) {
  constexpr size_t kMaxBytes = size_t{1} << 20;
  std::string name(path);
  int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    if (e == ENOENT || e == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat(
          "cannot read transforms ", path, ": no such file; check the path"));
    }
    return absl::ErrnoToStatus(e, absl::StrCat("cannot read transforms ", path));
  }
  std::string text;
  char buffer[65536];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      if (e == EISDIR) {
        return absl::InvalidArgumentError(absl::StrCat(
            "cannot read transforms ", path, ": it is a directory; give a "
            "JSON file"));
      }
      return absl::ErrnoToStatus(e, absl::StrCat("cannot read transforms ", path));
    }
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > kMaxBytes) {
      ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": larger than 1 MB; a transform list is a short JSON list"));
    }
  }
  ::close(fd);
  return FromJson(text, path);
}

inline std::string TransformList::ToJson() const {
  nlohmann::json doc = nlohmann::json::array();
  for (const Transform& t : transforms_) {
    nlohmann::json item = nlohmann::json::object();
    const std::string key(TransformTypeName(t.type()));
    switch (t.type()) {
      case TransformType::kReplace:
        item[key] = t.pattern();
        item["with"] = t.with();
        break;
      case TransformType::kFilter:
      case TransformType::kRemove:
      case TransformType::kHide:
        item[key] = t.pattern();
        break;
      case TransformType::kCollapseRecursion:
        item[key] = true;
        break;
      case TransformType::kMaxDepth:
        item[key] = t.max_depth();
        break;
    }
    doc.push_back(std::move(item));
  }
  // Patterns given through the API may not be UTF-8: replace bad bytes
  // rather than throw.
  return doc.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline Profile ApplyTransform(const Profile& profile, const Transform& transform) {
  using transform_internal::kUnmapped;
  using transform_internal::MatchCache;
  using transform_internal::Rebuild;
  switch (transform.type()) {
    case TransformType::kReplace: {
      Profile out;
      out.metadata() = profile.metadata();
      if (profile.has_events()) out.EnableEvents();
      // Rename each frame once; kUnmapped-1 marks a frame renamed to "".
      constexpr FrameId kDropped = kUnmapped - 1;
      std::vector<FrameId> map(profile.frame_count(), kUnmapped);
      std::vector<FrameId> translated;
      std::string name;
      for (size_t i = 0; i < profile.stack_count(); ++i) {
        translated.clear();
        for (FrameId id : profile.stack(i)) {
          FrameId& mapped = map[id];
          if (mapped == kUnmapped) {
            const Frame& f = profile.frame(id);
            name = f.name;
            RE2::GlobalReplace(&name, *transform.regex(),
                               re2::StringPiece(transform.with().data(),
                                                transform.with().size()));
            mapped = name.empty() ? kDropped : out.InternFrame(name, f.kind);
          }
          if (mapped != kDropped) translated.push_back(mapped);
        }
        if (profile.has_events()) {
          out.AddStack(translated, profile.stack_count_at(i), profile.stack_events_at(i));
        } else {
          out.AddStack(translated, profile.stack_count_at(i));
        }
      }
      return out;
    }
    case TransformType::kFilter:
    case TransformType::kRemove: {
      MatchCache match(profile, *transform.regex());
      const bool keep_matching = transform.type() == TransformType::kFilter;
      return Rebuild(profile, [&](absl::Span<const FrameId> s,
                                  std::vector<FrameId>* kept, bool*) {
        bool any = false;
        for (FrameId id : s) {
          if (match.Matches(id)) {
            any = true;
            break;
          }
        }
        if (any != keep_matching) return false;
        kept->assign(s.begin(), s.end());
        return true;
      });
    }
    case TransformType::kHide: {
      MatchCache match(profile, *transform.regex());
      return Rebuild(profile, [&](absl::Span<const FrameId> s,
                                  std::vector<FrameId>* kept, bool*) {
        for (FrameId id : s) {
          if (!match.Matches(id)) kept->push_back(id);
        }
        return !kept->empty();
      });
    }
    case TransformType::kCollapseRecursion:
      return Rebuild(profile, [](absl::Span<const FrameId> s,
                                 std::vector<FrameId>* kept, bool*) {
        for (FrameId id : s) {
          if (kept->empty() || kept->back() != id) kept->push_back(id);
        }
        return true;
      });
    case TransformType::kMaxDepth: {
      const size_t depth = static_cast<size_t>(transform.max_depth());
      return Rebuild(profile, [depth](absl::Span<const FrameId> s,
                                      std::vector<FrameId>* kept, bool* truncated) {
        if (s.size() <= depth) {
          kept->assign(s.begin(), s.end());
        } else {
          kept->assign(s.begin(), s.begin() + static_cast<ptrdiff_t>(depth));
          *truncated = true;
        }
        return true;
      });
    }
  }
  return profile;
}

inline Profile ApplyTransforms(const Profile& profile, const TransformList& list) {
  if (list.empty()) return profile;
  Profile current = ApplyTransform(profile, list.transforms()[0]);
  for (size_t i = 1; i < list.size(); ++i) {
    current = ApplyTransform(current, list.transforms()[i]);
  }
  std::string json = list.ToJson();
  const std::string& previous = profile.metadata().transforms_json;
  if (!previous.empty()) {
    nlohmann::json before = nlohmann::json::parse(previous, nullptr,
                                                  /*allow_exceptions=*/false);
    if (before.is_array()) {
      nlohmann::json now = nlohmann::json::parse(json, nullptr, false);
      for (auto& item : now) before.push_back(std::move(item));
      json = before.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  current.metadata().transforms_json = std::move(json);
  return current;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_TRANSFORM_H_
