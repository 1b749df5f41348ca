// LoRA / DoRA cost on the small config (vocab 8192, hidden 512, 8 layers, batch 4 × 256) on wasm, or on the
// backend PEFT_TS_BENCH_BACKEND names (on native the ceiling is OpenBLAS's sgemm; PEFT_TS_THREADS sets its threads):
// forward and training-step times, each as a ratio to its baseline measured in this same process, and the
// throughput reached as a share of a plain 2-D matMul's (the backend's ceiling), measured here too.
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { Linear, manualSeed } from '@peft-ts/core';
import type { BenchResult } from '@peft-ts/core/bench';
import { initBackend, type BackendRequest } from '@peft-ts/core/backend';
import { createLoraConfig } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { LoraModel } from '@peft-ts/lora';
import { MistralForCausalLM } from '@peft-ts/model-mistral';
import { smallBenchmarkConfig } from '@peft-ts/model-mistral/internal';
import { Linear4bit, prepareModelForKbitTraining } from '@peft-ts/quant';

const smallConfig = smallBenchmarkConfig;
const batch = 4;
/** PEFT_TS_BENCH_TOKENS (batch × sequence) shrinks the run for a dry run on a slow adapter. */
const sequence = Number(process.env.PEFT_TS_BENCH_TOKENS ?? 4 * 256) / batch;
const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
/**
 * Not needed at 4 × 256: each layer back-propagates on its own (scopedBackward), so a step peaks at ~1.1 GiB of wasm
 * heap with LoRA and ~2.2 GiB with DoRA, under the ~3.9 GiB a wasm32 heap can reach.
 */
const gradientCheckpointing = false;

/** Multiply-adds ×2 of the forward: the linear layers and lm_head, plus attention's two products. */
function forwardFlops(): number {
  const { hidden_size: hidden, intermediate_size: intermediate, num_hidden_layers: layers, vocab_size: vocabulary } = smallConfig;
  const headDimension = hidden / smallConfig.num_attention_heads;
  const keyValue = smallConfig.num_key_value_heads * headDimension;
  const weights = layers * (2 * hidden * hidden + 2 * hidden * keyValue + 3 * hidden * intermediate) + hidden * vocabulary;
  const attention = layers * 2 * (2 * batch * smallConfig.num_attention_heads * sequence * sequence * headDimension);
  return 2 * batch * sequence * weights + attention;
}

/** A LoRA step: the forward, then input gradients only through the frozen layers (one more forward's worth) and twice attention's. */
function stepFlops(): number {
  const { num_hidden_layers: layers, hidden_size: hidden } = smallConfig;
  const attention = layers * 2 * (2 * batch * smallConfig.num_attention_heads * sequence * sequence * (hidden / smallConfig.num_attention_heads));
  return 2 * forwardFlops() + attention;
}

/** GFLOP/s of the fastest plain [1024, 512] × [512, 1536] product: what this backend's matMul reaches at best. */
async function matMulCeiling(): Promise<number> {
  const [m, k, n] = [batch * sequence, smallConfig.hidden_size, smallConfig.intermediate_size];
  const [a, b] = [tf.randomNormal([m, k]) as tf.Tensor2D, tf.randomNormal([k, n]) as tf.Tensor2D];
  let fastest = Infinity;
  for (let run = 0; run <= 10; run++) {
    const start = performance.now();
    const product = tf.matMul(a, b);
    await product.data();
    if (run > 0) fastest = Math.min(fastest, (performance.now() - start) / 1000);
    product.dispose();
  }
  tf.dispose([a, b]);
  return (2 * m * k * n) / fastest / 1e9;
}

function wasmHeapGiB(): number {
  return (tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } }).wasm.HEAPU8.length / 2 ** 30;
}

/** Fastest wall time of `repeats` runs after one warm-up (the first run compiles kernels; other processes may share the cores). */
async function fastestSeconds(body: () => tf.Tensor | tf.Tensor[], repeats: number): Promise<number> {
  const times: number[] = [];
  for (let run = 0; run <= repeats; run++) {
    const start = performance.now();
    const result = body();
    await Promise.all((Array.isArray(result) ? result : [result]).map((tensor) => tensor.data()));
    tf.dispose(result);
    if (run > 0) times.push((performance.now() - start) / 1000);
  }
  return Math.min(...times);
}

/** Replaces every projection by its NF4 + double-quant 4-bit form, as a quantized load would. */
function quantizeProjections(model: MistralForCausalLM): void {
  for (const [path, module] of model.namedModules()) {
    if (!(module instanceof Linear) || !projections.includes(path.split('.').at(-1)!)) continue;
    model.setSubmodule(path, Linear4bit.fromWeight(module.weight.value, { quantType: 'nf4', compressStatistics: true }));
    module.dispose();
  }
  prepareModelForKbitTraining(model, { useGradientCheckpointing: false });
}

