#!/usr/bin/env bash
# A real allocation-heavy server under the agent: Debian's redis-server
# (jemalloc underneath: the agent's malloc comes first and forwards to it)
# under redis-benchmark, without the agent, and with FLAMEKIT_EVENT=alloc
# and live at the default 512 KiB. Rounds interleave the three; each
# prints requests/s (the client shares the 2 cores, so read it with the
# server's CPU time per request, from /proc, beside it). Then checks that
# the alloc profile names redis' own allocation sites (zmalloc and its
# callers: Debian's redis has no frame pointers, so stacks are short, but
# the frame that called malloc is exact).
#
#   bash benchmarks/hooks/run_redis_overhead.sh            3 rounds x 4 x 200k requests (~8 min)
#   QUICK=1 bash benchmarks/hooks/run_redis_overhead.sh    1 round x 4 x 10k (~10 s)
# ROUNDS, REQUESTS override the sizes; BAZEL the bazel command; AGENT
# another build of the agent. Bounds: each server start waits at most
# 10 s for PONG, each redis-benchmark run at most 120 s; the server is
# always shut down (trap). Exit 0 when every run finished and the profile
# names zmalloc, 1 otherwise, 2 when redis is not installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in redis-server redis-benchmark redis-cli; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_redis_overhead: $tool not found: install redis-server and redis-tools (bash tools/setup.sh)" >&2
    exit 2
  fi
done
BAZEL=${BAZEL:-bazel}
if [ "${QUICK:-0}" = "1" ]; then ROUNDS=${ROUNDS:-1} REQUESTS=${REQUESTS:-10000}; fi
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
if [ -z "${AGENT:-}" ]; then
  $BAZEL build -c opt //examples/agent:libflamekit_agent.so >/dev/null 2>&1 ||
    $BAZEL build -c opt //examples/agent:libflamekit_agent.so
  AGENT=$($BAZEL info -c opt bazel-bin 2>/dev/null)/examples/agent/libflamekit_agent.so
fi
work=$(mktemp -d)
server=""
stop_server() {
  if [ -n "$server" ]; then
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || kill "$server" 2>/dev/null || true
    # At most 10 s for it to write its profile and exit, then KILL.
    for _ in $(seq 100); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=""
  fi
}
trap 'stop_server; rm -rf "$work"' EXIT

# A free port: bind to 0 and read what the kernel gave.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# cpu_ns PID: the CPU time of the process's live threads in nanoseconds
# (schedstat: exact, where /proc/PID/stat counts 10 ms ticks).
cpu_ns() {
  cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'
}

# run EVENT ("" = no agent): starts the server, runs the benchmark, prints
# "requests/s server_cpu_us_per_request".
run() {
  local event=$1
  local args=(redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work")
  if [ -z "$event" ]; then
    "${args[@]}" >"$work/server.log" 2>&1 &
  else
    env LD_PRELOAD="$AGENT" FLAMEKIT_EVENT="$event" FLAMEKIT_OUTPUT="$work/$event.collapsed" \
      "${args[@]}" >"$work/server.log" 2>&1 &
  fi
  server=$!
  for _ in $(seq 100); do
    [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ] && break
    sleep 0.1
  done
  if [ "$(redis-cli -p "$port" ping 2>/dev/null)" != "PONG" ]; then
    echo "run_redis_overhead: redis-server (event '${event:-none}') did not answer in 10 s:" >&2
    cat "$work/server.log" >&2
    return 1
  fi
  local ns_before ns_after rps
  ns_before=$(cpu_ns "$server")
  # SET/GET of 64..1024-byte values and list pushes/pops: every request
  # allocates (sds strings, objects, list nodes) and frees.
  rps=$(timeout 120 redis-benchmark -p "$port" -q -n "$REQUESTS" -c 20 -r 100000 -d 256 \
    -t set,get,lpush,lpop --csv 2>/dev/null |
    awk -F, 'NR > 1 { gsub(/"/, "", $2); sum += $2; n++ } END { if (n) printf "%.0f", sum / n }')
  ns_after=$(cpu_ns "$server")
  stop_server
  # 4 tests of REQUESTS requests each.
  awk -v r="$rps" -v t=$((ns_after - ns_before)) -v n="$REQUESTS" \
    'BEGIN { printf "%s %.3f\n", r, t / 1e3 / (4 * n) }'
}

: >"$work/none" ; : >"$work/alloc" ; : >"$work/live"
for round in $(seq "$ROUNDS"); do
  for event in none alloc live; do
    line=$(run "${event/none/}")
    echo "round $round  ${event}: ${line% *} requests/s, ${line#* } us of server CPU per request"
    echo "$line" >>"$work/$event"
  done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
base_rps=$(cut -d' ' -f1 <"$work/none" | median)
base_cpu=$(cut -d' ' -f2 <"$work/none" | median)
echo
printf '%-8s %12s %8s %16s %8s\n' event requests/s vs_none cpu_us/request vs_none
for event in none alloc live; do
  rps=$(cut -d' ' -f1 <"$work/$event" | median)
  cpu=$(cut -d' ' -f2 <"$work/$event" | median)
  printf '%-8s %12s %+7.1f%% %16s %+7.1f%%\n' "$event" "$rps" \
    "$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { print 100 * (a / b - 1) }')" "$cpu" \
    "$(awk -v a="$cpu" -v b="$base_cpu" 'BEGIN { print (b > 0) ? 100 * (a / b - 1) : 0 }')"
done

echo
echo "alloc profile: the heaviest frames that called malloc (leaf), bytes:"
awk '{ n = $NF; $NF = ""; k = split($1, f, ";"); leaf[f[k]] += n } END { for (x in leaf) print leaf[x], x }' \
  "$work/alloc.collapsed" | sort -rn | head -5
if ! grep -q 'zmalloc\|ztrymalloc\|zcalloc\|zrealloc' "$work/alloc.collapsed"; then
  echo "run_redis_overhead: the alloc profile names no zmalloc frame" >&2
  exit 1
fi
echo "ok: the alloc profile names redis' allocation sites (zmalloc)"
