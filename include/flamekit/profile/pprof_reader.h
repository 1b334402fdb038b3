// SPDX-License-Identifier: Apache-2.0
// File: pprof_reader.h
//
// Reads pprof profiles (profile.proto, github.com/google/pprof): the ones
// flamekit writes (render/pprof.h) and those of Go (`go test
// -cpuprofile`, net/http/pprof), gperftools' converters and other tools,
// gzipped or raw. The protobuf is decoded by hand (varints and
// length-delimited fields, as the writer encodes it; no protobuf library).
// Pure functions: callable from many threads at once; never from a signal
// handler (they allocate).
//
// What becomes of a pprof profile:
//   - one value per sample is kept: the sample type named by
//     PprofReadOptions::sample_type, else "samples" when there is one (a
//     count, comparable with every other format), else the profile's
//     default_sample_type, else the last one (pprof's own default). The
//     choice and the other types are told in PprofReadInfo::note;
//   - a location's lines become frames, the last line the function and the
//     ones before it inlined into it (kInlined); a location without lines
//     becomes "OBJECT+0xOFFSET" (kUnknown);
//   - kinds come from the mapping: "[kernel.kallsyms]" kernel, "[jit]" JIT,
//     "[shared libraries]" or a "*.so*" file other than the first mapping a
//     library; names "[unknown]", "[truncated]" and "OBJECT+0xHEX" keep the
//     kinds flamekit gave them;
//   - when the kept type is a weight whose count flamekit also writes
//     (alloc_space + alloc_objects, inuse_space + inuse_objects, delay +
//     contentions: render/pprof.h, Go's heap and mutex profiles), the count
//     becomes the Profile's events column, so a .pb.gz converted to .pb.gz
//     keeps both;
//   - a "thread" string label becomes the thread root frame; other labels
//     are merged away;
//   - the event is period_type's type (Go and flamekit CPU profiles both
//     say "cpu"), else the sample type's name.
//
// Bounds: the input is decompressed to at most
// PprofReadOptions::max_decompressed_bytes (256 MiB by default; a gzip bomb
// stops there with ResourceExhausted); everything else grows with the
// decompressed size only. Nothing recurses on input data.
//
// Example:
//
//   PprofReadInfo info;
//   FLAMEKIT_ASSIGN_OR_RETURN(Profile p, ParsePprof(bytes, "cpu.pprof", {}, &info));

#ifndef FLAMEKIT_PROFILE_PPROF_READER_H_
#define FLAMEKIT_PROFILE_PPROF_READER_H_

#include <stddef.h>
#include <stdint.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "flamekit/profile/gunzip.h"
#include "flamekit/profile/input_file.h"
#include "flamekit/profile/profile.h"

namespace flamekit {

struct PprofReadOptions {
  // The sample type to keep (e.g. "cpu", "alloc_space"); empty: see above.
  std::string sample_type;
  // Largest decompressed profile accepted.
  size_t max_decompressed_bytes = size_t{256} << 20;
};

struct PprofReadInfo {
  std::string sample_type;  // the one kept
  std::string note;         // which was kept and which others exist, if any
};

// LooksLikePprofProto()
//
// A cheap check on the first bytes: a Profile message's first tag is one
// of its fields (1-14) with that field's wire type.
bool LooksLikePprofProto(absl::string_view bytes);

// ParsePprof()
//
// The profile in `bytes` (gzipped or raw profile.proto). InvalidArgument
// naming `source_name` and what is wrong on malformed input; NotFound
// listing the sample types when options.sample_type names none of them.
absl::StatusOr<Profile> ParsePprof(absl::string_view bytes, absl::string_view source_name,
                                   const PprofReadOptions& options = {},
                                   PprofReadInfo* info = nullptr);

// Implementation details follow.

namespace pprof_read_internal {

// A cursor over one protobuf message.
class ProtoReader {
 public:
  explicit ProtoReader(absl::string_view data) : data_(data) {}
  bool done() const { return data_.empty(); }
  bool ok() const { return ok_; }

