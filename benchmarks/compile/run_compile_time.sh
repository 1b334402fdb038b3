#!/usr/bin/env bash
# Compile cost of including flamekit/profiler.h, beside a file that includes
# only Abseil's Status and Time headers: `g++ -std=c++17 -fsyntax-only`,
# each file ROUNDS times (default 5), interleaved, median compiler CPU time
# (user+sys, so another process on the machine moves it less than wall
# time) and median peak RSS. Prints a table; given a path, also writes the
# rows as Google Benchmark-shaped JSON (tools/run_benchmarks.sh does).
#
#   bash benchmarks/compile/run_compile_time.sh [OUT.json]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${ROUNDS:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for ((i = 0; i < rounds; i++)); do
  for f in abseil_only facade_use; do
    /usr/bin/time -f "%U %S %M" -o "$work/t" \
      g++ -std=c++17 -fsyntax-only -I include "benchmarks/compile/$f.cc"
    echo "$f $(cat "$work/t")" >> "$work/all"
  done
done

python3 - "$work/all" "${1:-}" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, user, system, rss = line.split()
    rows.setdefault(name, []).append((float(user) + float(system), int(rss)))
base = statistics.median(t for t, _ in rows["abseil_only"])
out = []
print("| file | compile CPU s (median) | peak RSS MB (median) | vs Abseil-only |")
print("|---|---|---|---|")
for name in ("abseil_only", "facade_use"):
    cpu = statistics.median(t for t, _ in rows[name])
    rss = statistics.median(r for _, r in rows[name]) / 1024.0
    print("| %s | %.2f | %.0f | %.2fx |" % (name, cpu, rss, cpu / base))
    out.append({"name": "BM_CompileTime/" + name, "run_name": "BM_CompileTime/" + name,
                "run_type": "iteration", "iterations": len(rows[name]),
                "real_time": cpu, "cpu_time": cpu, "time_unit": "s",
                "peak_rss_mb": rss, "ratio_to_abseil_only": cpu / base})
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump({"context": {}, "benchmarks": out}, f, indent=1)
PY
