"""header_compile_test(): proves each public header stands on its own.

For every header it generates a translation unit that includes only that
header (twice, to check the include guard) and compiles it (a library of
those objects, NAME_alone): a header that forgets an #include fails its
own translation unit. The test (tools/header_odr_check.sh) then reads the
objects with nm: a header that defines a non-inline function or variable
leaves a strong symbol there, which two translation units including it
would both define (an ODR violation).

The test does nothing else at run time, so it is tagged "header_compile"
and the sanitizer stages of tools/test.sh leave it out.

NAME_all is one translation unit including every header of the package (a
library, tagged "manual" and "header_compile_all"): the clang stage builds
it, which also proves the package's headers go together. (It was part of
this test too, as the second translation unit of the link check; nm finds
the same definitions without compiling the package a second time.)
"""

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
    native.cc_library(
        name = name + "_alone",
        srcs = srcs,
        deps = deps,
        linkstatic = True,
        testonly = True,
        tags = ["manual"],
    )
    # The objects themselves (a cc_library in `data` brings no archive).
    native.filegroup(
        name = name + "_objects",
        srcs = [":%s_alone" % name],
        output_group = "compilation_outputs",
        testonly = True,
    )
    native.sh_test(
        name = name,
        srcs = ["//tools:header_odr_check.sh"],
        data = [":%s_objects" % name],
        args = ["$(rootpaths :%s_objects)" % name],
        size = "small",
        tags = ["header_compile"],
    )
