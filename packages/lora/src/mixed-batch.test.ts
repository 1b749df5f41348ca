import * as tf from '@tensorflow/tfjs-core';
import { BASE_MODEL_ROW, Embedding, Linear, MergeError, UnknownAdapterError, manualSeed, withRowAdapters, type Module } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { expect, it } from 'vitest';
import { LoraModel } from './lora-model.js';
import { Mlp, Sequential, createConvModel } from './testing/test-models.js';

type Forward = Module & { forward(input: tf.Tensor): tf.Tensor };

/** Each row run alone: with only its adapter active, or with adapters disabled for `__base__`. */
async function rowsAlone(lora: LoraModel, model: Forward, input: tf.Tensor, names: readonly string[]): Promise<tf.Tensor> {
  const rows: tf.Tensor[] = [];
  for (const [row, name] of names.entries()) {
    const alone = tf.slice(input, row, 1);
    if (name === BASE_MODEL_ROW) {
      rows.push(await lora.withAdaptersDisabled(() => model.forward(alone)));
    } else {
      await lora.setAdapter(name);
      rows.push(model.forward(alone));
    }
  }
  return tf.concat(rows, 0);
}

const mixed = (model: Forward, input: tf.Tensor, names: readonly string[]) =>
  withRowAdapters(model, names, input.shape[0], () => model.forward(input));

/** Two adapters with random (non-zero) weights; 'b' targets only some of the layers 'a' does. */
function withTwoAdapters(model: Forward, targetsOfA: string[], targetsOfB: string[]): LoraModel {
  const lora = new LoraModel(model, createLoraConfig({ targetModules: targetsOfA, initLoraWeights: false }), { adapterName: 'a' });
  lora.addAdapter('b', createLoraConfig({ targetModules: targetsOfB, initLoraWeights: false, r: 2, loraAlpha: 4 }));
  model.eval();
  return lora;
}

describeWithBackends('mixed batches: one adapter per row (PEFT adapter_names)', () => {
  const names = ['a', BASE_MODEL_ROW, 'b', 'a'];

  it('Linear: each row equals that row run alone with its adapter, __base__ the base model', async () => {
    manualSeed(20);
    const model = new Mlp();
    const lora = withTwoAdapters(model, ['lin0', 'lin1'], ['lin1']);
    const input = tf.randomNormal([4, 10], 0, 1, 'float32', 21);
    const result = mixed(model, input, names);
    expect(maxAbsDifference(result, await rowsAlone(lora, model, input, names))).toBeLessThan(1e-5);
    // The rows really differ by adapter.
    await lora.setAdapter('a');
    expect(maxAbsDifference(tf.slice(result, 2, 1), tf.slice(model.forward(input), 2, 1))).toBeGreaterThan(1e-3);
  });

  it('Embedding: rows of token ids pick their adapter', async () => {
    manualSeed(22);
    const model = new Sequential(new Embedding(16, 6), new Linear(6, 3));
    const lora = withTwoAdapters(model, ['0', '1'], ['0']);
    const ids = tf.tensor2d([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3], [4, 4], 'int32');
    expect(maxAbsDifference(mixed(model, ids, names), await rowsAlone(lora, model, ids, names))).toBeLessThan(1e-5);
  });

  it('Conv2d: images of the batch pick their adapter', async () => {
    manualSeed(23);
    const model = createConvModel();
    const lora = withTwoAdapters(model, ['0', '2'], ['2']);
    const x = tf.randomNormal([4, 3, 10, 10], 0, 1, 'float32', 24);
    expect(maxAbsDifference(mixed(model, x, names), await rowsAlone(lora, model, x, names))).toBeLessThan(1e-5);
  });

  it('with adapters disabled every row is the base model; the active adapters do not matter', async () => {
    manualSeed(25);
    const model = new Mlp();
    const lora = withTwoAdapters(model, ['lin0', 'lin1'], ['lin1']);
    const input = tf.randomNormal([4, 10], 0, 1, 'float32', 26);
    const disabled = await lora.withAdaptersDisabled(() => model.forward(input));
    expect(await lora.withAdaptersDisabled(() => maxAbsDifference(mixed(model, input, names), disabled))).toBe(0);
    const first = mixed(model, input, names);
    await lora.setAdapter(['a', 'b']);
    expect(maxAbsDifference(mixed(model, input, names), first)).toBe(0);
  });

  it('refuses training mode, merged adapters, a wrong length and a name no layer holds, with PEFT\'s errors', async () => {
    const model = new Mlp();
    const lora = withTwoAdapters(model, ['lin0'], ['lin0']);
    const input = tf.ones([2, 10]);
    model.train();
    expect(() => mixed(model, input, ['a', 'b'])).toThrow('Cannot pass `adapterNames` when the model is in training mode');
    model.eval();
    expect(() => mixed(model, input, ['a'])).toThrow(
      'Length of `adapterNames` should be the same as the number of inputs, but got 1 and 2 respectively',
    );
    expect(() => mixed(model, input, ['a', 'typo'])).toThrow(UnknownAdapterError);
    // Counted after a first call: wasm allocates some tensors once.
    const before = tf.memory().numTensors;
    expect(() => mixed(model, input, ['a', 'typo'])).toThrow(/no adapter layer holds 'typo'/);
    expect(tf.memory().numTensors).toBe(before);
    await lora.mergeAdapter();
    expect(() => mixed(model, input, ['a', 'b'])).toThrow(MergeError);
    expect(() => mixed(model, input, ['a', 'b'])).toThrow('Cannot pass `adapterNames` when there are merged adapters');
  });

  it('refuses rows that would need different modules_to_save copies', () => {
    const model = new Mlp();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin0'], modulesToSave: ['lin1'] }), { adapterName: 'a' });
    lora.addAdapter('b', createLoraConfig({ targetModules: ['lin0'], modulesToSave: ['lin1'] }));
    model.eval();
    const input = tf.ones([2, 10]);
    expect(() => mixed(model, input, ['a', 'a'])).not.toThrow();
    expect(() => mixed(model, input, ['a', 'b'])).toThrow(/cannot pick modules_to_save copies per row/);
  });
});
