import * as tf from '@tensorflow/tfjs-core';
import {
  HalfEmbedding,
  HalfLinear,
  Linear,
  NonFiniteTensorError,
  StateDictError,
  manualSeed,
  readTensorFile,
  type HalfDtype,
} from '@peft-ts/core';
import { mergeIntoHalfBits } from '@peft-ts/core/internal';
import { SafetensorsFile, writeSafetensors, type SafetensorsTensor } from '@peft-ts/core/safetensors';
import { describeWithBackends, fixturePath, maxAbsDifference } from '@peft-ts/core/test';
import { createBitsAndBytesConfig, createLoraConfig } from '@peft-ts/config';
import { doraMethod } from '@peft-ts/dora';
import { LoraLinear, LoraModel } from '@peft-ts/lora';
import { MistralForCausalLM, loadMistral, saveMistral } from '@peft-ts/model-mistral';
import { Linear4bit, Linear8bitLt, bnbCheckpointLinear, prepareModelForKbitTraining, quantizedLinearFactory } from '@peft-ts/quant';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';

type Tensors = Map<string, SafetensorsTensor>;

const baseDirectory = fixturePath('mistral', 'base_model');
const projections = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'];
const SAFETENSORS_HALF = { float16: 'F16', bfloat16: 'BF16' } as const;

/** transformers' `BitsAndBytesConfig.to_dict()` as it lands in config.json. */
function savedQuantizationConfig(bits: 4 | 8): Record<string, unknown> {
  return {
    _load_in_4bit: bits === 4,
    _load_in_8bit: bits === 8,
    bnb_4bit_compute_dtype: 'float16',
    bnb_4bit_quant_storage: 'uint8',
    bnb_4bit_quant_type: 'nf4',
    bnb_4bit_use_double_quant: true,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: null,
    llm_int8_threshold: 6.0,
    load_in_4bit: bits === 4,
    load_in_8bit: bits === 8,
    quant_method: 'bitsandbytes',
  };
}

async function readAll(path: string): Promise<Tensors> {
  const file = await SafetensorsFile.open(path);
  try {
    const tensors: Tensors = new Map();
    for (const name of file.tensorNames) tensors.set(name, await file.readTensor(name));
    return tensors;
  } finally {
    await file.close();
  }
}

async function rawTensors(path: string): Promise<Map<string, { dtype: string; shape: readonly number[]; bytes: number[] }>> {
  const file = await SafetensorsFile.open(path);
  try {
    const raw = new Map<string, { dtype: string; shape: readonly number[]; bytes: number[] }>();
    for (const name of file.tensorNames) {
      const { dtype, shape } = file.info(name);
      raw.set(name, { dtype, shape, bytes: [...(await file.readTensorBytes(name))] });
    }
    return raw;
  } finally {
    await file.close();
  }
}

/** Bytes tf holds per parameter of a loaded model, less what a shape-only model holds (its rotary tables). */
async function heldBytesPerParameter(load: () => Promise<MistralForCausalLM>): Promise<{ perParameter: number; model: MistralForCausalLM }> {
  const before = tf.memory().numBytes;
  const model = await load();
  const held = tf.memory().numBytes - before;
  const shapeOnly = new MistralForCausalLM(model.config, { meta: true });
  const overhead = tf.memory().numBytes - before - held;
  const count = shapeOnly.namedParameters().reduce((sum, [, parameter]) => sum + parameter.size, 0);
  shapeOnly.dispose();
  return { perParameter: (held - overhead) / count, model };
}

const projectionPath = (layer: number, projection: string) =>
  `model.layers.${layer}.${['gate_proj', 'up_proj', 'down_proj'].includes(projection) ? 'mlp' : 'self_attn'}.${projection}`;

