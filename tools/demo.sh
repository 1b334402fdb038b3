#!/usr/bin/env bash
# The main job: sets up the machine, builds flamekit's CLI and the bundled
# demo workload, profiles the running workload by PID for a few seconds and
# writes a flame graph. Prints the flame graph's path last.
#
#   bash tools/demo.sh [SECONDS]      (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-5}

bash tools/setup.sh

config=()
[ "${CI:-}" = "true" ] && config=(--config=ci)
bazel build "${config[@]}" -c opt //examples/cli:flamekit //examples/demo:demo_workload
bin=$(bazel info "${config[@]}" -c opt bazel-bin)

mkdir -p "$root/out"
output="$root/out/demo-flame.html"

# The workload runs a little longer than the capture and is stopped after it.
"$bin/examples/demo/demo_workload" --seconds $((seconds + 30)) --threads 2 >/dev/null &
workload=$!
trap 'kill "$workload" 2>/dev/null || true; wait "$workload" 2>/dev/null || true' EXIT
sleep 0.5

"$bin/examples/cli/flamekit" record -d "$seconds" -e cpu -f "$output" "$workload"

echo "flame graph: $output"
