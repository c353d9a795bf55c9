#!/usr/bin/env bash
# base_image.sh NAME PACKAGE...: makes sure podman's storage holds a Debian 12
# image with these packages, made locally with debootstrap (no registry is
# needed), and prints its reference: localhost/taskwire-NAME:KEY, where KEY
# is a hash of the package list and the mirror, so a changed list makes a new
# image and an unchanged one is reused from an earlier run.
#
# Podman's configuration comes from the caller (CONTAINERS_CONF,
# CONTAINERS_STORAGE_CONF). Downloaded packages are kept in
# $TASKWIRE_CONTAINER_CACHE/debs. Needs root (debootstrap chroots).
set -euo pipefail

name=$1
shift
cache=${TASKWIRE_CONTAINER_CACHE:-/var/tmp/taskwire-container-cache}
suite=bookworm

# The mirror this machine's apt uses, else Debian's default one.
mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null |
  grep -v security | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

packages=$(printf '%s\n' "$@" | sort -u | paste -sd, -)
# The recipe's version goes into the key too: bump it when the steps below
# change what an image holds.
recipe=2
key=$(printf '%s %s %s %s %s\n' "$recipe" "$suite" minbase "$mirror" "$packages" |
  sha256sum | cut -c1-16)
ref="localhost/taskwire-$name:$key"

mkdir -p "$cache/debs"
# One maker at a time: two test runs must not debootstrap into one another.
exec 9>"$cache/$name.lock"
flock 9

if podman image exists "$ref"; then
  echo "$ref"
  exit 0
fi

work=$(mktemp -d "$cache/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
log="$cache/debootstrap-$name.log"
echo "base_image: debootstrap $suite with ${#} packages into $ref (log: $log)" >&2
start=$SECONDS
if ! debootstrap --variant=minbase --cache-dir="$cache/debs" --include="$packages" \
  "$suite" "$work/rootfs" "$mirror" >"$log" 2>&1; then
  echo "base_image: debootstrap failed; the end of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
# What apt downloaded and indexed is not part of an image, nor, as in
# Debian's slim images, documentation and translations.
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"* \
  "$work/rootfs/usr/share/"{doc,man,info,locale}/*
tar --numeric-owner -C "$work/rootfs" -c . | podman import --quiet - "$ref" >/dev/null
echo "base_image: $ref made in $((SECONDS - start)) s" >&2

# Images of this name with another package list are now stale.
podman images --format '{{.Repository}}:{{.Tag}}' "localhost/taskwire-$name" |
  grep -vxF "$ref" | xargs -r podman rmi --force >/dev/null || true
echo "$ref"
