import * as tf from '@tensorflow/tfjs-core';
import { Embedding, Linear, PeftError, SeededRandom, manualSeed, type QuantizationRoundTrip } from '@peft-ts/core';
import { describeWithBackends, maxAbsDifference } from '@peft-ts/core/test';
import { createLoraConfig } from '@peft-ts/config';
import { describe, expect, it } from 'vitest';
import { loftqFactors } from './loftq.js';
import { createLoraMethod } from './lora-method.js';
import { LoraLinear } from './lora-linear.js';
import { LoraModel } from './lora-model.js';
import { Mlp, Sequential, createConvModel } from './testing/test-models.js';

/** A stand-in quantizer independent of the NF4 code: rounds to multiples of 2^-bits. */
const gridQuantizer: QuantizationRoundTrip = {
  bits: [2, 4],
  roundTrip: (weight, _shape, bits) => weight.map((value) => Math.round(value * 2 ** bits) / 2 ** bits),
};

function randomWeight(rows: number, columns: number, seed: number): Float32Array {
  const random = new SeededRandom(seed);
  return Float32Array.from({ length: rows * columns }, () => random.next() * 2 - 1);
}

/** B·A for B [rows, rank], A [rank, columns]. */
function product(b: Float32Array, a: Float32Array, rows: number, columns: number, rank: number): Float64Array {
  const result = new Float64Array(rows * columns);
  for (let i = 0; i < rows; i++) for (let j = 0; j < columns; j++) for (let k = 0; k < rank; k++) result[i * columns + j] += b[i * rank + k] * a[k * columns + j];
  return result;
}

describe('loftqFactors', () => {
  it('one iteration: Q quantizes W, and B·A is the SVD fit of W − Q split as U√S, √S·Vᵀ', () => {
    const [rows, columns] = [6, 5];
    const weight = randomWeight(rows, columns, 1);
    const settings = { bits: 2, iterations: 1, quantizer: gridQuantizer };
    const full = loftqFactors(weight, [rows, columns], 5, settings);
    expect(Array.from(full.quantized)).toEqual(Array.from(gridQuantizer.roundTrip(weight, [rows, columns], 2)));
    // At full rank the fit is exact: Q + B·A = W.
    const fit = product(full.b, full.a, rows, columns, 5);
    weight.forEach((value, index) => expect(full.quantized[index] + fit[index]).toBeCloseTo(value, 5));
    // √S on both sides: BᵀB = A·Aᵀ = diag(S), descending.
    const rank = 2;
    const { a, b } = loftqFactors(weight, [rows, columns], rank, settings);
    const gramB = [0, 1].map((p) => [0, 1].map((q) => Array.from({ length: rows }, (_, i) => b[i * rank + p] * b[i * rank + q]).reduce((x, y) => x + y)));
    const gramA = [0, 1].map((p) => [0, 1].map((q) => Array.from({ length: columns }, (_, j) => a[p * columns + j] * a[q * columns + j]).reduce((x, y) => x + y)));
    expect(gramB[0][1]).toBeCloseTo(0, 5);
    expect(gramA[0][1]).toBeCloseTo(0, 5);
    expect(gramB[0][0]).toBeCloseTo(gramA[0][0], 5);
    expect(gramB[1][1]).toBeCloseTo(gramA[1][1], 5);
    expect(gramA[0][0]).toBeGreaterThan(gramA[1][1]);
  });

  it('later iterations quantize W − B·A of the previous one', () => {
    const [rows, columns, rank] = [8, 6, 2];
    const weight = randomWeight(rows, columns, 2);
    const first = loftqFactors(weight, [rows, columns], rank, { bits: 2, iterations: 1, quantizer: gridQuantizer });
    const second = loftqFactors(weight, [rows, columns], rank, { bits: 2, iterations: 2, quantizer: gridQuantizer });
    const fit = product(first.b, first.a, rows, columns, rank);
    const expected = gridQuantizer.roundTrip(weight.map((value, index) => value - fit[index]), [rows, columns], 2);
    expect(maxAbsDifference(second.quantized, expected)).toBe(0);
  });

  it('refuses bit widths the quantizer lacks, bad iteration counts and ranks above the weight', () => {
    const weight = randomWeight(4, 3, 3);
    expect(() => loftqFactors(weight, [4, 3], 2, { bits: 8, iterations: 1, quantizer: gridQuantizer })).toThrow(
      'loftq_config.loftq_bits: the quantizer supports 2, 4 bits, got 8',
    );
    expect(() => loftqFactors(weight, [4, 3], 2, { bits: 4, iterations: 0, quantizer: gridQuantizer })).toThrow('loftq_iter');
    expect(() => loftqFactors(weight, [4, 3], 4, { bits: 4, iterations: 1, quantizer: gridQuantizer })).toThrow(
      "LoftQ: rank 4 exceeds the weight's smaller side (4×3)",
    );
  });
});

