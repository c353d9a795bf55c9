#!/usr/bin/env bash
# The container image, end to end: builds the Dockerfile with podman (from
# Debian base images made locally with debootstrap: no registry is needed,
# and the image build runs without network), runs the server image with its
# port published on 127.0.0.1, and drives it from outside with the host's
# taskwire CLI: health, tasks, a task run by the example worker image, and a
# SIGTERM that must drain and exit 0.
#
# Run by `bazel test //tests/container:container_test` (tagged `container`;
# not sandboxed: podman needs the real machine, as root). Outside Bazel:
#   bazel build //client/cli:taskwire
#   TASKWIRE=bazel-bin/client/cli/taskwire tests/container/container_test.sh
#
# Kept between runs, in $TASKWIRE_CONTAINER_CACHE
# (/var/tmp/taskwire-container-cache): podman's storage with the two base
# images (remade when their package lists change) and, when ~/.bazelrc names
# no --disk_cache, a Bazel disk cache for the build inside the image.
# Everything else (containers, the images built here, their layers) is
# removed on exit.
#
# The image is built with TASKWIRE_CONTAINER_BAZEL_FLAGS (default
# --compilation_mode=fastbuild, the configuration `bazel test //...` has just
# built, so that a shared disk cache spares most of the compiling).
set -uo pipefail
# Bazel's test environment has PATH=/bin:/usr/bin:/usr/local/bin; debootstrap
# and podman's helpers (iptables, newuidmap) are in the sbin folders.
export PATH="$PATH:/usr/sbin:/sbin"

runfiles="${TEST_SRCDIR:-}/taskwire"
TASKWIRE="${TASKWIRE:-$runfiles/client/cli/taskwire}"
TASKWIRE=$(readlink -f "$TASKWIRE")
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
# The runfiles hold symlinks into the source tree, which is the build context.
root=$(cd "$here/../.." && pwd)
tmp=$(mktemp -d "${TEST_TMPDIR:-/tmp}/container_test.XXXXXX")
bazel_flags=${TASKWIRE_CONTAINER_BAZEL_FLAGS---compilation_mode=fastbuild}
# Bounds: a cold image build compiles everything on a small machine.
BUILD_LIMIT=${TASKWIRE_CONTAINER_BUILD_LIMIT:-2700}
CALL_LIMIT=30
START_LIMIT=60
STOP_LIMIT=40

run_id="$(date +%s)-$$"
server_image="localhost/taskwired-test:$run_id"
worker_image="localhost/taskwire-worker-test:$run_id"
server_ctr="taskwired-test-$run_id"
worker_ctr="taskwire-worker-test-$run_id"

passed=0
failed=0

log() { printf '%s\n' "$*" >&2; }
ok() {
  passed=$((passed + 1))
  log "ok   $*"
}
bad() {
  failed=$((failed + 1))
  log "FAIL $*"
}

# Prints what the containers said, once, on the way out of a failed run.
show_logs() {
  local ctr
  for ctr in "$server_ctr" "$worker_ctr"; do
    if podman container exists "$ctr" 2>/dev/null; then
      log "---- podman logs $ctr ----"
      podman logs "$ctr" 2>&1 | tail -n 60 >&2
      log "---- podman inspect $ctr (state) ----"
      podman inspect --format '{{json .State}}' "$ctr" >&2 2>&1
    fi
  done
}

cleanup() {
  local status=$?
  if ((failed > 0 || status != 0)); then show_logs; fi
  if command -v podman >/dev/null 2>&1 && [[ -n "${CONTAINERS_CONF:-}" ]]; then
    podman rm --force --volumes --time 0 "$worker_ctr" "$server_ctr" >/dev/null 2>&1
    podman rmi --force "$server_image" "$worker_image" >/dev/null 2>&1
    # The build's intermediate layers: only this test uses this storage,
    # and its base images are tagged, so they stay.
    podman image prune --force >/dev/null 2>&1
    # Anonymous volumes for the image's VOLUME, made by the build's steps.
    podman volume prune --force >/dev/null 2>&1
  fi
  # Copying images makes podman keep a cache of blob digests there, whatever
  # its storage.conf says; it goes if this run made it.
  if ((!had_system_cache)); then rm -rf /var/lib/containers; fi
  rm -rf "$tmp"
}
had_system_cache=0
if [[ -e /var/lib/containers ]]; then had_system_cache=1; fi
trap cleanup EXIT

# finish: the closing line, and the exit status.
finish() {
  log "$passed passed, $failed failed"
  ((failed == 0))
  exit
}

# give_up WHAT: a step the rest depends on failed.
give_up() {
  bad "$*"
  finish
}

# call COMMAND...: runs it under the time limit; sets OUT and RC (stderr is
# in OUT too, to be shown on failure).
call() { call_within "$CALL_LIMIT" "$@"; }

