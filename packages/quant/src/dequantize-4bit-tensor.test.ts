import * as tf from '@tensorflow/tfjs-core';
import { describeWithBackends, maxAbsDifference, testBackends } from '@peft-ts/core/test';
import { expect, it } from 'vitest';
import { dequantize4bit } from './dequantize-4bit.js';
import { dequantize4bitTensor, fourBitTensors, matMul4bitTensor } from './dequantize-4bit-tensor.js';
import { quantize4bit } from './quantize-4bit.js';
import { float32BitDifferences, quantFixtures, seededUniform } from './test/index.js';


// The tf-op path unpacks the words with integer division, exact on cpu and tensorflow (wasm's goes through float32,
// and the layers never take this path there); on webgpu a kernel decodes them.
describeWithBackends('dequantize4bitTensor', () => {
  it.each([
    ['nf4', false],
    ['nf4', true],
    ['fp4', false],
    ['fp4', true],
  ] as const)('%s (double quant %s): equals dequantize4bit bit for bit', (quantType, compressStatistics) => {
    const quantized = quantize4bit(quantFixtures().float32('weight'), { quantType, compressStatistics, shape: [64, 128] });
    tf.tidy(() => {
      const result = dequantize4bitTensor(fourBitTensors(quantized));
      expect(result.shape).toEqual([64, 128]);
      expect(float32BitDifferences(result.dataSync() as Float32Array, dequantize4bit(quantized.packed, quantized.state))).toEqual([]);
    });
  });

  it('handles an odd count, a short last block and several nested chunks', () => {
    // 300 blocks of 64 values: two nested chunks of 256 blocks, the second short; the last block holds 39 values.
    const count = 299 * 64 + 39;
    const quantized = quantize4bit(seededUniform(count, 31, -4, 4), { quantType: 'nf4', compressStatistics: true, shape: [count] });
    tf.tidy(() => {
      const result = dequantize4bitTensor(fourBitTensors(quantized));
      expect(float32BitDifferences(result.dataSync() as Float32Array, dequantize4bit(quantized.packed, quantized.state))).toEqual([]);
    });
  });

  it('matMul4bitTensor is x·Wᵀ with the dequantized weight', () => {
    const quantized = quantize4bit(seededUniform(48 * 80, 5), { quantType: 'fp4', compressStatistics: true, shape: [48, 80] });
    tf.tidy(() => {
      const input = tf.tensor2d(seededUniform(3 * 80, 6), [3, 80]);
      const expected = tf.matMul(input, tf.tensor2d(dequantize4bit(quantized.packed, quantized.state), [48, 80]), false, true);
      expect(maxAbsDifference(matMul4bitTensor(input, fourBitTensors(quantized)), expected)).toBeLessThan(1e-5);
    });
  });
}, testBackends().filter((backend) => backend !== 'wasm'));