  // Reads the next tag; false at the end or on a malformed tag.
  bool Next(int* field, int* wire) {
    uint64_t tag;
    if (data_.empty() || !Varint(&tag)) return false;
    *field = static_cast<int>(tag >> 3);
    *wire = static_cast<int>(tag & 7);
    if (*field == 0 || tag >> 3 > (uint64_t{1} << 29)) return Fail();
    return true;
  }
  bool Varint(uint64_t* value) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (data_.empty()) return Fail();
      const uint8_t byte = static_cast<uint8_t>(data_[0]);
      data_.remove_prefix(1);
      v |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        *value = v;
        return true;
      }
    }
    return Fail();
  }
  bool Bytes(absl::string_view* out) {
    uint64_t n;
    if (!Varint(&n) || n > data_.size()) return Fail();
    *out = data_.substr(0, static_cast<size_t>(n));
    data_.remove_prefix(static_cast<size_t>(n));
    return true;
  }
  bool Skip(int wire) {
    uint64_t v;
    absl::string_view b;
    switch (wire) {
      case 0: return Varint(&v);
      case 1: return Fixed(8);
      case 2: return Bytes(&b);
      case 5: return Fixed(4);
      default: return Fail();  // groups (3, 4) and unknown wire types
    }
  }
  // A repeated varint field, packed (wire 2) or not (wire 0).
  bool Varints(int wire, std::vector<uint64_t>* out) {
    uint64_t v;
    if (wire == 0) {
      if (!Varint(&v)) return false;
      out->push_back(v);
      return true;
    }
    absl::string_view packed;
    if (wire != 2 || !Bytes(&packed)) return Fail();
    ProtoReader r(packed);
    while (!r.done()) {
      if (!r.Varint(&v)) return Fail();
      out->push_back(v);
    }
    return true;
  }

 private:
  bool Fixed(size_t n) {
    if (data_.size() < n) return Fail();
    data_.remove_prefix(n);
    return true;
  }
  bool Fail() {
    ok_ = false;
    data_ = absl::string_view();
    return false;
  }
  absl::string_view data_;
  bool ok_ = true;
};

struct Location {
  uint64_t mapping_id = 0;
  uint64_t address = 0;
  std::vector<uint64_t> function_ids;  // lines, innermost (inlined) first
};

struct Mapping {
  uint64_t start = 0;
  uint64_t file_offset = 0;
  int64_t filename = 0;
  bool first = false;
};

