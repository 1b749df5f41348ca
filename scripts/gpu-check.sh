#!/usr/bin/env bash
# GPU check for a machine with no network: confirms the WebGPU adapter is the real GPU and runs the small-config
# benchmarks on it, printing a table and writing JSON figures. Ends well inside 10 minutes.
#
# What it runs with, first found:
#   .gpu-check/bundle.tar.xz (made by scripts/pack-gpu-check.sh): unpacked with a copy of this tree into a temp
#     dir, so the tree is never changed; brings Node, node_modules, the Vulkan loader and a libstdc++ fallback;
#   else this tree's node_modules and a Node binary ($NODE, .tools/node/bin/node, node on PATH).
#
# Environment:
#   GPU_CHECK_OUT             folder for gpu-check-*.json and gpu-check.log (default: the repo root)
#   GPU_CHECK_ALLOW_SOFTWARE  set: run the benchmarks on a software adapter too (a dry run without a GPU)
#   GPU_CHECK_BENCHES         bench filters for scripts/bench.ts (default: the fused 4-bit, adapters and quant benches)
#   GPU_CHECK_TOTAL_SECONDS   deadline for the whole run (default 540); GPU_CHECK_STEP_SECONDS caps one step (240)
#   GPU_CHECK_BUNDLE          folder holding bundle.tar.xz (default .gpu-check); GPU_CHECK_KEEP=1 keeps the temp dir
set -uo pipefail # not -e: a failed benchmark must not stop the others or the summary
cd "$(dirname "$0")/.."
REPO="$PWD"
OUT_DIR="${GPU_CHECK_OUT:-$REPO}"
mkdir -p "$OUT_DIR" && OUT_DIR="$(cd "$OUT_DIR" && pwd)"
BUNDLE="${GPU_CHECK_BUNDLE:-$REPO/.gpu-check}"
# One step per bench file, the fused 4-bit comparison first: a step that runs out of time loses only its own figures.
BENCHES="${GPU_CHECK_BENCHES:-packages/quant/bench/fused-4bit apps/trainer/bench/adapters packages/quant/bench/quant.bench}"
DEADLINE=$((SECONDS + ${GPU_CHECK_TOTAL_SECONDS:-540}))
STEP_CAP="${GPU_CHECK_STEP_SECONDS:-240}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
exec > >(tee "$OUT_DIR/gpu-check.log") 2>&1
TEE_PID=$!
finish() {
  [ -n "${GPU_CHECK_KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
  exec >&- 2>&- # let tee drain before the script's exit status is reported
  wait "$TEE_PID" 2>/dev/null
}
trap finish EXIT

STEPS=() # "name|status|seconds" for the summary
note() { printf '%-16s %s\n' "$1:" "$2"; }
fail() { echo "gpu-check: FAILED: $*"; exit 1; }
step_timeout() { # the smaller of the step cap and what is left before the deadline (keeping 15 s for the summary)
  local left=$((DEADLINE - SECONDS - 15))
  [ "$left" -lt "$1" ] && echo "$left" || echo "$1"
}
LDCONFIG="$(command -v ldconfig || command -v /sbin/ldconfig || command -v /usr/sbin/ldconfig || true)"
ld_has() { [ -n "$LDCONFIG" ] && "$LDCONFIG" -p 2>/dev/null | grep -q "$1"; }
ld_path() { [ -n "$LDCONFIG" ] && "$LDCONFIG" -p 2>/dev/null | awk -v lib="$1" '$1 == lib && /x86-64/ {print $NF; exit}'; }

echo "== runtime"
if [ -f "$BUNDLE/bundle.tar.xz" ]; then
  unxz() {
    if command -v xz >/dev/null; then xz -dc "$1"; return; fi
    # The one carried beside the bundle, with its liblzma; it may have lost its exec bit on the way.
    cp "$BUNDLE/xz" "$WORK/xz" && chmod +x "$WORK/xz" && LD_LIBRARY_PATH="$BUNDLE" "$WORK/xz" -dc "$1"
  }
  mkdir -p "$WORK/repo"
  # The tree's sources (whatever they are now: new bench files included), then the bundle over them.
  tar -C "$REPO" --exclude=node_modules --exclude=./.git --exclude=./.gpu-check --exclude=./runs --exclude=./.turbo -cf - . |
    tar -C "$WORK/repo" -xf - || fail "could not copy the tree to $WORK"
  unxz "$BUNDLE/bundle.tar.xz" | tar -C "$WORK/repo" -xf - || fail "could not unpack $BUNDLE/bundle.tar.xz"
  cd "$WORK/repo"
  NODE="$PWD/.gpu-check-tools/bin/node"
  TOOLS="$PWD/.gpu-check-tools"
  note runtime "bundle $BUNDLE unpacked in $WORK ($(du -sm "$WORK" | cut -f1) MiB)"
  [ -f "$BUNDLE/CONTENTS.txt" ] && note packed "$(sed -n 1p "$BUNDLE/CONTENTS.txt")"
else
  NODE="${NODE:-}"
  [ -z "$NODE" ] && [ -x .tools/node/bin/node ] && NODE=.tools/node/bin/node
  [ -z "$NODE" ] && NODE="$(command -v node || true)"
  [ -n "$NODE" ] || fail "no $BUNDLE/bundle.tar.xz and no Node binary (run scripts/pack-gpu-check.sh where there is network)"
  [ -f node_modules/tsx/dist/cli.mjs ] && [ -d node_modules/.pnpm ] ||
    fail "no $BUNDLE/bundle.tar.xz and no node_modules (run scripts/pack-gpu-check.sh, or the install, and carry the result)"
  TOOLS=""
  note runtime "this tree's node_modules, $NODE"
fi
"$NODE" --version >/dev/null 2>&1 || fail "$NODE does not run: $("$NODE" --version 2>&1 | head -2)"
note node "$("$NODE" --version) ($NODE)"
TSX=("$NODE" node_modules/tsx/dist/cli.mjs)

echo "== machine"
note host "$(uname -srm); glibc $(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')"
if command -v nvidia-smi >/dev/null; then
  nvidia-smi -L | sed 's/^/gpu:             /'
  note driver "$(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"
else
  note gpu "nvidia-smi not found"
fi

echo "== vulkan"
# Dawn reaches an NVIDIA GPU through Vulkan: the loader (libvulkan.so.1) reads an ICD manifest that names the
# driver's Vulkan library (libGLX_nvidia.so.0). Driver installs made for compute only often lack one or both.
if ld_has 'libvulkan.so.1'; then
  note loader "system $(ld_path libvulkan.so.1)"
elif [ -n "$TOOLS" ] && [ -f "$TOOLS/lib/vulkan/libvulkan.so.1" ]; then
  export LD_LIBRARY_PATH="$TOOLS/lib/vulkan${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  note loader "none on the system; using the bundle's"
else
  note loader "libvulkan.so.1 NOT found (neither on the system nor in a bundle): Dawn cannot use Vulkan"
fi
default_icds="$(ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json /usr/local/share/vulkan/icd.d/*.json 2>/dev/null)"
for icd in $default_icds; do note "ICD" "$icd"; done
glx="$(ld_path libGLX_nvidia.so.0)"
[ -z "$glx" ] && glx="$(find /usr/local/nvidia /usr/lib /usr/lib64 -maxdepth 3 -name 'libGLX_nvidia.so.0' 2>/dev/null | head -1)"
note "libGLX_nvidia" "${glx:-not found (the Vulkan and GL library of the driver)}"
if [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  note "ICD (env)" "${VK_DRIVER_FILES:-$VK_ICD_FILENAMES}"
elif ! grep -qil nvidia $default_icds /dev/null 2>/dev/null; then
  # Not where the loader looks by default: driver files mounted elsewhere, or no manifest at all.
  manifest="$(ls /usr/local/nvidia/share/vulkan/icd.d/*.json 2>/dev/null | head -1)"
  [ -z "$manifest" ] && manifest="$(timeout 20 find /usr/local/nvidia /usr/lib /usr/lib64 /usr/share /etc -maxdepth 6 -name 'nvidia_icd*.json' 2>/dev/null | head -1)"
  if [ -z "$manifest" ] && [ -n "$glx" ]; then
    manifest="$WORK/nvidia_icd.json"
    printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$glx" > "$manifest"
    note "ICD" "none installed; wrote $manifest for $glx"
  fi
  if [ -n "$manifest" ]; then
    export VK_DRIVER_FILES="$manifest" VK_ICD_FILENAMES="$manifest" # the newer name, and the one older loaders read
    note "ICD (set)" "$manifest"
  else
    note "ICD" "no NVIDIA Vulkan ICD manifest and no libGLX_nvidia.so.0: this driver install has no Vulkan part"
  fi
fi
if [ -n "$glx" ]; then # the NVIDIA Vulkan driver loads its shader compiler from beside itself
  spirv="$(ls "$(dirname "$glx")"/libnvidia-glvkspirv.so.* 2>/dev/null | head -1)"
  note "spirv compiler" "${spirv:-libnvidia-glvkspirv.so.* NOT beside libGLX_nvidia: the NVIDIA Vulkan driver will fail}"
fi

# dawn.node needs GLIBCXX_3.4.30 (GCC 12); an older system libstdc++ is swapped for the bundle's.
DAWN="$(ls -d node_modules/.pnpm/webgpu@*/node_modules/webgpu/dist/linux-x64/dawn.node 2>/dev/null | head -1)"
dlopen() { # prints why dawn.node does not load, nothing when it does
  "$NODE" -e 'try { process.dlopen({ exports: {} }, require("path").resolve(process.argv[1])) } catch (e) { console.log(e.message.split("\n")[0]) }' "$DAWN" 2>&1
}
if [ -z "$DAWN" ]; then
  note dawn "dawn.node for linux-x64 NOT found in node_modules"
elif error="$(dlopen)" && [ -z "$error" ]; then
  note dawn "loads"
elif [ -n "$TOOLS" ] && [ -d "$TOOLS/lib/compat" ] && echo "$error" | grep -q 'GLIBCXX\|CXXABI'; then
  export LD_LIBRARY_PATH="$TOOLS/lib/compat${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  error="$(dlopen)"
  note dawn "${error:-loads with the libstdc++ of the bundle (the system one is too old)}"
else
  note dawn "does NOT load: $error"
fi
note LD_LIBRARY_PATH "${LD_LIBRARY_PATH:-}"

echo "== webgpu adapter"
started=$SECONDS
timeout "$(step_timeout 90)" "${TSX[@]}" apps/trainer/scripts/gpu-adapter.ts > "$WORK/adapter.txt" 2>&1
adapter_status=$?
cat "$WORK/adapter.txt"
ADAPTER="$(sed -n 's/^adapter: //p' "$WORK/adapter.txt" | head -1)"
case $adapter_status in
  0) grep -q SOFTWARE "$WORK/adapter.txt" && STEPS+=("adapter|ok (software, allowed)|$((SECONDS - started))") || STEPS+=("adapter|ok|$((SECONDS - started))") ;;
  3) STEPS+=("adapter|software|$((SECONDS - started))") ;;
  *) STEPS+=("adapter|failed ($adapter_status)|$((SECONDS - started))") ;;
