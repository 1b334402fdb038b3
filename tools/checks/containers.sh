#!/usr/bin/env bash
# Containers for real: a Docker daemon (tools/checks/lib/docker_daemon.sh
# starts a private dockerd when none answers, and stops only that one), a
# test image made with `docker import` from static binaries (the workload
# examples/container/spin_workload.cc, busybox-static for `rm`/`sh`, and
# the embedded profiler's examples/container/self_profile_workload), and:
#   - host side: `flamekit record --container NAME` (docker inspect), by ID
#     with the daemon unreachable (cgroup scan), `--all`, a missing name;
#   - inside: `flamekit_container profile` copying the static CLI in and
#     the flame graph out, leaving nothing behind (docker diff), in a
#     container allowed perf events and in a default one (fails, explains,
#     still cleans up);
#   - the default seccomp profile: record refused with the syscall and the
#     least privilege named; the embedded profiler falls back to a timer
#     engine; `flamekit doctor` says seccomp, capabilities, paranoid;
#   - every `docker run` option `flamekit_container flags --runtime docker`
#     prints, run against this daemon (PERFMON: refused before Docker 23);
#   - the kubectl sequence of `profile --runtime kubernetes`, as text, and
#     the Kubernetes walk-through's YAML (python3-yaml).
# The static binaries come from the same build as tools/checks/static_cli.sh
# (`-c opt --config=static`), so the second of the two is a cache hit.
# Bounds: each docker call 60 s (FK_DOCKER_TIMEOUT), each record 2 s of
# capture, the daemon 30 s to start; measured ~60 s in all with a warm
# build. Ends with `check-result: N passed, M failed`; without a daemon
# (no root, no docker.io) it says SKIP with the reason and counts nothing.
#
#   bash tools/checks/containers.sh
#   FLAMEKIT_STATIC_BIN=/dir/with/flamekit+flamekit_container+self_profile_workload bash tools/checks/containers.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
started=$(date +%s)

