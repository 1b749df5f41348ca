// One QLoRA training step at Mistral-7B's shapes on the native backend: NF4 + double-quant base (every decoder
// linear; lm_head and the embedding stay bfloat16, as a quantized load of the bf16 checkpoint leaves them), LoRA r=16
// on all seven projections, gradient checkpointing, batch 1 × 256 tokens, the trainer's AdamW. The weights are random,
// each linear created and quantized in turn (randomMistral + quantizedLinearFactory), so the float model is never held.
// Reports the step's parts, peak RSS and its ratio to `peft-ts plan`'s memory estimate for the same run.
// PEFT_TS_BENCH_LAYERS (default 32, the full 7B) shrinks the model for a dry run. Creating and quantizing 7e9 random
// values in JS takes tens of minutes, so by default only decoder layer 0 is random and every other layer holds its own
// copy of layer 0's codes (identical layers: the same memory and the same work per step as distinct ones);
// PEFT_TS_BENCH_DISTINCT_LAYERS=1 makes every layer random. PEFT_TS_BENCH_BACKEND and
// PEFT_TS_THREADS as in adapters.bench.ts. `npx tsx apps/trainer/bench/qlora-7b.bench.ts`
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, type Module } from '@peft-ts/core';
import type { BenchResult } from '@peft-ts/core/bench';
import { initBackend, type BackendRequest } from '@peft-ts/core/backend';
import { createBitsAndBytesConfig, createLoraConfig } from '@peft-ts/config';
import { LoraModel } from '@peft-ts/lora';
import { TransformerDecoderLayer } from '@peft-ts/model-common';
import { mistral7bV01Config, randomMistral, type MistralForCausalLM } from '@peft-ts/model-mistral';
import { Linear4bit, prepareModelForKbitTraining, quantizedLinearFactory } from '@peft-ts/quant';
import { planRun } from '../src/commands/plan.js';
import { AdamW } from '../src/optim/adamw.js';

const layers = Number(process.env.PEFT_TS_BENCH_LAYERS ?? mistral7bV01Config.num_hidden_layers);
const batch = 1;
const sequence = 256;
const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const adapterConfigJson = { peft_type: 'LORA', r: 16, lora_alpha: 32, lora_dropout: 0, target_modules: projections };
const config = { ...mistral7bV01Config, num_hidden_layers: layers };
const distinctLayers = process.env.PEFT_TS_BENCH_DISTINCT_LAYERS === '1';

/** Peak resident set of this process so far (the kernel's high-water mark), in bytes. */
const peakRss = () => process.resourceUsage().maxRSS * 1024;
const gib = (bytes: number) => bytes / 2 ** 30;

/**
 * Restarts the high-water mark (Linux's clear_refs 5), so the step's peak is measured apart from the build's
 * transients (a float embedding and head before their narrowing to bfloat16). False where the kernel has no such file.
 */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** A decoder layer holding its own copy of `source`'s tensors (4-bit codes and quant state, norms). */
function copyDecoderLayer(model: MistralForCausalLM, source: TransformerDecoderLayer, index: number): TransformerDecoderLayer {
  const layer = new TransformerDecoderLayer(model.decoderConfig, index, { meta: true });
  const sources = new Map<string, Module>(source.namedModules());
  for (const [path, module] of layer.namedModules()) {
    const from = sources.get(path)!;
    if (from instanceof Linear4bit) {
      layer.setSubmodule(path, new Linear4bit(from.quantized()));
      continue;
    }
    for (const [name, parameter] of module.directParameters()) parameter.set(from.parameter(name).value, name);
  }
  return layer;
}

/**
 * Collects the build's garbage: the float weights' buffers, freed by dispose but returned to the system only when V8
 * collects them (up to ~1 GiB resident for the float embedding and head). Twice, a task apart, as the second pass frees
 * what the first left to finalizers.
 */
async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  await new Promise((resolve) => setTimeout(resolve, 100));
  gc();
}

async function timed<T>(body: () => T | Promise<T>): Promise<{ result: T; seconds: number }> {
  const start = performance.now();
  const result = await body();
  return { result, seconds: (performance.now() - start) / 1000 };
}

