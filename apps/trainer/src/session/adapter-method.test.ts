import type * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, manualSeed, type AdapterTargetModel } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { LoraModel, type LoraLinear } from '@peft-ts/lora';
import { nf4RoundTrip } from '@peft-ts/quant';
import { expect, it } from 'vitest';
import { adapterMethod } from './adapter-method.js';

class OneLayer extends Module implements AdapterTargetModel {
  readonly kind = 'one_layer';
  constructor() {
    super();
    this.registerModule('proj', new Linear(64, 16));
  }
  forward(input: tf.Tensor): tf.Tensor {
    return (this.child('proj') as Linear).forward(input);
  }
}

describeWithBackends('the CLI adapter method', () => {
  it('initialises LoftQ adapters (NF4 for 4 bits) and DoRA ones', () => {
    manualSeed(2);
    const model = new OneLayer();
    new LoraModel(model, createLoraConfig({ targetModules: ['proj'], r: 2, initLoraWeights: 'loftq' }), { method: adapterMethod });
    const base = (model.getSubmodule('proj') as LoraLinear).baseLayer.parameter('weight').value;
    const weight = base.dataSync() as Float32Array;
    expect(maxAbsDifference(nf4RoundTrip.roundTrip(weight, [16, 64], 4), weight)).toBe(0);
    expect(() => new LoraModel(new OneLayer(), createLoraConfig({ targetModules: ['proj'], useDora: true }), { method: adapterMethod })).not.toThrow();
  });
});
