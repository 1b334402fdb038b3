#!/usr/bin/env bash
# http_ui's command line: a usage message for --help, and a bad --transforms
# refused at start-up (exit 2, one line on stderr) before anything listens.
set -uo pipefail
bin=$1
fail=0

help=$("$bin" --help 2>&1)
if ! grep -q "demo service that embeds the flamekit profiler UI" <<<"$help"; then
  echo "FAIL: --help has no usage message:"; echo "$help" | head -5; fail=1
fi
if grep -q "SetProgramUsageMessage() never called" <<<"$help"; then
  echo "FAIL: --help says SetProgramUsageMessage() never called"; fail=1
fi

dir=${TEST_TMPDIR:-/tmp}/http_ui_cli.$$
for bad in '[{"replace":"(unclosed","with":"x"}]' '[{' '{"not":"a list"}'; do
  err=$(timeout 20 "$bin" --port=0 --dir="$dir" --exit_after_s=5 --transforms="$bad" 2>&1 >/dev/null)
  rc=$?
  lines=$(printf '%s\n' "$err" | grep -c .)
  if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q -- "--transforms" <<<"$err"; then
    echo "FAIL: --transforms='$bad' gave exit $rc and $lines line(s):"; echo "$err"; fail=1
  fi
done
# A good list still starts (and exits by itself).
out=$(timeout 20 "$bin" --port=0 --dir="$dir" --exit_after_s=1 --transforms='[]' 2>&1)
rc=$?
if [ "$rc" -ne 0 ]; then echo "FAIL: --transforms='[]' exit $rc: $out"; fail=1; fi
[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
