#!/usr/bin/env bash
# Prints the folder that holds the npm packages of tests/foreign/package-lock.json
# (its node_modules/ inside): outside the source tree, one per lock file, so
# that scripts/install-node-deps.sh installs them once and the Bazel test
# finds them without a network. Root: /var/cache/taskwire; others:
# /tmp/taskwire-cache-$UID. (Not $TMPDIR or $HOME: Bazel points both at the
# test's own folder.)
#   tests/foreign/node_deps_dir.sh [PATH/TO/package-lock.json]
set -euo pipefail

lock=${1:-$(dirname "${BASH_SOURCE[0]}")/package-lock.json}
if [[ $(id -u) -eq 0 ]]; then
  root=/var/cache/taskwire
else
  root=/tmp/taskwire-cache-$(id -u)
fi
echo "$root/node-deps/$(sha256sum <"$lock" | cut -c1-16)"
