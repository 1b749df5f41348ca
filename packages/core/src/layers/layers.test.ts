import * as tf from '@tensorflow/tfjs-core';
import { expect, it } from 'vitest';
import { describeWithBackends, maxAbsDifference } from '../test/index.js';
import { conv2d, type Conv2dGeometry } from './conv2d.js';
import { Dropout } from './dropout.js';
import { embeddingLookup } from './embedding.js';
import { linear } from './linear.js';
import { RMSNorm } from './rms-norm.js';
import { manualSeed } from '../random.js';

/** Direct float64 PyTorch conv2d definition, NCHW input and [out, in/groups, kh, kw] weight. */
function referenceConv2d(x: tf.Tensor, w: tf.Tensor, bias: tf.Tensor | null, geometry: Conv2dGeometry): Float64Array {
  const [batch, inChannels, height, width] = x.shape;
  const [outChannels, groupChannels, kernelHeight, kernelWidth] = w.shape;
  const { stride, padding, dilation, groups } = geometry;
  const outHeight = Math.floor((height + 2 * padding[0] - dilation[0] * (kernelHeight - 1) - 1) / stride[0]) + 1;
  const outWidth = Math.floor((width + 2 * padding[1] - dilation[1] * (kernelWidth - 1) - 1) / stride[1]) + 1;
  const input = x.dataSync();
  const weight = w.dataSync();
  const biasValues = bias?.dataSync();
  const outputsPerGroup = outChannels / groups;
  const output = new Float64Array(batch * outChannels * outHeight * outWidth);
  for (let b = 0; b < batch; b++)
    for (let o = 0; o < outChannels; o++)
      for (let row = 0; row < outHeight; row++)
        for (let column = 0; column < outWidth; column++) {
          let sum = biasValues ? biasValues[o] : 0;
          const group = Math.floor(o / outputsPerGroup);
          for (let c = 0; c < groupChannels; c++)
            for (let kh = 0; kh < kernelHeight; kh++)
              for (let kw = 0; kw < kernelWidth; kw++) {
                const inRow = row * stride[0] - padding[0] + kh * dilation[0];
                const inColumn = column * stride[1] - padding[1] + kw * dilation[1];
                if (inRow < 0 || inRow >= height || inColumn < 0 || inColumn >= width) continue;
                const channel = group * groupChannels + c;
                sum +=
                  input[((b * inChannels + channel) * height + inRow) * width + inColumn] *
                  weight[((o * groupChannels + c) * kernelHeight + kh) * kernelWidth + kw];
              }
          output[((b * outChannels + o) * outHeight + row) * outWidth + column] = sum;
        }
  return output;
}

