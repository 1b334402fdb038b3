#!/usr/bin/env bash
# Rewrites the golden files in testdata/golden/ from the current renderers
# (//include/flamekit/render:golden_gen). Review `git diff testdata/golden`
# before committing. BAZEL overrides the bazel command, e.g.
#   BAZEL="bazel --output_base=/root/.cache/bazel/fk_render" tools/update_goldens.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BAZEL=${BAZEL:-bazel}
$BAZEL run //include/flamekit/render:golden_gen -- "$PWD/testdata/golden"
