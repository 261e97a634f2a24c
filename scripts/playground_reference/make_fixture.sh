#!/usr/bin/env bash
# Regenerate tests/fixtures/playground_reference.json from TensorFlow Playground's own code.
#
#   bash scripts/playground_reference/make_fixture.sh [PLAYGROUND_GIT_DIR_OR_CLONE]
#
# - takes src/nn.ts and src/dataset.ts from the given tensorflow/playground checkout (a clone or
#   a bare git dir; default: clone https://github.com/tensorflow/playground into a temp folder),
#   at its HEAD commit, which the fixture records;
# - compiles them unchanged with TypeScript 2.9 (the version playground's package.json names),
#   with d3 3.5 and seedrandom 2.4 (its runtime dependencies) from npm, in a temp folder;
# - runs train_headless.js with node (>= 16), which trains them the way playground.ts does,
#   and writes the fixture. Needs: git, node, npm, and a network path to the npm registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
out="$repo_root/tests/fixtures/playground_reference.json"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

src="${1:-}"
if [[ -z "$src" ]]; then
  git clone --quiet https://github.com/tensorflow/playground "$work/playground"
  src="$work/playground"
fi
if [[ -d "$src/.git" ]]; then gitdir="$src/.git"; else gitdir="$src"; fi
commit="$(git --git-dir="$gitdir" rev-parse HEAD)"

mkdir -p "$work/src"
for f in nn.ts dataset.ts; do
  git --git-dir="$gitdir" show "$commit:src/$f" > "$work/src/$f"
done
cp "$here/train_headless.js" "$work/"
cd "$work"
npm install --silent --no-audit --no-fund typescript@2.9 d3@3.5.17 seedrandom@2.4.3 @types/d3@3.5.38 >/dev/null
node_modules/.bin/tsc --module commonjs --outDir build src/nn.ts src/dataset.ts
mkdir -p "$(dirname "$out")"
node train_headless.js build "$commit" > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out (playground $commit, $(wc -c < "$out") bytes)"