function buildModel(variant: 'base' | 'lora' | 'dora' | 'qlora'): { model: MistralForCausalLM; lora?: LoraModel } {
  manualSeed(1);
  const model = new MistralForCausalLM(smallConfig);
  if (variant === 'qlora') quantizeProjections(model);
  model.gradientCheckpointing = gradientCheckpointing;
  if (variant === 'base') {
    // Frozen as under an adapter, so the base and adapted forwards treat their base weights alike.
    for (const parameter of model.parameters()) parameter.requiresGrad = false;
    return { model };
  }
  const config = createLoraConfig({ r: 8, loraAlpha: 16, targetModules: projections, useDora: variant === 'dora' });
  return { model, lora: new LoraModel(model, config, { method: doraMethod }) };
}

/** Seconds for one training step: loss, gradients of the trainable parameters, plain SGD update. */
function trainingStep(model: MistralForCausalLM, lora: LoraModel, inputIds: tf.Tensor2D): () => tf.Tensor {
  const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
  return () => {
    const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, variables);
    tf.tidy(() => variables.forEach((variable) => variable.assign(tf.sub(variable, tf.mul(grads[variable.name], 1e-4)))));
    tf.dispose(grads);
    return value;
  };
}

export async function runAdaptersBench(): Promise<BenchResult[]> {
  // PEFT_TS_BENCH_BACKEND runs the same figures on another backend (scripts/gpu-check.sh uses webgpu).
  const backend = await initBackend((process.env.PEFT_TS_BENCH_BACKEND as BackendRequest | undefined) ?? 'wasm');
  const inputIds = tf.randomUniform([batch, sequence], 0, smallConfig.vocab_size, 'int32', 3) as tf.Tensor2D;
  const forward = (model: MistralForCausalLM) => () => tf.tidy(() => model.forward({ inputIds }).logits);
  const results: BenchResult[] = [];
  const seconds: Record<string, number> = {};
  let ceiling = await matMulCeiling();
  for (const variant of ['base', 'lora', 'dora', 'qlora'] as const) {
    const { model, lora } = buildModel(variant);
    model.eval();
    seconds[`${variant}.forward`] = await fastestSeconds(forward(model), 3);
    if (lora) {
      model.train();
      seconds[`${variant}.step`] = await fastestSeconds(trainingStep(model, lora, inputIds), 3);
    }
    model.dispose();
  }
  // Measured again at the end, the better of the two: a brief load from another process must not lower the ceiling.
  ceiling = Math.max(ceiling, await matMulCeiling());
  const tokens = batch * sequence;
  const throughput = (flops: number, time: number) => `${(flops / time / 1e9).toFixed(1)} GFLOP/s = ${((100 * flops) / time / 1e9 / ceiling).toFixed(0)}% of the matMul ceiling`;
  const compared = (name: string, key: string, baselineKey: string, note: string): BenchResult => ({
    name,
    value: seconds[key],
    unit: 's',
    baseline: seconds[baselineKey],
    ratio: seconds[key] / seconds[baselineKey],
    note,
  });
  const stepNote = `${(tokens / seconds['lora.step']).toFixed(0)} tokens/s; ${throughput(stepFlops(), seconds['lora.step'])}`;
  results.push(
    { name: 'matmul.ceiling', value: ceiling, unit: 'GFLOP/s', note: `plain 2-D [${tokens}, ${smallConfig.hidden_size}] × [${smallConfig.hidden_size}, ${smallConfig.intermediate_size}] product; ${backend.detail}` },
    { name: 'base.forward', value: seconds['base.forward'], unit: 's', note: `${(tokens / seconds['base.forward']).toFixed(0)} tokens/s; ${throughput(forwardFlops(), seconds['base.forward'])}` },
    compared('lora.forward', 'lora.forward', 'base.forward', 'unmerged r=8, 7 targets; goal ≤ 1.10'),
    compared('dora.forward', 'dora.forward', 'lora.forward', 'eval mode; goal ≤ 1.25 of LoRA'),
    compared('lora.train_step', 'lora.step', 'base.forward', `${stepNote}; ratio to base forward; gradient checkpointing ${gradientCheckpointing ? 'on' : 'off'}`),
    compared('dora.train_step', 'dora.step', 'lora.step', 'goal ≤ 1.25 of a LoRA step'),
    compared('qlora.train_step', 'qlora.step', 'lora.step', 'NF4 + double-quant projections (dequantized in the forward and again in the backward) vs float LoRA'),
  );
  if (tf.getBackend() === 'wasm') {
    results.push({ name: 'wasm.heap', value: wasmHeapGiB(), unit: 'GiB', note: 'largest the heap grew to (it never shrinks); the wasm32 limit is ~3.9 GiB' });
  }
  return results;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const result of await runAdaptersBench()) console.log(JSON.stringify(result));
}
