#!/usr/bin/env bash
# Runs every command in README.md's ```sh blocks, from the repository root,
# in order, and fails on the first that fails: the README's commands must
# work as written. Two exceptions, both run elsewhere: `bash tools/test.sh`
# (the command running this check; CI runs it through .ci/run) and lines
# inside ```python blocks (the WORKSPACE snippet, which
# tools/checks/consumer_workspace.sh proves by building a workspace that
# contains it).
set -uo pipefail
cd "$(dirname "$0")/../.."

# Collect commands: one per line, with backslash continuations joined.
commands=$(awk '
  /^```sh[[:space:]]*$/ { inblock = 1; next }
  /^```/ { inblock = 0; next }
  inblock {
    line = $0
    sub(/[[:space:]]+#.*$/, "", line)   # trailing comments
    if (line ~ /\\$/) { sub(/\\$/, "", line); pending = pending line; next }
    line = pending line; pending = ""
    if (line ~ /^[[:space:]]*$/) next
    print line
  }' README.md)

passed=0 failed=0
while IFS= read -r cmd; do
  case "$cmd" in
    "bash tools/test.sh"*) continue ;;
  esac
  echo "readme\$ $cmd"
  if bash -c "$cmd" </dev/null; then
    passed=$((passed + 1))
  else
    echo "readme: FAILED (exit $?): $cmd"
    failed=$((failed + 1))
  fi
done <<< "$commands"

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
