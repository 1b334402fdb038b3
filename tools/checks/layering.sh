#!/usr/bin/env bash
# The layering of ../shared/DESIGN.md ("The house"), checked on the real
# #include lines: for each stage under include/flamekit/ it prints what the
# stage includes (other stages and third-party libraries) beside what it may
# include, and fails on any include outside that list. testing/ (testonly
# helpers, which Bazel keeps out of non-test targets) is allowed everywhere.
#
#   bash tools/checks/layering.sh
set -uo pipefail
cd "$(dirname "$0")/../.."

# stage -> the stages and libraries it may include ("absl" is allowed to all).
declare -A allowed=(
  [base]=""
  [buffer]="base"
  [perf]="base"
  [unwind]="base"
  [symbol]="base"
  [sample]="base buffer perf unwind"
  [collect]="base profile symbol unwind"
  # zlib: pprof files are gzipped (pprof_reader.h gunzips them; bounded).
  [profile]="base re2 json zlib"
  [render]="base profile mustache zlib json"
  # re2: finding a target by its name (process_finder.h).
  [attach]="base collect perf profile symbol unwind re2"
  [env]="base perf json"
  [trigger]="base facade attach perf profile render http re2 json"
  # mustache: the UI's own pages (login, index) are templates as well;
  # render/'s page helpers take mustache data, so going through them would
  # include it all the same.
  [ui]="base facade perf profile render http json mustache"
  [testing]="base"
  # hooks/: the allocation and lock hooks (DESIGN.md's third kind of
  # source, beside sample/ and perf/). Self-contained on purpose: they run
  # inside malloc, so they use only their own lock-free tables.
  [hooks]="base"
  # The facade (flamekit/profiler.h) itself: Profile and the tunables only.
  # (and its implementation, under FLAMEKIT_IMPLEMENTATION only).
  [facade]="base profile facade_impl"
  # Its implementation headers (compiled once, in profiler.cc). render and
  # trigger: ProfilerOptions::push encodes windows as pprof and sends them
  # with trigger/'s pusher (profiler_push.h), so httplib stays out of the
  # facade and is compiled in profiler.cc only.
  [facade_impl]="base buffer collect facade hooks perf profile render sample symbol trigger unwind"
)

# include line -> the stage or library it names ("" when not ours to judge).
classify() {
  case "$1" in
    flamekit/profiler.h) echo facade ;;
    flamekit/profiler_impl.h|flamekit/profiler_session.h|flamekit/profiler_engine_choice.h|flamekit/profiler_collector.h|flamekit/profiler_hooks.h|flamekit/profiler_push.h) echo facade_impl ;;
    flamekit/testing/*) echo "" ;;
    flamekit/*/*) local rest=${1#flamekit/}; echo "${rest%%/*}" ;;
    re2/*) echo re2 ;;
    httplib.h) echo http ;;
    mustache.hpp|kainjow/*) echo mustache ;;
    nlohmann/*) echo json ;;
    zlib.h) echo zlib ;;
    *) echo "" ;;
  esac
}

stage_of() {
  case "$1" in
    include/flamekit/profiler.h) echo facade ;;
    include/flamekit/profiler_impl.h|include/flamekit/profiler_session.h|include/flamekit/profiler_engine_choice.h|include/flamekit/profiler_collector.h|include/flamekit/profiler_hooks.h|include/flamekit/profiler_push.h|include/flamekit/profiler.cc) echo facade_impl ;;
    include/flamekit/*/*) local rest=${1#include/flamekit/}; echo "${rest%%/*}" ;;
    *) echo "" ;;
  esac
}

passed=0 failed=0
declare -A seen=()
declare -A breaches=()
# Library code only: a stage's tests may include what they test against.
while IFS= read -r file; do
  stage=$(stage_of "$file")
  [ -n "$stage" ] || continue
  if [ -z "${allowed[$stage]+x}" ]; then
    echo "layering: $file: stage '$stage' has no row in the table (add it to tools/checks/layering.sh)"
    failed=$((failed + 1))
    continue
  fi
  while IFS= read -r inc; do
    dep=$(classify "$inc")
    [ -n "$dep" ] && [ "$dep" != "$stage" ] || continue
    seen[$stage]="${seen[$stage]:-} $dep"
    if [[ " ${allowed[$stage]} " != *" $dep "* ]]; then
      breaches[$stage]="${breaches[$stage]:-}  $file includes $inc ($dep)"$'\n'
    fi
  done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([^">]+)[">].*/\1/p' "$file")
done < <(find include/flamekit -name '*.h' -o -name '*.cc' | grep -vE '_(test|fuzz|benchmark)\.cc$|_test_|test_util|_testing\.h$' | sort)

printf '%-12s %-45s %s\n' stage "includes" "may include"
for stage in $(printf '%s\n' "${!allowed[@]}" | sort); do
  uses=$(echo "${seen[$stage]:-}" | tr ' ' '\n' | sort -u | grep -v '^$' | tr '\n' ' ')
  printf '%-12s %-45s %s\n' "$stage" "${uses:--}" "${allowed[$stage]:--}"
  if [ -n "${breaches[$stage]:-}" ]; then
    printf '%s' "${breaches[$stage]}"
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
done
# The same table as a build error: the inner stages' packages are private
# by default and name the stages that may use them (their BUILD files).
for stage in buffer perf unwind symbol sample collect; do
  if grep -qE 'default_visibility = \["//visibility:public"\]' "include/flamekit/$stage/BUILD.bazel"; then
    echo "layering: include/flamekit/$stage/BUILD.bazel is public by default; list who may use it"
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
done
echo "check-result: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
