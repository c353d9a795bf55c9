# Sourced by container_test.sh (and handy by hand): points podman at its own
# configuration, so that it works on these machines and keeps its files out
# of the system folders.
#
#   podman_env_setup CONF_DIR   writes containers.conf and storage.conf there
#                               and exports CONTAINERS_CONF and
#                               CONTAINERS_STORAGE_CONF; sets
#                               PODMAN_ULIMITS to the --ulimit flags that
#                               `podman build` needs (it ignores
#                               default_ulimits)
#
# Storage (images, including the cached base images) lives under
# $TASKWIRE_CONTAINER_CACHE/storage so that base images outlive a run; the
# run-time state under /run/taskwire-container-test-HASH (podman checks that
# both stay the same from one run to the next).

TASKWIRE_CONTAINER_CACHE=${TASKWIRE_CONTAINER_CACHE:-/var/tmp/taskwire-container-cache}
export TASKWIRE_CONTAINER_CACHE

# podman_ulimit NAME FLAG CAP: "NAME=N:N" with N the caller's hard limit,
# at most CAP. A container may not raise a limit, and on these machines runc
# is not permitted to set nproc above 32768 even where the hard limit is
# higher (checked: 32768 works, 32769 fails).
podman_ulimit() {
  local hard
  hard=$(ulimit -H "$2")
  if [[ "$hard" == unlimited ]] || ((hard > $3)); then hard=$3; fi
  echo "$1=$hard:$hard"
}

podman_env_setup() {
  local conf_dir=$1
  # One run-time folder per storage folder: podman keeps mount state there.
  local run_dir
  run_dir=/run/taskwire-container-test-$(printf %s "$TASKWIRE_CONTAINER_CACHE" | sha256sum | cut -c1-8)
  mkdir -p "$conf_dir" "$TASKWIRE_CONTAINER_CACHE/storage" "$run_dir"
  local nofile nproc
  nofile=$(podman_ulimit nofile -n 1048576)
  nproc=$(podman_ulimit nproc -u 32768)
  PODMAN_ULIMITS=(--ulimit "$nofile" --ulimit "$nproc")
  # crun refuses cgroups in hybrid mode, which these machines have: runc.
  # Setting rlimits above the caller's is not permitted: the caller's.
  cat >"$conf_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["$nofile", "$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$run_dir/events.log"
tmp_dir = "$run_dir/libpod"
CONF
  cat >"$conf_dir/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$TASKWIRE_CONTAINER_CACHE/storage"
runroot = "$run_dir/storage"
CONF
  export CONTAINERS_CONF="$conf_dir/containers.conf"
  export CONTAINERS_STORAGE_CONF="$conf_dir/storage.conf"
}
