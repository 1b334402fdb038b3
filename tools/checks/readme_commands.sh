#!/usr/bin/env bash
# Runs README.md's ```sh blocks, each as one script (bash -euo pipefail) from
# the repository root, in order: the README's commands must work as written.
# Each block is one case. Two exceptions, both run elsewhere: the line
# `bash tools/test.sh` (the command running this check; CI runs it through
# .ci/run) and ```python blocks (the WORKSPACE snippet, which
# tools/checks/consumer_workspace.sh proves by building a workspace that
# contains it; checked line by line below).
set -uo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d /tmp/flamekit-readme.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Split the sh blocks into files: $work/block-N.sh.
awk -v dir="$work" '
  /^```sh[[:space:]]*$/ { inblock = 1; n++; file = sprintf("%s/block-%02d.sh", dir, n); next }
  /^```/ { inblock = 0; next }
  inblock && $0 !~ /^[[:space:]]*bash tools\/test\.sh([[:space:]]|$)/ { print > file }
' README.md

passed=0 failed=0
for block in "$work"/block-*.sh; do
  [ -f "$block" ] || continue
  grep -qvE '^[[:space:]]*(#.*)?$' "$block" || continue   # nothing left to run
  echo "readme: --- $(basename "$block")"
  sed 's/^/readme$ /' "$block"
  started=$(date +%s)
  if bash -euo pipefail "$block" </dev/null; then
    passed=$((passed + 1))
  else
    echo "readme: FAILED (exit $?): $(basename "$block")"
    failed=$((failed + 1))
  fi
  # Which block a slow CI run spent its time in.
  echo "readme: $(basename "$block") took $(( $(date +%s) - started )) s"
done

# The WORKSPACE snippet users copy must be the one the consumer workspace
# uses (modulo the path to flamekit).
snippet=$(awk '/^```python/ { inblock = 1; next } /^```/ { inblock = 0 } inblock' README.md |
          grep -E 'local_repository|load|flamekit_dependencies' | sed 's|third_party/flamekit|../..|')
while IFS= read -r line; do
  [ -z "$line" ] && continue
  if grep -qF "$line" tools/consumer_workspace/WORKSPACE.bazel; then
    passed=$((passed + 1))
  else
    echo "readme: WORKSPACE line not in tools/consumer_workspace: $line"
    failed=$((failed + 1))
  fi
done <<< "$snippet"

echo "check-result: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
