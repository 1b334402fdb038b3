// SPDX-License-Identifier: Apache-2.0
// File: demangle.h
//
// Demangle() turns an Itanium C++ ABI symbol name ("_ZN3foo3barEv") into
// its source form ("foo::bar()") with abi::__cxa_demangle. Names that are
// not mangled, or that the demangler rejects, come back unchanged. Not for
// signal handlers (__cxa_demangle allocates); thread-safe (no shared state).
//
// Example:
//
//   std::string name = flamekit::Demangle("_ZNSt6vectorIiSaIiEE9push_backERKi");
//   // "std::vector<int, std::allocator<int> >::push_back(int const&)"

#ifndef FLAMEKIT_SYMBOL_DEMANGLE_H_
#define FLAMEKIT_SYMBOL_DEMANGLE_H_

#include <cxxabi.h>  // abi::__cxa_demangle, part of libstdc++ / libc++abi
#include <stdlib.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace flamekit {

// Demangle()
//
// The demangled form of `name`, or `name` itself when it is not a mangled
// C++ name. A symbol-version suffix ("@@GLIBCXX_3.4") is kept after the
// demangled name.
std::string Demangle(absl::string_view name);

// Implementation details follow.

inline std::string Demangle(absl::string_view name) {
  // Only "_Z..." names are mangled (also "__Z" on some platforms, and
  // "_GLOBAL__sub_I_..." static initialisers, which we leave as they are).
  if (!absl::StartsWith(name, "_Z")) return std::string(name);
  absl::string_view version;
  size_t at = name.find('@');
  if (at != absl::string_view::npos) {
    version = name.substr(at);
    name = name.substr(0, at);
  }
  std::string mangled(name);  // __cxa_demangle needs a NUL-terminated string
  int status = 0;
  char* out = abi::__cxa_demangle(mangled.c_str(), nullptr, nullptr, &status);
  if (status != 0 || out == nullptr) {
    free(out);
    mangled.append(version.data(), version.size());
    return mangled;
  }
  std::string result(out);
  free(out);
  result.append(version.data(), version.size());
  return result;
}

}  // namespace flamekit

#endif  // FLAMEKIT_SYMBOL_DEMANGLE_H_