passed=0
failed=0
# Each line says when it finished (seconds since the start), so a slow run
# shows where its time went.
pass() { echo "PASS: [$(( $(date +%s) - started )) s] $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: [$(( $(date +%s) - started )) s] $*"; failed=$((failed + 1)); }
expect() {  # expect WHAT TEXT PATTERN...: every extended regex PATTERN in TEXT
  local what=$1 text=$2 p; shift 2
  for p in "$@"; do
    if ! grep -qE -- "$p" <<<"$text"; then
      fail "$what: no /$p/ in:"; sed 's/^/    /' <<<"$text" | head -n 40; return 1
    fi
  done
  pass "$what"
}
work=$(mktemp -d /tmp/flamekit-containers.XXXXXX)
finish() {
  fk_docker_cleanup
  rm -rf "$work"
  echo "containers.sh took $(( $(date +%s) - started )) s"
  echo "check-result: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
# shellcheck source=tools/checks/lib/docker_daemon.sh
source tools/checks/lib/docker_daemon.sh

# 1. The static binaries: one build, shared with static_cli.sh.
bin=${FLAMEKIT_STATIC_BIN:-}
if [ -z "$bin" ]; then
  # shellcheck disable=SC2206  # word splitting of the startup flags is wanted
  bazel_cmd=(bazel ${FLAMEKIT_BAZEL_STARTUP:-})
  static_flags=(-c opt --config=static)
  if ! "${bazel_cmd[@]}" build "${static_flags[@]}" //examples/cli:flamekit \
       //examples/container:flamekit_container //examples/container:self_profile_workload; then
    fail "static build of flamekit, flamekit_container, self_profile_workload"; finish
  fi
  bazel_bin=$("${bazel_cmd[@]}" info "${static_flags[@]}" bazel-bin 2>/dev/null)
  mkdir -p "$work/bin"
  cp "$bazel_bin/examples/cli/flamekit" "$bazel_bin/examples/container/flamekit_container" \
     "$bazel_bin/examples/container/self_profile_workload" "$work/bin/"
  bin=$work/bin
fi
flamekit=$bin/flamekit
helper=$bin/flamekit_container

# 2. Text-only cases first: they need no daemon.
out=$("$helper" profile --runtime kubernetes --pod web-7d9f -n prod -c app --pid 1 -d 30 \
      -f web.html --dry-run --flamekit /opt/flamekit 2>&1 | sed -E 's/flamekit-[0-9]+/flamekit-TOKEN/g')
want='[1/4] copy flamekit into pod web-7d9f (kubectl cp needs tar there)
+ kubectl cp -n prod -c app /opt/flamekit web-7d9f:/tmp/flamekit-TOKEN
[2/4] record pid 1 in pod web-7d9f for 30 s
+ kubectl exec -n prod -c app web-7d9f -- /tmp/flamekit-TOKEN record -d 30 -f /tmp/flamekit-TOKEN.html 1
[3/4] copy the result out to web.html
+ kubectl cp -n prod -c app web-7d9f:/tmp/flamekit-TOKEN.html web.html
[4/4] remove flamekit and the result from pod web-7d9f
+ kubectl exec -n prod -c app web-7d9f -- rm -f /tmp/flamekit-TOKEN /tmp/flamekit-TOKEN.html'
if [ "$out" = "$want" ]; then pass "profile --runtime kubernetes prints the kubectl sequence"
else fail "profile --runtime kubernetes printed:"; echo "$out"; fi

yaml_out=$(python3 - examples/container/kubernetes <<'PY' 2>&1
import glob, re, sys, yaml
d = sys.argv[1]
n = 0
for path in sorted(glob.glob(d + "/*.yaml")):
    docs = [x for x in yaml.safe_load_all(open(path)) if x is not None]
    assert docs, path + ": no document"
    for doc in docs:
        assert "kind" in doc and "apiVersion" in doc, path + ": no kind/apiVersion"
    n += len(docs)
for block in re.findall(r"```yaml\n(.*?)```", open(d + "/README.md").read(), re.S):
    list(yaml.safe_load_all(block))
    n += 1
print("yaml documents:", n)
PY
)
expect "the Kubernetes walk-through's YAML parses" "$yaml_out" '^yaml documents: [1-9]'

# 3. The daemon and the image.
if ! fk_docker_start; then
  echo "SKIP: the Docker cases: $FK_DOCKER_SKIP"; finish
fi
echo "docker: server $(fk_docker version --format '{{.Server.Version}}')"
root=$work/image
mkdir -p "$root/bin" "$root/tmp" && chmod 1777 "$root/tmp"
if ! g++ -std=c++17 -static -O1 -fno-omit-frame-pointer -o "$root/spin" \
     examples/container/spin_workload.cc; then
  fail "could not build the static workload"; finish
fi
cp "$bin/self_profile_workload" "$root/self_profile"
cp /bin/busybox "$root/bin/busybox" && ln -s busybox "$root/bin/rm" && ln -s busybox "$root/bin/sh"
if fk_docker_image "$root"; then pass "docker import of the static test image ($FK_DOCKER_IMAGE)"
else fail "docker import"; finish; fi
name=fk-spin-$$
plain=$(fk_docker_run --name "$name" "$FK_DOCKER_IMAGE" /spin 300) || { fail "docker run"; finish; }
# `docker run -d` returns while the runtime may still be setting the process
# up (runc init, not dumpable, so perf_event_open from outside is refused):
# wait, at most 5 s, until it runs /spin. One run recorded 0 threads without.
spin_pid=$(fk_docker inspect -f '{{.State.Pid}}' "$name" 2>/dev/null || echo 0)
for _ in $(seq 50); do
  [ "$(cat "/proc/$spin_pid/comm" 2>/dev/null)" = spin ] && break
  sleep 0.1
done

# 4. From the host.
out=$("$flamekit" record --container "$name" -d 2 -f "$work/host.collapsed" 2>&1)
expect "record --container NAME (docker inspect) names the hot function" \
  "$out$(cat "$work/host.collapsed" 2>/dev/null)" 'found by docker inspect' \
  'main;ContainerHotLoop\(unsigned long\) [0-9]+'
out=$(DOCKER_HOST=unix:///nonexistent.sock "$flamekit" record --container "${plain:0:12}" -d 1 \
      -f "$work/byid.collapsed" 2>&1)
expect "record --container ID with the daemon unreachable (cgroup scan)" \
  "$out$(cat "$work/byid.collapsed" 2>/dev/null)" 'found by cgroup scan' 'ContainerHotLoop'
out=$("$flamekit" record --container no-such-container-$$ -d 1 -f "$work/x.html" 2>&1)
rc=$?
expect "record --container with a missing name: exit 3, says so" "$out exit=$rc" \
  'no container no-such-container' 'exit=3$'
two=$(fk_docker_run "$FK_DOCKER_IMAGE" /bin/sh -c '/spin 300 & exec /spin 300')
sleep 0.5
out=$("$flamekit" record --container "$two" --all -t -d 2 -f "$work/all.collapsed" 2>&1)
roots=$(grep -oE '^\[spin tid=[0-9]+\]' "$work/all.collapsed" 2>/dev/null | sort -u | wc -l)
expect "record --container --all follows both processes ($roots thread roots)" "$out roots=$roots" \
  '2 processes of the container followed' 'roots=2$'

# 5. Inside, with the default seccomp profile: refused, explained, survived.
fk_docker cp "$flamekit" "$plain:/tmp/flamekit" >/dev/null
out=$(fk_docker exec "$plain" /tmp/flamekit record -d 1 -f /tmp/x.txt 1 2>&1)
rc=$?
expect "record in a default-seccomp container: exit 4, names perf_event_open, seccomp and the fix" \
  "$out exit=$rc" 'perf_event_open' 'seccomp filter' 'seccomp=examples/container/seccomp-perf.json' \
  'record --container NAME' 'exit=4$'
out=$(fk_docker exec "$plain" /tmp/flamekit doctor 2>&1)
expect "doctor in a default-seccomp container: seccomp, capabilities, paranoid, ctimer" "$out" \
  '^WARN  seccomp: 2: a filter is active' '^WARN  capabilities: CapEff=' \
  'kernel.perf_event_paranoid: [0-9]' '^FAIL  perf_event_open cpu-clock: .*Operation not permitted' \
  '^PASS  ctimer engine' '^recommended event: ctimer'
out=$(fk_docker run --rm --network none "$FK_DOCKER_IMAGE" /self_profile 1 2>&1)
sed 's/^/  self_profile: /' <<<"$out"
expect "embedded profiler in a default-seccomp container falls back to a timer engine" "$out" \
  '^engine: (ctimer|itimer)' '^engine_note: .*perf_event_open.*seccomp filter is active' \
  'seccomp-perf.json' '^samples: [1-9]' \
  '^hottest: ContainerHotLoop'
out=$("$helper" profile --container "$plain" --pid 1 -d 1 -f "$work/refused.html" \
      --flamekit "$flamekit" 2>&1)
rc=$?
left=$(fk_docker diff "$plain" | grep -E 'flamekit-[0-9]' || true)
expect "flamekit_container profile where perf is refused: exit 1, cleans up" \
  "$out exit=$rc left=[$left]" 'step 2 \(record pid 1' 'exit=1 left=\[\]$'

# 6. Every docker option `flags --runtime docker` prints, for real.
flags_text=$("$helper" flags --runtime docker)
server=$(fk_docker version --format '{{.Server.Version}}')
mapfile -t runs < <(grep -E '^docker run .* IMAGE$' <<<"$flags_text")
if [ "${#runs[@]}" -ge 3 ]; then pass "flags --runtime docker prints ${#runs[@]} docker run lines"
else fail "flags --runtime docker prints ${#runs[@]} docker run lines, expected 3"; fi
allowed=""
for line in "${runs[@]}"; do
  opts=${line#docker run }; opts=${opts% ... IMAGE}
  # shellcheck disable=SC2086  # the options are words
  if c=$(fk_docker_run $opts "$FK_DOCKER_IMAGE" /spin 60 2>&1); then
    fk_docker cp "$flamekit" "$c:/tmp/flamekit" >/dev/null
    out=$(fk_docker exec "$c" /tmp/flamekit record -d 1 -f /tmp/x.collapsed 1 2>&1)
    expect "'$opts': perf events work in the container" "$out" 'ContainerHotLoop'
    [ -z "$allowed" ] && allowed=$c
  elif [[ "$opts" == *PERFMON* ]] && [ "${server%%.*}" -lt 23 ]; then
    expect "'$opts' refused by Docker $server, as flags says (23+)" "$c" 'unknown capability'
  else
    fail "'$opts': docker run failed: $c"
  fi
done

# 7. flamekit_container profile against the real daemon.
if [ -n "$allowed" ]; then
  out=$("$helper" profile --container "$allowed" --pid 1 -d 2 -f "$work/inside.html" \
        --flamekit "$flamekit" 2>&1)
  rc=$?
  left=$(fk_docker diff "$allowed" | grep -E 'flamekit-[0-9]' || true)
  expect "flamekit_container profile copies in, records, copies out, removes" \
    "$out exit=$rc left=[$left]$(grep -o 'ContainerHotLoop' "$work/inside.html" | head -1)" \
    '\[1/4\] copy flamekit into' 'wrote .*inside.html' 'exit=0 left=\[\]ContainerHotLoop$'
fi
finish
