import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { copyModule } from '../clone-module.js';
import { countParameters } from '../parameter-count.js';
import { SeededRandom } from '../random.js';
import { Embedding } from './embedding.js';
import { Linear } from './linear.js';
import { describeWithBackends } from '../test/index.js';
import { HalfEmbedding } from './half-embedding.js';
import { HalfLinear } from './half-linear.js';
import {
  mergeIntoHalfBits,
  narrowToHalfBits,
  packHalfRows,
  unpackHalfRows,
  widenHalfBits,
  widenHalfWords,
  widenHalfWordsByOps,
  type HalfDtype,
} from './half-storage.js';

const DTYPES: HalfDtype[] = ['float16', 'bfloat16'];

/** Half patterns over the whole range: every sign, subnormals, infinities, and patterns whose word exceeds 2^24. */
function randomBits(count: number, seed: number): Uint16Array {
  const random = new SeededRandom(seed);
  return Uint16Array.from({ length: count }, () => Math.floor(random.next() * 0x10000));
}

/** Finite patterns of moderate magnitude (weights a product can use). */
function weightBits(count: number, dtype: HalfDtype, seed: number): Uint16Array {
  const random = new SeededRandom(seed);
  const values = Float32Array.from({ length: count }, () => (random.next() - 0.5) * 0.4);
  return narrowToHalfBits(values, dtype);
}

it('packs half patterns two to a word, rows padded to whole words, and unpacks them', () => {
  const bits = randomBits(15, 1);
  const words = packHalfRows({ dtype: 'float16', rows: 3, columns: 5, bits });
  expect(words.length).toBe(9);
  expect(words[0] & 0xffff).toBe(bits[0]);
  expect(words[0] >>> 16).toBe(bits[1]);
  expect(words[2] >>> 16).toBe(0);
  expect(words[3] & 0xffff).toBe(bits[5]);
  expect([...unpackHalfRows(words, 3, 5)]).toEqual([...bits]);
});

it('rounds a merge as torch does into a half weight: the delta to half first, then the sum', () => {
  // bf16 holds 8 significant bits. Rounded once, 1 + 2^-8 + 2^-17 is just above the tie 1 + 2^-8 and goes up;
  // torch first rounds Δ = 2^-8 + 2^-17 to 2^-8, and then 1 + 2^-8 is a tie that goes to the even 1.
  const base = narrowToHalfBits(Float32Array.of(1), 'bfloat16');
  const merged = Float32Array.of(1 + 2 ** -8 + 2 ** -17);
  expect(widenHalfBits(narrowToHalfBits(merged, 'bfloat16'), 'bfloat16')[0]).toBe(1 + 2 ** -7);
  expect(widenHalfBits(mergeIntoHalfBits(base, merged, 'bfloat16'), 'bfloat16')[0]).toBe(1);
});

describeWithBackends(
  'half-precision words widened by tf ops',
  () => {
    it('splits words past 2^24 exactly and gathers each pattern', () => {
      for (const dtype of DTYPES) {
        const bits = randomBits(3 * 7, 9);
        const words = tf.tensor2d(packHalfRows({ dtype, rows: 3, columns: 7, bits }), [3, 4], 'int32');
        const widened = widenHalfWordsByOps(words, 7, dtype);
        expect(widened.shape).toEqual([3, 7]);
        expect([...widened.dataSync()]).toEqual([...widenHalfBits(bits, dtype)]);
        tf.dispose([words, widened]);
      }
    });
  },
  ['cpu'],
);