# call_within SECONDS COMMAND...: the same with another limit.
call_within() {
  local limit=$1
  shift
  OUT=$(timeout "$limit" "$@" 2>&1)
  RC=$?
}

tw() { call "$TASKWIRE" --server "127.0.0.1:$port" "$@"; }

# ---------------------------------------------------------------------------
# Can podman run here at all? Not a silent pass when it cannot.

if ! command -v podman >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
  give_up "podman and debootstrap are needed (scripts/install-deps.sh installs them)"
fi
if (($(id -u) != 0)); then
  give_up "needs root: debootstrap chroots, and podman here runs rootful (user $(id -un))"
fi
source "$here/podman_env.sh"
podman_env_setup "$tmp/conf"
if ! info=$(timeout "$CALL_LIMIT" podman info --format '{{.Host.OCIRuntime.Name}}' 2>&1); then
  give_up "podman cannot run on this machine: $info"
fi
ok "podman runs (runtime $info, storage $TASKWIRE_CONTAINER_CACHE/storage)"

# One run at a time per storage: a run's cleanup prunes layers that another
# run's build may be using.
exec 8>"$TASKWIRE_CONTAINER_CACHE/test.lock"
if ! flock --wait "$BUILD_LIMIT" 8; then
  give_up "another run held $TASKWIRE_CONTAINER_CACHE/test.lock for ${BUILD_LIMIT} s"
fi

# ---------------------------------------------------------------------------
# Base images, with every package baked in: the builds below have no network.

start=$SECONDS
mapfile -t build_packages < <(bash "$root/scripts/install-deps.sh" --list --build-only)
mapfile -t runtime_packages < <(bash "$root/deploy/container/install-runtime-deps.sh" --list)
build_base=$("$here/base_image.sh" build-base "${build_packages[@]}") ||
  give_up "making the build base image (${build_packages[*]})"
runtime_base=$("$here/base_image.sh" runtime-base "${runtime_packages[@]}") ||
  give_up "making the runtime base image (${runtime_packages[*]})"
ok "base images $build_base and $runtime_base ($((SECONDS - start)) s)"

# ---------------------------------------------------------------------------
# The images, built from the Dockerfile as a user would, offline.

