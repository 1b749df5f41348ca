/**
 * Memory and speed of the bitsandbytes layers on a small generated Mistral: bytes per parameter (tf.memory), the
 * peak of a quantize-on-load against the float checkpoint, the 4-bit forward time against the float forward on
 * wasm, and the activation memory gradient checkpointing saves in QLoRA training. Run directly:
 * `npx tsx packages/quant/bench/quant.bench.ts` (add `NODE_OPTIONS=--expose-gc` for steadier RSS figures).
 */
import * as tf from '@tensorflow/tfjs-core';
import { countParameters, manualSeed } from '@peft-ts/core';
import type { BenchResult } from '@peft-ts/core/bench';
import { initBackend, type BackendRequest } from '@peft-ts/core/backend';
import { createBitsAndBytesConfig, createLoraConfig } from '@peft-ts/config';
import { LoraModel } from '@peft-ts/lora';
import { MistralForCausalLM, loadMistral, saveMistral, type MistralConfigInput } from '@peft-ts/model-mistral';
import { smallBenchmarkConfig } from '@peft-ts/model-mistral/internal';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Linear4bit, Linear8bitLt, prepareModelForKbitTraining, quantizedLinearFactory, type QuantizableLinear } from '../src/index.js';

const config: MistralConfigInput = smallBenchmarkConfig;
const SHAPE_NOTE = 'vocab 8192, hidden 512, intermediate 1536, 8 layers, 8 heads / 2 KV';
const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const qlora = createBitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true });
const MEGABYTE = 2 ** 20;

/**
 * Fastest of `rounds` timed calls of each function, taken in turns so that load from other processes hits both
 * alike; each must block until its result is ready.
 */
async function bestSecondsInTurns(rounds: number, runs: readonly (() => Promise<unknown>)[]): Promise<number[]> {
  const best = runs.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    for (const [index, run] of runs.entries()) {
      const start = performance.now();
      await run();
      best[index] = Math.min(best[index], (performance.now() - start) / 1000);
    }
  }
  return best;
}

const collectGarbage = () => (globalThis as { gc?: () => void }).gc?.();

/** tf.memory bytes a layer built from a [1536, 512] weight holds, per weight. */
function bytesPerParameter(): BenchResult[] {
  const weight = tf.randomNormal([1536, 512], 0, 0.02, 'float32', 1);
  const formats: [string, (weight: tf.Tensor) => { dispose(): void }][] = [
    ['NF4 + double quant', (value) => Linear4bit.fromWeight(value, { quantType: 'nf4', compressStatistics: true })],
    ['NF4', (value) => Linear4bit.fromWeight(value, { quantType: 'nf4', compressStatistics: false })],
    ['FP4', (value) => Linear4bit.fromWeight(value, { quantType: 'fp4', compressStatistics: false })],
    ['int8 (LLM.int8)', (value) => Linear8bitLt.fromWeight(value, { threshold: 6 })],
  ];
  const results = formats.map(([name, create]): BenchResult => {
    const before = tf.memory().numBytes;
    const layer = create(weight);
    const value = (tf.memory().numBytes - before) / weight.size;
    layer.dispose();
    return { name: `quantized weight bytes/param: ${name}`, value, unit: 'B/param', baseline: 4, ratio: value / 4, note: 'tf.memory() of a [1536, 512] layer vs float32' };
  });
  weight.dispose();
  return results;
}

