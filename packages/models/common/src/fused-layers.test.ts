import * as tf from '@tensorflow/tfjs-core';
import { RMSNorm } from '@peft-ts/core';
import { hasFusedKernel } from '@peft-ts/core/internal';
import { initBackend, nativeBackendAvailable } from '@peft-ts/core/backend';
import { describe, expect, it } from 'vitest';
import { buildAttentionMask } from './attention-mask.js';
import { IGNORE_INDEX, causalLanguageModelLoss } from './causal-language-model-loss.js';
import { groupedAttention } from './grouped-attention.js';
import { maskedSoftmax } from './masked-softmax.js';
import { RotaryEmbedding, applyRotary } from './rotary-embedding.js';
import { swiGlu } from './swiglu.js';

/** Deterministic values in [-scale, scale). */
function values(count: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(count);
  let state = seed >>> 0;
  for (let index = 0; index < count; index++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[index] = (state / 2 ** 31 - 1) * scale;
  }
  return out;
}

/** The outputs of `compute` on each backend, flattened; each input gets the same values everywhere. */
async function onBackends(backends: string[], shapes: number[][], compute: (...inputs: tf.Tensor[]) => tf.Tensor[], scale = 1) {
  const results: Float32Array[][] = [];
  for (const backend of backends) {
    await initBackend(backend as 'cpu' | 'native');
    results.push(tf.tidy(() => compute(...shapes.map((shape, index) => tf.tensor(values(tf.util.sizeFromShape(shape), index + 1, scale), shape))).map((result) => result.dataSync() as Float32Array)));
  }
  return results;
}

function expectRelativelyClose(actual: Float32Array[], expected: Float32Array[], tolerance = 1e-5) {
  expect(actual.length).toBe(expected.length);
  actual.forEach((values, output) => {
    expect(values.length).toBe(expected[output].length);
    const magnitude = expected[output].reduce((max, value) => Math.max(max, Math.abs(value)), 0);
    const worst = values.reduce((max, value, index) => Math.max(max, Math.abs(value - expected[output][index])), 0);
    expect(worst).toBeLessThanOrEqual(tolerance * Math.max(magnitude, 1e-30));
  });
}

const available = await nativeBackendAvailable();

