import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, NonFiniteTensorError, StateDictError, type LinearLike } from '@peft-ts/core';
import { linear } from '@peft-ts/core/internal';
import {
  SafetensorsError,
  SafetensorsFile,
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
  writeSafetensors,
  type SafetensorsTensor,
} from '@peft-ts/core/safetensors';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { baseModelDirectory, fixtureInputs, fixtureOutput, readFixture } from './__fixtures__/mistral-fixtures.js';
import type { LinearWeightContext } from '@peft-ts/model-common';
import { loadMistral } from './load-mistral.js';
import { MistralConfigError } from './mistral-config.js';
import { MistralForCausalLM } from './mistral-model.js';
import { saveMistral } from './save-mistral.js';

type StoredTensors = Map<string, SafetensorsTensor>;

describeWithBackends('loadMistral / saveMistral', (backend) => {
  let scratch: string;
  let stored: StoredTensors;
  let inputs: Awaited<ReturnType<typeof fixtureInputs>>;
  let expectedLogits: ArrayLike<number>;

  /** A checkpoint directory holding the fixture config and `tensors`. */
  async function checkpointWith(name: string, tensors: StoredTensors): Promise<string> {
    const directory = join(scratch, name);
    await mkdir(directory, { recursive: true });
    await copyFile(join(baseModelDirectory, 'config.json'), join(directory, 'config.json'));
    await writeSafetensors(join(directory, 'model.safetensors'), tensors, { format: 'pt' });
    return directory;
  }

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), `mistral-load-${backend}-`));
    stored = (await readFixture('mistral', 'base_model', 'model.safetensors')) as StoredTensors;
    inputs = await fixtureInputs();
    expectedLogits = await fixtureOutput('base', 'logits');
  });
  afterAll(async () => {
    inputs.inputIds.dispose();
    inputs.paddedMask.dispose();
    await rm(scratch, { recursive: true, force: true });
  });

  it('lists every missing, unexpected and mis-shaped tensor in one error naming the file', async () => {
    const broken: StoredTensors = new Map(stored);
    broken.delete('model.layers.3.mlp.up_proj.weight');
    broken.delete('model.norm.weight');
    broken.set('model.layers.9.self_attn.q_proj.weight', stored.get('model.layers.0.self_attn.q_proj.weight')!);
    broken.set('model.layers.1.self_attn.k_proj.weight', { dtype: 'F32', shape: [16, 64], data: new Float32Array(16 * 64) });
    broken.set('model.layers.2.input_layernorm.weight', { dtype: 'I32', shape: [64], data: new Int32Array(64) });
    const directory = await checkpointWith('broken', broken);
    const error = await loadMistral(directory).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(StateDictError);
    const { message, missingKeys, unexpectedKeys, mismatchedKeys } = error as StateDictError;
    expect(message).toContain(join(directory, 'model.safetensors'));
    expect(missingKeys).toEqual(['model.layers.3.mlp.up_proj.weight', 'model.norm.weight']);
    expect(unexpectedKeys).toEqual(['model.layers.9.self_attn.q_proj.weight']);
    expect(mismatchedKeys).toEqual([
      'model.layers.1.self_attn.k_proj.weight: expected F32/F16/BF16 [32, 64], got F32 [16, 64]',
      'model.layers.2.input_layernorm.weight: expected F32/F16/BF16 [64], got I32 [64]',
    ]);
    expect(tf.memory().numTensors).toBeLessThan(1000);
  });

  it('warns about NaN/Inf weights naming the tensor, the file and the count; strict refuses them', async () => {
    const name = 'model.layers.1.mlp.down_proj.weight';
    const original = stored.get(name)!;
    const data = Float32Array.from(original.data as Float32Array);
    data.fill(Number.NaN, 0, 5);
    data[7] = Number.NEGATIVE_INFINITY;
    const directory = await checkpointWith('non-finite', new Map(stored).set(name, { dtype: 'F32', shape: original.shape, data }));
    const file = join(directory, 'model.safetensors');
    const expected = `${file}: tensor "${name}": 6 of ${data.length} values are NaN or ±Inf`;
    const warnings: string[] = [];
    (await loadMistral(directory, { onWarning: (message) => warnings.push(message) })).dispose();
    expect(warnings).toEqual([expected]);
    const refusal = loadMistral(directory, { strict: true });
    await expect(refusal).rejects.toBeInstanceOf(NonFiniteTensorError);
    await expect(refusal).rejects.toThrow(expected);
  });

  it('refuses a config with more layers than the checkpoint before building the model', async () => {
    const directory = await checkpointWith('many-layers', stored);
    const configPath = join(directory, 'config.json');
    const config = JSON.parse(await readFile(configPath, 'utf8'));
    await writeFile(configPath, JSON.stringify({ ...config, num_hidden_layers: 2 ** 31 - 1 }));
    await expect(loadMistral(directory)).rejects.toThrow(
      `${join(directory, 'model.safetensors')}: holds decoder layers 0 to 4 (model.layers.N.*), but ${configPath} has num_hidden_layers 2147483647`,
    );
  });

  it('names the missing config.json or weights', async () => {
    const empty = join(scratch, 'empty');
    await mkdir(empty, { recursive: true });
    await expect(loadMistral(empty)).rejects.toThrow(MistralConfigError);
    await expect(loadMistral(empty)).rejects.toThrow(`${join(empty, 'config.json')}: not found`);
    await copyFile(join(baseModelDirectory, 'config.json'), join(empty, 'config.json'));
    const error = await loadMistral(empty).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SafetensorsError);
    expect((error as Error).message).toContain(empty);
  });

  it.each([
    ['F16', float32ToFloat16Bits, float16BitsToFloat32],
    ['BF16', float32ToBfloat16Bits, bfloat16BitsToFloat32],
  ] as const)('loads %s weights as float32', async (dtype, narrow, widen) => {
    const half: StoredTensors = new Map();
    for (const [name, tensor] of stored) half.set(name, { dtype, shape: tensor.shape, data: tensor.data as Float32Array });
    const model = await loadMistral(await checkpointWith(dtype, half));
    const name = 'model.layers.4.mlp.down_proj.weight';
    const parameter = model.getSubmodule(name.replace(/\.weight$/, '')).parameter('weight').value;
    expect(parameter.dtype).toBe('float32');
    const rounded = widen(narrow(stored.get(name)!.data as Float32Array));
    expect(maxAbsDifference(parameter, rounded)).toBe(0);
    const { logits } = model.eval().forward({ inputIds: inputs.inputIds });
    expect(maxAbsDifference(logits, expectedLogits)).toBeLessThan(0.05);
    logits.dispose();
    model.dispose();
  });

  it('hands every linear weight to createLinear and installs what it returns', async () => {
    const seen: string[] = [];
    /** A stand-in for a quantized layer: keeps its own copy of the weight. */
    class CopyingLinear extends Module implements LinearLike {
      readonly kind = 'linear' as const;
      readonly bias = null;
      readonly weightAccess;
      private readonly weight: tf.Tensor;
      constructor(context: LinearWeightContext) {
        super();
        this.weight = tf.keep(context.weight.clone());
        this.inFeatures = context.inFeatures;
        this.outFeatures = context.outFeatures;
        this.weightAccess = { supportsMerge: false, getBaseWeight: () => this.weight.clone(), setBaseWeight: () => {} };
      }
      readonly inFeatures: number;
      readonly outFeatures: number;
      forward(input: tf.Tensor): tf.Tensor {
        return linear(input, this.weight);
      }
    }
    const model = await loadMistral(baseModelDirectory, {
      createLinear: (context) => {
        seen.push(`${context.key} ${context.outFeatures}x${context.inFeatures}`);
        return context.key === 'lm_head' ? undefined : new CopyingLinear(context);
      },
    });
    expect(seen).toHaveLength(5 * 7 + 1);
    expect(seen).toContain('model.layers.0.self_attn.k_proj 32x64');
    expect(seen).toContain('model.layers.4.mlp.down_proj 64x128');
    expect(seen.at(-1)).toBe('lm_head 128x64');
    expect(model.getSubmodule('model.layers.2.mlp.gate_proj')).toBeInstanceOf(CopyingLinear);
    expect(model.getSubmodule('lm_head')).toBeInstanceOf(Linear);
    const { logits } = model.eval().forward({ inputIds: inputs.inputIds });
    expect(maxAbsDifference(logits, expectedLogits)).toBeLessThan(1e-4);

    // Saving reads linear weights through weightAccess, so replaced layers are written back in float.
    const directory = join(scratch, 'from-replaced');
    await saveMistral(model, directory);
    const reloaded = await loadMistral(directory);
    const again = reloaded.eval().forward({ inputIds: inputs.inputIds }).logits;
    expect(maxAbsDifference(again, logits)).toBe(0);
    tf.dispose([logits, again]);
    reloaded.dispose();
  });

  it('saves in transformers layout and reloads identically, single file and sharded', async () => {
    const model = await loadMistral(baseModelDirectory);
    const before = model.eval().forward({ inputIds: inputs.inputIds }).logits;

    const single = join(scratch, 'saved');
    expect(await saveMistral(model, single)).toEqual(['config.json', 'model.safetensors']);
    const file = await SafetensorsFile.open(join(single, 'model.safetensors'));
    expect([...file.tensorNames].sort()).toEqual([...stored.keys()].sort());
    expect(file.metadata).toEqual({ format: 'pt' });
    await file.close();
    const config = JSON.parse(await readFile(join(single, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ architectures: ['MistralForCausalLM'], model_type: 'mistral', sliding_window: 16, torch_dtype: 'float32' });

    const sharded = join(scratch, 'sharded');
    const written = await saveMistral(model, sharded, { maxShardBytes: 200_000 });
    expect(written.at(-1)).toBe('model.safetensors.index.json');
    expect((await readdir(sharded)).filter((name) => name.startsWith('model-')).length).toBeGreaterThan(2);

    for (const directory of [single, sharded]) {
      const reloaded = await loadMistral(directory);
      const after = reloaded.eval().forward({ inputIds: inputs.inputIds }).logits;
      expect(maxAbsDifference(after, before)).toBe(0);
      after.dispose();
      reloaded.dispose();
    }
    before.dispose();
    model.dispose();
  });

  it('writes tied embeddings once and ties them again on load', async () => {
    const tied = new MistralForCausalLM({ vocab_size: 40, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, tie_word_embeddings: true });
    const directory = join(scratch, 'tied');
    await saveMistral(tied, directory);
    const file = await SafetensorsFile.open(join(directory, 'model.safetensors'));
    expect(file.tensorNames).not.toContain('lm_head.weight');
    await file.close();
    const reloaded = await loadMistral(directory);
    expect(reloaded.getSubmodule('lm_head').parameter('weight')).toBe(reloaded.getSubmodule('model.embed_tokens').parameter('weight'));
    const ids = tf.tensor2d([[3, 5, 7]], [1, 3], 'int32');
    const [a, b] = [tied.eval().forward({ inputIds: ids }).logits, reloaded.eval().forward({ inputIds: ids }).logits];
    expect(maxAbsDifference(a, b)).toBe(0);
    tf.dispose([ids, a, b]);
    tied.dispose();
    reloaded.dispose();
  });
});
