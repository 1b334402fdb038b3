#!/bin/bash
# The LD_PRELOAD agent on programs nobody here wrote: Debian's perl (CPU)
# and coreutils' sleep (wall: a thread blocked in one call), the profiles
# they leave, and bad settings that must leave the program running
# unprofiled with one line of explanation.
set -u

AGENT="${TEST_SRCDIR}/${TEST_WORKSPACE}/examples/agent/libflamekit_agent.so"
OUT="${TEST_TMPDIR}/agent"
mkdir -p "${OUT}"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# samples_matching FILE PATTERN: samples of the collapsed stacks in FILE
# whose stack matches the extended regex PATTERN.
samples_matching() {
  grep -E -- "$2" "$1" | awk '{ n += $NF } END { print n + 0 }'
}
total_samples() {
  awk '{ n += $NF } END { print n + 0 }' "$1"
}

# --- cpu: perl's interpreter loop ---
perl_program='my $x = 0; for my $i (1 .. 20_000_000) { $x += $i % 7 } print "$x\n"'
expected=$(perl -e "${perl_program}")
perl_out="${OUT}/perl-%p.collapsed"
result=$(LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=cpu FLAMEKIT_INTERVAL=1ms FLAMEKIT_UNWIND=fp \
  FLAMEKIT_OUTPUT="${perl_out}" perl -e "${perl_program}" 2>"${OUT}/perl.stderr")
code=$?
[[ ${code} == 0 ]] || fail "perl under the agent exited ${code}: $(cat "${OUT}/perl.stderr")"
[[ "${result}" == "${expected}" ]] || fail "perl computed '${result}' under the agent, '${expected}' without"
perl_file=$(ls "${OUT}"/perl-*.collapsed 2>/dev/null | head -1)
if [[ -z "${perl_file}" ]]; then
  fail "perl left no profile; stderr: $(cat "${OUT}/perl.stderr")"
else
  grep -q "flamekit agent: .* samples .* -> ${perl_file}" "${OUT}/perl.stderr" ||
    fail "no summary line: $(cat "${OUT}/perl.stderr")"
  total=$(total_samples "${perl_file}")
  perl_frames=$(samples_matching "${perl_file}" 'Perl_(runops|pp_)')
  echo "perl: ${total} samples, ${perl_frames} in Perl_runops/Perl_pp_*"
  (( total >= 100 )) || fail "perl: only ${total} samples at 1 ms"
  (( perl_frames * 2 >= total )) || fail "perl: the interpreter loop is not where the time went: $(sort -t' ' -k2 -n -r "${perl_file}" | head -5)"
fi

# --- dwarf (the agent's default): Debian's perl has no frame pointers;
# .eh_frame rules give its whole stacks, from _start down to the opcode ---
dwarf_out="${OUT}/perl-dwarf-%p.collapsed"
LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=cpu FLAMEKIT_INTERVAL=1ms \
  FLAMEKIT_OUTPUT="${dwarf_out}" perl -e "${perl_program}" >/dev/null 2>"${OUT}/perl-dwarf.stderr"
dwarf_file=$(ls "${OUT}"/perl-dwarf-*.collapsed 2>/dev/null | head -1)
if [[ -z "${dwarf_file}" ]]; then
  fail "perl (dwarf) left no profile; stderr: $(cat "${OUT}/perl-dwarf.stderr")"
else
  total=$(total_samples "${dwarf_file}")
  whole=$(samples_matching "${dwarf_file}" '(^|;)main;perl_run;Perl_runops')
  shallow=$(samples_matching "${perl_file:-/dev/null}" '(^|;)main;perl_run;Perl_runops')
  echo "perl (dwarf): ${total} samples, ${whole} from main down to the run loop (fp: ${shallow})"
  (( total >= 100 )) || fail "perl (dwarf): only ${total} samples at 1 ms"
  (( whole * 10 >= total * 9 )) ||
    fail "perl (dwarf): ${whole} of ${total} samples reach main: $(sort -t' ' -k2 -n -r "${dwarf_file}" | head -5)"
fi

# --- a single-threaded program's profile says what the collector thread
# costs it (glibc's single-thread mutex and malloc paths are off) ---
html_out="${OUT}/note-%p.html"
LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=ctimer FLAMEKIT_OUTPUT="${html_out}" \
  perl -e 'my $x = 0; $x += $_ for 1 .. 3_000_000;' 2>"${OUT}/note.stderr"
