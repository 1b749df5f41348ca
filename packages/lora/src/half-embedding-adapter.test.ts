import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { HalfEmbedding, Module, SeededRandom, manualSeed, readTensorFile, type Embedding, type HalfDtype } from '@peft-ts/core';
import { narrowToHalfBits } from '@peft-ts/core/internal';
import { SafetensorsFile } from '@peft-ts/core/safetensors';
import { describeWithBackends } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ADAPTER_WEIGHTS_FILE, loadLoraModel, saveAdapter } from './adapter-io.js';
import { adapterStateDict } from './adapter-state-dict.js';
import { LoraModel } from './lora-model.js';

const KEY = 'base_model.model.embed_tokens.base_layer.weight';
const [ROWS, COLUMNS] = [7, 5]; // an odd width: each stored row ends in a padding half

class TokenModel extends Module {
  readonly kind = 'token-model';
  constructor(embedding: Embedding) {
    super();
    this.registerModule('embed_tokens', embedding);
  }
  forward(ids: tf.Tensor): tf.Tensor {
    return this.child<Embedding>('embed_tokens').forward(ids);
  }
}

function halfModel(dtype: HalfDtype, seed: number): TokenModel {
  const random = new SeededRandom(seed);
  const values = Float32Array.from({ length: ROWS * COLUMNS }, () => 4 * random.next() - 2);
  return new TokenModel(new HalfEmbedding({ dtype, rows: ROWS, columns: COLUMNS, bits: narrowToHalfBits(values, dtype) }));
}

/** The embedding table as float32 values, read through the weight access (the base layer once LoRA wraps it). */
async function tableValues(model: Module): Promise<Float32Array> {
  const embedding = model.getSubmodule(model.getSubmodule('embed_tokens') instanceof HalfEmbedding ? 'embed_tokens' : 'embed_tokens.base_layer');
  const weight = (embedding as HalfEmbedding).weightAccess.getBaseWeight();
  const values = Float32Array.from(await weight.data<'float32'>());
  weight.dispose();
  return values;
}

describeWithBackends('LoRA on a half embedding', () => {
  let scratch: string;
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'peft-ts-half-embedding-'));
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it.each(['bfloat16', 'float16'] as const)('%s: saves the widened table in its dtype, frees what it read, loads it back', async (dtype) => {
    manualSeed(3);
    const model = halfModel(dtype, 1);
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['embed_tokens'], r: 2 }));
    const widened = await tableValues(model);
    const directory = join(scratch, dtype);

    await saveAdapter(lora, directory); // warm up lazily created kernels and tables
    const before = tf.memory().numTensors;
    await saveAdapter(lora, directory);
    expect(tf.memory().numTensors).toBe(before);

    const path = join(directory, ADAPTER_WEIGHTS_FILE);
    const file = await SafetensorsFile.open(path);
    expect(file.info(KEY)).toMatchObject({ dtype: dtype === 'bfloat16' ? 'BF16' : 'F16', shape: [ROWS, COLUMNS] });
    await file.close();
    const saved = await readTensorFile(path);
    expect(Float32Array.from(await saved.get(KEY)!.data<'float32'>())).toEqual(widened);
    tf.dispose([...saved.values()]);

    const state = adapterStateDict(lora);
    expect(Float32Array.from(await state.get(KEY)!.data<'float32'>())).toEqual(widened);
    tf.dispose([...state.values()]);

    const other = halfModel(dtype, 2);
    expect(await tableValues(other)).not.toEqual(widened);
    const warnings: string[] = [];
    const reloaded = await loadLoraModel(other, directory, { onWarning: (message) => warnings.push(message) });
    expect(warnings).toEqual([]);
    expect(reloaded.model.getSubmodule('embed_tokens.base_layer')).toBeInstanceOf(HalfEmbedding);
    expect(await tableValues(reloaded.model)).toEqual(widened);
  });

  it('refuses a base weight of another shape, naming the key', async () => {
    const directory = join(scratch, 'narrow');
    await saveAdapter(new LoraModel(halfModel('bfloat16', 1), createLoraConfig({ targetModules: ['embed_tokens'], r: 2 })), directory);
    const wider = new TokenModel(new HalfEmbedding({ dtype: 'bfloat16', rows: ROWS, columns: COLUMNS + 1, bits: new Uint16Array(ROWS * (COLUMNS + 1)) }));
    await expect(loadLoraModel(wider, directory, { onWarning: () => {} })).rejects.toThrow(`${KEY}: model has bfloat16 [${ROWS},${COLUMNS + 1}]`);
  });
});