/** `peft-ts plan --model <config.json> --adapter-config <r16 all-linear> --quant 4bit --batch-size 1 --seq-length 256 --gradient-checkpointing`. */
async function planEstimate(): Promise<Awaited<ReturnType<typeof planRun>>> {
  const scratch = await mkdtemp(join(tmpdir(), 'peft-ts-qlora-7b-'));
  try {
    await writeFile(join(scratch, 'config.json'), JSON.stringify(config));
    await writeFile(join(scratch, 'adapter_config.json'), JSON.stringify(adapterConfigJson));
    return await planRun({
      model: join(scratch, 'config.json'),
      adapterConfig: join(scratch, 'adapter_config.json'),
      quant: '4bit',
      batchSize: batch,
      sequenceLength: sequence,
      gradientCheckpointing: true,
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

export async function runQlora7bBench(): Promise<BenchResult[]> {
  const backend = await initBackend((process.env.PEFT_TS_BENCH_BACKEND as BackendRequest | undefined) ?? 'native');
  const plan = await planEstimate();
  const rssBefore = peakRss();
  manualSeed(1);
  const quantize = quantizedLinearFactory(createBitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }));
  let quantizedValues = 0;
  const { result: built, seconds: buildSeconds } = await timed(() => {
    const model = randomMistral(distinctLayers ? config : { ...config, num_hidden_layers: 1 }, {
      createLinear: (context) => {
        const layer = quantize(context);
        if (layer) quantizedValues += context.inFeatures * context.outFeatures;
        return layer;
      },
    });
    if (!distinctLayers) {
      const [first] = model.decoderLayers();
      model.setDecoderLayers([first, ...Array.from({ length: layers - 1 }, (_, index) => copyDecoderLayer(model, first, index + 1))]);
    }
    prepareModelForKbitTraining(model, { useGradientCheckpointing: true });
    return { model, lora: new LoraModel(model, createLoraConfig({ r: 16, loraAlpha: 32, targetModules: projections })) };
  });
  const { model, lora } = built;
  const buildPeak = peakRss();
  await collectGarbage();
  const residentAfterBuild = process.memoryUsage.rss();
  const tensorBytes = tf.memory().numBytes;
  const stepPeakApart = resetPeakRss();
  const trainable = lora.trainableParameters();
  const optimizer = new AdamW(trainable, { weightDecay: 0 });
  const variables = trainable.map(([, parameter]) => parameter.value);
  const names = new Map(trainable.map(([name, parameter]) => [parameter.value.name, name]));
  model.train();
  const inputIds = tf.randomUniform([batch, sequence], 0, config.vocab_size, 'int32', 3) as tf.Tensor2D;

  // The forward alone (training mode, no tape), then the step's forward + backward as the trainer runs it.
  const { result: loss, seconds: forwardSeconds } = await timed(async () => {
    const value = tf.tidy(() => model.forward({ inputIds, labels: inputIds }).loss!);
    const [result] = await value.data();
    value.dispose();
    return result;
  });
  const { result: gradients, seconds: gradientSeconds } = await timed(async () => {
    const { value, grads } = tf.tidy(() => tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, variables));
    const named = new Map(Object.entries(grads).map(([variable, gradient]) => [names.get(variable)!, gradient]));
    await Promise.all([value.data(), ...[...named.values()].map((gradient) => gradient.data())]);
    value.dispose();
    return named;
  });
  const { seconds: optimizerSeconds } = await timed(async () => {
    optimizer.step(gradients, 2e-4);
    await variables.at(-1)!.data();
  });
  tf.dispose([...gradients.values()]);
  const peak = peakRss();
  optimizer.dispose();
  model.dispose();
  inputIds.dispose();

  const stepSeconds = gradientSeconds + optimizerSeconds;
  const estimate = plan.memoryBytes.total;
  const parts = Object.entries(plan.memoryBytes)
    .map(([name, bytes]) => `${name} ${gib(bytes).toFixed(2)}`)
    .join(', ');
  const shape = `${layers} layers × Mistral-7B shapes, batch ${batch} × ${sequence}, loss ${loss.toFixed(3)}; ${backend.detail}; load ${loadavg()[0].toFixed(1)}`;
  return [
    { name: 'qlora7b.build', value: buildSeconds, unit: 's', note: `random init + NF4 double-quant of ${(quantizedValues / 1e9).toFixed(2)}e9 values${distinctLayers ? '' : ', layer 0 copied to the others'}` },
    { name: 'qlora7b.forward', value: forwardSeconds, unit: 's', note: `training mode, no tape; ${shape}` },
    { name: 'qlora7b.backward', value: gradientSeconds - forwardSeconds, unit: 's', note: `forward + backward (${gradientSeconds.toFixed(1)} s, with the checkpointed layers' second forward) less the forward alone` },
    { name: 'qlora7b.optimizer', value: optimizerSeconds, unit: 's', note: `AdamW over ${trainable.length} tensors, ${plan.trainableParams.toLocaleString('en-US')} parameters` },
    { name: 'qlora7b.step', value: stepSeconds, unit: 's', note: `${((batch * sequence) / stepSeconds).toFixed(1)} tokens/s` },
    {
      name: 'qlora7b.peak_rss',
      value: gib(peak),
      unit: 'GiB',
      baseline: gib(estimate),
      ratio: peak / estimate,
      note:
        `${stepPeakApart ? 'during the step' : 'build and step'}, vs peft-ts plan's total (${parts}); ` +
        `${gib(rssBefore).toFixed(2)} GiB before the model was built, ${gib(residentAfterBuild).toFixed(2)} GiB resident after it ` +
        `(garbage collected; ${gib(tensorBytes).toFixed(2)} GiB of tensors)`,
    },
    { name: 'qlora7b.build_peak_rss', value: gib(buildPeak), unit: 'GiB', note: 'peak while the random weights were created and quantized' },
  ];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const result of await runQlora7bBench()) console.log(JSON.stringify(result));
}
