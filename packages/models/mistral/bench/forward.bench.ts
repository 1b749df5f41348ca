/**
 * Forward throughput of a small random Mistral on the wasm backend, set against the backend's own matMul rate
 * measured in the same run. Run directly: `npx tsx packages/models/mistral/bench/forward.bench.ts`.
 */
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed } from '@peft-ts/core';
import type { BenchResult } from '@peft-ts/core/bench';
import { initBackend, type BackendRequest } from '@peft-ts/core/backend';
import { pathToFileURL } from 'node:url';
import { MistralForCausalLM, type MistralConfigInput } from '../src/index.js';
import { smallBenchmarkConfig } from '../src/internal.js';

const VOCABULARY = smallBenchmarkConfig.vocab_size;
const config: MistralConfigInput = smallBenchmarkConfig;
const BATCH = 4;
const LENGTH = 256;
const MATMUL_SIZE = 1024;

/** Fastest of `runs` timed calls (the least disturbed by other load); `run` must block until its result is ready. */
function bestSeconds(runs: number, run: () => void): number {
  let best = Infinity;
  for (let index = 0; index < runs; index++) {
    const start = performance.now();
    run();
    best = Math.min(best, (performance.now() - start) / 1000);
  }
  return best;
}

function matMulGigaflops(): number {
  const [a, b] = [tf.randomUniform([MATMUL_SIZE, MATMUL_SIZE], -1, 1, 'float32', 1), tf.randomUniform([MATMUL_SIZE, MATMUL_SIZE], -1, 1, 'float32', 2)];
  tf.tidy(() => tf.matMul(a, b).dataSync());
  const seconds = bestSeconds(3, () => tf.tidy(() => tf.matMul(a, b).dataSync()));
  tf.dispose([a, b]);
  return (2 * MATMUL_SIZE ** 3) / seconds / 1e9;
}

/** Multiply-adds ×2 of one forward: every projection and the head, plus QKᵀ and PV over the full T×T scores. */
function forwardFlops(model: MistralForCausalLM): number {
  const tokens = BATCH * LENGTH;
  let linearWeights = 0;
  for (const [name, parameter] of model.namedParameters({ includeShared: true })) {
    if (name.endsWith('_proj.weight') || name === 'lm_head.weight') linearWeights += parameter.size;
  }
  const { num_attention_heads: heads, hidden_size: hidden, num_hidden_layers: layers } = model.config;
  const attention = 2 * 2 * BATCH * heads * LENGTH * LENGTH * (hidden / heads) * layers;
  return 2 * tokens * linearWeights + attention;
}

export async function runMistralForwardBench(): Promise<BenchResult[]> {
  const backend = await initBackend((process.env.PEFT_TS_BENCH_BACKEND as BackendRequest | undefined) ?? 'wasm');
  const matMulRate = matMulGigaflops();

  manualSeed(0);
  const model = new MistralForCausalLM(config).eval();
  const inputIds = tf.randomUniformInt([BATCH, LENGTH], 0, VOCABULARY, 3) as tf.Tensor2D;
  // A short warm-up compiles kernels and prepares every weight without paying for a full batch.
  tf.tidy(() => model.forward({ inputIds: tf.slice(inputIds, [0, 0], [1, 16]) }).logits.dataSync());
  const seconds = bestSeconds(2, () => tf.tidy(() => model.forward({ inputIds }).logits.dataSync()));
  const achieved = forwardFlops(model) / seconds / 1e9;
  inputIds.dispose();
  model.dispose();

  const shape = `vocab 8192, hidden 512, intermediate 1536, 8 layers, 8 heads / 2 KV, batch ${BATCH}×${LENGTH}`;
  return [
    { name: 'wasm matMul 1024×1024×1024', value: matMulRate, unit: 'GFLOP/s', note: backend.detail },
    { name: 'mistral forward (small, wasm)', value: (BATCH * LENGTH) / seconds, unit: 'tokens/s', note: `${shape}; best of 2` },
    {
      name: 'mistral forward achieved rate (small, wasm)',
      value: achieved,
      unit: 'GFLOP/s',
      baseline: matMulRate,
      ratio: achieved / matMulRate,
      note: 'forward FLOPs (projections, head, QKᵀ and PV) over the measured 1024³ matMul rate',
    },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const result of await runMistralForwardBench()) {
    const ratio = result.ratio === undefined ? '' : ` (${(100 * result.ratio).toFixed(1)}% of ${result.baseline!.toFixed(2)})`;
    console.log(`${result.name}: ${result.value.toFixed(2)} ${result.unit}${ratio}${result.note ? ` — ${result.note}` : ''}`);
  }
}
