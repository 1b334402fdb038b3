// SPDX-License-Identifier: Apache-2.0
#include "flamekit/symbol/demangle.h"

#include "gtest/gtest.h"

namespace flamekit {
namespace {

TEST(DemangleTest, DemanglesCxxNames) {
  struct Case {
    const char* mangled;
    const char* demangled;
  };
  const Case kCases[] = {
      {"_ZN3foo3barEv", "foo::bar()"},
      {"_ZL14FkHelperStatici", "FkHelperStatic(int)"},
      {"_ZNSt6vectorIiSaIiEE9push_backERKi",
       "std::vector<int, std::allocator<int> >::push_back(int const&)"},
      {"_ZN12_GLOBAL__N_13RunEv", "(anonymous namespace)::Run()"},
  };
  for (const Case& c : kCases) EXPECT_EQ(Demangle(c.mangled), c.demangled) << c.mangled;
}

TEST(DemangleTest, KeepsOtherNamesAsTheyAre) {
  const char* const kKept[] = {
      "main", "qsort", "__libc_start_main", "_start", "", "_Z", "_Zgarbage!!",
      "_GLOBAL__sub_I_main.cc", "LazyCompile:*fib /app/fib.js:3",
  };
  for (const char* name : kKept) EXPECT_EQ(Demangle(name), name) << name;
}

TEST(DemangleTest, KeepsSymbolVersionSuffix) {
  EXPECT_EQ(Demangle("_ZNSt9exceptionD2Ev@@GLIBCXX_3.4"), "std::exception::~exception()@@GLIBCXX_3.4");
  EXPECT_EQ(Demangle("memcpy@GLIBC_2.2.5"), "memcpy@GLIBC_2.2.5");
}

}  // namespace
}  // namespace flamekit