# Bazel's disk cache for the build in the image: $TASKWIRE_CONTAINER_BAZEL_DISK_CACHE,
# else the one ~/.bazelrc names (which `bazel test` has just filled), else
# one of the test's own.
home=$(getent passwd "$(id -u)" | cut -d: -f6)
disk_cache=$(sed -n 's/^build  *--disk_cache[= ]\([^ ]*\).*/\1/p' "$home/.bazelrc" 2>/dev/null | tail -n 1)
disk_cache=${disk_cache/#\~/$home}
disk_cache=${TASKWIRE_CONTAINER_BAZEL_DISK_CACHE:-${disk_cache:-$TASKWIRE_CONTAINER_CACHE/bazel-disk}}
mkdir -p "$disk_cache" "$TASKWIRE_CONTAINER_CACHE/tmp"

# build_image IMAGE TARGET: podman build of one stage; its log in $tmp.
build_image() {
  local image=$1 target=$2
  local build_log="$tmp/build-$target.log"
  local begin=$SECONDS
  # TMPDIR: buildah keeps the Dockerfile's cache mounts there.
  if ! TMPDIR="$TASKWIRE_CONTAINER_CACHE/tmp" timeout "$BUILD_LIMIT" \
    podman build --format docker --network none --layers --target "$target" "${PODMAN_ULIMITS[@]}" \
    --build-arg BUILD_BASE="$build_base" --build-arg RUNTIME_BASE="$runtime_base" \
    --build-arg BAZEL_FLAGS="$bazel_flags" \
    --build-arg BAZEL_DISK_CACHE=/bazel-disk-cache --volume "$disk_cache:/bazel-disk-cache" \
    --tag "$image" --file "$root/Dockerfile" "$root" >"$build_log" 2>&1; then
    log "---- the end of podman build --target $target ----"
    tail -n 80 "$build_log" >&2
    give_up "podman build --target $target (after $((SECONDS - begin)) s; limit $BUILD_LIMIT s)"
  fi
  ok "built $target image in $((SECONDS - begin)) s ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
}

build_image "$server_image" server
build_image "$worker_image" worker

# The image's own settings, as `docker run` and Kubernetes see them.
config=$(podman image inspect --format \
  'user={{.Config.User}} stop={{.Config.StopSignal}} ports={{range $p, $_ := .Config.ExposedPorts}}{{$p}} {{end}}volumes={{range $v, $_ := .Config.Volumes}}{{$v}} {{end}}health={{.Config.Healthcheck.Test}}' \
  "$server_image" 2>&1)
for want in "user=10001:10001" "stop=SIGTERM" "ports=50051/tcp" "volumes=/var/lib/taskwire" \
  "health=[CMD taskwire health]"; do
  if [[ "$config" == *"$want"* ]]; then ok "image config has $want"; else bad "image config lacks '$want': $config"; fi
done

# ---------------------------------------------------------------------------
# The server: published on a free loopback port, checked from the host.

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# slirp4netns: the port reaches the host's loopback without podman's bridge
# and its iptables rules.
call podman run --detach --name "$server_ctr" --network slirp4netns \
  --publish "127.0.0.1:$port:50051" --env TASKWIRE_DRAIN_GRACE=5 "$server_image"
((RC == 0)) || give_up "podman run $server_image: $OUT"

deadline=$((SECONDS + START_LIMIT))
while :; do
  tw health
  ((RC == 0)) && break
  if ((SECONDS >= deadline)) || [[ $(podman inspect --format '{{.State.Running}}' "$server_ctr") != true ]]; then
    give_up "taskwire health on 127.0.0.1:$port never answered SERVING (last: exit $RC, '$OUT')"
  fi
  sleep 0.2
done
ok "taskwire health from the host: $OUT"

call podman healthcheck run "$server_ctr"
if ((RC == 0)); then ok "the image's HEALTHCHECK passes"; else bad "podman healthcheck run: exit $RC, '$OUT'"; fi

call podman exec "$server_ctr" id -u
if [[ "$OUT" == 10001 ]]; then ok "taskwired runs as uid 10001"; else bad "id -u in the container: '$OUT' (exit $RC)"; fi

call podman exec "$server_ctr" touch /var/lib/taskwire/.writable
if ((RC == 0)); then ok "the data volume is writable by the server"; else bad "the data volume: '$OUT'"; fi

tw run echo --arg 'value={"a": 1}'
if ((RC == 0)) && [[ "$OUT" == '{"a":1}' ]]; then
  ok "taskwire run echo through the published port"
else
  bad "taskwire run echo: exit $RC, '$OUT', want '{\"a\":1}'"
fi

tw run sleep --arg seconds=0.2
if ((RC == 0)); then ok "taskwire run sleep --arg seconds=0.2"; else bad "taskwire run sleep: exit $RC, '$OUT'"; fi

# ---------------------------------------------------------------------------
# The worker image, in the server's network namespace (as in a pod).

call podman run --detach --name "$worker_ctr" --network "container:$server_ctr" \
  --env TASKWIRE_SERVER=127.0.0.1:50051 "$worker_image" --identity container-test-worker
((RC == 0)) || give_up "podman run $worker_image: $OUT"
# The task waits PENDING until the worker has connected: no sleep needed.
tw run wordcount --args '{"text": "to be or not"}'
# A Struct's fields come in no fixed order: compare as JSON.
if ((RC == 0)) && /usr/bin/python3 -c 'import json, sys; sys.exit(json.loads(sys.argv[1]) != {"words": 4, "lines": 1, "chars": 12})' "$OUT" 2>/dev/null; then
  ok "the worker image runs a wordcount task"
else
  bad "taskwire run wordcount: exit $RC, '$OUT'"
fi
call_within $((STOP_LIMIT + CALL_LIMIT)) podman stop --time "$STOP_LIMIT" "$worker_ctr"
code=$(podman inspect --format '{{.State.ExitCode}}' "$worker_ctr" 2>&1)
if ((RC == 0)) && [[ "$code" == 0 ]]; then
  ok "the worker stops on SIGTERM with exit 0"
else
  bad "podman stop $worker_ctr: exit $RC, '$OUT'; the worker's exit code: $code"
fi

# ---------------------------------------------------------------------------
# SIGTERM: the server drains and exits 0 well within the stop timeout.

begin=$SECONDS
call_within $((STOP_LIMIT + CALL_LIMIT)) podman stop --time "$STOP_LIMIT" "$server_ctr"
took=$((SECONDS - begin))
state=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$server_ctr" 2>&1)
if ((RC == 0)) && [[ "$state" == "exited 0" ]] && ((took < STOP_LIMIT)); then
  ok "podman stop: taskwired exited 0 in ${took} s"
else
  bad "podman stop: exit $RC ('$OUT'), state '$state' after ${took} s (SIGKILL comes at ${STOP_LIMIT} s)"
fi
logs=$(podman logs "$server_ctr" 2>&1)
for want in "durable, SQLite at /var/lib/taskwire/taskwire.db" "metrics on 0.0.0.0:9464" "received SIGTERM" "stopping: refusing new tasks" "drained;" "taskwired stopped"; do
  if [[ "$logs" == *"$want"* ]]; then ok "the logs say '$want'"; else bad "the logs lack '$want'"; fi
done

finish
