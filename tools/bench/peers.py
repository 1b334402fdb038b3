#!/usr/bin/env python3
"""Overhead of flamekit beside gperftools and perf, measured in one run.

Runs benchmarks/peers/fixed_work (a fixed amount of CPU work on 2 threads)
with no profiler and under each profiler, interleaved (one of each per
round, in rotating order) so that the machine's noise falls on all of them
alike, and reports for each: the workload's CPU time relative to the
unprofiled run (median over rounds), and the profiler's own CPU outside the
workload where it runs in another process (perf, flamekit record).

Overhead is always a ratio from the same run, never an absolute time.
Writes JSON (--json) and prints a markdown table.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

GPERFTOOLS = "/usr/lib/x86_64-linux-gnu/libprofiler.so.0"


def run(cmd, env=None):
    """Runs cmd under `measure`; returns (workload_cpu, total_cpu) seconds."""
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode,
                                                   proc.stderr.strip()[-500:]))
    workload = None
    for line in proc.stdout.splitlines():
        if line.startswith("{\"cpu_seconds\""):
            workload = json.loads(line)["cpu_seconds"]
    total = None
    for line in proc.stderr.splitlines():
        if line.startswith("{\"children_cpu_seconds\""):
            total = json.loads(line)["children_cpu_seconds"]
    if workload is None or total is None:
        raise RuntimeError("no measurement from %s: %s %s" % (" ".join(cmd), proc.stdout, proc.stderr))
    return workload, total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", required=True, help="bazel-bin of a -c opt build")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--iterations", type=int, default=4000)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    work = os.path.join(args.bin, "benchmarks/peers/fixed_work")
    measure = os.path.join(args.bin, "benchmarks/peers/measure")
    cli = os.path.join(args.bin, "examples/cli/flamekit")
    workload = [work, "--threads", "2", "--iterations", str(args.iterations)]
    tmp = tempfile.mkdtemp(prefix="flamekit-peers.")

    modes = {"none": (workload, None)}
    skipped = {}
    for hz in (100, 1000):
        if os.path.exists(cli):
            modes["flamekit record cpu %d Hz" % hz] = (
                [cli, "record", "--quiet", "-e", "cpu", "-F", str(hz), "-f",
                 os.path.join(tmp, "fk.collapsed"), "--"] + workload, None)
        else:
            skipped["flamekit record"] = "examples/cli:flamekit not built"
        for engine in ("cpu", "ctimer", "itimer"):
            env = dict(os.environ, FLAMEKIT_PROFILE_EVENT=engine,
                       FLAMEKIT_PROFILE_HZ=str(hz),
                       FLAMEKIT_PROFILE_OUT=os.path.join(tmp, "embedded.collapsed"))
            probe = subprocess.run(workload[:1] + ["--iterations", "1"], env=env,
                                   capture_output=True, text=True)
            if "flamekit_embedded" in probe.stdout:
                modes["flamekit embedded %s %d Hz" % (engine, hz)] = (workload, env)
            else:
                skipped["flamekit embedded %s" % engine] = (
                    probe.stderr.strip().splitlines() or ["no output"])[-1]
        if os.path.exists(GPERFTOOLS):
            env = dict(os.environ, LD_PRELOAD=GPERFTOOLS,
                       CPUPROFILE=os.path.join(tmp, "gperftools.prof"),
                       CPUPROFILE_FREQUENCY=str(hz))
            modes["gperftools %d Hz" % hz] = (workload, env)
        else:
            skipped["gperftools"] = "google-perftools not installed"
        perf = shutil.which("perf")
        if perf and subprocess.run([perf, "record", "-q", "-o", os.devnull, "true"],
                                   capture_output=True).returncode == 0:
            modes["perf record -g %d Hz" % hz] = (
                [perf, "record", "-q", "-F", str(hz if hz != 1000 else 999), "-g",
                 "-o", os.path.join(tmp, "perf.data"), "--"] + workload, None)
        else:
            skipped["perf record"] = "perf missing or not permitted"

    names = list(modes)
    samples = {name: [] for name in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            cmd, env = modes[name]
            samples[name].append(run([measure] + cmd, env))
    shutil.rmtree(tmp, ignore_errors=True)

    base = statistics.median(w for w, _ in samples["none"])
    results = []
    for name in names:
        work_cpu = statistics.median(w for w, _ in samples[name])
        own_cpu = statistics.median(t - w for w, t in samples[name])
        wall_share = None
        results.append({
            "profiler": name,
            "workload_cpu_seconds": work_cpu,
            "overhead_percent": 100.0 * (work_cpu / base - 1.0),
            "profiler_own_cpu_seconds": max(own_cpu, 0.0),
            "profiler_own_cpu_percent_of_workload": 100.0 * max(own_cpu, 0.0) / base,
            "rounds": args.rounds,
        })
    report = {"baseline_cpu_seconds": base, "results": results, "skipped": skipped}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    print("| profiler | workload CPU vs none | profiler's own CPU (other process) |")
    print("|---|---|---|")
    for r in results:
        print("| %s | %+.2f%% | %.2f%% |" % (r["profiler"], r["overhead_percent"],
                                           r["profiler_own_cpu_percent_of_workload"]))
    for what, why in skipped.items():
        print("\n(skipped %s: %s)" % (what, why))
    print("\nbaseline: %.3f s CPU, median of %d rounds, 2 threads" % (base, args.rounds))


if __name__ == "__main__":
    sys.exit(main())
