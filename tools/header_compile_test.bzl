"""header_compile_test(): proves each public header stands on its own.

For every header, a translation unit that includes only that header (twice,
to check the include guard) is compiled by clang (the rule _headers_alone
below): a header that forgets an #include fails there, at build time. The
test (tools/header_odr_check.sh) then reads those objects with nm: a header
that defines a non-inline function or variable leaves a strong symbol
there, which two translation units including the header would both define
(an ODR violation).

Why clang -O0 and not the configuration's compiler: compiling each header
alone with gcc was the test command's second-longest step (377
CPU-seconds cold). clang is faster on the heaviest headers (user seconds,
gcc 12 -O0 -c against clang 14 -O0 -c: trigger/attach_capture.h 10.6 and
7.6, ui/ui_server.h 11.1 and 5.6); over the whole step the gain is
smaller, 193 s of wall time cold with gcc against 160 s with clang. gcc
still compiles every header as part of the tests and programs that include
it, and the clang stage of the test command compiles NAME_all, one translation unit including every header of
the package (a library tagged "manual" and "header_compile_all"), which
proves the package's headers go together.

The test does nothing else at run time, so it is tagged "header_compile"
and the sanitizer stages of tools/test.sh leave it out.
"""

def _include_lines(include_prefix, hdrs):
    return "".join(["#include \"%s/%s\"\n" % (include_prefix, hdr) for hdr in hdrs])

def _headers_alone_impl(ctx):
    cctx = cc_common.merge_cc_infos(
        cc_infos = [dep[CcInfo] for dep in ctx.attr.deps],
    ).compilation_context
    flags = ["-std=c++17", "-O0", "-g0", "-x", "c++"]
    flags += ["-D" + d for d in cctx.defines.to_list()]
    for path in cctx.includes.to_list():
        flags += ["-I", path]
    for path in cctx.quote_includes.to_list():
        flags += ["-iquote", path]
    for path in cctx.system_includes.to_list():
        flags += ["-isystem", path]
    objects = []
    for hdr in ctx.attr.hdrs:
        stem = hdr.replace("/", "_").replace(".", "_")
        tu = ctx.actions.declare_file("%s/%s.cc" % (ctx.label.name, stem))
        ctx.actions.write(tu, _include_lines(ctx.attr.include_prefix, [hdr, hdr]))
        obj = ctx.actions.declare_file("%s/%s.o" % (ctx.label.name, stem))
        ctx.actions.run_shell(
            inputs = depset([tu], transitive = [cctx.headers]),
            outputs = [obj],
            command = 'clang++ "$@"',
            arguments = flags + ["-c", tu.path, "-o", obj.path],
            use_default_shell_env = True,
            mnemonic = "HeaderAlone",
            progress_message = "Compiling %s/%s alone (clang)" % (ctx.attr.include_prefix, hdr),
        )
        objects.append(obj)
    # As runfiles too: the test lists this target in `data`, and Bazel
    # builds a data dependency's runfiles, not its files.
    return [DefaultInfo(files = depset(objects), runfiles = ctx.runfiles(files = objects))]

# Each header of `hdrs` alone, compiled by clang at -O0: one object each.
_headers_alone = rule(
    implementation = _headers_alone_impl,
    attrs = {
        "hdrs": attr.string_list(),
        "include_prefix": attr.string(),
        "deps": attr.label_list(providers = [CcInfo]),
    },
)

def _all_headers_impl(ctx):
    tu = ctx.actions.declare_file(ctx.label.name + ".cc")
    ctx.actions.write(tu, _include_lines(ctx.attr.include_prefix, ctx.attr.hdrs))
    return [DefaultInfo(files = depset([tu]))]

# One translation unit that includes every header of `hdrs`.
_all_headers = rule(
    implementation = _all_headers_impl,
    attrs = {
        "hdrs": attr.string_list(),
        "include_prefix": attr.string(),
    },
)

def header_compile_test(name, hdrs, deps, include_prefix):
    """hdrs: header file names in this package; include_prefix: e.g. "flamekit/buffer"."""
    _headers_alone(
        name = name + "_alone",
        hdrs = hdrs,
        include_prefix = include_prefix,
        deps = deps,
        testonly = True,
        tags = ["manual"],
    )
    _all_headers(
        name = name + "_all_headers",
        hdrs = hdrs,
        include_prefix = include_prefix,
        testonly = True,
        tags = ["manual"],
    )
    native.cc_library(
        name = name + "_all",
        srcs = [":%s_all_headers" % name],
        deps = deps,
        testonly = True,
        tags = ["manual", "header_compile_all"],
    )
    native.sh_test(
        name = name,
        srcs = ["//tools:header_odr_check.sh"],
        data = [":%s_alone" % name],
        args = ["$(rootpaths :%s_alone)" % name],
        size = "small",
        tags = ["header_compile"],
    )
