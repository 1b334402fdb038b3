"""header_compile_test(): proves each public header stands on its own.

For every header it generates a translation unit that includes only that
header (twice, to check the include guard) and links them all into one test
binary with a main() that returns 0. A header that forgets an #include, or
defines a non-inline function (an ODR violation once two translation units
include it), fails the build of this test.
"""

load("@rules_cc//cc:defs.bzl", "cc_test")

def header_compile_test(name, hdrs, deps, include_prefix):
    """hdrs: header file names in this package; include_prefix: e.g. "flamekit/buffer"."""
    srcs = []
    for hdr in hdrs:
        stem = hdr.replace("/", "_").replace(".", "_")
        for copy in ["a", "b"]:
            out = "%s_%s_%s.cc" % (name, stem, copy)
            native.genrule(
                name = "%s_%s_%s_gen" % (name, stem, copy),
                outs = [out],
                cmd = "printf '#include \"%s/%s\"\\n#include \"%s/%s\"\\n' > $@" % (
                    include_prefix,
                    hdr,
                    include_prefix,
                    hdr,
                ),
            )
            srcs.append(out)
    main = name + "_main.cc"
    native.genrule(
        name = name + "_main_gen",
        outs = [main],
        cmd = "echo 'int main() { return 0; }' > $@",
    )
    cc_test(
        name = name,
        srcs = srcs + [main],
        deps = deps,
        size = "small",
    )
