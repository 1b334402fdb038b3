"""header_compile_test(): proves each public header stands on its own.

For every header it generates a translation unit that includes only that
header (twice, to check the include guard), plus one translation unit that
includes every header of the package, and links them all into one test
binary with a main() that returns 0. A header that forgets an #include
fails its own translation unit; one that defines a non-inline function is
in two translation units (its own and the package's), so the link fails
with a duplicate symbol (an ODR violation).

The test does nothing at run time, so it is tagged "header_compile" and the
sanitizer stages of tools/test.sh leave it out.

NAME_all is the package's one translation unit alone (a library, tagged
"manual" and "header_compile_all"): the second compiler builds only that,
since whether each header stands alone is already known from the first.
"""

load("@rules_cc//cc:defs.bzl", "cc_test")

def _include_lines(include_prefix, hdrs):
    return "".join(["#include \\\"%s/%s\\\"\\n" % (include_prefix, hdr) for hdr in hdrs])

def header_compile_test(name, hdrs, deps, include_prefix):
    """hdrs: header file names in this package; include_prefix: e.g. "flamekit/buffer"."""
    srcs = []
    for hdr in hdrs:
        stem = hdr.replace("/", "_").replace(".", "_")
        out = "%s_%s.cc" % (name, stem)
        native.genrule(
            name = "%s_%s_gen" % (name, stem),
            outs = [out],
            cmd = "printf '%s' > $@" % _include_lines(include_prefix, [hdr, hdr]),
        )
        srcs.append(out)
    all_headers = name + "_all_headers.cc"
    native.genrule(
        name = name + "_all_headers_gen",
        outs = [all_headers],
        cmd = "printf '%s' > $@" % _include_lines(include_prefix, hdrs),
    )
    native.cc_library(
        name = name + "_all",
        srcs = [all_headers],
        deps = deps,
        testonly = True,
        tags = ["manual", "header_compile_all"],
    )
    main = name + "_main.cc"
    native.genrule(
        name = name + "_main_gen",
        outs = [main],
        cmd = "echo 'int main() { return 0; }' > $@",
    )
    cc_test(
        name = name,
        srcs = srcs + [all_headers, main],
        deps = deps,
        size = "small",
        tags = ["header_compile"],
    )
