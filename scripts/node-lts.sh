#!/usr/bin/env bash
# Installs Node.js 24 LTS from the npm registry's node-linux-<arch> package (no other download works here) and prints its bin/.
set -euo pipefail
version="${TEMPLATES_NODE_LTS:-24}"
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64) arch=arm64 ;;
  *) echo "node-lts.sh: no node-linux package for $(uname -m)" >&2; exit 1 ;;
esac
dest="${1:-$(mktemp -d "${TMPDIR:-/tmp}/templates-node.XXXXXX")}"
mkdir -p "$dest"
cd "$dest"
tarball=$(npm pack --silent "node-linux-$arch@$version" | tail -n 1)
tar -xzf "$tarball" --strip-components=1
rm -f "$tarball"
"$dest/bin/node" --version >/dev/null
echo "$dest/bin"
