#!/usr/bin/env bash
# The test command: sets up the machine, runs every test, and ends with one
# line "N passed, N failed[, N skipped]" counting test cases (from the
# GoogleTest XML Bazel keeps per test). Exit status: 0 when all passed.
#
#   bash tools/test.sh              everything
#   bash tools/test.sh //include/...   only these targets (a quicker loop)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash tools/setup.sh || exit 1

# No Bazel server left behind, whatever happens (it idles for hours otherwise).
trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(//...)

config=()
[ "${CI:-}" = "true" ] && config=(--config=ci)

log=$(mktemp)
rc=0
step() { echo "== $*"; }

step "bazel test ${targets[*]}"
bazel test "${config[@]}" --test_summary=short "${targets[@]}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Extra steps that are not Bazel tests run only for the full suite.
extra_failed=0
extra_passed=0
if [ $# -eq 0 ]; then
  # A check is one case, unless it ends by printing its own count as
  # "check-result: N passed, M failed".
  for check in tools/checks/*.sh; do
    [ -f "$check" ] || continue
    step "$check"
    out=$(mktemp)
    bash "$check" 2>&1 | tee "$out"
    check_rc=${PIPESTATUS[0]}
    counts=$(grep -E '^check-result: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
    rm -f "$out"
    if [ -n "$counts" ]; then
      p=$(echo "$counts" | sed -E 's/^check-result: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
      f=$(echo "$counts" | sed -E 's/^check-result: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
      [ "$check_rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
      extra_passed=$((extra_passed + p)); extra_failed=$((extra_failed + f))
    elif [ "$check_rc" -eq 0 ]; then
      extra_passed=$((extra_passed + 1))
    else
      extra_failed=$((extra_failed + 1))
    fi
    [ "$check_rc" -eq 0 ] || echo "FAILED: $check (exit $check_rc)"
  done
fi

# Count test cases: for each test target in this run's summary, read its
# test.xml (GoogleTest's own, or the one Bazel writes for other tests).
testlogs=$(bazel info "${config[@]}" bazel-testlogs 2>/dev/null)
passed=0 failed=0 skipped=0
while read -r target status; do
  xml="$testlogs/$(echo "${target#//}" | tr ':' '/')/test.xml"
  case "$status" in
    PASSED|FAILED|FLAKY) ;;
    *) failed=$((failed + 1)); continue ;;   # timed out, not built, ...
  esac
  if [ ! -f "$xml" ]; then failed=$((failed + 1)); continue; fi
  read -r t f s < <(awk '
    /<testcase / { t++; if ($0 ~ /result="skipped"/) s++ }
    /<failure|<error/ { f++ }
    END { print t+0, f+0, s+0 }' "$xml")
  if [ "$status" = "FAILED" ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + t - f - s)); failed=$((failed + f)); skipped=$((skipped + s))
done < <(grep -E '^//[^ ]+ ' "$log" | grep -E ' (PASSED|FAILED|TIMEOUT|NO STATUS|INCOMPLETE|FLAKY)' |
         sed -E 's/^(\/\/[^ ]+) +(\(cached\) )?([A-Z ]+) in .*/\1 \3/; s/^(\/\/[^ ]+) +(\(cached\) )?(NO STATUS|INCOMPLETE)$/\1 \3/' |
         awk '{print $1, $2}')
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi   # a build error
passed=$((passed + extra_passed)); failed=$((failed + extra_failed))
rm -f "$log"
[ "$extra_failed" -eq 0 ] || [ "$rc" -ne 0 ] || rc=1
echo "$passed passed, $failed failed, $skipped skipped"
exit "$rc"