describe.skipIf(!available)('fused layer kernels on native against the tf-op composition on cpu', () => {
  it('native registers them, cpu does not', async () => {
    await initBackend('native');
    const names = ['PeftRmsNorm', 'PeftRmsNormGrad', 'PeftSwiGlu', 'PeftSwiGluGrad', 'PeftCrossEntropy', 'PeftCrossEntropyGrad', 'PeftRotary', 'PeftMaskedSoftmax', 'PeftMaskedSoftmaxGrad', 'PeftAttention', 'PeftAttentionGrad'];
    for (const name of names) expect(hasFusedKernel(name)).toBe(true);
    await initBackend('cpu');
    expect(hasFusedKernel('PeftRmsNorm')).toBe(false);
  });

  const shapes = [[1, 7], [3, 5, 33], [2, 1, 512]];
  for (const shape of shapes) {
    for (const trainable of [true, false]) {
      it(`RMSNorm over [${shape}], weight ${trainable ? 'trainable' : 'frozen'}: values and gradients`, async () => {
        const compute = (x: tf.Tensor, weightValues: tf.Tensor, dy: tf.Tensor) => {
          const norm = new RMSNorm(shape[shape.length - 1], 1e-5);
          norm.weight.value.assign(tf.reshape(tf.add(weightValues, 1.5), [-1]));
          norm.weight.value.trainable = trainable;
          const parameters = trainable ? [x, norm.weight.value] : [x];
          const { value, grads } = tf.valueAndGrads((...inputs: tf.Tensor[]) => tf.sum(tf.mul(norm.forward(inputs[0]), dy)))(parameters);
          const outputs = [norm.forward(x), value, ...grads];
          return outputs;
        };
        const [native, cpu] = await onBackends(['native', 'cpu'], [shape, [shape[shape.length - 1]], shape], compute, 3);
        expectRelativelyClose(native, cpu);
      });
    }
  }

  for (const [shape, scale] of [[[1, 1], 1], [[4, 37], 3], [[3, 8, 301], 30]] as const) {
    it(`SwiGLU over [${shape}], values up to ${scale}: values and gradients`, async () => {
      const compute = (gate: tf.Tensor, up: tf.Tensor, dy: tf.Tensor) => {
        const { value, grads } = tf.valueAndGrads((g: tf.Tensor, u: tf.Tensor) => tf.sum(tf.mul(swiGlu(g, u), dy)))([gate, up]);
        return [swiGlu(gate, up), value, ...grads];
      };
      const [native, cpu] = await onBackends(['native', 'cpu'], [[...shape], [...shape], [...shape]], compute, scale);
      expectRelativelyClose(native, cpu);
    });
  }

  /** Labels [batch, length] from a fixed pattern: class indices, with every `ignoredEvery`-th one −100. */
  const labelsFor = (batch: number, length: number, vocabulary: number, ignoredEvery: number) =>
    tf.tensor2d(Array.from({ length: batch * length }, (_, index) => (index % ignoredEvery === ignoredEvery - 1 ? IGNORE_INDEX : (index * 7919) % vocabulary)), [batch, length], 'int32');

  for (const [shape, scale, ignoredEvery] of [[[1, 2, 3], 1, 1000], [[2, 5, 37], 3, 3], [[3, 4, 1000], 12, 2]] as const) {
    it(`causal-LM loss over logits [${shape}], values up to ${scale}, 1 in ${ignoredEvery} labels ignored: value and gradient`, async () => {
      const compute = (logits: tf.Tensor) => {
        const labels = labelsFor(shape[0], shape[1], shape[2], ignoredEvery);
        // A dy other than 1 reaches the gradient kernel through the product.
        const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.mul(causalLanguageModelLoss(x as tf.Tensor3D, labels), 2.5))(logits);
        return [value, grad];
      };
      const [native, cpu] = await onBackends(['native', 'cpu'], [[...shape]], compute, scale);
      expect(Number.isFinite(cpu[0][0])).toBe(true);
      expectRelativelyClose(native, cpu);
    });
  }

  it('causal-LM loss with every label ignored is NaN, its gradient NaN everywhere, on both paths', async () => {
    const compute = (logits: tf.Tensor) => {
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => causalLanguageModelLoss(x as tf.Tensor3D, tf.fill([2, 3], IGNORE_INDEX, 'int32')))(logits);
      return [value, grad];
    };
    for (const [loss, gradient] of await onBackends(['native', 'cpu'], [[2, 3, 11]], compute)) {
      expect(loss[0]).toBeNaN();
      expect(gradient.every(Number.isNaN)).toBe(true);
    }
  });

  for (const positions of ['a range from position 3', 'per-row position ids'] as const) {
    it(`rotary embedding over [2, 5, 3, 8], angles for ${positions}: values and gradients`, async () => {
      const compute = (x: tf.Tensor, dy: tf.Tensor) => {
        const rotary = new RotaryEmbedding(8, 10000);
        const angles = positions === 'per-row position ids' ? rotary.gather(tf.tensor2d([[0, 0, 1, 2, 3], [4, 5, 6, 7, 8]], [2, 5], 'int32'), 2, 5, 9) : rotary.range(3, 5);
        const { value, grad } = tf.valueAndGrad((input: tf.Tensor) => tf.sum(tf.mul(applyRotary(input as tf.Tensor4D, angles), dy)))(x);
        const outputs = [applyRotary(x as tf.Tensor4D, angles), value, grad];
        rotary.dispose();
        return outputs;
      };
      const [native, cpu] = await onBackends(['native', 'cpu'], [[2, 5, 3, 8], [2, 5, 3, 8]], compute, 2);
      expectRelativelyClose(native, cpu);
    });
  }

  // Batch 2, 2 key-value heads of 2 query heads each, 6 new queries after 2 past keys: scores [2, 2, 2·6, 8].
  const masks = {
    none: () => null,
    'causal with a sliding window of 3': () => buildAttentionMask({ batchSize: 2, queryLength: 6, pastLength: 2, slidingWindow: 3 }),
    'causal with left padding (fully masked rows)': () =>
      buildAttentionMask({ batchSize: 2, queryLength: 6, pastLength: 2, slidingWindow: null, paddingMask: tf.tensor2d([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 1, 1, 1]]) }),
    // A layout the fused kernel does not take: the tf-op composition runs on native too.
    'per head, [2, 4, 6, 8]': () => tf.mul(tf.cast(tf.greater(tf.tensor(values(2 * 4 * 6 * 8, 9), [2, 4, 6, 8]), 0.5), 'float32'), -1e9),
  };
  for (const [name, mask] of Object.entries(masks)) {
    it(`attention probabilities, mask ${name}: values and gradients`, async () => {
      const compute = (scores: tf.Tensor, dy: tf.Tensor) => {
        const additive = mask();
        const run = (input: tf.Tensor) => maskedSoftmax(input, Math.sqrt(8), additive, [2, 4, 6, 8]);
        const { value, grad } = tf.valueAndGrad((input: tf.Tensor) => tf.sum(tf.mul(run(input), dy)))(scores);
        return [run(scores), value, grad];
      };
      const [native, cpu] = await onBackends(['native', 'cpu'], [[2, 2, 12, 8], [2, 2, 12, 8]], compute, 8);
      expectRelativelyClose(native, cpu);
    });
  }

  // Query lengths past one 64-row block, some not a multiple of it; batch 1 with one key-value head runs its group on
  // OpenBLAS's threads, the others one group per thread.
  const attentionCases = [
    { name: 'causal, 150 queries, 2 × 2 groups of 2 heads', batch: 2, keyValueHeads: 2, groups: 2, length: 150, past: 0, window: null, padded: false },
    { name: 'causal with a sliding window of 40 after 5 cached keys', batch: 2, keyValueHeads: 2, groups: 2, length: 130, past: 5, window: 40, padded: false },
    { name: 'causal with left padding (fully masked rows)', batch: 2, keyValueHeads: 1, groups: 3, length: 70, past: 0, window: null, padded: true },
    { name: 'one group of 4 heads, causal', batch: 1, keyValueHeads: 1, groups: 4, length: 65, past: 0, window: null, padded: false },
    { name: 'one query after 9 cached keys (no mask)', batch: 2, keyValueHeads: 2, groups: 2, length: 1, past: 9, window: null, padded: false },
  ];
  for (const { name, batch, keyValueHeads, groups, length, past, window, padded } of attentionCases) {
    it(`grouped attention, ${name}: values and gradients`, async () => {
      const [keys, dimension, heads] = [past + length, 8, keyValueHeads * groups];
      const compute = (query: tf.Tensor, key: tf.Tensor, value: tf.Tensor, dy: tf.Tensor) => {
        const paddingMask = padded ? tf.tensor2d(Array.from({ length: batch * keys }, (_, index) => (index >= keys && index % keys < 20 ? 0 : 1)), [batch, keys]) : null;
        const mask = buildAttentionMask({ batchSize: batch, queryLength: length, pastLength: past, slidingWindow: window, paddingMask });
        const attend = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) =>
          groupedAttention(q as tf.Tensor4D, k as tf.Tensor4D, v as tf.Tensor4D, { scale: Math.sqrt(dimension), mask, perHead: [batch, heads, length, keys], dropout: 0 });
        const { value: loss, grads } = tf.valueAndGrads((q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => tf.sum(tf.mul(attend(q, k, v), dy)))([query, key, value]);
        return [attend(query, key, value), loss, ...grads];
      };
      const groupedShape = [batch, keyValueHeads, groups * length, dimension];
      const keyShape = [batch, keyValueHeads, keys, dimension];
      const [native, cpu] = await onBackends(['native', 'cpu'], [groupedShape, keyShape, keyShape, groupedShape], compute, 3);
      expectRelativelyClose(native, cpu, 1e-4);
    });
  }
});
