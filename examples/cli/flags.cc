// SPDX-License-Identifier: Apache-2.0
#include "examples/cli/flags.h"

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace flamekit {
namespace cli {

bool ParsedArgs::Has(absl::string_view name) const {
  return flags.count(std::string(name)) != 0;
}

std::string ParsedArgs::Value(absl::string_view name,
                              absl::string_view fallback) const {
  auto it = flags.find(std::string(name));
  return it == flags.end() ? std::string(fallback) : it->second;
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
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", name));
    }
    std::string value;
    if (spec->takes_value) {
      if (has_inline) {
        value = std::string(inline_value);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat(spec->name, " needs a value"));
      }
    } else if (has_inline) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec->name, " takes no value"));
    }
    if (!parsed.flags.emplace(spec->name, std::move(value)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(spec->name, " given more than once"));
    }
  }
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

}  // namespace cli
}  // namespace flamekit
