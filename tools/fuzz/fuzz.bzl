"""flamekit_fuzz_test(): one fuzz target, two ways to run it.

  <name>         a libFuzzer binary (clang only: `bazel run --config=fuzz
                 //pkg:<name> -- DIR_OF_SEEDS`); tagged manual, so
                 `bazel build //...` with gcc skips it.
  <name>_replay  a cc_test that feeds every file of the seed corpus (the
                 `corpus` label: a filegroup of seed files) to the same
                 entry point. It runs
                 in the ordinary suite and under ASan and UBSan, so an input
                 a fuzzer once crashed on, saved into the corpus, stays a
                 regression test.

The source defines `extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t)`.
"""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_test")

def flamekit_fuzz_test(name, srcs, deps, corpus):
    """corpus: label of a filegroup holding the seed inputs."""
    cc_binary(
        name = name,
        srcs = srcs,
        deps = deps,
        linkopts = ["-fsanitize=fuzzer"],
        tags = ["manual", "fuzzer"],
        testonly = True,
    )
    cc_test(
        name = name + "_replay",
        size = "small",
        srcs = srcs + ["//tools/fuzz:replay_main.cc"],
        deps = deps,
        data = [corpus],
        args = ["$(rootpaths " + corpus + ")"],
    )
