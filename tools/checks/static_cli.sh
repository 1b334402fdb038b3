#!/usr/bin/env bash
# The static CLI check: builds //examples/cli:flamekit fully static
# (`-c opt --config=static`), checks with `file` and `ldd` that it needs no
# dynamic loader, and runs it in an empty root: a temporary directory that
# holds only the binary and a fresh /proc (unshare --mount --pid --fork
# --mount-proc, then chroot), as in a `FROM scratch` image. A dynamic binary
# copied into the same root must fail there (the control that proves the
# root has no libc). Ends with `check-result: N passed, M failed`; skips the
# empty-root part with a reason when the machine forbids unshare/chroot.
#
#   bash tools/checks/static_cli.sh
#   FLAMEKIT_BAZEL_STARTUP=--output_base=/root/.cache/bazel/fk_env bash tools/checks/static_cli.sh
#   FLAMEKIT_STATIC_CLI=/path/to/flamekit bash tools/checks/static_cli.sh   # skip the build
set -uo pipefail
cd "$(dirname "$0")/../.."

passed=0
failed=0
pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
skip() { echo "SKIP: $*"; }
finish() {
  [ -n "${root:-}" ] && rm -rf "$root"
  echo "check-result: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# shellcheck disable=SC2206  # word splitting of the startup flags is wanted
bazel_cmd=(bazel ${FLAMEKIT_BAZEL_STARTUP:-})
static_flags=(-c opt --config=static)
binary=${FLAMEKIT_STATIC_CLI:-}

if [ -z "$binary" ]; then
  echo "== ${bazel_cmd[*]} build ${static_flags[*]} //examples/cli:flamekit"
  if "${bazel_cmd[@]}" build "${static_flags[@]}" //examples/cli:flamekit; then
    pass "static build of //examples/cli:flamekit"
    binary="$("${bazel_cmd[@]}" info "${static_flags[@]}" bazel-bin 2>/dev/null)/examples/cli/flamekit"
  else
    fail "static build of //examples/cli:flamekit (see the link errors above)"
    finish
  fi
fi
[ -x "$binary" ] || { fail "no executable at $binary"; finish; }

# 1. Static according to file(1) and ldd(1).
file_out=$(file -L "$binary")
echo "file: $file_out"
if echo "$file_out" | grep -qE 'statically linked|static-pie linked'; then
  pass "file(1) says static"
else
  fail "file(1) does not say static"
fi
ldd_out=$(ldd "$binary" 2>&1)
echo "ldd: $ldd_out"
if echo "$ldd_out" | grep -qE 'not a dynamic executable|statically linked'; then
  pass "ldd(1) finds no shared libraries"
else
  fail "ldd(1) lists shared libraries"
fi

# 2. An empty root: the binary and a mount point for /proc, nothing else.
root=$(mktemp -d /tmp/flamekit-empty-root.XXXXXX)
cp "$binary" "$root/flamekit"
mkdir "$root/proc"
control_src=$(type -P true)
cp "$control_src" "$root/dynamic-control"
if [ "$(id -u)" -ne 0 ]; then
  unshare_cmd=(unshare -r --mount --pid --fork "--mount-proc=$root/proc")
else
  unshare_cmd=(unshare --mount --pid --fork "--mount-proc=$root/proc")
fi
if ! probe=$("${unshare_cmd[@]}" chroot "$root" /flamekit help 2>&1) &&
   echo "$probe" | grep -qiE 'unshare failed|Operation not permitted|cannot change root'; then
  skip "this machine forbids unshare/chroot ($probe); the empty-root run is not tested here"
  finish
fi
in_root() { "${unshare_cmd[@]}" chroot "$root" "$@"; }
echo "== empty root $root: $(cd "$root" && ls -A | tr '\n' ' ')"

if ! [ -x "$root/dynamic-control" ] || ! file -L "$root/dynamic-control" | grep -q 'dynamically linked'; then
  fail "control: could not put a dynamic binary ($control_src) into the root"
elif control=$(in_root /dynamic-control 2>&1); then
  fail "a dynamic binary ran in the empty root: it is not empty ($control)"
else
  pass "control: a dynamic binary cannot run in the empty root ($control)"
fi

out=$(in_root /flamekit help 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && echo "$out" | grep -q 'usage: flamekit'; then
  pass "flamekit help runs in the empty root"
else
  fail "flamekit help in the empty root (exit $rc): $out"
fi

# doctor reads /proc and probes perf events and timers: the real test of a
# libc-free binary. Exit 0 or 1 are both answers (1 = a check FAILed).
out=$(in_root /flamekit doctor 2>&1)
rc=$?
echo "$out" | sed 's/^/  doctor: /'
if echo "$out" | grep -qiE "unknown command|no such command|not a flamekit command"; then
  skip "flamekit doctor is not in this CLI's command table yet"
elif [ "$rc" -le 1 ] && echo "$out" | grep -q '^recommended event: ' &&
     echo "$out" | grep -q 'kernel.perf_event_paranoid: [-0-9]'; then
  pass "flamekit doctor runs in the empty root (exit $rc) and reads /proc"
else
  fail "flamekit doctor in the empty root (exit $rc)"
fi

finish