describeWithBackends('half-precision layers', () => {
  for (const dtype of DTYPES) {
    it(`widens stored ${dtype} words exactly (odd rows, every pattern class)`, () => {
      const [rows, columns] = [7, 9];
      const bits = randomBits(rows * columns, 2);
      const words = tf.tensor2d(packHalfRows({ dtype, rows, columns, bits }), [rows, 5], 'int32');
      const widened = widenHalfWords(words, columns, dtype);
      const expected = widenHalfBits(bits, dtype);
      const actual = widened.dataSync() as Float32Array;
      expect([...new Uint32Array(actual.buffer)].filter((_, index) => !Number.isNaN(expected[index]))).toEqual(
        [...new Uint32Array(expected.buffer)].filter((_, index) => !Number.isNaN(expected[index])),
      );
      tf.dispose([words, widened]);
    });

    it(`a ${dtype} HalfLinear equals a float Linear on the widened weight, and its input gradient too`, () => {
      const [out, inFeatures] = [6, 10];
      const bits = weightBits(out * inFeatures, dtype, 3);
      const bias = tf.tensor1d([0.1, -0.2, 0.3, 0, 0.5, -0.6]);
      const layer = new HalfLinear({ dtype, rows: out, columns: inFeatures, bits }, { bias });
      const weight = tf.tensor2d(widenHalfBits(bits, dtype), [out, inFeatures]);
      const input = tf.randomNormal([2, 3, inFeatures], 0, 1, 'float32', 4);
      const expected = tf.add(tf.matMul(tf.reshape(input, [-1, inFeatures]), weight, false, true), bias);
      expect(tf.max(tf.abs(tf.sub(tf.reshape(layer.forward(input), [-1, out]), expected))).dataSync()[0]).toBeLessThan(1e-6);
      const gradient = tf.grad((x: tf.Tensor) => tf.sum(tf.square(layer.forward(x))))(input);
      const reference = tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.add(tf.matMul(tf.reshape(x, [-1, inFeatures]), weight, false, true), bias))))(input);
      expect(tf.max(tf.abs(tf.sub(gradient, reference))).dataSync()[0]).toBeLessThan(1e-5);
      expect(layer.parameter('weight').requiresGrad).toBe(false);
      tf.dispose([bias, weight, input, expected, gradient, reference]);
      layer.dispose();
    });

    it(`a ${dtype} HalfLinear multiplied in row tiles gives the whole product and input gradient`, () => {
      const bits = weightBits(7 * 10, dtype, 11);
      const whole = new HalfLinear({ dtype, rows: 7, columns: 10, bits });
      // 25 values a tile: rows 0–1, 2–3, 4–5 and 6.
      const tiled = new HalfLinear({ dtype, rows: 7, columns: 10, bits }, { maxWidenedElements: 25 });
      const input = tf.randomNormal([3, 2, 10], 0, 1, 'float32', 12);
      const loss = (layer: HalfLinear) => (x: tf.Tensor) => tf.sum(tf.mul(layer.forward(x), tf.range(1, 8)));
      expect([...tiled.forward(input).dataSync()]).toEqual([...whole.forward(input).dataSync()]);
      const [tiledGradient, wholeGradient] = [tf.grad(loss(tiled))(input), tf.grad(loss(whole))(input)];
      expect(tf.max(tf.abs(tf.sub(tiledGradient, wholeGradient))).dataSync()[0]).toBeLessThan(1e-5);
      tf.dispose([input, tiledGradient, wholeGradient]);
      whole.dispose();
      tiled.dispose();
    });

    it(`a ${dtype} HalfEmbedding looks up the widened rows`, () => {
      const [vocab, dim] = [11, 5];
      const bits = weightBits(vocab * dim, dtype, 5);
      const embedding = new HalfEmbedding({ dtype, rows: vocab, columns: dim, bits });
      const ids = tf.tensor2d([[0, 3, 10], [7, 7, 1]], [2, 3], 'int32');
      const table = widenHalfBits(bits, dtype);
      const expected = [...ids.dataSync()].flatMap((id) => [...table.subarray(id * dim, (id + 1) * dim)]);
      const rows = embedding.forward(ids);
      expect(rows.shape).toEqual([2, 3, dim]);
      expect([...rows.dataSync()]).toEqual(expected);
      tf.dispose([ids, rows]);
      embedding.dispose();
    });
  }

  it('holds 2 bytes a parameter (tf.memory) for a bf16 HalfLinear, and frees the widened weight after a forward', () => {
    const before = tf.memory().numBytes;
    const layer = new HalfLinear({ dtype: 'bfloat16', rows: 64, columns: 96, bits: weightBits(64 * 96, 'bfloat16', 6) });
    expect((tf.memory().numBytes - before) / (64 * 96)).toBe(2);
    const input = tf.ones([4, 96]);
    const afterInput = tf.memory().numBytes;
    tf.tidy(() => layer.forward(input).dataSync());
    expect(tf.memory().numBytes).toBe(afterInput);
    input.dispose();
    layer.dispose();
  });

  it('counts a half weight as its values (PyTorch numel), its bytes as the stored words', () => {
    // [3, 5] fp16 weight: numel 3·5 = 15, held as 3 rows of ⌈5/2⌉ = 3 int32 words; the bias is 3 float32.
    const bias = tf.zeros([3]);
    const layer = new HalfLinear({ dtype: 'float16', rows: 3, columns: 5, bits: weightBits(15, 'float16', 11) }, { bias });
    expect(countParameters(layer)).toEqual({ total: 3 * 5 + 3, trainable: 3, bytes: 4 * (3 * 3) + 4 * 3 });
    bias.dispose();
    layer.dispose();
  });

  it('merges into a half weight with torch rounding and saves nothing wider', async () => {
    const bits = weightBits(4 * 6, 'bfloat16', 7);
    const layer = new HalfLinear({ dtype: 'bfloat16', rows: 4, columns: 6, bits });
    const delta = tf.mul(tf.randomNormal([4, 6], 0, 1, 'float32', 8), 1e-3);
    const base = layer.weightAccess.getBaseWeight();
    const merged = tf.add(base, delta);
    await layer.weightAccess.setBaseWeight(merged);
    const expected = mergeIntoHalfBits(bits, merged.dataSync() as Float32Array, 'bfloat16');
    expect([...(await layer.storage.readMatrix()).bits]).toEqual([...expected]);
    tf.dispose([delta, base, merged]);
    layer.dispose();
  });

  it('a deep copy (modules_to_save) is a trainable float32 layer holding the widened weight', () => {
    const bits = weightBits(3 * 4, 'bfloat16', 10);
    const layers = [new HalfLinear({ dtype: 'bfloat16', rows: 3, columns: 4, bits }), new HalfEmbedding({ dtype: 'bfloat16', rows: 3, columns: 4, bits })];
    for (const layer of layers) {
      const copy = copyModule(layer);
      expect(copy).toBeInstanceOf(layer instanceof HalfLinear ? Linear : Embedding);
      expect(copy).not.toBeInstanceOf(HalfEmbedding);
      const weight = copy.parameter('weight');
      expect([weight.dtype, weight.requiresGrad]).toEqual(['float32', true]);
      expect([...weight.value.dataSync()]).toEqual([...widenHalfBits(bits, 'bfloat16')]);
      copy.dispose();
      layer.dispose();
    }
  });

  it('a replica shares the stored words', () => {
    const layer = HalfLinear.fromWeight(tf.tensor2d([[1, 2], [3, 4.5]]), 'float16');
    const replica = layer.cloneSharingParameters();
    expect(replica.parameter('weight')).toBe(layer.parameter('weight'));
    expect([...replica.forward(tf.tensor2d([[1, 1]])).dataSync()]).toEqual([3, 7.5]);
    layer.dispose();
  });
});
