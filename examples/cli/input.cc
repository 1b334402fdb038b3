// SPDX-License-Identifier: Apache-2.0
#include "examples/cli/input.h"

#include "absl/strings/str_cat.h"
#include "flamekit/profile/read_profile.h"

namespace flamekit {
namespace cli {

absl::StatusOr<Profile> LoadProfile(absl::string_view path, const ParsedArgs& args,
                                    CommandIo& io) {
  ProfileReadOptions options;
  options.lenient = args.Has(kLenientFlag.name);
  options.sample_type = args.Value(kSampleTypeFlag.name);
  ProfileReadInfo info;
  absl::StatusOr<Profile> profile = ReadProfileFile(path, options, &info);
  if (!profile.ok()) return profile;
  for (const std::string& warning : info.warnings) io.err << "warning: " << warning << "\n";
  for (const std::string& note : info.notes) io.err << "note: " << note << "\n";
  return profile;
}

absl::StatusOr<TransformList> BuildTransformList(absl::string_view transforms_path,
                                                 absl::Span<const std::string> includes,
                                                 absl::Span<const std::string> excludes) {
  TransformList list;
  if (!transforms_path.empty()) {
    absl::StatusOr<TransformList> from_file = TransformList::ReadFile(transforms_path);
    if (!from_file.ok()) return from_file.status();
    list = *std::move(from_file);
  }
  for (const std::string& re : includes) {
    absl::StatusOr<Transform> t = Transform::Filter(re);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--include: ", t.status().message()));
    }
    list.Add(*std::move(t));
  }
  for (const std::string& re : excludes) {
    absl::StatusOr<Transform> t = Transform::Remove(re);
    if (!t.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--exclude: ", t.status().message()));
    }
    list.Add(*std::move(t));
  }
  return list;
}

absl::StatusOr<TransformList> BuildTransforms(const ParsedArgs& args) {
  return BuildTransformList(args.Value(kTransformsFlag.name), args.Values(kIncludeFlag.name),
                            args.Values(kExcludeFlag.name));
}

Profile PrepareProfile(const Profile& profile, const TransformList& transforms,
                       bool threads, absl::string_view input_name, CommandIo& io) {
  const bool has_threads = profile.HasThreadFrames();
  if (threads && !has_threads) {
    io.err << "note: " << input_name
           << " has no per-thread stacks; --threads changes nothing\n";
  }
  if (!threads && has_threads) {
    return ApplyTransforms(MergeThreads(profile), transforms);
  }
  return ApplyTransforms(profile, transforms);
}

}  // namespace cli
}  // namespace flamekit
