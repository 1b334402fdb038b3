#!/bin/bash
# A program with its own SIGPROF profiler (sigprof_ticks: signal(SIGPROF) +
# setitimer(ITIMER_PROF, 10 ms), 1.5 s of CPU) under the agent. Whatever the
# engine, the program's tick count must stay what it is without the agent
# (the agent's signals must not reach its handler, nor may the agent take
# SIGPROF away from it), and the engines that can sample on another signal
# must still profile it. itimer, which needs SIGPROF, steps aside with one
# line and writes no profile.
# (FLAMEKIT_TEST_AGENT runs the checks on another build of the agent.)
set -u

RUNFILES="${TEST_SRCDIR}/${TEST_WORKSPACE}/examples/agent"
AGENT="${FLAMEKIT_TEST_AGENT:-${RUNFILES}/libflamekit_agent.so}"
TICKS="${RUNFILES}/sigprof_ticks"
OUT="${TEST_TMPDIR}/agent_signal"
mkdir -p "${OUT}"
CPU_MS=1500
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
total_samples() {
  awk '{ n += $NF } END { print n + 0 }' "$1"
}
# ticks_of "ticks N cpu_ms M" -> N
ticks_of() {
  awk '$1 == "ticks" { print $2 }' <<<"$1"
}

baseline=$(ticks_of "$("${TICKS}" "${CPU_MS}")")
echo "without the agent: ${baseline:-?} ticks for ${CPU_MS} ms of CPU"
if [[ -z "${baseline}" ]] || (( baseline < 50 )); then
  echo "FAIL: sigprof_ticks counted '${baseline}' ticks alone; expected ~$((CPU_MS / 10))" >&2
  exit 1
fi
# Within 30 % of the run without the agent.
low=$((baseline * 7 / 10))
high=$((baseline * 13 / 10))

for event in cpu ctimer wall itimer; do
  rm -f "${OUT}/${event}"-*
  result=$(LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT="${event}" FLAMEKIT_INTERVAL=10ms \
    FLAMEKIT_OUTPUT="${OUT}/${event}-%p.collapsed" "${TICKS}" "${CPU_MS}" \
    2>"${OUT}/${event}.stderr")
  code=$?
  ticks=$(ticks_of "${result}")
  profile=$(ls "${OUT}/${event}"-*.collapsed 2>/dev/null | head -1)
  samples=$([[ -n "${profile}" ]] && total_samples "${profile}" || echo none)
  echo "${event}: program counted ${ticks:-?} ticks; agent: ${samples} samples; stderr: $(cat "${OUT}/${event}.stderr")"
  [[ ${code} == 0 ]] || fail "${event}: sigprof_ticks exited ${code}"
  if [[ -z "${ticks}" ]] || (( ticks < low || ticks > high )); then
    fail "${event}: the program's own SIGPROF handler counted ${ticks:-nothing}, ${baseline} without the agent (allowed ${low}..${high})"
  fi
  if [[ "${event}" == itimer ]]; then
    lines=$(wc -l <"${OUT}/${event}.stderr")
    grep -q "^flamekit agent: .*SIGPROF.*steps aside" "${OUT}/${event}.stderr" && [[ ${lines} == 1 ]] ||
      fail "itimer: want one 'steps aside' line, got: $(cat "${OUT}/${event}.stderr")"
    [[ -z "${profile}" ]] || fail "itimer: stepped aside but wrote ${profile}"
    continue
  fi
  if [[ -z "${profile}" ]]; then
    fail "${event}: no profile; stderr: $(cat "${OUT}/${event}.stderr")"
    continue
  fi
  in_spin=$(grep -E '(^|;)main;spin' "${profile}" | awk '{ n += $NF } END { print n + 0 }')
  # 1.5 s of CPU at 10 ms: ~150 samples; the timer engines tick at 4 ms
  # granularity here (HZ=250), so allow for rounding and start-up.
  (( samples >= 75 )) || fail "${event}: only ${samples} samples for ${CPU_MS} ms of CPU: $(cat "${OUT}/${event}.stderr")"
  (( in_spin * 10 >= samples * 8 )) ||
    fail "${event}: ${in_spin} of ${samples} samples in main;spin: $(sort -t' ' -k2 -n -r "${profile}" | head -5)"
done

# --- a program using real-time signals from SIGRTMAX down, the agent's
# among them, installed after the agent started ---
RT_USER="${RUNFILES}/rt_signal_user"
for event in cpu ctimer wall; do
  rm -f "${OUT}/rt-${event}"-*
  result=$(LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT="${event}" FLAMEKIT_INTERVAL=10ms \
    FLAMEKIT_OUTPUT="${OUT}/rt-${event}-%p.collapsed" "${RT_USER}" 1000 \
    2>"${OUT}/rt-${event}.stderr")
  code=$?
  profile=$(ls "${OUT}/rt-${event}"-*.collapsed 2>/dev/null | head -1)
  samples=$([[ -n "${profile}" ]] && total_samples "${profile}" || echo 0)
  in_spin=$([[ -n "${profile}" ]] && grep -E '(^|;)main;spin' "${profile}" | awk '{ n += $NF } END { print n + 0 }' || echo 0)
  echo "rt ${event}: program: '${result}'; agent: ${samples} samples, ${in_spin} in spin"
  [[ ${code} == 0 ]] || fail "rt ${event}: rt_signal_user exited ${code}: $(cat "${OUT}/rt-${event}.stderr")"
  [[ "${result}" == "received 80 of 80 foreign 0" ]] ||
    fail "rt ${event}: the program's handlers got '${result}', want 'received 80 of 80 foreign 0'"
  # 1 s of CPU at 10 ms.
  (( samples >= 50 && in_spin * 10 >= samples * 8 )) ||
    fail "rt ${event}: ${samples} samples, ${in_spin} in spin: $(cat "${OUT}/rt-${event}.stderr")"
done

# FLAMEKIT_SIGNAL picks the signal; a bad one is one line and no profiling.
rm -f "${OUT}"/sig-*
result=$(LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=ctimer FLAMEKIT_SIGNAL=SIGRTMIN+3 \
  FLAMEKIT_OUTPUT="${OUT}/sig-%p.collapsed" "${TICKS}" 300 2>"${OUT}/sig.stderr")
ls "${OUT}"/sig-*.collapsed >/dev/null 2>&1 ||
  fail "FLAMEKIT_SIGNAL=SIGRTMIN+3: no profile: $(cat "${OUT}/sig.stderr")"

if (( failures > 0 )); then
  echo "${failures} check(s) failed" >&2
  exit 1
fi
echo "all agent signal checks passed"
