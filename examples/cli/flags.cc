// SPDX-License-Identifier: Apache-2.0
#include "examples/cli/flags.h"

#include <cmath>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "flamekit/base/human_units.h"

namespace flamekit {
namespace cli {

bool ParsedArgs::Has(absl::string_view name) const {
  return flags.count(std::string(name)) != 0;
}

std::string ParsedArgs::Value(absl::string_view name,
                              absl::string_view fallback) const {
  auto it = flags.find(std::string(name));
  return it == flags.end() || it->second.empty() ? std::string(fallback) : it->second[0];
}

std::vector<std::string> ParsedArgs::Values(absl::string_view name) const {
  auto it = flags.find(std::string(name));
  return it == flags.end() ? std::vector<std::string>() : it->second;
}

absl::StatusOr<ParsedArgs> ParseArgs(absl::Span<const std::string> args,
                                     absl::Span<const FlagSpec> specs) {
  ParsedArgs parsed;
  bool flags_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (flags_done || arg.size() < 2 || arg[0] != '-') {
      parsed.positional.push_back(arg);
      continue;
    }
    if (arg == "--") {
      flags_done = true;
      parsed.saw_dashdash = true;
      parsed.dashdash = parsed.positional.size();
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      parsed.help = true;
      continue;
    }
    absl::string_view name = arg;
    absl::string_view inline_value;
    bool has_inline = false;
    if (name.substr(0, 2) == "--") {
      size_t eq = name.find('=');
      if (eq != absl::string_view::npos) {
        inline_value = name.substr(eq + 1);
        name = name.substr(0, eq);
        has_inline = true;
      }
    }
    const FlagSpec* spec = nullptr;
    for (const FlagSpec& s : specs) {
      if (name == s.name || (s.short_name[0] != '\0' && name == s.short_name)) {
        spec = &s;
        break;
      }
    }
    if (spec == nullptr) {
      // A negative number is a value, not a flag ("-d -3" is caught by the
      // flag's own check); anything else that starts with '-' is a typo.
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", name));
    }
    std::vector<std::string> values;
    if (spec->takes_value) {
      int wanted = spec->values < 1 ? 1 : spec->values;
      if (has_inline) {
        values.emplace_back(inline_value);
        --wanted;
      }
      for (; wanted > 0; --wanted) {
        if (i + 1 >= args.size()) {
          return absl::InvalidArgumentError(
              spec->values > 1 && !values.empty()
                  ? absl::StrCat(spec->name, " needs ", spec->values, " values")
                  : absl::StrCat(spec->name, " needs a value"));
        }
        values.push_back(args[++i]);
      }
    } else if (has_inline) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec->name, " takes no value"));
    } else {
      values.emplace_back();
    }
    auto [it, inserted] = parsed.flags.try_emplace(spec->name);
    if (!inserted && !spec->repeated) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec->name, " given more than once"));
    }
    for (std::string& v : values) it->second.push_back(std::move(v));
  }
  if (!parsed.saw_dashdash) parsed.dashdash = parsed.positional.size();
  return parsed;
}

absl::StatusOr<int64_t> ParsePositiveInt(absl::string_view flag,
                                         absl::string_view text, int64_t max) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < 1 || value > max) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " needs a whole number from 1 to ", max, ", not '", text, "'"));
  }
  return value;
}

absl::StatusOr<absl::Duration> ParseDurationFlag(absl::string_view flag, absl::string_view text,
                                                 DurationRange range) {
  constexpr absl::string_view kExamples = "; give seconds such as 30, or 1.5, 500ms, 2m";
  absl::StatusOr<absl::Duration> d = ParseHumanDuration(text);
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration: ", flag, ": '", text, "' is not a duration", kExamples));
  }
  if (*d < absl::ZeroDuration() || (*d == absl::ZeroDuration() && !range.allow_zero)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad duration: ", flag, range.allow_zero ? " must be 0 or positive" : " must be positive",
        ", not '", text, "'", kExamples));
  }
  if (*d != absl::ZeroDuration() && *d < range.min) {
    return absl::InvalidArgumentError(absl::StrCat("bad duration: ", flag, " must be at least ",
                                                   absl::FormatDuration(range.min), ", not '",
                                                   text, "'", kExamples));
  }
  return *d;
}

absl::StatusOr<int64_t> ParseSizeFlag(absl::string_view flag, absl::string_view text) {
  absl::StatusOr<int64_t> bytes = ParseHumanSize(text);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", bytes.status().message()));
  }
  return *bytes;
}

absl::StatusOr<PerfPeriod> ParseIntervalFlag(absl::string_view text) {
  return ParsePerfInterval(text);
}

absl::StatusOr<PerfPeriod> ParseFrequencyFlag(absl::string_view text) {
  return ParsePerfFrequency(text);
}

absl::StatusOr<double> ParsePercentFlag(absl::string_view flag, absl::string_view text) {
  absl::string_view t = text;
  absl::ConsumeSuffix(&t, "%");
  double value = 0;
  // SimpleAtod accepts "nan" and "inf": a percentage must be a finite
  // number, or the page would embed `"minwidth":nan` and not load.
  if (t.empty() || !absl::SimpleAtod(t, &value) || !std::isfinite(value) || value < 0.0 ||
      value > 100.0) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, " takes a percentage from 0 to 100, e.g. 0.1; got '", text, "'"));
  }
  return value;
}

absl::StatusOr<pid_t> ParsePidArg(absl::string_view text) {
  int64_t pid = 0;
  if (!absl::SimpleAtoi(text, &pid) || pid <= 0 || pid > (int64_t{1} << 22)) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not a PID"));
  }
  return static_cast<pid_t>(pid);
}

}  // namespace cli
}  // namespace flamekit
