#!/usr/bin/env bash
# Installs the Debian 12 shared libraries that taskwired, taskwire and
# example_worker load at run time (the Dockerfile's runtime stage). Like
# scripts/install-deps.sh, it asks dpkg first and touches apt only when a
# package is missing, so a base image that already has them (the local one
# tests/container makes) needs no network.
#
#   --list  print the package names, one a line, and exit
#
# TCMalloc is linked into taskwired statically: no package for it. The
# Dockerfile checks with ldd that nothing is left unresolved.
set -euo pipefail

PACKAGES=(
  libgrpc++1.51  # gRPC C++ (with libgrpc29, abseil, c-ares, re2, libssl3)
  libprotobuf32
  libspdlog1.10
  libfmt9
  libssl3        # libcrypto, for example_worker's sha256
  libcpp-httplib0.11  # taskwired's /metrics endpoint
  libsqlite3-0   # taskwired's durable task store
)

if [[ "${1:-}" == --list ]]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
fi

installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null \
  | awk '$NF == "installed" { sub(/:.*/, "", $1); print $1 }' || true)
missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! grep -qxF -- "$pkg" <<<"$installed"; then missing+=("$pkg"); fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

echo "install-runtime-deps: installing ${missing[*]}"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
# The image keeps the libraries, not apt's downloads and indexes.
apt-get clean
rm -rf /var/lib/apt/lists/*
