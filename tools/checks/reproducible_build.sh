#!/usr/bin/env bash
# Reproducible builds: builds the example binaries from the committed tree
# in a clone at another path, with its own Bazel output base and no cache,
# and compares them byte for byte with this checkout's `-c opt` build (which
# the README's main command has usually built already, or took from the
# shared disk cache: an output cached from an earlier build elsewhere must
# match too). A timestamp, an absolute path or a random build id in a binary
# makes this fail. When this checkout has uncommitted changes, a second
# clean clone stands in for it.
#
# A user can check a release the same way: clone it twice anywhere, build
# with `bazel build -c opt <target>` in each, and compare with sha256sum.
set -uo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
work=$(mktemp -d /tmp/flamekit-repro.XXXXXX)
trap 'for ob in "$work"/*.ob; do [ -d "$ob" ] && bazel --output_base="$ob" shutdown >/dev/null 2>&1; done; rm -rf "$work"' EXIT

targets=()
for t in //examples/cli:flamekit //examples/demo:demo_workload; do
  pkg=${t#//}; pkg=${pkg%%:*}
  [ -f "$pkg/BUILD.bazel" ] && targets+=("$t")
done

config=()
[ "${CI:-}" = "true" ] && config=(--config=ci)
fail_build() { cat "$1"; echo "check-result: 0 passed, 1 failed"; exit 1; }

# build_clone DIR: clones the committed tree into $work/DIR, builds there
# from scratch, and sets `built` to its bazel-bin.
build_clone() {
  local copy=$1 ob="$work/${1//\//_}.ob" log="$work/${1//\//_}.log"
  git clone -q "$root" "$work/$copy" || { echo "check-result: 0 passed, 1 failed"; exit 1; }
  (cd "$work/$copy" &&
   bazel --output_base="$ob" build "${config[@]}" --disk_cache= -c opt "${targets[@]}" >"$log" 2>&1) ||
    fail_build "$log"
  built="$ob/execroot/flamekit/bazel-out/k8-opt/bin"
}

if [ -z "$(git status --porcelain --untracked-files=no)" ]; then
  bazel build "${config[@]}" -c opt "${targets[@]}" >"$work/here.log" 2>&1 || fail_build "$work/here.log"
  first=$(bazel info "${config[@]}" -c opt bazel-bin 2>/dev/null)
  echo "first build: this checkout ($root)"
else
  echo "this checkout has uncommitted changes: comparing two clean clones instead"
  build_clone first
  first=$built
fi
build_clone second/nested
second=$built

passed=0 failed=0
for t in "${targets[@]}"; do
  rel=${t#//}; rel=${rel/://}
  a="$first/$rel"
  b="$second/$rel"
  if cmp -s "$a" "$b"; then
    echo "reproducible: $t $(sha256sum "$a" | cut -c1-16)"
    passed=$((passed + 1))
  else
    echo "NOT reproducible: $t differs between the two builds"
    failed=$((failed + 1))
  fi
done
echo "check-result: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
