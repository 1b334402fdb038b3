#!/usr/bin/env bash
# The link half of header_compile_test (tools/header_compile_test.bzl): the
# objects given are one per header, each compiled from a translation unit
# that includes only that header. A header may define
# only what every translation unit can hold at once (inline functions and
# variables, templates, internal linkage): a strong global symbol (nm's T,
# D, B, R) in any of them is a definition that two translation units
# including the header would both make, and the program would not link
# (or worse, would link one at random). Prints each such symbol with its
# object and exits 1; exits 0 when there is none.
set -uo pipefail
bad=0
objects=0
for object in "$@"; do
  case "$object" in *.o) ;; *) continue ;; esac
  objects=$((objects + 1))
  if ! symbols=$(nm -A -C --defined-only "$object"); then
    echo "header_odr_check: nm could not read $object"
    bad=1
    continue
  fi
  # -A: each line starts with the object's name. The type is the field
  # before the symbol's name; demangled names hold spaces, so match it.
  while read -r line; do
    [ -n "$line" ] || continue
    echo "header_odr_check: strong definition in a header: $line"
    bad=1
  done < <(grep -E '^[^ ]+: ?[0-9a-f]* [TDBR] ' <<<"$symbols")
done
if [ "$objects" -eq 0 ]; then
  echo "header_odr_check: no object given (the BUILD rule passes the headers' objects)"
  exit 1
fi
[ "$bad" -eq 0 ] && echo "header_odr_check: no strong definition in $objects object(s)"
exit "$bad"