html_file=$(ls "${OUT}"/note-*.html 2>/dev/null | head -1)
if [[ -z "${html_file}" ]]; then
  fail "perl (html) left no profile: $(cat "${OUT}/note.stderr")"
else
  grep -q 'id="engine-note">[^<]*single-threaded program' "${html_file}" ||
    fail "perl (html): no single-threaded note in $(grep -o 'id="engine-note">[^<]*' "${html_file}")"
fi

# --- wall: a program blocked in one call for its whole life ---
wall_out="${OUT}/sleep-%p.collapsed"
start=$(date +%s%N)
LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=wall FLAMEKIT_INTERVAL=5ms FLAMEKIT_OUTPUT="${wall_out}" \
  sleep 1 2>"${OUT}/sleep.stderr"
code=$?
elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))
[[ ${code} == 0 ]] || fail "sleep under the agent exited ${code}: $(cat "${OUT}/sleep.stderr")"
(( elapsed_ms >= 990 )) || fail "sleep 1 returned after ${elapsed_ms} ms: interrupted early"
sleep_file=$(ls "${OUT}"/sleep-*.collapsed 2>/dev/null | head -1)
if [[ -z "${sleep_file}" ]]; then
  fail "sleep left no profile; stderr: $(cat "${OUT}/sleep.stderr")"
else
  total=$(total_samples "${sleep_file}")
  # (The call returns EINTR to the handler; its name is still known.)
  asleep=$(samples_matching "${sleep_file}" '\[syscall (clock_)?nanosleep\]')
  echo "sleep: ${total} samples, ${asleep} asleep"
  # ~200 ticks of 5 ms; a slow machine wakes the timer late, never early.
  (( total >= 100 && total <= 215 )) || fail "sleep: ${total} wall samples for 1 s at 5 ms"
  (( asleep * 10 >= total * 9 )) || fail "sleep: ${asleep} of ${total} samples asleep: $(cat "${sleep_file}")"
fi

# --- bad settings: one line, program unharmed, no file ---
# An output that cannot be written is one of them, found at start, not after
# the whole run: a missing directory, a file where a directory should be,
# and /proc (no new files there, even for root).
for setting in "FLAMEKIT_EVENT=bogus" "FLAMEKIT_INTERVAL=-5ms" "FLAMEKIT_OUTPUT=${OUT}/x.docx" \
  "FLAMEKIT_UNWIND=guess" "FLAMEKIT_SIGNAL=SIGBOGUS" "FLAMEKIT_OUTPUT=${OUT}/missing/bad.html" \
  "FLAMEKIT_OUTPUT=/dev/null/bad.html" "FLAMEKIT_OUTPUT=/proc/bad-%p.html"; do
  rm -f "${OUT}"/bad*
  out=$(env LD_PRELOAD="${AGENT}" FLAMEKIT_OUTPUT="${OUT}/bad.html" "${setting}" \
    echo still-runs 2>"${OUT}/bad.stderr")
  code=$?
  [[ ${code} == 0 && "${out}" == "still-runs" ]] ||
    fail "${setting}: the program did not run normally (exit ${code}, '${out}')"
  lines=$(wc -l <"${OUT}/bad.stderr")
  grep -q "^flamekit agent: .*not profiling" "${OUT}/bad.stderr" && [[ ${lines} == 1 ]] ||
    fail "${setting}: want one 'not profiling' line, got: $(cat "${OUT}/bad.stderr")"
  ls "${OUT}"/bad* "${OUT}"/x.docx "${OUT}"/missing >/dev/null 2>&1 && fail "${setting}: a profile was written"
done

# --- a child the program forks is not profiled and writes nothing ---
rm -f "${OUT}"/fork-*
LD_PRELOAD="${AGENT}" FLAMEKIT_EVENT=ctimer FLAMEKIT_OUTPUT="${OUT}/fork-%p.collapsed" \
  perl -e 'my $p = fork(); if ($p == 0) { exit 0 } waitpid($p, 0); my $x = 0; $x += $_ for 1 .. 3_000_000;' \
  2>"${OUT}/fork.stderr"
files=$(ls "${OUT}"/fork-* 2>/dev/null | wc -l)
[[ ${files} == 1 ]] || fail "fork: want the parent's profile only, got ${files} files: $(cat "${OUT}/fork.stderr")"

if (( failures > 0 )); then
  echo "${failures} check(s) failed" >&2
  exit 1
fi
echo "all agent checks passed"