esac
if [ "$adapter_status" -ne 0 ]; then
  if [ -n "${VK_DRIVER_FILES:-}" ] || grep -qil nvidia $default_icds /dev/null 2>/dev/null; then
    # An NVIDIA ICD is there but gave no adapter: the loader's own account says which library failed.
    echo "-- Vulkan loader diagnostics"
    VK_LOADER_DEBUG=error,warn,driver timeout 60 "${TSX[@]}" apps/trainer/scripts/gpu-adapter.ts 2>&1 |
      grep -iE 'error|warn|found|adapter' | awk '!seen[$0]++' | tail -30
  fi
  case $adapter_status in
    3) why="the only WebGPU adapter is a software renderer (${ADAPTER:-?}), not the GPU: Vulkan found no NVIDIA device, so Dawn fell back to OpenGL ES on Mesa (see the vulkan section above)" ;;
    2) why="no WebGPU adapter at all (see the vulkan section above)" ;;
    124) why="the adapter check timed out" ;;
    *) why="the adapter check exited $adapter_status" ;;
  esac
  echo "gpu-check: FAILED: $why"
  exit 1
fi

echo "== small-config benchmarks on webgpu"
files=()
for filter in $BENCHES; do
  limit="$(step_timeout "$STEP_CAP")"
  if [ "$limit" -lt 20 ]; then STEPS+=("$filter|skipped (deadline)|0"); continue; fi
  json="$OUT_DIR/gpu-check-$(basename "$filter").json"
  rm -f "$json"
  echo "-- $filter (timeout ${limit}s)"
  started=$SECONDS
  PEFT_TS_BENCH_BACKEND=webgpu timeout "$limit" "${TSX[@]}" scripts/bench.ts --filter "$filter" --json "$json"
  status=$?
  # bench.ts exits 0 when one bench file fails (it only logs that): count the files with figures against those run.
  expected="$(find packages apps -path '*/bench/*.bench.ts' -not -path '*/node_modules/*' | grep -c -- "$filter")"
  got="$([ -s "$json" ] && "$NODE" -e 'console.log(new Set(require(process.argv[1]).map((row) => row.file)).size)' "$json" || echo 0)"
  if [ "$status" -eq 124 ]; then result="timed out"; elif [ "$status" -ne 0 ]; then result="failed ($status)"
  elif [ "$got" -lt "$expected" ]; then result="figures from $got of $expected files"; else result=ok; fi
  STEPS+=("$filter|$result|$((SECONDS - started))")
  [ -s "$json" ] && files+=("$json")
