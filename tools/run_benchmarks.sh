#!/usr/bin/env bash
# Builds every benchmark with -c opt, runs each (Google Benchmark JSON), runs
# the peer comparison (flamekit beside gperftools and perf on one workload),
# and writes a markdown table of the headline figures.
#
#   bash tools/run_benchmarks.sh            full run (a few minutes)
#   bash tools/run_benchmarks.sh --quick    short run: proves every benchmark
#                                           builds and runs (CI); timings noisy
# Output: out/bench/*.json and out/bench/RESULTS.md (printed at the end).
# Timings never fail the run; a benchmark that does not build or crashes does.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

bash tools/setup.sh >/dev/null

ci=()
[ "${CI:-}" = "true" ] && ci=(--config=ci)
out="$root/out/bench"
rm -rf "$out"
mkdir -p "$out"

# Benchmarks are cc_binary targets tagged "benchmark"; the peer workloads
# are tagged "benchmark_peer".
mapfile -t benchmarks < <(bazel query 'attr(tags, "\bbenchmark\b", kind(cc_binary, //...))' 2>/dev/null)
if [ ${#benchmarks[@]} -eq 0 ]; then
  echo "run_benchmarks: no benchmark targets found (bazel query failed?)" >&2
  exit 1
fi
bazel build "${ci[@]}" -c opt "${benchmarks[@]}" \
  //benchmarks/peers:all //examples/cli:flamekit 2>&1 |
  grep -vE '^(Loading|Analyzing|INFO: (Analyzed|Found|Elapsed|[0-9]+ process))' || true
bin=$(bazel info "${ci[@]}" -c opt bazel-bin)

min_time=()
[ "$quick" -eq 1 ] && min_time=(--benchmark_min_time=0.01)
for target in "${benchmarks[@]}"; do
  rel=${target#//}; rel=${rel/://}
  name=$(echo "$rel" | tr '/' '_')
  echo "== $target"
  FLAMEKIT_BENCHMARK_QUICK=$quick "$bin/$rel" "${min_time[@]}" \
    --benchmark_format=console --benchmark_out="$out/$name.json" --benchmark_out_format=json
done

# Peak memory needs a process that does nothing else, so this one is not a
# Google Benchmark program; it writes its row in the same JSON shape.
echo "== render peak memory: 1M samples over 50k stacks, collapsed file -> HTML"
bash benchmarks/render/run_peak_memory.sh "$out/benchmarks_render_render_peak_memory.json"

echo "== alloc/live/lock hooks: overhead on an allocation-heavy loop and a contended mutex"
rounds_hooks=15 churn=10000000 mutex=5000000
[ "$quick" -eq 1 ] && rounds_hooks=1 churn=2000000 mutex=500000
ROUNDS=$rounds_hooks CHURN=$churn MUTEX=$mutex \
  bash benchmarks/hooks/run_hooks_overhead.sh "$out/benchmarks_hooks_overhead.json"

echo "== compile time: including flamekit/profiler.h beside Abseil's Status and Time headers"
rounds_compile=5
[ "$quick" -eq 1 ] && rounds_compile=1
ROUNDS=$rounds_compile bash benchmarks/compile/run_compile_time.sh "$out/benchmarks_compile_time.json"

echo "== attach: flamekit --unwind fp|dwarf beside perf -g / --call-graph dwarf on redis-server"
seconds_unwind=3 rounds_unwind=3
[ "$quick" -eq 1 ] && seconds_unwind=1 rounds_unwind=1
python3 benchmarks/attach/unwind_vs_perf.py --flamekit "$bin/examples/cli/flamekit" \
  --seconds "$seconds_unwind" --rounds "$rounds_unwind" \
  --json "$out/benchmarks_attach_unwind_vs_perf.json"

echo "== peers"
rounds=7 iterations=4000
[ "$quick" -eq 1 ] && rounds=1 iterations=500
python3 tools/bench/peers.py --bin "$bin" --rounds "$rounds" --iterations "$iterations" \
  --json "$out/peers.json" > "$out/peers.md"
cat "$out/peers.md"

python3 tools/bench/report.py "$out" > "$out/RESULTS.md"
echo
cat "$out/RESULTS.md"
echo "benchmark results: $out/RESULTS.md"
