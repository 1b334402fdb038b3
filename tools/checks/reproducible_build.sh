#!/usr/bin/env bash
# Reproducible builds: builds the example binaries twice from the committed
# tree, in two clones at different paths with separate Bazel output bases
# and no shared cache, and compares them byte for byte. A timestamp, an
# absolute path or a random build id in a binary makes this fail.
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
for copy in first second/nested; do
  git clone -q "$root" "$work/$copy" || exit 1
  (cd "$work/$copy" &&
   bazel --output_base="$work/${copy//\//_}.ob" build "${config[@]}" --disk_cache= -c opt "${targets[@]}" >"$work/${copy//\//_}.log" 2>&1) ||
    { cat "$work/${copy//\//_}.log"; echo "check-result: 0 passed, 1 failed"; exit 1; }
done

passed=0 failed=0
for t in "${targets[@]}"; do
  rel=${t#//}; rel=${rel/://}
  a="$work/first.ob/execroot/flamekit/bazel-out/k8-opt/bin/$rel"
  b="$work/second_nested.ob/execroot/flamekit/bazel-out/k8-opt/bin/$rel"
  if cmp -s "$a" "$b"; then
    echo "reproducible: $t $(sha256sum "$a" | cut -c1-16)"
    passed=$((passed + 1))
  else
    echo "NOT reproducible: $t differs between two clean builds"
    failed=$((failed + 1))
  fi
done
echo "check-result: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
