#!/bin/bash
# End-to-end test of the built flamekit binary: real files in, real files
# out, exit codes and messages checked.
set -u

FLAMEKIT="${TEST_SRCDIR}/${TEST_WORKSPACE}/examples/cli/flamekit"
DATA="${TEST_SRCDIR}/${TEST_WORKSPACE}/testdata"
OUT="${TEST_TMPDIR}/cli_e2e"
mkdir -p "${OUT}"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect CODE DESCRIPTION -- ARGS...: runs flamekit, checks the exit code;
# stdout and stderr are left in ${OUT}/stdout and ${OUT}/stderr.
expect() {
  local want="$1" what="$2"
  shift 3
  "${FLAMEKIT}" "$@" >"${OUT}/stdout" 2>"${OUT}/stderr"
  local got=$?
  if [[ "${got}" != "${want}" ]]; then
    fail "${what}: exit ${got}, want ${want}; stderr: $(cat "${OUT}/stderr")"
  fi
}

expect_stderr() {
  grep -qF -- "$1" "${OUT}/stderr" || fail "stderr lacks '$1': $(cat "${OUT}/stderr")"
}

# Round trip through the binary keeps every stack and count.
expect 0 "convert" -- convert "${DATA}/collapsed/server.txt" -f "${OUT}/server.txt"
diff <(sort "${DATA}/collapsed/server.txt") <(sort "${OUT}/server.txt") >/dev/null ||
  fail "convert changed stacks"
expect 0 "convert again" -- convert "${OUT}/server.txt" -f "${OUT}/server2.folded"
cmp -s "${OUT}/server.txt" "${OUT}/server2.folded" || fail "second convert differs"

# Standard input and output.
"${FLAMEKIT}" convert - -f - <"${DATA}/collapsed/before.txt" >"${OUT}/stdio.txt" ||
  fail "convert - -f - failed"
diff <(sort "${DATA}/collapsed/before.txt") "${OUT}/stdio.txt" >/dev/null ||
  fail "stdin/stdout convert differs"

# Transforms from a file.
expect 0 "transforms" -- convert "${DATA}/collapsed/server.txt" -f "${OUT}/clean.txt" \
  --transforms "${DATA}/transforms/cleanup.json"
grep -q "epoll_wait" "${OUT}/clean.txt" && fail "remove transform left epoll_wait"
grep -q "{lambda}::operator()() const;memcpy 23" "${OUT}/clean.txt" ||
  fail "replace transform did not rename lambdas"

# Diff.
expect 0 "diff" -- diff "${DATA}/collapsed/before.txt" "${DATA}/collapsed/after.txt" \
  -f "${OUT}/diff.txt" --normalize
grep -qx "main;Server::Run();epoll_wait 20 10" "${OUT}/diff.txt" ||
  fail "normalized diff line missing: $(cat "${OUT}/diff.txt")"
[[ "$(wc -l <"${OUT}/diff.txt")" == 4 ]] || fail "diff should have 4 lines"

# Usage errors: exit 2 with the usage line.
expect 2 "no args" --
expect 2 "unknown flag" -- convert "${DATA}/collapsed/server.txt" -f x.txt --nope
expect_stderr "unknown flag --nope"
expect_stderr "usage: flamekit convert INPUT... -f OUTPUT"
expect 2 "missing output" -- diff a b
expect_stderr "missing -f OUTPUT"

# Bad input: exit 1 with one clear message, no output file, no crash.
expect 1 "bad line" -- convert "${DATA}/collapsed/bad_line.txt" -f "${OUT}/bad.txt"
expect_stderr "bad_line.txt:3: expected 'frames count'"
[[ -e "${OUT}/bad.txt" ]] && fail "bad input left an output file"
expect 1 "empty" -- convert "${DATA}/collapsed/empty.txt" -f "${OUT}/e.txt"
expect_stderr "empty file"
# A binary file given by mistake: the flamekit executable itself.
cp "${FLAMEKIT}" "${OUT}/garbage.bin"
expect 1 "garbage" -- convert "${OUT}/garbage.bin" -f "${OUT}/g.txt"
expect_stderr "not collapsed text"
expect 1 "bad regex file" -- convert "${DATA}/collapsed/server.txt" -f "${OUT}/r.txt" \
  --transforms "${DATA}/transforms/bad_regex.json"
expect_stderr 'entry 2: invalid regex "("'
expect 0 "html" -- convert "${DATA}/collapsed/server.txt" -f "${OUT}/f.html" --title "server profile"
grep -q "<canvas" "${OUT}/f.html" || fail "f.html is not a flame graph page"
grep -q "server profile" "${OUT}/f.html" || fail "f.html lacks the --title"
expect 0 "svg" -- convert "${DATA}/collapsed/server.txt" -f "${OUT}/f.svg" --minwidth 0.5
grep -q "<svg" "${OUT}/f.svg" || fail "f.svg is not an SVG"
expect 0 "diff html" -- diff "${DATA}/collapsed/before.txt" "${DATA}/collapsed/after.txt" -f "${OUT}/d.html"
grep -q "<canvas" "${OUT}/d.html" || fail "d.html is not a diff graph page"
expect 1 "unknown extension" -- convert "${DATA}/collapsed/server.txt" -f "${OUT}/f.xyz"
expect_stderr "cannot tell the output format"
[[ -e "${OUT}/f.xyz" ]] && fail "an unknown format left an output file"
expect 2 "bad minwidth" -- convert "${DATA}/collapsed/server.txt" -f "${OUT}/f.html" --minwidth abc
expect_stderr "--minwidth takes a percentage"
expect 1 "missing input" -- convert "${OUT}/does-not-exist.txt" -f "${OUT}/m.txt"
expect_stderr "no such file"
expect 1 "directory input" -- convert "${OUT}" -f "${OUT}/d.txt"
expect_stderr "is a directory"

# Help.
expect 0 "help" -- help
grep -q "convert" "${OUT}/stdout" || fail "help lacks convert"
expect 0 "convert --help" -- convert --help
grep -q -- "--transforms FILE" "${OUT}/stdout" || fail "convert --help lacks --transforms"

if [[ ${failures} -gt 0 ]]; then
  echo "${failures} failure(s)" >&2
  exit 1
fi
echo "PASS"
