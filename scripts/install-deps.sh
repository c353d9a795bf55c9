#!/usr/bin/env bash
# Installs the Debian 12 packages that taskwire needs to build, test and run.
# Idempotent: when everything is already installed it only asks dpkg and
# exits (well under a second); otherwise it runs apt-get update and installs
# just the missing packages. Run as root, or as a user with sudo.
#
#   --build-only  only what building needs (the Dockerfile's build stage)
#   --list        print the package names, one a line, and exit
#                 (tests/container bakes them into its local base image)
set -euo pipefail

PACKAGES=(
  bazel-bootstrap        # /usr/bin/bazel 4.2.3 (WORKSPACE mode, offline)
  g++                    # g++ 12, C++20 coroutines
  pkg-config
  libgrpc++-dev          # gRPC 1.51, reflection and health service
  protobuf-compiler-grpc # grpc_cpp_plugin
  libprotobuf-dev
  protobuf-compiler      # protoc
  libspdlog-dev
  libfmt-dev
  libgtest-dev
  libgmock-dev
  libbenchmark-dev
  libcli11-dev
  libsqlite3-dev
  libcpp-httplib-dev     # HTTP server of taskwired's /metrics endpoint
  libgoogle-perftools-dev # TCMalloc, linked into taskwired
  python3
  python3-grpcio
  python3-protobuf
  python3-grpc-tools     # Python stubs for the integration tests
  ca-certificates
  git
)

# tests/container builds and runs the container image with podman, from base
# images it makes itself with debootstrap.
CONTAINER_TEST_PACKAGES=(podman buildah runc uidmap slirp4netns debootstrap)

build_only=0
list=0
for arg in "$@"; do
  case "$arg" in
    --build-only) build_only=1 ;;
    --list) list=1 ;;
    *) echo "install-deps: unknown argument '$arg' (--build-only, --list)" >&2; exit 2 ;;
  esac
done
if ((!build_only)); then
  PACKAGES+=("${CONTAINER_TEST_PACKAGES[@]}")
fi
if ((list)); then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

# One dpkg-query call for all packages keeps the common case fast. Packages
# dpkg has never heard of print nothing (and an error we discard).
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null \
  | awk '$NF == "installed" { sub(/:.*/, "", $1); print $1 }' || true)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! grep -qxF -- "$pkg" <<<"$installed"; then
    missing+=("$pkg")
  fi
done

# Node.js for //tests/foreign:node_client_test: Debian's nodejs (18) and npm,
# only when there is no npm at all. A Node installed otherwise (nodesource's
# node 20, say) bundles its own npm, which Debian's npm package conflicts with.
# Building needs neither (the Dockerfile's build stage runs --build-only).
if ((!build_only)) && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null 2>&1; then
  SUDO=(sudo)
else
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run this script as root (or install sudo)." >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"
