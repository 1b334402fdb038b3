#!/usr/bin/env bash
# Builds and runs tools/consumer_workspace, a second Bazel workspace that
# depends on flamekit as `@flamekit` the way the README tells users to.
set -euo pipefail
cd "$(dirname "$0")/../consumer_workspace"
trap 'bazel shutdown >/dev/null 2>&1 || true' EXIT
config=()
[ "${CI:-}" = "true" ] && config=(--config=ci)
bazel run "${config[@]}" //:consumer