inline bool IsUnknownAddressName(absl::string_view name) {
  size_t plus = name.rfind("+0x");
  if (plus == absl::string_view::npos || plus == 0 || plus + 3 == name.size()) return false;
  for (char c : name.substr(plus + 3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return name.substr(0, plus).find_first_of(" \t(<") == absl::string_view::npos;
}

inline FrameKind KindFor(absl::string_view name, absl::string_view file, bool first_mapping) {
  if (name == "[unknown]" || IsUnknownAddressName(name)) return FrameKind::kUnknown;
  if (name == kTruncatedFrameName) return FrameKind::kTruncated;
  if (file == "[kernel.kallsyms]" || file.substr(0, 7) == "[kernel") return FrameKind::kKernel;
  if (file == "[jit]") return FrameKind::kJit;
  if (file == "[shared libraries]") return FrameKind::kLibrary;
  if (!first_mapping && file.find(".so") != absl::string_view::npos) return FrameKind::kLibrary;
  return FrameKind::kUser;
}

}  // namespace pprof_read_internal

inline bool LooksLikePprofProto(absl::string_view bytes) {
  if (bytes.empty()) return false;
  const uint8_t tag = static_cast<uint8_t>(bytes[0]);
  const int field = tag >> 3, wire = tag & 7;
  if (field < 1 || field > 14) return false;
  // Messages and repeated fields are length-delimited; the rest are varints.
  const bool length_delimited = field <= 8 || field == 11 || field == 13;
  return wire == (length_delimited ? 2 : 0) || ((field == 7 || field == 8 || field == 13) && wire == 0);
}

inline absl::StatusOr<Profile> ParsePprof(absl::string_view bytes,
                                          absl::string_view source_name,
                                          const PprofReadOptions& options,
                                          PprofReadInfo* info) {
  using pprof_read_internal::Location;
  using pprof_read_internal::Mapping;
  using pprof_read_internal::ProtoReader;
  std::string inflated;
  if (IsGzip(bytes)) {
    absl::StatusOr<std::string> raw = Gunzip(bytes, source_name, options.max_decompressed_bytes);
    if (!raw.ok()) return raw.status();
    inflated = *std::move(raw);
    bytes = inflated;
  }
  auto malformed = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": not a valid pprof profile (", what,
        "); give a .pb.gz/.pprof file as `go tool pprof` reads it"));
  };
  std::vector<std::pair<uint64_t, uint64_t>> sample_types;  // type, unit
  std::vector<absl::string_view> samples;
  absl::flat_hash_map<uint64_t, Mapping> mappings;
  absl::flat_hash_map<uint64_t, Location> locations;
  absl::flat_hash_map<uint64_t, uint64_t> functions;  // id -> name
  std::vector<absl::string_view> strings;
  uint64_t period_type = 0, period_unit = 0, time_nanos = 0, duration_nanos = 0;
  uint64_t period = 0, default_sample_type = 0;
  std::vector<uint64_t> comments;
  ProtoReader top(bytes);
  int field, wire;
  auto value_type = [](absl::string_view m, uint64_t* type, uint64_t* unit) {
    ProtoReader r(m);
    int f, w;
    while (r.Next(&f, &w)) {
      if (f == 1 && w == 0) r.Varint(type);
      else if (f == 2 && w == 0) r.Varint(unit);
      else r.Skip(w);
    }
    return r.ok();
  };
  while (top.Next(&field, &wire)) {
    absl::string_view m;
    if (wire == 2 && (field == 1 || field == 2 || field == 3 || field == 4 || field == 5 ||
                      field == 6 || field == 11)) {
      if (!top.Bytes(&m)) break;
    }
    switch (field) {
      case 1: {
        uint64_t t = 0, u = 0;
        if (wire != 2 || !value_type(m, &t, &u)) return malformed("bad sample_type");
        sample_types.emplace_back(t, u);
        break;
      }
      case 2:
        if (wire != 2) return malformed("bad sample");
        samples.push_back(m);
        break;
      case 3: {
        if (wire != 2) return malformed("bad mapping");
        ProtoReader r(m);
        int f, w;
        uint64_t id = 0;
        Mapping mapping;
        uint64_t filename = 0;
        while (r.Next(&f, &w)) {
          if (w == 0 && f == 1) r.Varint(&id);
          else if (w == 0 && f == 2) r.Varint(&mapping.start);
          else if (w == 0 && f == 4) r.Varint(&mapping.file_offset);
          else if (w == 0 && f == 5) r.Varint(&filename);
          else r.Skip(w);
        }
        if (!r.ok()) return malformed("bad mapping");
        mapping.filename = static_cast<int64_t>(filename);
        mapping.first = mappings.empty();
        mappings[id] = mapping;
        break;
      }
      case 4: {
        if (wire != 2) return malformed("bad location");
        ProtoReader r(m);
        int f, w;
        uint64_t id = 0;
        Location location;
        while (r.Next(&f, &w)) {
          if (w == 0 && f == 1) {
            r.Varint(&id);
          } else if (w == 0 && f == 2) {
            r.Varint(&location.mapping_id);
          } else if (w == 0 && f == 3) {
            r.Varint(&location.address);
          } else if (w == 2 && f == 4) {
            absl::string_view line;
            if (!r.Bytes(&line)) break;
            ProtoReader lr(line);
            int lf, lw;
            uint64_t function_id = 0;
            while (lr.Next(&lf, &lw)) {
              if (lw == 0 && lf == 1) lr.Varint(&function_id);
              else lr.Skip(lw);
            }
            if (!lr.ok()) return malformed("bad location line");
            location.function_ids.push_back(function_id);
          } else {
            r.Skip(w);
          }
        }
        if (!r.ok() || id == 0) return malformed("bad location");
        locations[id] = std::move(location);
        break;
      }
      case 5: {
        if (wire != 2) return malformed("bad function");
        ProtoReader r(m);
        int f, w;
        uint64_t id = 0, name = 0;
        while (r.Next(&f, &w)) {
          if (w == 0 && f == 1) r.Varint(&id);
          else if (w == 0 && f == 2) r.Varint(&name);
          else r.Skip(w);
        }
        if (!r.ok() || id == 0) return malformed("bad function");
        functions[id] = name;
        break;
      }
      case 6:
        if (wire != 2) return malformed("bad string table");
        strings.push_back(m);
        break;
      case 11:
        if (wire != 2 || !value_type(m, &period_type, &period_unit)) {
          return malformed("bad period_type");
        }
        break;
      case 9: if (wire == 0) top.Varint(&time_nanos); else top.Skip(wire); break;
      case 10: if (wire == 0) top.Varint(&duration_nanos); else top.Skip(wire); break;
      case 12: if (wire == 0) top.Varint(&period); else top.Skip(wire); break;
      case 13: top.Varints(wire, &comments); break;
      case 14: if (wire == 0) top.Varint(&default_sample_type); else top.Skip(wire); break;
      default:
        top.Skip(wire);
        break;
    }
  }
  if (!top.ok()) return malformed("truncated or damaged protobuf");
  if (strings.empty() || !strings[0].empty()) {
    return malformed("the string table must start with an empty string");
  }
  auto str = [&](uint64_t index) -> absl::string_view {
    return index < strings.size() ? strings[static_cast<size_t>(index)] : absl::string_view();
  };
  if (sample_types.empty()) return malformed("no sample types");
  for (const auto& [type, unit] : sample_types) {
    if (type >= strings.size() || unit >= strings.size()) {
      return malformed("a sample type names a string past the table");
    }
  }

  // Which value to keep.
  size_t pick = sample_types.size() - 1;
  std::vector<std::string> names;
  for (const auto& [type, unit] : sample_types) {
    names.push_back(absl::StrCat(str(type), " (", str(unit), ")"));
  }
  bool found = false;
  if (!options.sample_type.empty()) {
    for (size_t i = 0; i < sample_types.size() && !found; ++i) {
      if (str(sample_types[i].first) == options.sample_type) pick = i, found = true;
    }
    if (!found) {
      return absl::NotFoundError(absl::StrCat(
          source_name, ": no sample type '", options.sample_type, "'; it has ",
          absl::StrJoin(names, ", "), ": pick one of these with --sample-type"));
    }
  } else {
    for (size_t i = 0; i < sample_types.size() && !found; ++i) {
      if (str(sample_types[i].first) == "samples") pick = i, found = true;
    }
    for (size_t i = 0; i < sample_types.size() && !found && default_sample_type != 0; ++i) {
      if (sample_types[i].first == default_sample_type) pick = i, found = true;
    }
  }

  // The events beside the kept weight (see the file comment), if any.
  size_t events_pick = sample_types.size();
  {
    const absl::string_view kept = str(sample_types[pick].first);
    const absl::string_view events = kept == "alloc_space"   ? "alloc_objects"
                                     : kept == "inuse_space" ? "inuse_objects"
                                     : kept == "delay"       ? "contentions"
                                                             : "";
    for (size_t i = 0; i < sample_types.size() && !events.empty(); ++i) {
      if (str(sample_types[i].first) == events) events_pick = i;
    }
  }

  Profile profile;
  if (events_pick < sample_types.size()) profile.EnableEvents();
  ProfileMetadata& meta = profile.metadata();
  meta.title = std::string(InputBaseName(source_name));
  meta.engine = "pprof";
  meta.event = std::string(period_type != 0 && period_type < strings.size()
                               ? str(period_type)
                               : str(sample_types[pick].first));
  if (str(period_unit) == "nanoseconds" && period > 0 && period < (uint64_t{1} << 62)) {
    meta.interval = absl::Nanoseconds(static_cast<int64_t>(period));
  } else if (period > 1) {
    meta.interval_events = period;
  }
  if (time_nanos > 0 && time_nanos < (uint64_t{1} << 62)) {
    meta.start_time = absl::FromUnixNanos(static_cast<int64_t>(time_nanos));
    if (duration_nanos > 0 && duration_nanos < (uint64_t{1} << 62)) {
      meta.end_time = meta.start_time + absl::Nanoseconds(static_cast<int64_t>(duration_nanos));
    }
  }
  for (uint64_t c : comments) {
    absl::string_view text = str(c);
    if (text.substr(0, 8) == "engine: ") meta.engine = std::string(text.substr(8));
  }
  if (info != nullptr) {
    info->sample_type = std::string(str(sample_types[pick].first));
    if (sample_types.size() > 1) {
      std::vector<std::string> others;
      for (size_t i = 0; i < names.size(); ++i) {
        if (i != pick) others.push_back(names[i]);
      }
      info->note = absl::StrCat(source_name, ": kept sample type ", names[pick],
                                "; it also has ", absl::StrJoin(others, ", "),
                                " (choose with --sample-type)");
    }
  }

  // Frames of each location, root first, built on first use.
  absl::flat_hash_map<uint64_t, std::vector<FrameId>> location_frames;
  auto frames_of = [&](uint64_t id) -> const std::vector<FrameId>* {
    auto cached = location_frames.find(id);
    if (cached != location_frames.end()) return &cached->second;
    auto it = locations.find(id);
    if (it == locations.end()) return nullptr;
    const Location& location = it->second;
    absl::string_view file;
    const Mapping* mapping = nullptr;
    if (auto m = mappings.find(location.mapping_id); m != mappings.end()) {
      mapping = &m->second;
      file = str(static_cast<uint64_t>(mapping->filename));
    }
    const bool first = mapping == nullptr || mapping->first;
    std::vector<FrameId> frames;
    if (location.function_ids.empty()) {
      std::string name;
      if (mapping != nullptr && !file.empty()) {
        absl::string_view base = InputBaseName(file);
        const uint64_t offset = location.address - mapping->start + mapping->file_offset;
        name = absl::StrCat(base, "+0x", absl::Hex(offset));
      } else {
        name = absl::StrCat("[unknown]+0x", absl::Hex(location.address));
      }
      frames.push_back(profile.InternFrame(name, FrameKind::kUnknown));
    } else {
      // Lines are innermost first; the last is the function the code is in.
      for (size_t i = location.function_ids.size(); i-- > 0;) {
        auto f = functions.find(location.function_ids[i]);
        absl::string_view name = f == functions.end() ? absl::string_view() : str(f->second);
        if (name.empty()) name = "[unknown]";
        FrameKind kind = pprof_read_internal::KindFor(name, file, first);
        if (i + 1 != location.function_ids.size() && kind == FrameKind::kUser) {
          kind = FrameKind::kInlined;
        }
        frames.push_back(profile.InternFrame(name, kind));
      }
    }
    return &location_frames.emplace(id, std::move(frames)).first->second;
  };

  std::vector<uint64_t> location_ids, values;
  std::vector<FrameId> stack;
  uint64_t total = 0;
  for (absl::string_view sample : samples) {
    location_ids.clear();
    values.clear();
    uint64_t thread = 0;
    ProtoReader r(sample);
    int f, w;
    while (r.Next(&f, &w)) {
      if (f == 1) {
        r.Varints(w, &location_ids);
      } else if (f == 2) {
        r.Varints(w, &values);
      } else if (f == 3 && w == 2) {
        absl::string_view label;
        if (!r.Bytes(&label)) break;
        ProtoReader lr(label);
        int lf, lw;
        uint64_t key = 0, value = 0;
        while (lr.Next(&lf, &lw)) {
          if (lw == 0 && lf == 1) lr.Varint(&key);
          else if (lw == 0 && lf == 2) lr.Varint(&value);
          else lr.Skip(lw);
        }
        if (!lr.ok()) return malformed("bad sample label");
        if (str(key) == "thread" && value != 0) thread = value;
      } else {
        r.Skip(w);
      }
    }
    if (!r.ok()) return malformed("bad sample");
    if (values.size() != sample_types.size()) {
      return malformed(absl::StrCat("a sample has ", values.size(), " values for ",
                                    sample_types.size(), " sample types"));
    }
    const int64_t value = static_cast<int64_t>(values[pick]);
    if (value < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_name, ": negative sample values (a pprof diff or base-subtracted "
          "profile?); give the two original profiles to `flamekit diff` instead"));
    }
    if (value == 0) continue;
    stack.clear();
    if (thread != 0) {
      absl::string_view name = str(thread);
      stack.push_back(profile.InternFrame(name, FrameKind::kThread));
    }
    for (size_t i = location_ids.size(); i-- > 0;) {
      const std::vector<FrameId>* frames = frames_of(location_ids[i]);
      if (frames == nullptr) {
        return malformed(absl::StrCat("a sample names location ", location_ids[i],
                                      ", which is not defined"));
      }
      stack.insert(stack.end(), frames->begin(), frames->end());
    }
    if (stack.empty()) stack.push_back(profile.InternFrame("[unknown]", FrameKind::kUnknown));
    if (__builtin_add_overflow(total, static_cast<uint64_t>(value), &total)) {
      return malformed("sample values add up to more than 2^64 - 1");
    }
    if (events_pick < sample_types.size()) {
      profile.AddStack(stack, static_cast<uint64_t>(value), values[events_pick]);
    } else {
      profile.AddStack(stack, static_cast<uint64_t>(value));
    }
  }
  if (total == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_name, ": no samples with a non-zero '", str(sample_types[pick].first),
        "' value", sample_types.size() > 1 ? "; try another --sample-type" : ""));
  }
  return profile;
}

}  // namespace flamekit

#endif  // FLAMEKIT_PROFILE_PPROF_READER_H_