done

echo "== summary"
printf '%s\n' "${STEPS[@]}" > "$WORK/steps.txt"
"$NODE" - "$OUT_DIR/gpu-check-summary.json" "$WORK/steps.txt" "${ADAPTER:-}" "${files[@]}" <<'JS'
const fs = require('node:fs');
const [summaryFile, stepsFile, adapter, ...files] = process.argv.slice(2);
const steps = fs.readFileSync(stepsFile, 'utf8').trim().split('\n').map((line) => {
  const [name, status, seconds] = line.split('|');
  return { name, status, seconds: Number(seconds) };
});
const rows = files.flatMap((file) => JSON.parse(fs.readFileSync(file, 'utf8')));
const format = (value) => value === undefined ? '' : Math.abs(value) >= 100 ? value.toFixed(0) : Math.abs(value) >= 1 ? value.toFixed(2) : value.toPrecision(3);
const print = (table) => {
  const widths = table[0].map((_, column) => Math.max(...table.map((row) => String(row[column]).length)));
  for (const row of table) console.log(row.map((cell, column) => String(cell).padEnd(widths[column])).join('  ').trimEnd());
};
console.log(`adapter: ${adapter}\n`);
print([['step', 'status', 'seconds'], ...steps.map((step) => [step.name, step.status, step.seconds])]);
console.log('');
print([['benchmark', 'value', 'unit', 'baseline', 'ratio', 'file'], ...rows.map((row) => [row.name, format(row.value), row.unit, format(row.baseline), format(row.ratio), row.file])]);
fs.writeFileSync(summaryFile, `${JSON.stringify({ adapter, steps, results: rows }, null, 2)}\n`);
JS
echo "figures: $OUT_DIR/gpu-check-*.json; log: $OUT_DIR/gpu-check.log"
# Exit 0 only when every step gave all its figures.
for step in "${STEPS[@]}"; do [[ "$step" == *"|ok"* ]] || exit 1; done
