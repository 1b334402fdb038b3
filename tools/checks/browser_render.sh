#!/usr/bin/env bash
# Real-browser checks of the rendered flame graph, diff graph and SVG:
# builds //include/flamekit/render:browser_fixtures, writes the pages, and
# drives Debian's /usr/bin/chromium with playwright-core
# (tools/browser/check_render.mjs). Prints "check-result: N passed, M failed".
# Screenshots go to $(bazel info bazel-testlogs)/browser_render/.
#
# BAZEL overrides the bazel command (default: plain `bazel`, the caller's
# output base), e.g. BAZEL="bazel --output_base=/root/.cache/bazel/fk_render".
set -uo pipefail
source "$(dirname "$0")/lib/browser_prelude.sh"

$BAZEL build "${config[@]}" //include/flamekit/render:browser_fixtures || fail_setup
bin=$($BAZEL info "${config[@]}" bazel-bin)/include/flamekit/render/browser_fixtures
shots=$($BAZEL info "${config[@]}" bazel-testlogs)/browser_render
pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
"$bin" "$pages" >/dev/null || fail_setup
node "$root/tools/browser/check_render.mjs" "$pages" "$shots"
