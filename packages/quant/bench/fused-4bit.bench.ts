/**
 * The fused 4-bit WebGPU kernel against the unfused path (dequantize to a float weight, then tfjs' matMul) on the
 * small benchmark config's projection shapes at 4 × 256 tokens: the forward `x·Wᵀ`, the forward with its input
 * gradient `dy·W` (a training step's share of the layer), and
 * the bytes the product allocates. Runs on the WebGPU adapter there is (a software one too, where the figures only
 * compare the two paths); reports none where no adapter exists. `npx tsx packages/quant/bench/fused-4bit.bench.ts`
 */
import * as tf from '@tensorflow/tfjs-core';
import type { BenchResult } from '@peft-ts/core/bench';
import { initBackend } from '@peft-ts/core/backend';
import { pathToFileURL } from 'node:url';
import { quantize4bit } from '../src/index.js';
import { dequantize4bitTensor, fourBitTensors, matMul4bitTensor, type FourBitTensors } from '../src/internal.js';

const TOKENS = Number(process.env.PEFT_TS_BENCH_TOKENS ?? 4 * 256);
const SHAPES: [string, number, number][] = [
  ['q_proj [512, 512]', 512, 512],
  ['up_proj [1536, 512]', 1536, 512],
  ['down_proj [512, 1536]', 512, 1536],
];
const ROUNDS = 3;

function layerTensors(outFeatures: number, inFeatures: number): FourBitTensors {
  const weight = tf.randomNormal([outFeatures, inFeatures], 0, 0.02, 'float32', 7);
  const quantized = quantize4bit(weight.dataSync() as Float32Array, { quantType: 'nf4', compressStatistics: true, shape: [outFeatures, inFeatures] });
  weight.dispose();
  return fourBitTensors(quantized);
}

/** Best of ROUNDS, taken in turns; each run waits for its result to be read back. */
async function bestSecondsInTurns(runs: (() => tf.Tensor)[]): Promise<number[]> {
  const best = runs.map(() => Infinity);
  for (let round = 0; round <= ROUNDS; round++) {
    for (const [index, run] of runs.entries()) {
      const start = performance.now();
      const result = run();
      await result.data();
      result.dispose();
      // Round 0 compiles the pipelines.
      if (round > 0) best[index] = Math.min(best[index], (performance.now() - start) / 1000);
    }
  }
  return best;
}

async function peakNewBytes(run: () => tf.Tensor): Promise<number> {
  const before = tf.memory().numBytes;
  const profile = await tf.profile(run);
  tf.dispose(profile.result as tf.Tensor);
  return profile.peakBytes - before;
}

export async function runFused4bitBench(): Promise<BenchResult[]> {
  const backend = await initBackend('webgpu').catch(() => null);
  if (!backend) return [];
  const adapter = backend.detail.split(';')[0];
  const results: BenchResult[] = [];
  for (const [name, outFeatures, inFeatures] of SHAPES) {
    const weight = layerTensors(outFeatures, inFeatures);
    const input = tf.randomUniform([TOKENS, inFeatures], -1, 1, 'float32', 1) as tf.Tensor2D;
    const upstream = tf.randomUniform([TOKENS, outFeatures], -1, 1, 'float32', 2) as tf.Tensor2D;
    const fusedProduct = (x: tf.Tensor) => matMul4bitTensor(x as tf.Tensor2D, weight);
    const unfusedProduct = (x: tf.Tensor) => tf.matMul(x, dequantize4bitTensor(weight), false, true);
    const inputGradient = (product: (x: tf.Tensor) => tf.Tensor) => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(product(x), upstream)));
    const runs = {
      fusedForward: () => fusedProduct(input),
      unfusedForward: () => tf.tidy(() => unfusedProduct(input)),
      fusedStep: () => inputGradient(fusedProduct)(input),
      unfusedStep: () => inputGradient(unfusedProduct)(input),
    };
    const [fusedForward, unfusedForward, fusedStep, unfusedStep] = await bestSecondsInTurns(Object.values(runs));
    const flops = 2 * TOKENS * outFeatures * inFeatures;
    const note = `NF4 + double quant, ${TOKENS} tokens, ${(flops / fusedForward / 1e9).toFixed(1)} GFLOP/s fused forward; ${adapter}`;
    results.push(
      { name: `fused 4-bit forward / unfused: ${name}`, value: fusedForward, unit: 's', baseline: unfusedForward, ratio: fusedForward / unfusedForward, note },
      { name: `fused 4-bit forward + input gradient / unfused: ${name}`, value: fusedStep, unit: 's', baseline: unfusedStep, ratio: fusedStep / unfusedStep, note: adapter },
    );
    if (name.startsWith('up_proj')) {
      const fusedBytes = await peakNewBytes(runs.fusedForward);
      const unfusedBytes = await peakNewBytes(runs.unfusedForward);
      results.push({ name: `fused 4-bit forward peak bytes / unfused: ${name}`, value: fusedBytes, unit: 'B', baseline: unfusedBytes, ratio: fusedBytes / unfusedBytes, note: 'tf.profile peak above the start; the unfused path holds the float weight' });
    }
    tf.dispose([input, upstream, weight as unknown as tf.TensorContainer]);
  }
  return results;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) console.table(await runFused4bitBench());
