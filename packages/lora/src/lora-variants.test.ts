import * as tf from '@tensorflow/tfjs-core';
import { Linear, PeftError } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { expect, it, onTestFinished } from 'vitest';
import type { LoraVariant } from './lora-layer.js';
import { registerLoraVariant } from './lora-method.js';
import { LoraModel } from './lora-model.js';
import { Mlp, mlpInput } from './testing/test-models.js';

describeWithBackends('LoRA variants', () => {
  // This file never loads @peft-ts/dora; the second test registers a stand-in and takes it back.
  it('refuses use_dora when no DoRA is registered, naming the package that provides it', () => {
    const attempt = () => new LoraModel(new Mlp(), createLoraConfig({ targetModules: ['lin0'], useDora: true }));
    expect(attempt).toThrow(PeftError);
    expect(attempt).toThrow("lin0: use_dora is set but DoRA is not available: install @peft-ts/dora and import it once (import '@peft-ts/dora')");
  });

  it('uses the registered variant for use_dora with the default method, and plain LoRA otherwise', async () => {
    const doubled: LoraVariant = {
      init: () => {},
      forward: (layer, name, input) => tf.mul(layer.loraOutput(name, input), 2),
      merge: (layer, name, weight) => tf.add(weight, tf.mul(layer.deltaWeight(name), 2)),
      unmerge: (layer, name, weight) => tf.sub(weight, tf.mul(layer.deltaWeight(name), 2)),
    };
    const unregister = registerLoraVariant('dora', { linear: doubled });
    onTestFinished(unregister);
    const model = new Mlp();
    const input = mlpInput();
    const lora = new LoraModel(model, createLoraConfig({ targetModules: ['lin1'], initLoraWeights: false, useDora: true }));
    const layer = model.getSubmodule('lin1') as unknown as { baseLayer: Linear; loraOutput(name: string, x: tf.Tensor): tf.Tensor };
    const hidden = tf.relu(model.child<Linear>('lin0').forward(input));
    const doubledOutput = tf.add(layer.baseLayer.forward(hidden), tf.mul(layer.loraOutput('default', hidden), 2));
    expect(maxAbsDifference(model.forward(input), doubledOutput)).toBeLessThan(1e-5);
    lora.addAdapter('plain', createLoraConfig({ targetModules: ['lin1'], initLoraWeights: false }));
    await lora.setAdapter('plain');
    const plainOutput = tf.add(layer.baseLayer.forward(hidden), layer.loraOutput('plain', hidden));
    expect(maxAbsDifference(model.forward(input), plainOutput)).toBeLessThan(1e-5);
  });
});
