import * as tf from '@tensorflow/tfjs-core';
import { initBackend } from '@peft-ts/core/backend';
import { maxAbsDifference } from '@peft-ts/core/test';
import { Linear4bit, Linear8bitLt, dequantize4bit, quantize4bit } from '@peft-ts/quant';
import { dequantize4bitTensor, fourBitTensors, matMul4bitTensor } from '@peft-ts/quant/internal';
import { describe, expect, it } from 'vitest';

// On a software adapter (llvmpipe through OpenGL ES) here; skipped, not passed, where no adapter exists.
const webgpuAvailable = await initBackend('webgpu').then(
  () => true,
  () => false,
);


const uniform = (shape: number[], seed: number, scale = 1) => tf.randomUniform(shape, -scale, scale, 'float32', seed);

// Sizes that are not multiples of the kernel's 64 × 64 tiles, its 16-wide inner steps or a block, so every bound
// and the short last block are crossed; in-features that are (320, 264: whole-word decoding) and are not (100, 257)
// multiples of a word's 8 codes; double quant over several 256-block chunks.
const cases = [
  { quantType: 'nf4', compressStatistics: true, blocksize: 64, outFeatures: 70, inFeatures: 100, rows: 5 },
  { quantType: 'fp4', compressStatistics: false, blocksize: 128, outFeatures: 130, inFeatures: 257, rows: 1 },
  { quantType: 'nf4', compressStatistics: false, blocksize: 256, outFeatures: 256, inFeatures: 320, rows: 131 },
  { quantType: 'fp4', compressStatistics: true, blocksize: 64, outFeatures: 520, inFeatures: 264, rows: 66 },
] as const;

describe.skipIf(!webgpuAvailable)('quantized layers on webgpu', () => {
  it.each(cases)(
    '$quantType dq=$compressStatistics blocksize $blocksize [$outFeatures, $inFeatures] × $rows rows: the unfused numbers',
    async ({ rows, outFeatures, inFeatures, ...options }) => {
      await initBackend('webgpu');
      const weight = uniform([outFeatures, inFeatures], 1, 0.5);
      const quantized = quantize4bit((await weight.data()) as Float32Array, { ...options, shape: [outFeatures, inFeatures] });
      const tensors = fourBitTensors(quantized);
      const dequantized = dequantize4bitTensor(tensors);
      // The dequantizing kernel gives the host loop's values bit for bit.
      expect(maxAbsDifference(await dequantized.data(), dequantize4bit(quantized.packed, quantized.state))).toBe(0);

      const input = uniform([rows, inFeatures], 2) as tf.Tensor2D;
      const upstream = uniform([rows, outFeatures], 3);
      const fused = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.mul(matMul4bitTensor(x as tf.Tensor2D, tensors), upstream)));
      const { value, grad } = fused(input);
      const output = matMul4bitTensor(input, tensors);
      const unfused = tf.matMul(input, dequantized, false, true);
      expect(maxAbsDifference(await output.data(), await unfused.data())).toBeLessThan(1e-5);
      const unfusedGradient = tf.matMul(upstream, dequantized);
      expect(maxAbsDifference(await grad.data(), await unfusedGradient.data())).toBeLessThan(1e-5);
      expect(Number.isFinite((await value.data())[0])).toBe(true);
      tf.dispose([weight, dequantized, input, upstream, value, grad, output, unfused, unfusedGradient, tensors as unknown as tf.TensorContainer]);
    },
  );

  it('a Linear4bit with a bias on a rank-3 input gives the cpu output and input gradient', async () => {
    const run = async (backend: 'cpu' | 'webgpu') => {
      await initBackend(backend);
      const weight = uniform([96, 80], 6, 0.5);
      const layer = Linear4bit.fromWeight(weight, { quantType: 'fp4', compressStatistics: true, blocksize: 64, bias: uniform([96], 7) });
      const input = uniform([2, 3, 80], 8);
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.square(layer.forward(x))))(input);
      const output = layer.forward(input);
      const results = [await output.data(), await grad.data(), await value.data()];
      expect(output.shape).toEqual([2, 3, 96]);
      tf.dispose([weight, input, value, grad, output]);
      layer.dispose();
      return results;
    };
    const reference = await run('cpu');
    const webgpu = await run('webgpu');
    reference.forEach((values, index) => expect(maxAbsDifference(webgpu[index], values)).toBeLessThan(1e-4));
  });

  it('never materialises the float weight in a Linear4bit forward and backward', async () => {
    await initBackend('webgpu');
    const weight = uniform([1024, 512], 4, 0.1);
    const layer = Linear4bit.fromWeight(weight, { quantType: 'nf4', compressStatistics: true });
    weight.dispose();
    const input = uniform([4, 512], 5);
    const profile = await tf.profile(() => tf.grad((x: tf.Tensor) => tf.sum(layer.forward(x)))(input));
    const kernels = new Set(profile.kernels.map((kernel) => kernel.name));
    expect(kernels).toContain('PeftMatMul4bit');
    expect(kernels).not.toContain('PeftDequantize4bit');
    // The largest tensor any kernel produced (the packed words, a 1/8 of the weight's elements) is far below the weight.
    const largest = Math.max(...profile.kernels.flatMap((kernel) => kernel.outputShapes.map((shape) => shape.reduce((a, b) => a * b, 1))));
    expect(largest).toBeLessThanOrEqual((1024 * 512) / 8);
    tf.dispose(profile.result as tf.Tensor);
    input.dispose();
    layer.dispose();
  });

  // Codes 0.5 (4-bit) or 1 (8-bit) byte each, the 4-bit absmax codes one byte per 64-value block; the rest is
  // scales and small buffers the backend keeps.
  it.each([
    { layer: '4-bit NF4 + double quant', create: (weight: tf.Tensor) => Linear4bit.fromWeight(weight, { quantType: 'nf4', compressStatistics: true }), limit: 0.53 },
    { layer: '8-bit', create: (weight: tf.Tensor) => Linear8bitLt.fromWeight(weight, { threshold: 6 }), limit: 1.03 },
  ])('the $layer layer holds at most $limit GPU bytes per parameter', async ({ create, limit }) => {
    await initBackend('webgpu');
    const gpuBytes = () => (tf.memory() as tf.MemoryInfo & { numBytesInGPU: number }).numBytesInGPU;
    const weight = uniform([512, 1024], 9, 0.1);
    const input = uniform([2, 1024], 10);
    await input.data();
    const before = gpuBytes();
    const layer = create(weight);
    weight.dispose();
    // Stored tensors reach the GPU on first use; the forward's own buffers are released once it is read.
    const output = layer.forward(input);
    await output.data();
    output.dispose();
    expect((gpuBytes() - before) / (512 * 1024)).toBeLessThanOrEqual(limit);
    layer.dispose();
    input.dispose();
  });
});
