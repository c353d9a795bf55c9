#!/usr/bin/env bash
# Installs the npm packages of the Node.js client test (pinned in
# tests/foreign/package.json and package-lock.json) with `npm ci`, into the
# folder tests/foreign/node_deps_dir.sh names, outside the source tree.
# Does nothing when that lock file's packages are there already, so
# `bazel test` runs offline afterwards. Needs npm (scripts/install-deps.sh
# installs Debian's nodejs and npm when there is none).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

lock=tests/foreign/package-lock.json
dir=$(bash tests/foreign/node_deps_dir.sh "$lock")
if [[ -f "$dir/.installed" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "install-node-deps: npm is missing; run scripts/install-deps.sh" >&2
  exit 1
fi

echo "install-node-deps: npm ci into $dir"
mkdir -p "$(dirname "$dir")"
# Installed beside the target and renamed into place, so an interrupted
# install never looks complete.
staging=$(mktemp -d "$dir.XXXXXX")
trap 'rm -rf "$staging"' EXIT
cp tests/foreign/package.json "$lock" "$staging/"
# --ignore-scripts: none of the packages needs an install script to work.
(cd "$staging" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
touch "$staging/.installed"
chmod 755 "$staging"
rm -rf "$dir"
mv "$staging" "$dir"
trap - EXIT