/** Loads `directory` 4-bit, sampling tf.memory and RSS around every quantized weight. */
async function quantizedLoad(directory: string): Promise<{ model: MistralForCausalLM; peakBytes: number; peakRssGrowth: number }> {
  collectGarbage();
  const startRss = process.memoryUsage().rss;
  let peakBytes = 0;
  let peakRss = startRss;
  const sample = () => {
    peakBytes = Math.max(peakBytes, tf.memory().numBytes);
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  const create = quantizedLinearFactory(qlora);
  const model = await loadMistral(directory, {
    createLinear: (context: QuantizableLinear) => {
      sample();
      const layer = create(context);
      sample();
      return layer;
    },
  });
  sample();
  return { model, peakBytes, peakRssGrowth: peakRss - startRss };
}

/** Bytes held after a training forward (what the backward pass will need), with LoRA on every projection. */
function trainingForwardBytes(model: MistralForCausalLM, inputIds: tf.Tensor2D, variables: tf.Variable[]): number {
  const before = tf.memory().numBytes;
  let held = 0;
  const { value, grads } = tf.variableGrads(() => {
    const loss = model.forward({ inputIds, labels: inputIds }).loss!;
    held = tf.memory().numBytes - before;
    return loss;
  }, variables);
  tf.dispose([value, ...Object.values(grads)]);
  return held;
}

export async function runQuantBench(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const directory = await mkdtemp(join(tmpdir(), 'peft-ts-quant-bench-'));
  try {
    // The checkpoint is generated on cpu (plain JS memory, collectable), so the wasm heap the load grows is fresh.
    await initBackend('cpu');
    manualSeed(0);
    const generated = new MistralForCausalLM(config);
    const floatBytes = countParameters(generated).bytes;
    await saveMistral(generated, directory);
    generated.dispose();

    const backend = await initBackend((process.env.PEFT_TS_BENCH_BACKEND as BackendRequest | undefined) ?? 'wasm');
    results.push(...bytesPerParameter());

    const { model, peakBytes, peakRssGrowth } = await quantizedLoad(directory);
    const loadedBytes = tf.memory().numBytes;
    const loadNote = `${SHAPE_NOTE}; NF4 + double quant, lm_head and embeddings float32; float checkpoint ${(floatBytes / MEGABYTE).toFixed(1)} MiB`;
    results.push(
      { name: '4-bit load: model tf.memory', value: loadedBytes / MEGABYTE, unit: 'MiB', baseline: floatBytes / MEGABYTE, ratio: loadedBytes / floatBytes, note: loadNote },
      { name: '4-bit load: peak tf.memory', value: peakBytes / MEGABYTE, unit: 'MiB', baseline: floatBytes / MEGABYTE, ratio: peakBytes / floatBytes, note: 'quantized so far + the float weight being quantized' },
      {
        name: '4-bit load: peak RSS growth',
        value: peakRssGrowth / MEGABYTE,
        unit: 'MiB',
        baseline: floatBytes / MEGABYTE,
        ratio: peakRssGrowth / floatBytes,
        note: 'whole process: wasm heap growth plus JS copies the quantizer reads and garbage not yet collected',
      },
    );

    const floatModel = await loadMistral(directory);
    for (const current of [model, floatModel]) current.eval();
    const inputIds = tf.randomUniformInt([1, 256], 0, 8192, 3) as tf.Tensor2D;
    const forward = (current: MistralForCausalLM) => async () => {
      const logits = tf.tidy(() => current.forward({ inputIds }).logits);
      await logits.data();
      logits.dispose();
    };
    // Frozen (as in QLoRA) and trainable float weights: core's matMul reuses a frozen weight's transpose.
    const quantizedStorage = new Set(model.namedModules().flatMap(([, module]) => (module instanceof Linear4bit ? module.parameters() : [])));
    for (const frozen of [true, false]) {
      for (const parameter of [...model.parameters(), ...floatModel.parameters()]) parameter.requiresGrad = !frozen && !quantizedStorage.has(parameter);
      // Warm-up: kernels compiled, every weight touched.
      await forward(model)();
      await forward(floatModel)();
      const [quantizedSeconds, floatSeconds] = await bestSecondsInTurns(4, [forward(model), forward(floatModel)]);
      results.push({
        name: `4-bit forward time, ${frozen ? 'frozen' : 'trainable'} weights (small, ${backend.name})`,
        value: quantizedSeconds,
        unit: 's',
        baseline: floatSeconds,
        ratio: quantizedSeconds / floatSeconds,
        note: `${SHAPE_NOTE}; 1×256 tokens; NF4 + double quant, dequantized in every forward; best of 4 taken in turns; ${backend.detail}`,
      });
    }
    floatModel.dispose();

    prepareModelForKbitTraining(model);
    model.train();
    const lora = new LoraModel(model, createLoraConfig({ r: 8, loraAlpha: 16, targetModules: projections }));
    const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
    const batch = tf.randomUniformInt([2, 256], 0, 8192, 4) as tf.Tensor2D;
    model.gradientCheckpointing = false;
    const withoutCheckpointing = trainingForwardBytes(model, batch, variables);
    model.gradientCheckpointing = true;
    const withCheckpointing = trainingForwardBytes(model, batch, variables);
    results.push({
      name: 'QLoRA activation memory with gradient checkpointing',
      value: withCheckpointing / MEGABYTE,
      unit: 'MiB',
      baseline: withoutCheckpointing / MEGABYTE,
      ratio: withCheckpointing / withoutCheckpointing,
      note: `tf.memory held for the backward pass after the forward; ${SHAPE_NOTE}; batch 2×256, LoRA r 8 on every projection`,
    });
    tf.dispose([inputIds, batch]);
    model.dispose();
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const result of await runQuantBench()) {
    const ratio = result.ratio === undefined ? '' : ` (×${result.ratio.toFixed(3)} of ${result.baseline!.toFixed(3)})`;
    console.log(`${result.name}: ${result.value.toFixed(3)} ${result.unit}${ratio}${result.note ? ` — ${result.note}` : ''}`);
  }
}