describeWithBackends('half-precision and bitsandbytes checkpoints (Mistral)', (backend) => {
  let scratch: string;
  let stored: Tensors;
  let inputIds: tf.Tensor2D;
  let baseConfig: Record<string, unknown>;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), `half-bnb-${backend}-`));
    stored = await readAll(join(baseDirectory, 'model.safetensors'));
    inputIds = (await readTensorFile(fixturePath('mistral', 'inputs.safetensors'))).get('input_ids') as tf.Tensor2D;
    baseConfig = JSON.parse(await readFile(join(baseDirectory, 'config.json'), 'utf8'));
  });
  afterAll(async () => {
    inputIds.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  async function writeCheckpoint(name: string, tensors: Tensors, config: Record<string, unknown>): Promise<string> {
    const directory = join(scratch, name);
    await mkdir(directory, { recursive: true });
    await writeFile(join(directory, 'config.json'), JSON.stringify(config));
    await writeSafetensors(join(directory, 'model.safetensors'), tensors, { format: 'pt' });
    return directory;
  }

  /** The fixture model as a half checkpoint (every tensor rounded to `dtype`, as `model.to(dtype).save_pretrained`). */
  function halfCheckpoint(dtype: HalfDtype, name: string = dtype): Promise<string> {
    const half: Tensors = new Map();
    for (const [key, tensor] of stored) half.set(key, { dtype: SAFETENSORS_HALF[dtype], shape: tensor.shape, data: tensor.data as Float32Array });
    return writeCheckpoint(name, half, { ...baseConfig, torch_dtype: dtype });
  }

  /** Losses of 4 Adam steps of LoRA (or DoRA) on all projections of the prepared model, on a fixed 2 × 12 batch. */
  function trainLora(base: MistralForCausalLM, useDora: boolean, seed: number): number[] {
    manualSeed(seed);
    const model = prepareModelForKbitTraining(base);
    const lora = new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: projections, useDora, initLoraWeights: false }), { method: doraMethod });
    const variables = lora.trainableParameters().map(([, parameter]) => parameter.value);
    const batch = tf.slice(inputIds, [0, 0], [2, 12]);
    const optimizer = tf.train.adam(0.01);
    const losses: number[] = [];
    for (let step = 0; step < 4; step++) {
      const loss = optimizer.minimize(() => model.forward({ inputIds: batch, labels: batch }).loss!, true, variables)!;
      losses.push(loss.dataSync()[0]);
      loss.dispose();
    }
    optimizer.dispose();
    batch.dispose();
    return losses;
  }

  const logitsOf = (model: MistralForCausalLM) => tf.tidy(() => model.eval().forward({ inputIds }).logits);

  for (const dtype of ['bfloat16', 'float16'] as const) {
    it(`${dtype}: loads as half storage by default, computing what the widened float32 model computes`, async () => {
      const directory = await halfCheckpoint(dtype);
      const half = await loadMistral(directory);
      expect(half.getSubmodule('model.layers.2.mlp.up_proj')).toBeInstanceOf(HalfLinear);
      expect(half.getSubmodule('lm_head')).toBeInstanceOf(HalfLinear);
      expect(half.getSubmodule('model.embed_tokens')).toBeInstanceOf(HalfEmbedding);
      const widened = await loadMistral(directory, { torchDtype: 'float32' });
      expect(widened.getSubmodule('model.layers.2.mlp.up_proj')).toBeInstanceOf(Linear);
      const [a, b] = [logitsOf(half), logitsOf(widened)];
      expect(maxAbsDifference(a, b)).toBeLessThan(1e-5);
      tf.dispose([a, b]);
      half.dispose();
      widened.dispose();
    });

    it(`${dtype}: saveMistral writes the checkpoint's dtype back bit for bit, from half storage and from a widened load`, async () => {
      const directory = await halfCheckpoint(dtype, `${dtype}-save`);
      const original = await rawTensors(join(directory, 'model.safetensors'));
      for (const torchDtype of ['auto', 'float32'] as const) {
        const model = await loadMistral(directory, { torchDtype });
        const saved = join(scratch, `${dtype}-saved-${torchDtype}`);
        await saveMistral(model, saved);
        expect(JSON.parse(await readFile(join(saved, 'config.json'), 'utf8')).torch_dtype).toBe(dtype);
        expect(await rawTensors(join(saved, 'model.safetensors'))).toEqual(original);
        model.dispose();
      }
    });
  }

  it('bfloat16 with quantize-on-load: projections go 4-bit from the half values, the skipped head stays half', async () => {
    const directory = await halfCheckpoint('bfloat16', 'bf16-qlora');
    const factory = quantizedLinearFactory(createBitsAndBytesConfig({ loadIn4bit: true, bnb4bitQuantType: 'nf4' }), { onWarning: () => {} });
    const model = await loadMistral(directory, { createLinear: factory });
    expect(model.getSubmodule(projectionPath(0, 'q_proj'))).toBeInstanceOf(Linear4bit);
    expect(model.getSubmodule('lm_head')).toBeInstanceOf(HalfLinear);
    expect(model.getSubmodule('model.embed_tokens')).toBeInstanceOf(HalfEmbedding);
    const head = (model.getSubmodule('lm_head') as HalfLinear).weightAccess.getBaseWeight();
    const widened = await loadMistral(directory, { torchDtype: 'float32' });
    expect(maxAbsDifference(head, widened.getSubmodule('lm_head').parameter('weight').value)).toBe(0);
    head.dispose();
    widened.dispose();
    model.dispose();
  });

  it('half weights kept as bits are checked for NaN/±Inf like float ones (a warning, an error with strict)', async () => {
    const broken = new Map([...stored].map(([key, tensor]) => [key, { dtype: 'BF16' as const, shape: tensor.shape, data: Float32Array.from(tensor.data as Float32Array) }]));
    const key = `${projectionPath(1, 'v_proj')}.weight`;
    (broken.get(key)!.data as Float32Array)[3] = Number.POSITIVE_INFINITY;
    (broken.get('model.embed_tokens.weight')!.data as Float32Array)[0] = Number.NaN;
    const directory = await writeCheckpoint('bf16-non-finite', broken, { ...baseConfig, torch_dtype: 'bfloat16' });
    const warnings: string[] = [];
    const model = await loadMistral(directory, { onWarning: (message) => warnings.push(message) });
    expect(warnings).toHaveLength(2);
    expect(warnings.some((message) => message.includes(key) && message.includes('1 of 2048 values are NaN or ±Inf'))).toBe(true);
    model.dispose();
    await expect(loadMistral(directory, { strict: true })).rejects.toThrow(NonFiniteTensorError);
  });

  it('bfloat16: the frozen base holds at most 2.05 bytes a parameter (tf.memory), float32 about 4', async () => {
    const directory = await halfCheckpoint('bfloat16', 'bf16-bytes');
    const half = await heldBytesPerParameter(() => loadMistral(directory));
    const widened = await heldBytesPerParameter(() => loadMistral(directory, { torchDtype: 'float32' }));
    console.info(`bytes per base parameter held: bf16 ${half.perParameter.toFixed(4)}, float32 ${widened.perParameter.toFixed(4)} (${backend})`);
    expect(half.perParameter).toBeLessThanOrEqual(2.05);
    expect(widened.perParameter).toBeGreaterThan(3.99);
    half.model.dispose();
    widened.model.dispose();
  });

  it('tied half embeddings: lm_head multiplies by the embedding words themselves', async () => {
    const tied = new Map(stored);
    tied.delete('lm_head.weight');
    const directory = await writeCheckpoint(
      'bf16-tied',
      new Map([...tied].map(([key, tensor]) => [key, { dtype: 'BF16', shape: tensor.shape, data: tensor.data as Float32Array }])),
      { ...baseConfig, torch_dtype: 'bfloat16', tie_word_embeddings: true },
    );
    const model = await loadMistral(directory);
    expect(model.getSubmodule('lm_head').parameter('weight')).toBe(model.getSubmodule('model.embed_tokens').parameter('weight'));
    const widened = await loadMistral(directory, { torchDtype: 'float32' });
    const [a, b] = [logitsOf(model), logitsOf(widened)];
    expect(maxAbsDifference(a, b)).toBeLessThan(1e-5);
    tf.dispose([a, b]);
    model.dispose();
    widened.dispose();
  });

  it.each([false, true])('bfloat16 base: LoRA (DoRA %s) trains, the half base stays frozen, gradients as on the widened base', async (useDora) => {
    const directory = await halfCheckpoint('bfloat16', `bf16-train-${useDora}`);
    const train = async (torchDtype: 'auto' | 'float32') => {
      const model = await loadMistral(directory, { torchDtype });
      return { model, losses: trainLora(model, useDora, 5) };
    };
    const half = await train('auto');
    const widened = await train('float32');
    expect(half.losses[3]).toBeLessThan(half.losses[0]);
    for (let step = 0; step < 4; step++) expect(Math.abs(half.losses[step] - widened.losses[step])).toBeLessThan(1e-4);
    expect(half.model.namedParameters().filter(([name, parameter]) => parameter.requiresGrad && !name.includes('lora_'))).toEqual([]);
    half.model.dispose();
    widened.model.dispose();
  });

  it('bfloat16 base: layer replication shares the half words and computes what the widened base computes', async () => {
    const directory = await halfCheckpoint('bfloat16', 'bf16-replication');
    const replicated = async (torchDtype: 'auto' | 'float32') => {
      manualSeed(9);
      const model = await loadMistral(directory, { torchDtype });
      new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: projections, layerReplication: [[0, 4], [2, 5]], initLoraWeights: false }));
      return model;
    };
    const [half, widened] = [await replicated('auto'), await replicated('float32')];
    expect(half.decoderLayers().length).toBe(7);
    const copies = [2, 4].map((layer) => (half.getSubmodule(`${projectionPath(layer, 'up_proj')}`) as LoraLinear).baseLayer);
    expect(copies[0]).toBeInstanceOf(HalfLinear);
    expect(copies[0]!.parameter('weight')).toBe(copies[1]!.parameter('weight'));
    const [a, b] = [logitsOf(half), logitsOf(widened)];
    expect(maxAbsDifference(a, b)).toBeLessThan(1e-5);
    tf.dispose([a, b]);
    half.dispose();
    widened.dispose();
  });

  it('bfloat16 base: merging rounds as torch does (delta to bf16, then the sum) and saves BF16', async () => {
    const directory = await halfCheckpoint('bfloat16', 'bf16-merge');
    manualSeed(6);
    const model = await loadMistral(directory);
    const lora = new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['q_proj'], initLoraWeights: false }));
    const key = 'model.layers.1.self_attn.q_proj';
    const layer = model.getSubmodule(key) as LoraLinear;
    const base = layer.baseLayer as HalfLinear;
    const baseBits = (await base.storage.readMatrix()).bits;
    const mergedFloat = tf.tidy(() => tf.add(base.weightAccess.getBaseWeight(), layer.deltaWeight('default')));
    const expected = mergeIntoHalfBits(baseBits, mergedFloat.dataSync() as Float32Array, 'bfloat16');
    await expect(saveMistral(model, join(scratch, 'bf16-unmerged'))).rejects.toThrow(`${key}: a 'lora_linear' module (merge and unload adapters before saving)`);
    const merged = await lora.mergeAndUnload();
    const mergedLayer = merged.getSubmodule(key);
    expect(mergedLayer).toBeInstanceOf(HalfLinear);
    expect([...(await (mergedLayer as HalfLinear).storage.readMatrix()).bits]).toEqual([...expected]);
    const saved = join(scratch, 'bf16-merged');
    await saveMistral(merged, saved);
    const file = await SafetensorsFile.open(join(saved, 'model.safetensors'));
    expect(file.info(`${key}.weight`).dtype).toBe('BF16');
    expect([...new Uint16Array((await file.readTensorBytes(`${key}.weight`)).slice().buffer)]).toEqual([...expected]);
    await file.close();
    mergedFloat.dispose();
    merged.dispose();
  });

  it('bfloat16 base: LoRA on the half embedding gets gradients and merges into its words', async () => {
    const directory = await halfCheckpoint('bfloat16', 'bf16-embedding');
    manualSeed(8);
    const model = await loadMistral(directory);
    const lora = new LoraModel(model, createLoraConfig({ r: 4, loraAlpha: 8, targetModules: ['embed_tokens'], initLoraWeights: false }));
    const trainable = lora.trainableParameters();
    const { value, grads } = tf.variableGrads(() => model.forward({ inputIds, labels: inputIds }).loss!, trainable.map(([, parameter]) => parameter.value));
    for (const [name, parameter] of trainable) expect([name, maxAbsDifference(grads[parameter.value.name]!, tf.zerosLike(grads[parameter.value.name]!)) > 0]).toEqual([name, true]);
    const before = logitsOf(model);
    const merged = await lora.mergeAndUnload();
    expect(merged.getSubmodule('model.embed_tokens')).toBeInstanceOf(HalfEmbedding);
    const after = logitsOf(merged);
    // Only the bf16 rounding of the merged table separates them (about 1e-3 here).
    expect(maxAbsDifference(after, before)).toBeLessThan(0.005);
    tf.dispose([value, before, after, ...Object.values(grads)]);
    merged.dispose();
  });

  /**
   * A checkpoint as transformers saves a bitsandbytes model: quantized projections in bnb's serialized form, the
   * other tensors in float16, and `quantization_config` in config.json.
   */
  async function bnbCheckpoint(bits: 4 | 8, name: string): Promise<string> {
    const quantizationConfig = savedQuantizationConfig(bits);
    const bnbConfig = createBitsAndBytesConfig(bits === 4 ? { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true } : { loadIn8bit: true });
    const model = await loadMistral(baseDirectory, {
      createLinear: quantizedLinearFactory(bnbConfig, { onWarning: () => {} }),
      configOverrides: { quantization_config: quantizationConfig, torch_dtype: 'float16' },
    });
    const directory = join(scratch, name);
    await saveMistral(model, directory);
    model.dispose();
    return directory;
  }

  it.each([4, 8] as const)('%i-bit bitsandbytes checkpoint: loads the stored codes, logits as the model that wrote them, save → load is bit-identical', async (bits) => {
    const directory = await bnbCheckpoint(bits, `bnb-${bits}`);
    const written = await rawTensors(join(directory, 'model.safetensors'));
    const layerClass = bits === 4 ? Linear4bit : Linear8bitLt;
    const suffixes = bits === 4 ? ['weight', 'weight.absmax', 'weight.quant_map', 'weight.nested_absmax', 'weight.nested_quant_map', 'weight.quant_state.bitsandbytes__nf4'] : ['weight', 'SCB', 'weight_format'];
    expect(suffixes.map((suffix) => written.get(`model.layers.0.mlp.down_proj.${suffix}`)?.dtype)).toEqual(
      bits === 4 ? ['U8', 'U8', 'F32', 'F32', 'F32', 'U8'] : ['I8', 'F32', 'U8'],
    );
    expect(written.get('model.layers.0.mlp.down_proj.weight')!.shape).toEqual(bits === 4 ? [64 * 128 / 2, 1] : [64, 128]);
    expect(written.get('lm_head.weight')!.dtype).toBe('F16');

    await expect(loadMistral(directory)).rejects.toThrow(StateDictError);
    await expect(loadMistral(directory)).rejects.toThrow('pass the loadQuantizedLinear option (bnbCheckpointLinear from @peft-ts/quant)');
    const model = await loadMistral(directory, { loadQuantizedLinear: bnbCheckpointLinear });
    for (const projection of projections) expect(model.getSubmodule(projectionPath(3, projection))).toBeInstanceOf(layerClass);
    expect(model.getSubmodule('lm_head')).toBeInstanceOf(HalfLinear);

    // The model that wrote the checkpoint, quantized on load from float: the same codes, so the same logits.
    const reference = await loadMistral(baseDirectory, {
      createLinear: quantizedLinearFactory(
        createBitsAndBytesConfig(bits === 4 ? { loadIn4bit: true, bnb4bitQuantType: 'nf4', bnb4bitUseDoubleQuant: true } : { loadIn8bit: true }),
        { onWarning: () => {} },
      ),
    });
    const [a, b] = [logitsOf(model), logitsOf(reference)];
    // The reference keeps float32 embeddings and head; the checkpoint holds them in float16.
    expect(maxAbsDifference(a, b)).toBeLessThan(0.01);
    tf.dispose([a, b]);
    reference.dispose();

    const again = join(scratch, `bnb-${bits}-again`);
    await saveMistral(model, again);
    expect(await rawTensors(join(again, 'model.safetensors'))).toEqual(written);
    expect(JSON.parse(await readFile(join(again, 'config.json'), 'utf8')).quantization_config).toEqual(savedQuantizationConfig(bits));
    model.dispose();
  });

  it('a 4-bit checkpoint holding the real bitsandbytes codes dequantizes to bitsandbytes\' weight', async () => {
    const directory = await bnbCheckpoint(4, 'bnb-real');
    const tensors = await readAll(join(directory, 'model.safetensors'));
    const fixtures = await readAll(fixturePath('bnb', 'quant_fixtures.safetensors'));
    const key = projectionPath(2, 'down_proj');
    const packed = fixtures.get('nf4_packed')!;
    tensors.set(`${key}.weight`, { dtype: 'U8', shape: [packed.data.length, 1], data: packed.data as Uint8Array });
    tensors.set(`${key}.weight.absmax`, fixtures.get('nf4_dq_absmax_q8')!);
    tensors.set(`${key}.weight.nested_absmax`, fixtures.get('nf4_dq_state2_absmax')!);
    tensors.set(`${key}.weight.quant_state.bitsandbytes__nf4`, fixtures.get('nf4_dq_quant_state_packed')!);
    await writeSafetensors(join(directory, 'model.safetensors'), tensors, { format: 'pt' });
    const model = await loadMistral(directory, { loadQuantizedLinear: bnbCheckpointLinear });
    const weight = (model.getSubmodule(key) as Linear4bit).weightAccess.getBaseWeight();
    expect(maxAbsDifference(weight, fixtures.get('nf4_dq_dequant')!.data as Float32Array)).toBe(0);
    weight.dispose();
    model.dispose();
  });

  it.each([false, true])('4-bit bitsandbytes checkpoint: LoRA (DoRA %s) trains on the stored codes', async (useDora) => {
    const directory = await bnbCheckpoint(4, `bnb-train-${useDora}`);
    const model = await loadMistral(directory, { loadQuantizedLinear: bnbCheckpointLinear });
    const losses = trainLora(model, useDora, 7);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[3]).toBeLessThan(losses[0]);
    model.dispose();
  });
});
