// SPDX-License-Identifier: Apache-2.0
// File: pprof.h
//
// pprof output: profile.proto (github.com/google/pprof/proto/profile.proto)
// encoded by hand (varints and length-delimited fields; no protobuf
// library), gzipped with zlib. Opens in `go tool pprof` and in continuous
// profiling servers (Pyroscope, Parca, Grafana). Sample types come from the
// event ("cpu" in nanoseconds for timers, events for counters; for the hook
// events the names Go's heap and mutex profiles use: alloc_space/bytes and
// alloc_objects/count for `alloc`, inuse_space and inuse_objects for
// `live`, delay/nanoseconds and contentions/count for `lock`, the second of
// each pair only when the Profile has_events(), the first the default), a thread
// root frame (per-thread split) becomes a "thread" label, a frame inlined
// into its caller becomes one more line of the caller's location, and frames are
// grouped into mappings by where they live (main binary, kernel, JIT, the
// library named in "libfoo.so+0x1a2b"). Pure functions: safe from many
// threads; never from a signal handler.
//
// Example:
//
//   FLAMEKIT_ASSIGN_OR_RETURN(std::string gz, flamekit::RenderPprof(profile));
//   FLAMEKIT_RETURN_IF_ERROR(flamekit::WriteFileAtomically("cpu.pb.gz", gz));

#ifndef FLAMEKIT_RENDER_PPROF_H_
#define FLAMEKIT_RENDER_PPROF_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/profile/profile.h"
#include "zlib.h"

namespace flamekit {

// EncodePprofProto()
//
// The uncompressed profile.proto message for `profile`.
std::string EncodePprofProto(const Profile& profile);

// GzipCompress()
//
// `data` as a gzip member (deterministic: no name, mtime 0).
absl::StatusOr<std::string> GzipCompress(absl::string_view data);

// RenderPprof()
//
// EncodePprofProto() gzipped: the contents of a .pb.gz / .pprof file.
absl::StatusOr<std::string> RenderPprof(const Profile& profile);

namespace pprof_internal {

// The sample types of a hook event's profile (alloc, live, lock): the
// weight's type, then the events' (empty when the event is not a hook
// event). See the file comment.
struct HookSampleTypes {
  absl::string_view weight_type, weight_unit, events_type;
};
inline bool HookSampleTypesFor(absl::string_view event, HookSampleTypes* out) {
  if (event == "alloc") *out = {"alloc_space", "bytes", "alloc_objects"};
  else if (event == "live") *out = {"inuse_space", "bytes", "inuse_objects"};
  else if (event == "lock") *out = {"delay", "nanoseconds", "contentions"};
  else return false;
  return true;
}

// A protobuf message being written: fields appended in any order.
class ProtoWriter {
 public:
  void Varint(int field, uint64_t value);
  void Bytes(int field, absl::string_view bytes);
  void Message(int field, const ProtoWriter& message) { Bytes(field, message.data_); }
  // A packed repeated varint field.
  void PackedVarints(int field, const std::vector<uint64_t>& values);
  const std::string& data() const { return data_; }

