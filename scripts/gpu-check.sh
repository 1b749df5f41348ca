#!/usr/bin/env bash
# GPU check for a machine with no network: uses only what the working tree brings (node_modules with the
# prebuilt Dawn binary, and a Node binary: $NODE, then .tools/node/bin/node, then node on PATH), confirms the
# WebGPU adapter is the real GPU, and runs the small-config benchmarks on it. Ends well inside 10 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."

NODE="${NODE:-}"
[ -z "$NODE" ] && [ -x .tools/node/bin/node ] && NODE=.tools/node/bin/node
[ -z "$NODE" ] && NODE="$(command -v node || true)"
if [ -z "$NODE" ]; then
  echo "gpu-check: no Node binary (set NODE, or carry one in .tools/node)"; exit 2
fi
if [ ! -f node_modules/tsx/dist/cli.mjs ] || [ ! -d node_modules/.pnpm ]; then
  echo "gpu-check: node_modules is missing (run the install first and carry node_modules)"; exit 2
fi
TSX=(timeout "${GPU_CHECK_STEP_SECONDS:-240}" "$NODE" node_modules/tsx/dist/cli.mjs)

echo "== machine"
echo "node $("$NODE" --version)"
command -v nvidia-smi >/dev/null && nvidia-smi -L
if ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then echo "vulkan loader: found"; else echo "vulkan loader: libvulkan.so.1 NOT found"; fi
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | grep -i json | sed 's/^/vulkan ICD: /'

echo "== webgpu adapter"
"${TSX[@]}" apps/trainer/scripts/gpu-adapter.ts || { echo "gpu-check: no usable WebGPU adapter"; exit 1; }

echo "== small-config benchmarks on webgpu"
PEFT_TS_BENCH_BACKEND=webgpu "${TSX[@]}" scripts/bench.ts --filter apps/trainer/bench/adapters --json gpu-check-adapters.json
PEFT_TS_BENCH_BACKEND=webgpu "${TSX[@]}" scripts/bench.ts --filter packages/quant/bench --json gpu-check-quant.json
echo "== done (figures also in gpu-check-*.json)"
