#!/usr/bin/env bash
# The test command: sets up the machine, then runs
#   1. the Bazel tests that cannot run under a sanitizer (gcc, -c opt: the
#      build the static CLI, demo.sh and the benchmarks reuse), and the
#      header_compile tests (each header alone, by clang); with
#      FLAMEKIT_QUICK=1: every test, in the default build;
#   2. a clang build of every package's headers (one translation unit each:
#      the header_compile_test's NAME_all) and of the CLI: the code must
#      compile with both compilers;
#   3. every other test under AddressSanitizer + UndefinedBehaviorSanitizer
#      (one build; all but those tagged "no_sanitizer", which measure CPU
#      shares or replace the allocator), and the tests tagged "tsan" (the
#      concurrent ones) under ThreadSanitizer;
#   4. the checks in tools/checks/ (README commands, consumer workspace,
#      browser tests, reproducible builds, ...);
# and ends with one line "N passed, N failed, N skipped" counting test cases
# (GoogleTest's XML per test, and the checks' own counts). Exit 0 only when
# everything passed.
#
#   bash tools/test.sh                   everything
#   FLAMEKIT_QUICK=1 bash tools/test.sh  steps 1 and 4 only
#   bash tools/test.sh //include/...     step 1 on these targets only
set -uo pipefail
cd "$(dirname "$0")/.."

# No Bazel server left behind, whatever happens (it idles for hours otherwise).
trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT

ci=()
[ "${CI:-}" = "true" ] && ci=(--config=ci)
passed=0 failed=0 skipped=0 rc=0
# Each step says how long the one before it took, so a slow CI run shows
# where its time went.
step_name="" step_started=0
step() {
  step_done
  step_name=$* step_started=$(date +%s)
  echo; echo "== $*"
}
step_done() {
  [ -n "$step_name" ] && echo "== took $(( $(date +%s) - step_started )) s: $step_name"
  step_name=""
}

