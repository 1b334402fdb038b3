#!/usr/bin/env bash
# Installs what flamekit needs on Debian bookworm, as root, with no prompts.
# Idempotent: packages already installed are left alone and apt is not
# touched at all when nothing is missing. Reads tools/debian-packages.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=$(grep -vE '^\s*(#|$)' tools/debian-packages.txt)
missing=()
for p in $packages; do
  # ${Status} is "install ok installed" only for a fully installed package.
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: run this script as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
fi

# Node and npm for the browser tests. Many machines carry a newer Node than
# Debian's (from another source), whose npm conflicts with Debian's package,
# so Debian's is installed only where there is no npm at all.
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  echo "setup: installing nodejs and npm from Debian"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm </dev/null >/dev/null
fi

# playwright-core drives Debian's chromium in the browser tests. It is pinned
# by tools/browser/package-lock.json and never downloads a browser of its own.
if [ -f tools/browser/package.json ] && [ ! -d tools/browser/node_modules/playwright-core ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "setup: installing playwright-core from npm"
    (cd tools/browser && npm ci --no-audit --no-fund --loglevel=error </dev/null >/dev/null)
  else
    echo "setup: npm not found; browser tests will be skipped" >&2
  fi
fi
echo "setup: ready"
