import * as tf from '@tensorflow/tfjs-core';
import { HalfEmbedding, HalfLinear, SeededRandom, type HalfDtype } from '@peft-ts/core';
import { narrowToHalfBits, packHalfRows, widenHalfBits, widenHalfWords } from '@peft-ts/core/internal';
import { initBackend } from '@peft-ts/core/backend';
import { maxAbsDifference } from '@peft-ts/core/test';
import { Linear4bit, Linear8bitLt } from '@peft-ts/quant';
import { describe, expect, it } from 'vitest';

// On a software adapter here; skipped, not passed, where no adapter exists.
const webgpuAvailable = await initBackend('webgpu').then(
  () => true,
  () => false,
);

const DTYPES: HalfDtype[] = ['float16', 'bfloat16'];

function randomBits(count: number, seed: number): Uint16Array {
  const random = new SeededRandom(seed);
  return Uint16Array.from({ length: count }, () => random.nextInt(0x10000));
}

const weightBits = (count: number, dtype: HalfDtype, seed: number) => {
  const random = new SeededRandom(seed);
  return narrowToHalfBits(Float32Array.from({ length: count }, () => (random.next() - 0.5) * 0.4), dtype);
};

describe.skipIf(!webgpuAvailable)('half-precision layers on webgpu', () => {
  it.each(DTYPES)('%s: the kernel widens every pattern class exactly (odd rows, words past 2^24)', async (dtype) => {
    await initBackend('webgpu');
    const [rows, columns] = [37, 41];
    const bits = randomBits(rows * columns, 1);
    const words = tf.tensor2d(packHalfRows({ dtype, rows, columns, bits }), [rows, 21], 'int32');
    const widened = widenHalfWords(words, columns, dtype);
    expect(widened.shape).toEqual([rows, columns]);
    const actual = new Uint32Array(((await widened.data()) as Float32Array).buffer);
    const expectedValues = widenHalfBits(bits, dtype);
    const expected = new Uint32Array(expectedValues.buffer);
    // NaN payloads are the shader compiler's to canonicalize; everything else must be bit-identical.
    const mismatches = [...expected.keys()].filter((index) => (Number.isNaN(expectedValues[index]) ? !Number.isNaN(new Float32Array(actual.buffer)[index]) : actual[index] !== expected[index]));
    expect(mismatches).toEqual([]);
    tf.dispose([words, widened]);
  });

  it.each(DTYPES)('%s: HalfLinear output and input gradient, HalfEmbedding rows (gathered on the GPU), as on cpu', async (dtype) => {
    const run = async (backend: 'cpu' | 'webgpu') => {
      await initBackend(backend);
      // Tiles of 22 rows (1,000 values), so the row-range widening runs on the GPU too.
      const layer = new HalfLinear({ dtype, rows: 70, columns: 45, bits: weightBits(70 * 45, dtype, 2) }, { maxWidenedElements: 1000 });
      // Enough looked-up words (64 × 32) that tfjs runs a gather on the GPU rather than handing it to the CPU.
      const embedding = new HalfEmbedding({ dtype, rows: 300, columns: 64, bits: randomBits(300 * 64, 3) });
      const input = tf.randomUniform([2, 3, 45], -1, 1, 'float32', 4);
      const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => tf.sum(tf.square(layer.forward(x))))(input);
      const output = layer.forward(input);
      const random = new SeededRandom(9);
      const ids = tf.tensor2d(Int32Array.from({ length: 64 }, () => random.nextInt(300)), [4, 16], 'int32');
      const rows = embedding.forward(ids);
      const results = [await output.data(), await grad.data(), await value.data(), await rows.data()];
      tf.dispose([input, value, grad, output, ids, rows]);
      layer.dispose();
      embedding.dispose();
      return results;
    };
    const cpu = await run('cpu');
    const gpu = await run('webgpu');
    expect(maxAbsDifference(gpu[0]!, cpu[0]!)).toBeLessThan(1e-5);
    expect(maxAbsDifference(gpu[1]!, cpu[1]!)).toBeLessThan(1e-4);
    // Random patterns (NaNs included): the rows must be the same bits, NaNs aside.
    const [gpuRows, cpuRows] = [new Uint32Array((gpu[3] as Float32Array).buffer), new Uint32Array((cpu[3] as Float32Array).buffer)];
    const nan = (index: number) => Number.isNaN((cpu[3] as Float32Array)[index]);
    expect([...gpuRows.keys()].filter((index) => !nan(index) && gpuRows[index] !== cpuRows[index])).toEqual([]);
  });

  it('a bf16 HalfLinear holds 2 bytes a parameter on the GPU', async () => {
    await initBackend('webgpu');
    const before = tf.memory().numBytes;
    const layer = new HalfLinear({ dtype: 'bfloat16', rows: 96, columns: 200, bits: weightBits(96 * 200, 'bfloat16', 6) });
    expect((tf.memory().numBytes - before) / (96 * 200)).toBe(2);
    layer.dispose();
  });

  it('quantized layers write their bitsandbytes tensors on webgpu as on cpu (asynchronous reads)', async () => {
    const random = new SeededRandom(5);
    const values = Float32Array.from({ length: 24 * 64 }, () => random.next() - 0.5);
    const run = async (backend: 'cpu' | 'webgpu') => {
      await initBackend(backend);
      const weight = tf.tensor2d(values, [24, 64]);
      const layers = [Linear4bit.fromWeight(weight, { quantType: 'nf4', compressStatistics: true }), Linear8bitLt.fromWeight(weight)];
      const written = await Promise.all(layers.map((layer) => layer.checkpointTensors()));
      tf.dispose(weight);
      for (const layer of layers) layer.dispose();
      return written.map((tensors) => [...tensors].map(([name, { dtype, shape, data }]) => [name, dtype, shape, [...new Uint8Array(data.buffer, data.byteOffset, data.byteLength)]]));
    };
    const cpu = await run('cpu');
    expect(await run('webgpu')).toEqual(cpu);
  });
});