describeWithBackends('init_lora_weights "loftq"', () => {
  const method = createLoraMethod({ loftqQuantizer: gridQuantizer });

  it('replaces each Linear base weight by its quantization and sets A/B to the LoftQ fit, with loftq_config', () => {
    manualSeed(4);
    const model = new Mlp();
    const original = (model.getSubmodule('lin0') as Linear).weight.value.dataSync().slice() as Float32Array;
    const config = createLoraConfig({ targetModules: ['lin0'], r: 3, loraAlpha: 3, initLoraWeights: 'loftq', loftqConfig: { loftqBits: 2, loftqIter: 2 } });
    new LoraModel(model, config, { method });
    const layer = model.getSubmodule('lin0') as LoraLinear;
    const expected = loftqFactors(original, [20, 10], 3, { bits: 2, iterations: 2, quantizer: gridQuantizer });
    expect(maxAbsDifference(layer.baseLayer.parameter('weight').value, expected.quantized)).toBe(0);
    expect(maxAbsDifference(layer.loraA('default').weight.value, expected.a)).toBe(0);
    expect(maxAbsDifference(layer.loraB('default').weight.value, expected.b)).toBe(0);
    // With scaling 1 the adapted weight is closer to the original than the quantized one alone.
    const adapted = tf.tidy(() => tf.add(layer.baseLayer.parameter('weight').value, layer.deltaWeight('default')));
    const error = (weight: tf.Tensor) => tf.tidy(() => tf.norm(tf.sub(weight, tf.tensor(original, [20, 10]))).dataSync()[0]);
    expect(error(adapted)).toBeLessThan(error(layer.baseLayer.parameter('weight').value));
  });

  it('defaults to 4 bits and one iteration', () => {
    manualSeed(4);
    const model = new Mlp();
    const original = (model.getSubmodule('lin1') as Linear).weight.value.dataSync().slice() as Float32Array;
    new LoraModel(model, createLoraConfig({ targetModules: ['lin1'], r: 2, initLoraWeights: 'loftq' }), { method });
    const expected = loftqFactors(original, [2, 20], 2, { bits: 4, iterations: 1, quantizer: gridQuantizer });
    expect(maxAbsDifference((model.getSubmodule('lin1') as LoraLinear).loraB('default').weight.value, expected.b)).toBe(0);
  });

  it('says what is missing: a quantizer, or a Linear layer', () => {
    const config = createLoraConfig({ targetModules: ['lin0'], r: 2, initLoraWeights: 'loftq' });
    expect(() => new LoraModel(new Mlp(), config)).toThrow(PeftError);
    expect(() => new LoraModel(new Mlp(), config)).toThrow('init_lora_weights: "loftq" needs a quantizer: inject with createLoraMethod({ loftqQuantizer })');
    const onConv = createLoraConfig({ targetModules: ['0'], r: 2, initLoraWeights: 'loftq' });
    expect(() => new LoraModel(createConvModel(), onConv, { method })).toThrow('init_lora_weights: "loftq" initialises Linear layers only');
    expect(() => new LoraModel(new Sequential(new Embedding(10, 4)), onConv, { method })).toThrow('"loftq" initialises Linear layers only');
  });
});
