#!/usr/bin/env bash
# Builds render_peak_memory with -c opt, writes the 1M-sample collapsed
# input, and converts it to HTML in a fresh process that reports its peak
# RSS, time and output size; given a path, also writes them there as a
# Google Benchmark-shaped JSON row (tools/run_benchmarks.sh does). BAZEL
# overrides the bazel command.
set -euo pipefail
cd "$(dirname "$0")/../.."
BAZEL=${BAZEL:-bazel}
$BAZEL build -c opt //benchmarks/render:render_peak_memory
bin=$($BAZEL info -c opt bazel-bin)/benchmarks/render/render_peak_memory
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" gen "$work/big.collapsed"
echo "input: $(du -m "$work/big.collapsed" | cut -f1) MB collapsed"
"$bin" html "$work/big.collapsed" "$work/big.html" ${1:+"$1"}
