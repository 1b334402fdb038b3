#!/usr/bin/env bash
# A Docker daemon for tests and README blocks, and a tiny image to run in it.
# Source it, then:
#   fk_docker_start        use the daemon DOCKER_HOST (or the default socket)
#                          names when one answers; otherwise start a private
#                          dockerd (its own data-root, exec-root, pidfile and
#                          socket under /tmp/flamekit-dockerd.XXXXXX, no
#                          bridge, no iptables) and export DOCKER_HOST. 0 when
#                          a daemon answers within 30 s; else 1 with the
#                          reason in FK_DOCKER_SKIP.
#   fk_docker_image DIR    import DIR as image $FK_DOCKER_IMAGE (docker import
#                          of a tarball: no registry, about a second)
#   fk_docker_run ARGS...  docker run -d --network none with this session's
#                          label, so fk_docker_cleanup finds it
#   fk_docker_cleanup      remove this session's containers and image, then
#                          stop the daemon if (and only if) we started it, and
#                          delete its directory. Safe to call twice; set as
#                          an EXIT trap by fk_docker_start.
# Every docker call is bounded by `timeout` (FK_DOCKER_TIMEOUT, 60 s).
# Needs root for a private daemon; docker.io from tools/debian-packages.txt.

FK_DOCKER_TIMEOUT=${FK_DOCKER_TIMEOUT:-60}
FK_DOCKER_LABEL="flamekit.test=$$-${RANDOM}"
FK_DOCKER_IMAGE="flamekit-test:$$-${RANDOM}"
FK_DOCKER_DIR=""
FK_DOCKER_STARTED=0
export FK_DOCKER_SKIP=""  # read by the caller
FK_DOCKER_IMPORTED=0

fk_docker() { timeout "$FK_DOCKER_TIMEOUT" docker "$@"; }

fk_docker_start() {
  trap fk_docker_cleanup EXIT
  # Killed by Ctrl-C or `timeout`: exit, so the EXIT trap still cleans up
  # (bash skips it when a signal with no trap ends the shell).
  trap 'exit 130' INT
  trap 'exit 143' TERM
  if ! command -v docker >/dev/null 2>&1; then
    FK_DOCKER_SKIP="no docker CLI (apt-get install docker.io, or bash tools/setup.sh)"
    return 1
  fi
  if timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    return 0   # someone else's daemon: used, never stopped
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    FK_DOCKER_SKIP="no dockerd and no running daemon (apt-get install docker.io)"
    return 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    FK_DOCKER_SKIP="no running Docker daemon, and starting one needs root"
    return 1
  fi
  FK_DOCKER_DIR=$(mktemp -d /tmp/flamekit-dockerd.XXXXXX)
  # --bridge=none/--iptables=false: the tests need no network, and a daemon
  # that touches iptables could disturb the machine's other users.
  dockerd --data-root "$FK_DOCKER_DIR/root" --exec-root "$FK_DOCKER_DIR/exec" \
    --pidfile "$FK_DOCKER_DIR/dockerd.pid" -H "unix://$FK_DOCKER_DIR/docker.sock" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    >"$FK_DOCKER_DIR/dockerd.log" 2>&1 </dev/null &
  FK_DOCKER_STARTED=$!
  export DOCKER_HOST="unix://$FK_DOCKER_DIR/docker.sock"
  local i
  for i in $(seq 1 60); do
    if timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      echo "docker: started a private dockerd (pid $FK_DOCKER_STARTED) in $((i / 2)) s at $DOCKER_HOST"
      return 0
    fi
    kill -0 "$FK_DOCKER_STARTED" 2>/dev/null || break
    sleep 0.5
  done
  FK_DOCKER_SKIP="dockerd did not start: $(tail -n 3 "$FK_DOCKER_DIR/dockerd.log" | tr '\n' ' ')"
  return 1
}

fk_docker_image() {
  local dir=$1
  tar -C "$dir" -cf - . | fk_docker import --change 'CMD ["/spin"]' - "$FK_DOCKER_IMAGE" >/dev/null &&
    FK_DOCKER_IMPORTED=1
}

fk_docker_run() { fk_docker run -d --network none --label "$FK_DOCKER_LABEL" "$@"; }

fk_docker_cleanup() {
  trap - EXIT INT TERM
  if command -v docker >/dev/null 2>&1 && timeout 5 docker version >/dev/null 2>&1; then
    local ids
    ids=$(fk_docker ps -aq --filter "label=$FK_DOCKER_LABEL" 2>/dev/null || true)
    # shellcheck disable=SC2086
    if [ -n "$ids" ]; then fk_docker rm -f $ids >/dev/null 2>&1 || true; fi
    if [ "$FK_DOCKER_IMPORTED" = 1 ]; then fk_docker rmi -f "$FK_DOCKER_IMAGE" >/dev/null 2>&1 || true; fi
    FK_DOCKER_IMPORTED=0
  fi
  if [ "$FK_DOCKER_STARTED" != 0 ]; then
    # `|| true` throughout: README blocks run this under `set -e`, where a
    # kill of a daemon that already exited would end the trap early.
    kill -TERM "$FK_DOCKER_STARTED" 2>/dev/null || true
    local i
    for i in $(seq 1 30); do kill -0 "$FK_DOCKER_STARTED" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$FK_DOCKER_STARTED" 2>/dev/null || true
    wait "$FK_DOCKER_STARTED" 2>/dev/null || true
    FK_DOCKER_STARTED=0
    unset DOCKER_HOST
  fi
  if [ -n "$FK_DOCKER_DIR" ]; then
    # A daemon killed hard can leave overlay mounts: never delete through one.
    awk -v d="$FK_DOCKER_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r |
      while read -r m; do umount -l "$m" || true; done
    rm -rf "$FK_DOCKER_DIR"
    FK_DOCKER_DIR=""
  fi
  return 0
}
