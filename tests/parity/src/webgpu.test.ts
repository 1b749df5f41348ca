import * as tf from '@tensorflow/tfjs-core';
import { manualSeed, readTensorFile } from '@peft-ts/core';
import { initBackend, type BackendName } from '@peft-ts/core/backend';
import { fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { createBitsAndBytesConfig, createLoraConfig, type BitsAndBytesConfigInput } from '@peft-ts/config';
import { quantizedLinearFactory } from '@peft-ts/quant';
import { doraMethod } from '@peft-ts/dora';
import { LoraLinear, LoraModel, loadLoraModel } from '@peft-ts/lora';
import { KeyValueCache, generate, loadMistral, saveMistral, type MistralForCausalLM } from '@peft-ts/model-mistral';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// WebGPU runs here on a software adapter (llvmpipe through OpenGL ES); where no adapter exists at all
// the suite is reported as skipped rather than passed.
const webgpuAvailable = await initBackend('webgpu').then(
  () => true,
  () => false,
);

type FixtureSetup = {
  /** A model directory other than the fixture's base model. */
  readonly model?: string;
  readonly adapter?: string;
  readonly quantization?: BitsAndBytesConfigInput;
  /** Runs on the adapted model before the forward (merging, saving). */
  readonly prepare?: (lora: LoraModel<MistralForCausalLM>) => Promise<unknown>;
  /** Runs a forward before the adapter is applied, so the base weights already live on the device. */
  readonly forwardFirst?: boolean;
};

async function fixtureLogits(backend: BackendName, setup: FixtureSetup = {}): Promise<Float32Array> {
  const { adapter, quantization, prepare, forwardFirst } = setup;
  await initBackend(backend);
  const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  const createLinear = quantization ? quantizedLinearFactory(createBitsAndBytesConfig(quantization)) : undefined;
  const model = await loadMistral(setup.model ?? fixturePath('mistral', 'base_model'), { createLinear });
  if (forwardFirst) tf.dispose(tf.tidy(() => model.forward({ inputIds }).logits));
  if (adapter) {
    const lora = await loadLoraModel(model, fixturePath('mistral', adapter, 'adapter'), { method: doraMethod });
    await prepare?.(lora);
  }
  const logits = tf.tidy(() => model.forward({ inputIds }).logits);
  const values = (await logits.data()) as Float32Array;
  tf.dispose([logits, inputIds]);
  model.dispose();
  return values;
}

/** Losses of a few Adam-free SGD steps of LoRA on the fixture Mistral (quantized on load if asked), on the given backend. */
async function trainingLosses(backend: BackendName, useDora: boolean, quantization?: BitsAndBytesConfigInput): Promise<number[]> {
  await initBackend(backend);
  const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  const createLinear = quantization ? quantizedLinearFactory(createBitsAndBytesConfig(quantization)) : undefined;
  const model = await loadMistral(fixturePath('mistral', 'base_model'), { createLinear });
  manualSeed(21);
  const config = createLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj', 'down_proj'], initLoraWeights: false, useDora });
  const lora = new LoraModel(model, config, { method: doraMethod });
  const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
  const losses: number[] = [];
  for (let step = 0; step < 4; step++) {
    const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, variables);
    losses.push((await value.data())[0]);
    tf.tidy(() => variables.forEach((variable) => variable.assign(tf.sub(variable, tf.mul(grads[variable.name], 0.05)))));
    tf.dispose([value, ...Object.values(grads)]);
  }
  model.dispose();
  return losses;
}

/**
 * Logits of two cached forwards (all tokens but the last, then the last) with row 1 left-padded by 3 tokens. The mask
 * and the positions (`cumsum − 1`, 1 on padding, as generation makes them) are outputs of tf ops, so on webgpu they
 * exist only on the device.
 */
async function deviceMaskedLogits(backend: BackendName): Promise<Float32Array> {
  await initBackend(backend);
  const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  const [batch, length] = inputIds.shape;
  const model = await loadMistral(fixturePath('mistral', 'base_model'));
  const cache = new KeyValueCache(model.config.sliding_window);
  const padding = tf.tensor2d(Float32Array.from({ length: batch * length }, (_, index) => (index >= length && index < length + 3 ? 1 : 0)), [batch, length]);
  const attentionMask = tf.sub(1, padding);
  const counted = tf.cast(tf.sub(tf.cumsum(attentionMask, 1), 1), 'int32');
  const positionIds = tf.where(tf.cast(attentionMask, 'bool'), counted, tf.onesLike(counted));
  const columns = (tensor: tf.Tensor, start: number, count: number) => tf.slice(tensor, [0, start], [batch, count]) as tf.Tensor2D;
  const logits = tf.tidy(() => {
    const prefix = model.forward({
      inputIds: columns(inputIds, 0, length - 1),
      attentionMask: columns(attentionMask, 0, length - 1),
      positionIds: columns(positionIds, 0, length - 1),
      cache,
    }).logits;
    const last = model.forward({ inputIds: columns(inputIds, length - 1, 1), attentionMask, positionIds: columns(positionIds, length - 1, 1), cache }).logits;
    return tf.concat([prefix, last], 1);
  });
  const values = (await logits.data()) as Float32Array;
  tf.dispose([logits, inputIds, padding, attentionMask, counted, positionIds]);
  cache.dispose();
  model.dispose();
  return values;
}

