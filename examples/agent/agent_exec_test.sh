#!/bin/bash
# The agent profiles the process it was loaded into, not every program that
# process runs: LD_PRELOAD is inherited through fork+exec, system() and
# posix_spawn, and each exec'd child used to start its own profiler (~0.25 s)
# and leave its own file (a shell running /bin/true 50 times: 51 files).
# The agent takes itself out of LD_PRELOAD (keeping other preloads);
# FLAMEKIT_FOLLOW_EXEC=1 keeps following.
# (FLAMEKIT_TEST_AGENT runs the checks on another build of the agent.)
set -u

AGENT="${FLAMEKIT_TEST_AGENT:-${TEST_SRCDIR}/${TEST_WORKSPACE}/examples/agent/libflamekit_agent.so}"
OUT="${TEST_TMPDIR}/agent_exec"
mkdir -p "${OUT}"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
count_files() {
  ls "${OUT}"/$1-*.collapsed 2>/dev/null | wc -l
}

# --- a shell running 50 programs: one profile, the shell's. bash builds
# its children's environment from main()'s envp, dash from environ. (dash
# ends by _exit(), which runs no atexit() handler: it leaves no profile of
# its own but one line saying so, and the count to check is the
# children's: zero.) ---
for shell in bash sh; do
  rm -f "${OUT}"/loop-*
  start=$(date +%s%N)
  LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=cpu FLAMEKIT_OUTPUT="${OUT}/loop-%p.collapsed" \
    "${shell}" -c 'for i in $(seq 50); do /bin/true; done' 2>"${OUT}/loop.stderr"
  code=$?
  elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
  files=$(count_files loop)
  echo "${shell} running /bin/true 50 times under the agent: ${elapsed_ms} ms, ${files} profile(s)"
  [[ ${code} == 0 ]] || fail "${shell}: the loop exited ${code}: $(head -3 "${OUT}/loop.stderr")"
  want=1
  [[ ${shell} == sh && $(readlink -f /bin/sh) == */dash ]] && want=0
  [[ ${files} == "${want}" ]] || fail "${shell}: want ${want} profile(s) (the shell's), got ${files}"
  summaries=$(grep -c "^flamekit agent: .* samples" "${OUT}/loop.stderr")
  [[ ${summaries} == "${want}" ]] ||
    fail "${shell}: want ${want} summary line(s), got ${summaries}: $(head -3 "${OUT}/loop.stderr")"
  if (( want == 0 )); then
    lines=$(wc -l <"${OUT}/loop.stderr")
    grep -q "^flamekit agent: the program ended by _exit().*no profile" "${OUT}/loop.stderr" &&
      [[ ${lines} == 1 ]] || fail "${shell}: want one line on _exit(), got: $(head -3 "${OUT}/loop.stderr")"
  fi
done

# --- _exit() from a program that is not a shell, and from its forked child
# (which is not profiled and says nothing) ---
rm -f "${OUT}"/exit-*
LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=ctimer FLAMEKIT_OUTPUT="${OUT}/exit-%p.collapsed" \
  perl -MPOSIX -e 'my $p = fork(); POSIX::_exit(0) if $p == 0; waitpid($p, 0); POSIX::_exit(3)' \
  2>"${OUT}/exit.stderr"
code=$?
lines=$(wc -l <"${OUT}/exit.stderr")
[[ ${code} == 3 ]] || fail "perl POSIX::_exit(3) under the agent exited ${code}"
grep -q "^flamekit agent: the program ended by _exit().*no profile written to ${OUT}/exit-" \
  "${OUT}/exit.stderr" && [[ ${lines} == 1 ]] ||
  fail "perl _exit: want one line, got: $(cat "${OUT}/exit.stderr")"

# --- system() from perl (fork + exec of /bin/sh, then of the command) ---
LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=ctimer FLAMEKIT_OUTPUT="${OUT}/system-%p.collapsed" \
  perl -e 'system("/bin/true") == 0 or die; system("sh", "-c", "/bin/true; /bin/true") == 0 or die' \
  2>"${OUT}/system.stderr"
files=$(count_files system)
[[ ${files} == 1 ]] || fail "system(): want perl's profile only, got ${files} files: $(head -3 "${OUT}/system.stderr")"

# --- other preloads stay, for the process and its children ---
other=$(ls /lib/*-linux-gnu/libm.so.6 /usr/lib/*-linux-gnu/libm.so.6 2>/dev/null | head -1)
if [[ -z "${other}" ]]; then
  fail "no libm.so.6 to preload beside the agent"
else
  for value in "${AGENT} ${other}" "${other}:${AGENT}"; do
    seen=$(LD_PRELOAD="${value}" FLAMEKIT_EVENT=ctimer FLAMEKIT_OUTPUT="${OUT}/keep-%p.collapsed" \
      bash -c 'echo "self=$LD_PRELOAD"; env | grep "^LD_PRELOAD="' 2>/dev/null)
    want=$(printf 'self=%s\nLD_PRELOAD=%s' "${other}" "${other}")
    [[ "${seen}" == "${want}" ]] || fail "LD_PRELOAD='${value}': the program and its child saw '${seen}', want '${want}'"
  done
fi

# --- FLAMEKIT_FOLLOW_EXEC=1: every exec'd program is profiled too ---
rm -f "${OUT}"/follow-*
LD_PRELOAD="${AGENT}" FLAMEKIT_FOLLOW_EXEC=1 FLAMEKIT_EVENT=ctimer \
  FLAMEKIT_OUTPUT="${OUT}/follow-%p.collapsed" \
  bash -c 'for i in 1 2 3; do /bin/true; done' 2>"${OUT}/follow.stderr"
files=$(count_files follow)
[[ ${files} == 4 ]] || fail "FLAMEKIT_FOLLOW_EXEC=1: want 4 profiles (bash + 3), got ${files}: $(head -3 "${OUT}/follow.stderr")"

if (( failures > 0 )); then
  echo "${failures} check(s) failed" >&2
  exit 1
fi
echo "all agent exec checks passed"
