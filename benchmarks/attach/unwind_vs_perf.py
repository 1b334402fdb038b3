#!/usr/bin/env python3
"""flamekit record --unwind fp|dwarf beside perf record -g / --call-graph dwarf.

One load, every profiler at the same rate: Debian's redis-server (built
without frame pointers) on a free loopback port under redis-benchmark,
attached by PID for SECONDS at one sample per millisecond of CPU
(flamekit `-i 1ms`, perf `-e cpu-clock -c 1000000`), 8 KiB user stack
copies for the DWARF modes (both tools' default). Modes run interleaved,
ROUNDS times each, with a `none` phase (no profiler) in every round; each
row reports medians over the rounds:

  profiler_cpu_s  the profiler's CPU (user + system, from wait4; perf's
                  includes its end-of-run build-id pass, as users run it)
  target_cpu_s    redis-server's CPU during the phase (/proc/PID/stat)
  added_cpu_s     profiler + target minus the same round's `none` target
  cpu_vs_perf_dwarf  profiler + target over perf --call-graph dwarf's
  cpu_vs_flamekit_fp  profiler + target over flamekit --unwind fp's (the
                  issue's bound for dwarf: at most 1.1)
  bytes_written   the output file (flamekit .collapsed, perf.data)
  peak_rss_kb     the profiler's peak RSS (ru_maxrss)
  main_pct        share of samples whose stack has a frame `main`
                  (flamekit: its collapsed output; perf: `perf script`)
  samples         samples in the output

Writes Google Benchmark-shaped JSON (tools/run_benchmarks.sh puts it in
the benchmark table). A mode whose tool is missing (perf, redis) is a row
with error_occurred and the reason. Cost: ~(5 x SECONDS + 3) s per round
plus perf script's unwinding (a few seconds); redis and the load are
always stopped (finally), even on Ctrl-C.

  python3 benchmarks/attach/unwind_vs_perf.py --flamekit bazel-bin/examples/cli/flamekit \\
      --seconds 2 --rounds 1 --json out.json
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MODES = ["none", "flamekit_fp", "flamekit_dwarf", "perf_g", "perf_dwarf"]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def run_measured(argv, stdout=subprocess.DEVNULL):
    """Runs argv; returns (exit status, CPU seconds, peak RSS KiB)."""
    p = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = status
    if os.WEXITSTATUS(status) != 0:
        sys.stderr.write("unwind_vs_perf: %s failed: %s\n" % (argv[0], err.decode()[-500:]))
    return os.WEXITSTATUS(status), ru.ru_utime + ru.ru_stime, ru.ru_maxrss


def collapsed_shares(path):
    total = main = 0
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not count.isdigit():
                continue
            total += int(count)
            if "main" in stack.split(";"):
                main += int(count)
    return total, main


def perf_shares(perf, data):
    out = subprocess.run([perf, "script", "-i", data, "-F", "ip,sym"], capture_output=True,
                         text=True, timeout=300).stdout
    total = main = 0
    for block in out.split("\n\n"):
        frames = [l.split(None, 1) for l in block.strip().splitlines()]
        if not frames:
            continue
        total += 1
        if any(len(f) == 2 and f[1].strip() == "main" for f in frames):
            main += 1
    return total, main


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flamekit", required=True)
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json", required=True)
    args = ap.parse_args()

    redis = shutil.which("redis-server")
    bench = shutil.which("redis-benchmark")
    perf = shutil.which("perf")
    rows = []

    def error_row(mode, why):
        rows.append({"name": "BM_UnwindVsPerf/" + mode, "run_name": "BM_UnwindVsPerf/" + mode,
                     "run_type": "iteration", "iterations": 0, "real_time": 0,
                     "cpu_time": 0, "time_unit": "s", "error_occurred": True,
                     "error_message": why})

    if not redis or not bench:
        for m in MODES:
            error_row(m, "redis-server/redis-benchmark missing; bash tools/setup.sh installs them")
        return write(args.json, rows)

    work = tempfile.mkdtemp(prefix="unwind_vs_perf.")
    port = free_port()
    server = load = None
    results = {m: [] for m in MODES}
    try:
        server = subprocess.Popen([redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                   "--appendonly", "no"], stdout=subprocess.DEVNULL)
        for _ in range(100):  # up to 5 s to listen
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        load = subprocess.Popen(["timeout", str(int(args.rounds * len(MODES) * (args.seconds + 15) + 30)),
                                 bench, "-p", str(port), "-q", "-n", "100000000", "-c", "8",
                                 "-t", "set,get,incr,lpush"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        secs = str(args.seconds)
        for r in range(args.rounds):
            for mode in MODES:
                if mode.startswith("perf") and not perf:
                    continue
                out = os.path.join(work, "%s.%d.%s" % (mode, r, "data" if mode.startswith("perf") else "collapsed"))
                if mode == "none":
                    argv = ["sleep", secs]
                elif mode.startswith("flamekit"):
                    argv = [args.flamekit, "record", "-q", "-d", secs, "-i", "1ms", "--unwind",
                            mode.split("_")[1], "-f", out, str(server.pid)]
                else:
                    graph = ["-g"] if mode == "perf_g" else ["--call-graph", "dwarf,8192"]
                    argv = [perf, "record", "-q", "-e", "cpu-clock", "-c", "1000000"] + graph + [
                        "-o", out, "-p", str(server.pid), "--", "sleep", secs]
                before = proc_cpu_s(server.pid)
                t0 = time.monotonic()
                status, cpu, rss = run_measured(argv)
                wall = time.monotonic() - t0
                target = proc_cpu_s(server.pid) - before
                if status != 0:
                    continue
                row = {"wall": wall, "profiler_cpu_s": cpu if mode != "none" else 0.0,
                       "target_cpu_s": target, "peak_rss_kb": rss if mode != "none" else 0}
                if mode != "none":
                    row["bytes_written"] = os.path.getsize(out)
                    total, main_n = (perf_shares(perf, out) if mode.startswith("perf")
                                     else collapsed_shares(out))
                    row["samples"] = total
                    row["main_pct"] = 100.0 * main_n / total if total else 0.0
                    os.unlink(out)
                results[mode].append(row)
    finally:
        for p in (load, server):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGKILL)
                p.wait()
        shutil.rmtree(work, ignore_errors=True)

    def med(mode, key):
        vals = [r[key] for r in results[mode] if key in r]
        return statistics.median(vals) if vals else None

    none_target = med("none", "target_cpu_s") or 0.0
    def total_of(mode):
        if not results[mode]:
            return None
        return med(mode, "profiler_cpu_s") + med(mode, "target_cpu_s")
    perf_dwarf_total = total_of("perf_dwarf")
    fp_total = total_of("flamekit_fp")
    for mode in MODES:
        if not results[mode]:
            error_row(mode, "perf missing (apt-get install linux-perf)" if mode.startswith("perf")
                      else "the profiler failed; see stderr")
            continue
        row = {"name": "BM_UnwindVsPerf/" + mode, "run_name": "BM_UnwindVsPerf/" + mode,
               "run_type": "iteration", "iterations": len(results[mode]),
               "real_time": med(mode, "wall"), "cpu_time": med(mode, "profiler_cpu_s"),
               "time_unit": "s"}
        for key in ("profiler_cpu_s", "target_cpu_s", "bytes_written", "peak_rss_kb",
                    "main_pct", "samples"):
            v = med(mode, key)
            if v is not None:
                row[key] = float(v)
        total = row["profiler_cpu_s"] + row["target_cpu_s"]
        row["added_cpu_s"] = total - none_target
        if perf_dwarf_total:
            row["cpu_vs_perf_dwarf"] = total / perf_dwarf_total
        if fp_total:
            row["cpu_vs_flamekit_fp"] = total / fp_total
        rows.append(row)
    return write(args.json, rows)


def write(path, rows):
    data = {"context": {"executable": "benchmarks/attach/unwind_vs_perf.py",
                        "num_cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%dT%H:%M:%S")},
            "benchmarks": rows}
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=1)
    os.replace(path + ".tmp", path)
    for r in rows:
        if r.get("error_occurred"):
            print("%-28s skipped: %s" % (r["name"], r["error_message"]))
        else:
            print("%-28s profiler %.3f s + target %.3f s CPU (added %.3f s), %8d B written, "
                  "peak RSS %6d KiB, main %5.1f%% of %d" % (
                      r["name"], r["profiler_cpu_s"], r["target_cpu_s"], r["added_cpu_s"],
                      r.get("bytes_written", 0), r.get("peak_rss_kb", 0), r.get("main_pct", 0),
                      r.get("samples", 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
