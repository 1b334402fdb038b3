#!/usr/bin/env bash
# Builds every libFuzzer target (tag "fuzzer", clang, --config=fuzz) and runs
# each for a bounded time over a copy of its seed corpus. A crash fails the
# check and leaves the crashing input in out/fuzz/<target>/ to be added to
# testdata/fuzz/<corpus>/ as a regression test.
#
#   bash tools/checks/fuzz.sh                 ~10 s per target, one per core (CI)
#   FUZZ_SECONDS=600 bash tools/checks/fuzz.sh   a longer run
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
seconds=${FUZZ_SECONDS:-10}
ci=()
[ "${CI:-}" = "true" ] && ci=(--config=ci)

mapfile -t targets < <(bazel query 'attr(tags, "\bfuzzer\b", kind(cc_binary, //...))' 2>/dev/null)
if [ ${#targets[@]} -eq 0 ]; then
  # Every parser of outside input has one: finding none means the query broke.
  echo "fuzz: no fuzz targets found (bazel query failed?)"
  echo "check-result: 0 passed, 1 failed"
  exit 1
fi
# A failed build fails the check: binaries left from an earlier build must
# not be fuzzed in place of today's code.
build_log=$(mktemp)
# A short run (CI's 10 s) is bounded by the build, not by the inputs tried:
# -O0 halves the compile (ui_request_fuzz.cc: 25 s of CPU at -O1, 11 s at
# -O0, clang 14) for fewer executions per second. Longer runs keep -O1.
opt=()
[ "$seconds" -lt 60 ] && opt=(--copt=-O0)
if ! bazel build "${ci[@]}" --config=fuzz "${opt[@]}" "${targets[@]}" >"$build_log" 2>&1; then
  grep -E 'ERROR|error:' "$build_log" | head -n 20
  tail -n 5 "$build_log"
  rm -f "$build_log"
  echo "fuzz: the fuzz targets did not build"
  echo "check-result: 0 passed, 1 failed"
  exit 1
fi
tail -n 3 "$build_log"
rm -f "$build_log"
bin=$(bazel info "${ci[@]}" --config=fuzz "${opt[@]}" bazel-bin)

# One fuzzer per core at a time: each is single-threaded, and this check
# ran them one after another (80 s of the CI run for 8 targets, with a core
# idle).
parallel=$(nproc 2>/dev/null || echo 2)
[ "$parallel" -ge 1 ] || parallel=1
# fuzz_one TARGET: runs it over its seeds; its verdict is its exit status.
fuzz_one() {
  local target=$1 rel name work
  rel=${target#//}; rel=${rel/://}
  name=$(basename "$rel")
  work="$root/out/fuzz/$name"
  if "$bin/$rel" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix="$work/" "$work/corpus" >"$work/log" 2>&1; then
    echo "fuzz: $target ok ($(grep -oE 'Done [0-9]+ runs' "$work/log" | tail -n 1))"
  else
    echo "fuzz: $target FOUND A CRASH; input saved under $work/"
    tail -n 30 "$work/log"
    return 1
  fi
}

passed=0 failed=0
declare -A running=()  # pid -> target
# reap_one: waits for one running fuzzer and counts its verdict.
reap_one() {
  local pid status=0
  wait -n -p pid "${!running[@]}" || status=$?
  if [ "$status" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
  unset "running[$pid]"
}
for target in "${targets[@]}"; do
  rel=${target#//}; rel=${rel/://}
  name=$(basename "$rel")
  # The seeds are whatever the replay test replays (its data files).
  work="$root/out/fuzz/$name"
  rm -rf "$work"; mkdir -p "$work/corpus"
  while read -r label; do
    file=${label#//}; file=${file/://}
    [ -f "$file" ] && cp "$file" "$work/corpus/$(echo "$file" | tr '/' '_')"
  done < <(bazel query "kind('source file', deps(labels(data, ${target}_replay), 1))" 2>/dev/null)
  if [ ! -x "$bin/$rel" ]; then
    echo "fuzz: $target did not build"; failed=$((failed + 1)); continue
  fi
  while [ "${#running[@]}" -ge "$parallel" ]; do reap_one; done
  echo "fuzz: $target for ${seconds}s over $(ls "$work/corpus" | wc -l) seeds"
  fuzz_one "$target" &
  running[$!]=$target
done
while [ "${#running[@]}" -gt 0 ]; do reap_one; done
echo "check-result: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