 private:
  void RawVarint(uint64_t value);
  std::string data_;
};

// The mapping (object file) a frame belongs to, by its kind and name.
std::string MappingFileFor(const Frame& frame, absl::string_view main_binary);

}  // namespace pprof_internal

// Implementation details follow.

namespace pprof_internal {

inline void ProtoWriter::RawVarint(uint64_t value) {
  while (value >= 0x80) {
    data_.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  data_.push_back(static_cast<char>(value));
}

inline void ProtoWriter::Varint(int field, uint64_t value) {
  RawVarint(static_cast<uint64_t>(field) << 3);  // wire type 0
  RawVarint(value);
}

inline void ProtoWriter::Bytes(int field, absl::string_view bytes) {
  RawVarint((static_cast<uint64_t>(field) << 3) | 2);  // wire type 2
  RawVarint(bytes.size());
  data_.append(bytes.data(), bytes.size());
}

inline void ProtoWriter::PackedVarints(int field, const std::vector<uint64_t>& values) {
  ProtoWriter packed;
  for (uint64_t v : values) packed.RawVarint(v);
  Bytes(field, packed.data_);
}

inline std::string MappingFileFor(const Frame& frame, absl::string_view main_binary) {
  switch (frame.kind) {
    case FrameKind::kKernel: return "[kernel.kallsyms]";
    case FrameKind::kJit: return "[jit]";
    case FrameKind::kLibrary: return "[shared libraries]";
    case FrameKind::kUnknown: {
      // "libfoo.so+0x1a2b" or "/usr/lib/libfoo.so+0x1a2b": the object is known.
      size_t plus = frame.name.rfind("+0x");
      if (plus != std::string::npos && plus > 0) return frame.name.substr(0, plus);
      return "[unknown]";
    }
    default:
      return main_binary.empty() ? std::string("[main]") : std::string(main_binary);
  }
}

}  // namespace pprof_internal

inline std::string EncodePprofProto(const Profile& profile) {
  using pprof_internal::ProtoWriter;
  const ProfileMetadata& metadata = profile.metadata();
  std::vector<std::string> strings = {""};
  absl::flat_hash_map<std::string, int64_t> string_ids;
  string_ids[""] = 0;
  auto intern = [&](absl::string_view s) -> int64_t {
    auto it = string_ids.find(s);
    if (it != string_ids.end()) return it->second;
    int64_t id = static_cast<int64_t>(strings.size());
    strings.emplace_back(s);
    string_ids.emplace(std::string(s), id);
    return id;
  };
  ProtoWriter out;
  auto value_type = [&](absl::string_view type, absl::string_view unit) {
    ProtoWriter vt;
    vt.Varint(1, static_cast<uint64_t>(intern(type)));
    vt.Varint(2, static_cast<uint64_t>(intern(unit)));
    return vt;
  };
  const std::string event = metadata.event.empty() ? std::string("samples") : metadata.event;
  const int64_t interval_ns = absl::ToInt64Nanoseconds(metadata.interval);
  // sample_type (1): a count, then the event's own measure.
  int64_t per_sample = 0;
  std::string unit;
  if (interval_ns > 0) {
    per_sample = interval_ns;
    unit = "nanoseconds";
  } else if (metadata.interval_events > 0) {
    per_sample = static_cast<int64_t>(metadata.interval_events);
    unit = "events";
  }
  // A hook event's weight is already bytes or nanoseconds, not a count of
  // samples: its own types (and the events column, when kept) instead.
  pprof_internal::HookSampleTypes hook;
  const bool hook_event = pprof_internal::HookSampleTypesFor(event, &hook);
  const bool with_events = hook_event && profile.has_events();
  if (hook_event) {
    per_sample = 0;
    out.Message(1, value_type(hook.weight_type, hook.weight_unit));
    if (with_events) out.Message(1, value_type(hook.events_type, "count"));
  } else {
    out.Message(1, value_type("samples", "count"));
    if (per_sample > 0) out.Message(1, value_type(event, unit));
  }

  // Mappings (3), functions (5) and locations (4): one function and one
  // location per frame, ids = frame id + 1 (0 is "none" in profile.proto).
  std::string main_binary = metadata.command;
  if (size_t space = main_binary.find(' '); space != std::string::npos) {
    main_binary.resize(space);
  }
  std::vector<uint64_t> mapping_of(profile.frame_count(), 0);
  absl::flat_hash_map<std::string, uint64_t> mapping_ids;
  std::vector<std::string> mapping_files;
  // The main binary is mapping 1: pprof shows the first mapping as "File:".
  const std::string main_file = main_binary.empty() ? std::string("[main]") : main_binary;
  mapping_ids.emplace(main_file, 1);
  mapping_files.push_back(main_file);
  for (FrameId id = 0; id < profile.frame_count(); ++id) {
    const Frame& frame = profile.frame(id);
    if (frame.kind == FrameKind::kThread) continue;
    std::string file = pprof_internal::MappingFileFor(frame, main_binary);
    auto it = mapping_ids.find(file);
    if (it == mapping_ids.end()) {
      it = mapping_ids.emplace(file, mapping_files.size() + 1).first;
      mapping_files.push_back(file);
    }
    mapping_of[id] = it->second;
  }
  for (size_t m = 0; m < mapping_files.size(); ++m) {
    ProtoWriter mapping;
    mapping.Varint(1, m + 1);
    // Addresses are not kept in a Profile: give each mapping its own range
    // so tools that sort mappings by address see no overlap.
    mapping.Varint(2, (m + 1) << 32);
    mapping.Varint(3, ((m + 2) << 32) - 1);
    mapping.Varint(5, static_cast<uint64_t>(intern(mapping_files[m])));
    mapping.Varint(7, 1);  // has_functions: names are already symbolized
    out.Message(3, mapping);
  }
  for (FrameId id = 0; id < profile.frame_count(); ++id) {
    const Frame& frame = profile.frame(id);
    if (frame.kind == FrameKind::kThread) continue;
    ProtoWriter location;
    location.Varint(1, id + 1);
    location.Varint(2, mapping_of[id]);
    ProtoWriter line;
    line.Varint(1, id + 1);
    location.Message(4, line);
    out.Message(4, location);
    ProtoWriter function;
    function.Varint(1, id + 1);
    int64_t name = intern(frame.name);
    function.Varint(2, static_cast<uint64_t>(name));
    function.Varint(3, static_cast<uint64_t>(name));
    out.Message(5, function);
  }

  // Samples (2): locations leaf first; a thread root becomes a label.
  const int64_t thread_key = intern("thread");
  std::vector<uint64_t> locations;
  // A frame inlined into its caller shares the caller's location as one
  // more line (innermost first, as profile.proto puts them), so pprof shows
  // it "(inline)" and a reader gets kInlined back. Such chains get their own
  // locations, numbered after the one-frame locations.
  absl::flat_hash_map<std::vector<FrameId>, uint64_t> chain_locations;
  std::vector<ProtoWriter> chain_messages;
  std::vector<FrameId> chain;
  auto flush_chain = [&]() {
    if (chain.empty()) return;
    uint64_t id = chain[0] + 1;
    if (chain.size() > 1) {
      auto [it, added] =
          chain_locations.emplace(chain, profile.frame_count() + 1 + chain_messages.size());
      if (added) {
        ProtoWriter location;
        location.Varint(1, it->second);
        location.Varint(2, mapping_of[chain[0]]);
        for (size_t j = chain.size(); j-- > 0;) {
          ProtoWriter line;
          line.Varint(1, chain[j] + 1);
          location.Message(4, line);
        }
        chain_messages.push_back(std::move(location));
      }
      id = it->second;
    }
    locations.push_back(id);
    chain.clear();
  };
  for (size_t index : profile.SortedStackIndices()) {
    absl::Span<const FrameId> stack = profile.stack(index);
    uint64_t count = profile.stack_count_at(index);
    ProtoWriter sample;
    locations.clear();
    int64_t thread_name = -1;
    for (FrameId id : stack) {  // root first, then reversed below
      const Frame& frame = profile.frame(id);
      if (frame.kind == FrameKind::kThread) {
        if (thread_name < 0) thread_name = intern(frame.name);
        continue;
      }
      if (frame.kind != FrameKind::kInlined || chain.empty()) flush_chain();
      chain.push_back(id);
    }
    flush_chain();
    std::reverse(locations.begin(), locations.end());  // leaf first
    if (locations.empty()) continue;  // a bare thread frame: nothing to show
    sample.PackedVarints(1, locations);
    std::vector<uint64_t> values = {count};
    if (with_events) values.push_back(profile.stack_events_at(index));
    if (per_sample > 0) values.push_back(count * static_cast<uint64_t>(per_sample));
    sample.PackedVarints(2, values);
    if (thread_name >= 0) {
      ProtoWriter label;
      label.Varint(1, static_cast<uint64_t>(thread_key));
      label.Varint(2, static_cast<uint64_t>(thread_name));
      sample.Message(3, label);
    }
    out.Message(2, sample);
  }

  for (const ProtoWriter& location : chain_messages) out.Message(4, location);

  // Times (9, 10), period (11, 12), comments (13).
  if (metadata.start_time != absl::InfinitePast()) {
    out.Varint(9, static_cast<uint64_t>(absl::ToUnixNanos(metadata.start_time)));
    if (metadata.end_time != absl::InfinitePast() && metadata.end_time >= metadata.start_time) {
      out.Varint(10, static_cast<uint64_t>(
                         absl::ToInt64Nanoseconds(metadata.end_time - metadata.start_time)));
    }
  }
  if (per_sample > 0) {
    out.Message(11, value_type(event, unit));
    out.Varint(12, static_cast<uint64_t>(per_sample));
  } else {
    out.Message(11, value_type(event, "count"));
    out.Varint(12, 1);
  }
  std::vector<std::string> comments;
  if (!metadata.engine.empty()) comments.push_back(absl::StrCat("engine: ", metadata.engine));
  if (!metadata.engine_note.empty()) comments.push_back(metadata.engine_note);
  if (metadata.dropped_samples + metadata.lost_samples > 0) {
    comments.push_back(absl::StrCat("dropped samples: ", metadata.dropped_samples,
                                    ", lost by the kernel: ", metadata.lost_samples));
  }
  if (!metadata.transforms_json.empty()) {
    comments.push_back(absl::StrCat("transforms: ", metadata.transforms_json));
  }
  for (const std::string& comment : comments) {
    out.Varint(13, static_cast<uint64_t>(intern(comment)));
  }
  if (per_sample > 0) out.Varint(14, static_cast<uint64_t>(intern(event)));
  if (hook_event) out.Varint(14, static_cast<uint64_t>(intern(hook.weight_type)));

  // The string table (6) last: every string has been interned by now.
  std::string message = out.data();
  ProtoWriter table;
  for (const std::string& s : strings) table.Bytes(6, s);
  message.append(table.data());
  return message;
}

inline absl::StatusOr<std::string> GzipCompress(absl::string_view data) {
  z_stream stream;
  memset(&stream, 0, sizeof(stream));
  // windowBits 15 + 16: a gzip header and trailer instead of zlib's.
  if (deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                   Z_DEFAULT_STRATEGY) != Z_OK) {
    return absl::ResourceExhaustedError("zlib deflateInit2 failed: out of memory?");
  }
  std::string out;
  out.resize(deflateBound(&stream, static_cast<uLong>(data.size())) + 32);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  stream.avail_in = static_cast<uInt>(data.size());
  stream.next_out = reinterpret_cast<Bytef*>(&out[0]);
  stream.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&stream, Z_FINISH);
  size_t written = stream.total_out;
  deflateEnd(&stream);
  if (rc != Z_STREAM_END) {
    return absl::InternalError(absl::StrCat("zlib deflate failed (", rc, ")"));
  }
  out.resize(written);
  return out;
}

inline absl::StatusOr<std::string> RenderPprof(const Profile& profile) {
  return GzipCompress(EncodePprofProto(profile));
}

}  // namespace flamekit

#endif  // FLAMEKIT_RENDER_PPROF_H_
