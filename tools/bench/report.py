#!/usr/bin/env python3
"""Turns out/bench/*.json (Google Benchmark) and peers.json into RESULTS.md.

Every benchmark row is listed with its time per iteration and its
counters (items/s, bytes/s, and the user counters benchmarks set, such as
overhead ratios or peak memory), so a headline figure needs no code here:
a benchmark reports it as a counter and it shows up.
"""

import glob
import json
import os
import sys


def fmt(value):
    if isinstance(value, float):
        if abs(value) >= 1e9:
            return "%.3g G" % (value / 1e9)
        if abs(value) >= 1e6:
            return "%.3g M" % (value / 1e6)
        if abs(value) >= 1e3:
            return "%.3g k" % (value / 1e3)
        return "%.4g" % value
    return str(value)


def main(out):
    lines = ["# flamekit benchmark results", ""]
    context = None
    for path in sorted(glob.glob(os.path.join(out, "*.json"))):
        if os.path.basename(path) == "peers.json":
            continue
        with open(path) as f:
            data = json.load(f)
        context = context or data.get("context", {})
        lines += ["## " + os.path.basename(path)[:-5], "",
                  "| benchmark | time/iter | counters |", "|---|---|---|"]
        for b in data.get("benchmarks", []):
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            skip = {"name", "run_name", "run_type", "repetitions", "repetition_index",
                    "threads", "iterations", "real_time", "cpu_time", "time_unit",
                    "family_index", "per_family_instance_index", "aggregate_name",
                    "aggregate_unit", "label", "error_occurred", "error_message"}
            counters = ", ".join("%s=%s" % (k, fmt(v)) for k, v in b.items()
                                 if k not in skip and isinstance(v, (int, float)))
            if b.get("label"):
                counters = (b["label"] + "; " + counters).strip("; ")
            if b.get("error_occurred"):
                counters = "ERROR: " + b.get("error_message", "")
            lines.append("| %s | %.4g %s | %s |" % (b["name"], b.get("real_time", 0),
                                                   b.get("time_unit", ""), counters))
        lines.append("")
    peers = os.path.join(out, "peers.md")
    if os.path.exists(peers):
        lines += ["## Overhead beside peers (fixed_work, 2 threads, CPU-time ratio)", ""]
        with open(peers) as f:
            lines += [f.read()]
    if context:
        lines += ["", "Machine: %s CPUs, %s MHz, %s" % (context.get("num_cpus"),
                                                     context.get("mhz_per_cpu"),
                                                     context.get("date"))]
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
