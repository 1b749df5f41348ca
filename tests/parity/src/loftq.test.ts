import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, PeftError, hostMatrix, manualSeed, writeTensorFile, type AdapterTargetModel } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { LoraLinear, LoraModel, createLoraMethod, replaceLoraWeightsLoftq } from '@peft-ts/lora';
import { splitLowRank } from '@peft-ts/lora/internal';
import { Linear4bit, loftqQuantizer } from '@peft-ts/quant';
import { afterAll, beforeAll, expect, it } from 'vitest';

/** Two projections, so one can stay float while the other is quantized. */
class TwoLayers extends Module implements AdapterTargetModel {
  readonly kind = 'two_layers';
  constructor(first: Linear | Linear4bit, second: Linear | Linear4bit) {
    super();
    this.registerModule('proj', first);
    this.registerModule('out', second);
  }
  forward(input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => (this.child('out') as Linear).forward(tf.relu((this.child('proj') as Linear).forward(input))));
  }
}

const method = createLoraMethod({ loftqQuantizer });

describeWithBackends('LoftQ with NF4', () => {
  let directory = '';
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'peft-ts-loftq-'));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('init "loftq" leaves an NF4-exact base weight (what a 4-bit load of it keeps) and a fit that reduces the error', () => {
    manualSeed(21);
    const model = new TwoLayers(new Linear(64, 32), new Linear(32, 8));
    const original = (model.getSubmodule('proj') as Linear).weight.value.clone();
    new LoraModel(model, createLoraConfig({ targetModules: ['proj'], r: 4, loraAlpha: 4, initLoraWeights: 'loftq' }), { method });
    const layer = model.getSubmodule('proj') as LoraLinear;
    const base = layer.baseLayer.parameter('weight').value;
    // Quantizing the dequantized weight again changes nothing: loading it in 4-bit later keeps it.
    const reloaded = Linear4bit.fromWeight(base, { quantType: 'nf4', compressStatistics: false });
    const dequantized = reloaded.weightAccess.getBaseWeight();
    expect(maxAbsDifference(dequantized, base)).toBe(0);
    const error = (weight: tf.Tensor) => tf.tidy(() => tf.norm(tf.sub(weight, original)).dataSync()[0]);
    const adapted = tf.tidy(() => tf.add(base, layer.deltaWeight('default')));
    expect(error(adapted)).toBeLessThan(0.95 * error(base));
    tf.dispose([original, dequantized, adapted]);
  });

  it('replaceLoraWeightsLoftq fits A, B to W − dequant(Q) from the float checkpoint, and a callback can refuse', async () => {
    manualSeed(22);
    const float = new TwoLayers(new Linear(64, 32), new Linear(32, 8));
    const path = join(directory, 'model.safetensors');
    await writeTensorFile(path, new Map(float.namedParameters().map(([name, parameter]) => [name, parameter.value])));
    const projWeight = (float.getSubmodule('proj') as Linear).weight.value;
    const quantized = new TwoLayers(Linear4bit.fromWeight(projWeight, { quantType: 'nf4' }), float.getSubmodule('out') as Linear);
    const lora = new LoraModel(quantized, createLoraConfig({ targetModules: ['proj', 'out'], r: 4 }));
    const layer = quantized.getSubmodule('proj') as LoraLinear;
    const before = layer.loraA('default').weight.value.clone();
    const refused: string[] = [];
    await replaceLoraWeightsLoftq(lora, { modelPath: path, callback: (_, name) => (refused.push(name), false) });
    expect(refused).toEqual(['proj']);
    expect(maxAbsDifference(layer.loraA('default').weight.value, before)).toBe(0);

    await replaceLoraWeightsLoftq(lora, { modelPath: directory });
    const dequantized = layer.baseLayer.weightAccess.getBaseWeight();
    const residual = tf.sub(projWeight, dequantized);
    const expected = splitLowRank(hostMatrix(32, 64, residual.dataSync()), 4);
    expect(maxAbsDifference(layer.loraA('default').weight.value, expected.a)).toBeLessThan(1e-6);
    expect(maxAbsDifference(layer.loraB('default').weight.value, expected.b)).toBeLessThan(1e-6);
    // The float layer 'out' is left alone, as PEFT skips non-4-bit layers.
    expect(Array.from((quantized.getSubmodule('out') as LoraLinear).loraB('default').weight.value.dataSync()).every((value) => value === 0)).toBe(true);
    tf.dispose([before, dequantized, residual]);

    const floatOnly = new LoraModel(new TwoLayers(new Linear(64, 32), new Linear(32, 8)), createLoraConfig({ targetModules: ['proj'] }));
    await expect(replaceLoraWeightsLoftq(floatOnly, { modelPath: path })).rejects.toThrow(PeftError);
    await expect(replaceLoraWeightsLoftq(floatOnly, { modelPath: path })).rejects.toThrow("no LoRA layer of adapter 'default' wraps a quantized linear");
  });
});