/** Greedy continuations of two prompts of different lengths (so one is left-padded) by a QLoRA model. */
async function qloraGenerations(backend: BackendName): Promise<number[][]> {
  await initBackend(backend);
  const inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
  const rows = (await inputIds.array()) as number[][];
  inputIds.dispose();
  const createLinear = quantizedLinearFactory(createBitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }));
  const model = await loadMistral(fixturePath('mistral', 'base_model'), { createLinear });
  await loadLoraModel(model, fixturePath('mistral', 'lora', 'adapter'));
  const { tokens } = await generate(model, [rows[0].slice(0, 9), rows[1].slice(0, 4)], { maxNewTokens: 12, stopTokenIds: [] });
  model.dispose();
  return tokens;
}

describe.skipIf(!webgpuAvailable)('webgpu (small sizes) matches cpu', () => {
  it.each([undefined, 'lora', 'dora', 'layer_replication'])('fixture logits with adapter %s', async (adapter) => {
    const reference = await fixtureLogits('cpu', { adapter });
    const webgpu = await fixtureLogits('webgpu', { adapter });
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  // A low LLM.int8 threshold makes outlier columns appear, which webgpu handles with a mask on the device.
  it.each<BitsAndBytesConfigInput>([
    { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true },
    { loadIn8bit: true, llmInt8Threshold: 0.5 },
  ])('quantized fixture logits (%j)', async (quantization) => {
    const reference = await fixtureLogits('cpu', { adapter: 'lora', quantization });
    const webgpu = await fixtureLogits('webgpu', { adapter: 'lora', quantization });
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  // The 4-bit base runs through the fused dequantize-in-matMul kernel on webgpu, the host loop on cpu.
  it.each([
    [false, undefined],
    [true, undefined],
    [false, { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true }],
  ] as const)('a few LoRA training steps give the cpu losses (DoRA: %s, quantization: %j)', async (useDora, quantization) => {
    const reference = await trainingLosses('cpu', useDora, quantization);
    const webgpu = await trainingLosses('webgpu', useDora, quantization);
    expect(reference[3]).toBeLessThan(reference[0]);
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  // Safe merge reads its finiteness check back asynchronously; quantized bases re-quantize from an asynchronous read.
  it.each<BitsAndBytesConfigInput | undefined>([
    undefined,
    { loadIn8bit: true, llmInt8Threshold: 0.5 },
    { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true },
  ])(
    'safe mergeAdapter gives the cpu merged logits (quantization %j)',
    async (quantization) => {
      const prepare = (lora: LoraModel) => lora.mergeAdapter({ safeMerge: true });
      const reference = await fixtureLogits('cpu', { adapter: 'lora', quantization, prepare });
      const webgpu = await fixtureLogits('webgpu', { adapter: 'lora', quantization, prepare });
      expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
    },
  );

  it.each<BitsAndBytesConfigInput>([
    { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true },
    { loadIn8bit: true, llmInt8Threshold: 0.5 },
  ])('layer replication over quantized layers already on the device gives the cpu logits (%j)', async (quantization) => {
    const setup = { adapter: 'layer_replication', quantization, forwardFirst: true };
    const reference = await fixtureLogits('cpu', setup);
    const webgpu = await fixtureLogits('webgpu', setup);
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  it('safe mergeAndUnload and saveMistral (the merge command) give the cpu merged model', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'peft-ts-webgpu-merge-'));
    try {
      const reference = await fixtureLogits('cpu', { adapter: 'lora', prepare: (lora) => lora.mergeAndUnload() });
      const mergeAndSave = async (lora: LoraModel<MistralForCausalLM>) => saveMistral(await lora.mergeAndUnload({ safeMerge: true }), directory);
      const webgpu = await fixtureLogits('webgpu', { adapter: 'lora', prepare: mergeAndSave });
      const reloaded = await fixtureLogits('cpu', { model: directory });
      expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
      expect(maxAbsDifference(reloaded, reference)).toBeLessThan(1e-4);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('safe merge refuses NaN weights computed on the device and leaves the model wrapped', async () => {
    await initBackend('webgpu');
    const model = await loadMistral(fixturePath('mistral', 'base_model'));
    const lora = await loadLoraModel(model, fixturePath('mistral', 'lora', 'adapter'));
    const [path, layer] = lora.loraLayers()[0];
    const loraB = (layer as LoraLinear).loraB('default').weight;
    const poisoned = tf.mul(loraB.value, NaN);
    loraB.set(poisoned);
    await expect(lora.mergeAndUnload({ safeMerge: true })).rejects.toThrow(/NaNs detected in the merged weights/);
    expect(model.getSubmodule(path)).toBe(layer);
    poisoned.dispose();
    model.dispose();
  });

  it('a cached forward with an attention mask and position ids computed on the device gives the cpu logits', async () => {
    const reference = await deviceMaskedLogits('cpu');
    const webgpu = await deviceMaskedLogits('webgpu');
    expect(maxAbsDifference(webgpu, reference)).toBeLessThan(1e-4);
  });

  it('greedy generation from a 4-bit base with LoRA gives the cpu tokens', async () => {
    const reference = await qloraGenerations('cpu');
    expect(await qloraGenerations('webgpu')).toEqual(reference);
  });

  it('refuses a tensor over the storage-buffer limit instead of reading back zeros', async () => {
    const info = await initBackend('webgpu');
    const limit = Number(/storage buffers up to (\d+) MiB/.exec(info.detail)![1]) * 2 ** 20;
    expect(() => tf.zeros([limit / 4 + 1])).toThrow(/storage-buffer limit .*use a smaller batch/);
    expect(() => tf.tensor(new Float32Array(limit / 4 + 1))).toThrow(/float32 \[\d+\] tensor needs/);
    const fits = tf.ones([1024]);
    expect((await tf.sum(fits).data())[0]).toBe(1024);
  });
});
