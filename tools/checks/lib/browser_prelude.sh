# Sourced (not run) by the browser checks: cd to the repository root, set
# BAZEL (default plain `bazel`; e.g. BAZEL="bazel --output_base=..." while
# developing) and `config`, skip cleanly without chromium or node, and make
# sure playwright-core is installed from the pinned lockfile (it never
# downloads a browser: the checks drive Debian's /usr/bin/chromium).
# Defines fail_setup: prints a failed check-result and exits.
# It lives in lib/ because tools/test.sh runs every tools/checks/*.sh.
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
root=$(pwd)
BAZEL=${BAZEL:-bazel}
config=()
[ "${CI:-}" = "true" ] && config=(--config=ci)

fail_setup() {
  [ $# -gt 0 ] && echo "FAIL: $*"
  echo "check-result: 0 passed, 1 failed"
  exit 1
}

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
  (cd tools/browser && npm ci --no-audit --no-fund --loglevel=error) ||
    fail_setup "npm ci in tools/browser failed"
fi
