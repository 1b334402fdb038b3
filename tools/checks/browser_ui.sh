#!/usr/bin/env bash
# Real-browser check of the embedded profiler UI: builds and runs the
# //examples/http_ui demo (once open, once with a token) on ephemeral
# loopback ports and drives Debian's /usr/bin/chromium with playwright-core
# (tools/browser/ui_check.js): open, pick an event, start, stop, see the
# profile and its samples, open it, raw toggle, diff two, delete all, sign
# in. Prints "check-result: N passed, M failed". Screenshots go to
# $(bazel info bazel-testlogs)/browser_ui/.
#
# BAZEL overrides the bazel command (default: plain `bazel`), e.g.
# BAZEL="bazel --output_base=/root/.cache/bazel/fk_ui".
set -uo pipefail
source "$(dirname "$0")/lib/browser_prelude.sh"

$BAZEL build "${config[@]}" //examples/http_ui:http_ui || fail_setup
bin=$($BAZEL info "${config[@]}" bazel-bin)/examples/http_ui/http_ui
shots=$($BAZEL info "${config[@]}" bazel-testlogs)/browser_ui
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

# start_demo VAR NAME ARGS...: starts the demo and sets VAR to its URL
# (waits up to 20 s for it). Not called as $(...): in a subshell the pid
# never reached `pids`, and both demos outlived the check by up to
# --exit_after_s, burning CPU beside the steps that followed.
start_demo() {
  local var=$1 name=$2 found; shift 2
  "$bin" --port=0 --dir="$work/$name" --exit_after_s=600 "$@" >"$work/$name.out" 2>&1 &
  pids+=($!)
  for _ in $(seq 200); do
    found=$(grep -o 'http://[^ ]*' "$work/$name.out" 2>/dev/null | head -n 1)
    [ -n "$found" ] && { printf -v "$var" '%s' "$found"; return 0; }
    sleep 0.1
  done
  echo "demo $name did not print its URL:" >&2
  cat "$work/$name.out" >&2
  return 1
}

start_demo url open || fail_setup
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_demo token_url token --token="$token" || fail_setup
echo "UI at $url (token UI at $token_url); screenshots in $shots"
node "$root/tools/browser/ui_check.js" "$url" "$shots" "$token_url" "$token"