describeWithBackends('base layers', () => {
  it('linear computes x·Wᵀ + b for rank-3 input', () => {
    const x = tf.tensor3d([1, 2, 3, 4, 5, 6], [1, 2, 3]);
    const w = tf.tensor2d([1, 0, -1, 2, 1, 0], [2, 3]);
    const y = linear(x, w, tf.tensor1d([0.5, -0.5]));
    expect(y.shape).toEqual([1, 2, 2]);
    expect(Array.from(y.dataSync())).toEqual([-1.5, 3.5, -1.5, 12.5]);
  });

  it.each<[string, Conv2dGeometry, number[]]>([
    ['plain 3×3', { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }, [4, 6, 3, 3]],
    ['stride 2, padding 1', { stride: [2, 2], padding: [1, 1], dilation: [1, 1], groups: 1 }, [4, 6, 3, 3]],
    ['dilation 2, asymmetric kernel', { stride: [1, 1], padding: [2, 1], dilation: [2, 2], groups: 1 }, [4, 6, 3, 2]],
    ['groups 2', { stride: [1, 1], padding: [1, 1], dilation: [1, 1], groups: 2 }, [4, 3, 3, 3]],
    ['1×1', { stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }, [4, 6, 1, 1]],
  ])('conv2d matches the PyTorch definition: %s', (_, geometry, weightShape) => {
    manualSeed(3);
    const x = tf.randomNormal([2, 6, 7, 8], 0, 1, 'float32', 1);
    const w = tf.randomNormal(weightShape, 0, 1, 'float32', 2);
    const bias = tf.randomNormal([weightShape[0]], 0, 1, 'float32', 3);
    const y = conv2d(x, w, bias, geometry);
    expect(maxAbsDifference(y, referenceConv2d(x, w, bias, geometry))).toBeLessThan(1e-4);
  });

  it('conv2d weight gradient matches the reference definition (finite differences free: linearity)', () => {
    // d/dW Σ(dy ⊙ conv(x, W)) = conv2d(x, e_k)·dy summed: check it against the reference per element.
    const geometry: Conv2dGeometry = { stride: [2, 1], padding: [1, 0], dilation: [1, 1], groups: 1 };
    const x = tf.randomNormal([2, 3, 6, 5], 0, 1, 'float32', 4);
    const w = tf.randomNormal([2, 3, 3, 2], 0, 1, 'float32', 5);
    const probe = tf.randomNormal(conv2d(x, w, null, geometry).shape, 0, 1, 'float32', 6);
    const gradient = tf.grad((weight: tf.Tensor) => tf.sum(tf.mul(conv2d(x, weight, null, geometry), probe)))(w);
    const expected = new Float64Array(w.size);
    const probeValues = probe.dataSync();
    for (let index = 0; index < w.size; index++) {
      const unit = tf.reshape(tf.oneHot(tf.tensor1d([index], 'int32'), w.size), w.shape);
      const response = referenceConv2d(x, unit, null, geometry);
      expected[index] = response.reduce((sum, value, position) => sum + value * probeValues[position], 0);
    }
    expect(maxAbsDifference(gradient, expected)).toBeLessThan(1e-3);
  });

  it('embedding lookup and its gradient (scatter-add of repeated ids)', () => {
    const table = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8], [4, 2]);
    const ids = tf.tensor2d([3, 0, 3, 1], [2, 2], 'int32');
    expect(Array.from(embeddingLookup(table, ids).dataSync())).toEqual([7, 8, 1, 2, 7, 8, 3, 4]);
    const weights = tf.tensor3d([1, 10, 100, 1000, 2, 20, 200, 2000], [2, 2, 2]);
    const gradient = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(embeddingLookup(t, ids), weights)))(table);
    expect(Array.from(gradient.dataSync())).toEqual([100, 1000, 200, 2000, 0, 0, 3, 30]);
  });

  it('RMSNorm normalises the last axis', () => {
    const norm = new RMSNorm(2, 0);
    const y = norm.forward(tf.tensor2d([3, 4], [1, 2]));
    const scale = 1 / Math.sqrt(12.5);
    expect(maxAbsDifference(y, [3 * scale, 4 * scale])).toBeLessThan(1e-6);
  });

  it('RMSNorm gradients match autodiff of its definition, with the weight trainable or frozen', () => {
    for (const trainable of [true, false]) {
      manualSeed(2);
      const norm = new RMSNorm(6, 1e-5);
      norm.weight.set(tf.randomNormal([6], 1, 0.3, 'float32', 3));
      norm.weight.requiresGrad = trainable;
      const x = tf.variable(tf.randomNormal([2, 3, 6], 0, 2, 'float32', 4));
      const upstream = tf.randomNormal([2, 3, 6], 0, 1, 'float32', 5);
      const weight = norm.weight.value;
      const reference = () => tf.mul(weight, tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), 1e-5))));
      const loss = (output: () => tf.Tensor) => () => tf.sum(tf.mul(output(), upstream)) as tf.Scalar;
      const expected = tf.variableGrads(loss(reference), [x, weight].filter((variable) => variable.trainable));
      const actual = tf.variableGrads(loss(() => norm.forward(x)), [x, weight].filter((variable) => variable.trainable));
      expect(maxAbsDifference(actual.value, expected.value)).toBeLessThan(1e-5);
      expect(Object.keys(actual.grads).sort()).toEqual(Object.keys(expected.grads).sort());
      for (const name of Object.keys(expected.grads)) expect(maxAbsDifference(actual.grads[name], expected.grads[name])).toBeLessThan(1e-5);
      tf.dispose([x, upstream, norm.weight.value]);
    }
  });

  it('dropout scales kept values in training and is the identity in eval', () => {
    const dropout = new Dropout(0.5);
    const x = tf.ones([1000]);
    const kept = Array.from(dropout.forward(x).dataSync());
    expect(new Set(kept)).toEqual(new Set([0, 2]));
    expect(kept.filter((value) => value === 2).length).toBeGreaterThan(400);
    dropout.eval();
    expect(dropout.forward(x)).toBe(x);
  });
});
