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
cd "$(dirname "$0")/../.."
root=$(pwd)
BAZEL=${BAZEL:-bazel}
config=()
[ "${CI:-}" = "true" ] && config=(--config=ci)

if [ ! -x /usr/bin/chromium ]; then
  echo "SKIP: /usr/bin/chromium is missing (apt-get install chromium)"
  echo "check-result: 0 passed, 0 failed"
  exit 0
fi
if ! command -v node >/dev/null; then
  echo "SKIP: node is missing"
  echo "check-result: 0 passed, 0 failed"
  exit 0
fi
if [ ! -d tools/browser/node_modules/playwright-core ]; then
  # Pinned by package-lock.json; playwright-core downloads no browser.
  (cd tools/browser && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "FAIL: npm ci in tools/browser failed"
    echo "check-result: 0 passed, 1 failed"
    exit 1
  }
fi

$BAZEL build "${config[@]}" //include/flamekit/render:browser_fixtures || {
  echo "check-result: 0 passed, 1 failed"
  exit 1
}
bin=$($BAZEL info "${config[@]}" bazel-bin)/include/flamekit/render/browser_fixtures
shots=$($BAZEL info "${config[@]}" bazel-testlogs)/browser_render
pages=$(mktemp -d)
trap 'rm -rf "$pages"' EXIT
"$bin" "$pages" >/dev/null || {
  echo "check-result: 0 passed, 1 failed"
  exit 1
}
node "$root/tools/browser/check_render.mjs" "$pages" "$shots"