# count_cases LOG BAZEL_FLAGS...: adds the cases of every test target named in
# LOG's summary, reading each target's test.xml under that config's testlogs.
count_cases() {
  local log=$1; shift
  local testlogs target status xml t f s
  testlogs=$(bazel info "${ci[@]}" "$@" bazel-testlogs 2>/dev/null)
  while read -r target status; do
    case "$status" in
      PASSED|FAILED|FLAKY) ;;
      *) failed=$((failed + 1)); continue ;;   # timed out, not built, ...
    esac
    xml="$testlogs/$(echo "${target#//}" | tr ':' '/')/test.xml"
    if [ ! -f "$xml" ]; then failed=$((failed + 1)); continue; fi
    read -r t f s < <(awk '
      /<testcase / { t++; if ($0 ~ /result="skipped"/) s++ }
      /<failure|<error/ { f++ }
      END { print t+0, f+0, s+0 }' "$xml")
    if [ "$status" = "FAILED" ] && [ "$f" -eq 0 ]; then f=1; fi
    passed=$((passed + t - f - s)); failed=$((failed + f)); skipped=$((skipped + s))
  done < <(grep -E '^//[^ ]+ ' "$log" |
           sed -nE 's/^(\/\/[^ ]+) +(\(cached\) )?(PASSED|FAILED|FLAKY|TIMEOUT|NO STATUS|INCOMPLETE|FAILED TO BUILD).*/\1 \3/p' |
           sed 's/ NO STATUS$/ NO_STATUS/; s/ FAILED TO BUILD$/ NOT_BUILT/')
}

# bazel_tests FLAGS... -- TARGETS...: one `bazel test` run, counted.
bazel_tests() {
  local flags=() log code
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do flags+=("$1"); shift; done
  shift
  log=$(mktemp)
  # Every test runs: none is taken from a cache as passed.
  bazel test "${ci[@]}" "${flags[@]}" --cache_test_results=no --test_summary=short -- "$@" 2>&1 | tee "$log"
  code=${PIPESTATUS[0]}
  count_cases "$log" "${flags[@]}"
  # 4: no test matched the filter, which is not a failure.
  if [ "$code" -ne 0 ] && [ "$code" -ne 4 ]; then
    rc=1
    grep -qE '^//[^ ]+ .*(FAILED|TIMEOUT|NO STATUS|INCOMPLETE)' "$log" || failed=$((failed + 1))
  fi
  rm -f "$log"
}

# run_check NAME COMMAND...: a non-Bazel step; one case unless it prints
# "check-result: N passed, M failed" last.
run_check() {
  local name=$1; shift
  local out code counts p f
  out=$(mktemp)
  "$@" 2>&1 | tee "$out"
  code=${PIPESTATUS[0]}
  counts=$(grep -E '^check-result: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  rm -f "$out"
  if [ -n "$counts" ]; then
    p=$(echo "$counts" | sed -E 's/^check-result: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
    f=$(echo "$counts" | sed -E 's/^check-result: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
    [ "$code" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  elif [ "$code" -eq 0 ]; then
    p=1 f=0
  else
    p=0 f=1
  fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$code" -ne 0 ]; then rc=1; echo "FAILED: $name (exit $code)"; fi
}

started=$(date +%s)
# On a fresh machine the Debian packages and npm modules are most of this.
step "tools/setup.sh (Debian packages, npm)"
bash tools/setup.sh || exit 1
if [ $# -gt 0 ]; then
  step "bazel test $*"
  bazel_tests -- "$@"
else
  if [ "${FLAMEKIT_QUICK:-}" = "1" ]; then
    step "bazel test //... (gcc)"
    bazel_tests -- //...
  else
    # Every other test runs in step 3, under ASan+UBSan with gcc: running
    # it here as well compiled each test twice for no added check (it took
    # 233 of a cold run's 2386 s). Here: the tests that cannot run under a
    # sanitizer, and each header compiled alone (tools/header_compile_test.bzl).
    # The first in -c opt: the CLI and the agent they use are then the
    # very objects the static CLI (containers.sh), demo.sh and the
    # benchmarks link, where a fastbuild compiled the CLI once more for
    # this step alone (.bazelrc's --dynamic_mode=off makes the tests link
    # the same objects as the programs). The headers are compiled at -O0 whatever the
    # build (by their own rule): -O2 doubled a header's time and found
    # nothing more.
    step "bazel test -c opt (gcc: tests tagged no_sanitizer)"
    bazel_tests -c opt --build_tests_only --test_tag_filters=no_sanitizer -- //...
    step "bazel test (every header alone, by clang; nm for non-inline definitions)"
    bazel_tests --build_tests_only --test_tag_filters=header_compile -- //...
  fi

  if [ "${FLAMEKIT_QUICK:-}" != "1" ]; then
    # Each package's headers in one translation unit (step 1 compiled each
    # header alone already): proves they go together, and that gcc's
    # code also compiles with clang.
    step "bazel build --config=clang (every package's headers, and the CLI, with clang 14)"
    mapfile -t all_headers < <(bazel query 'attr(tags, "\bheader_compile_all\b", //...)' 2>/dev/null)
    if [ ${#all_headers[@]} -eq 0 ]; then
      echo "clang build: no header_compile_all targets found (bazel query failed?)"; rc=1; failed=$((failed + 1))
    fi
    run_check "clang build" bazel build "${ci[@]}" --config=clang -- "${all_headers[@]}" //examples/cli:flamekit

    # --build_tests_only: build what the filter selects, not all of //...
    # a second and third time.
    # The header_compile tests do nothing at run time.
    step "bazel test --config=asan_ubsan (all but tests tagged no_sanitizer)"
    bazel_tests --config=asan_ubsan --build_tests_only --test_tag_filters=-no_sanitizer,-header_compile -- //...
    step "bazel test --config=tsan (tests tagged tsan)"
    bazel_tests --config=tsan --build_tests_only --test_tag_filters=tsan -- //...
  fi

  for check in tools/checks/*.sh; do
    [ -f "$check" ] || continue
    step "$check"
    run_check "$check" bash "$check"
  done
fi

step_done
echo
echo "test.sh took $(( $(date +%s) - started )) s"
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
