import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { NonFiniteTensorError, TensorDtypeError } from './errors.js';
import { countNonFinite } from './finite-check.js';
import { writeSafetensors } from './safetensors/index.js';
import { readTensorFile } from './tensor-io.js';
import { describeWithBackends } from './test/index.js';

describeWithBackends('readTensorFile checks', () => {
  let directory: string;
  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'peft-ts-tensor-io-'));
  });
  afterAll(() => rm(directory, { recursive: true, force: true }));

  it('counts NaN and both infinities, nothing else', () => {
    expect(countNonFinite(Float32Array.of(0, -0, 3.4e38, Number.NaN, Infinity, -Infinity, 1e-45))).toBe(3);
  });

  it('names file and tensor apart when a 64-bit value does not fit int32', async () => {
    const path = join(directory, 'ids.safetensors');
    await writeSafetensors(path, new Map([['input_ids', { dtype: 'I64', shape: [2], data: BigInt64Array.of(1n, 2n ** 40n) }]]));
    await expect(readTensorFile(path)).rejects.toThrow(`${path}: tensor "input_ids": element 1 (1099511627776) does not fit int32 [VALUE_OUT_OF_RANGE]`);
  });

  it('rejects a dtype the caller does not accept before reading data, and checks float values when asked', async () => {
    const path = join(directory, 'mixed.safetensors');
    await writeSafetensors(path, new Map([
      ['weight', { dtype: 'F16', shape: [3], data: Float32Array.of(1, Number.POSITIVE_INFINITY, Number.NaN) }],
      ['steps', { dtype: 'I32', shape: [1], data: Int32Array.of(3) }],
    ] as const));
    const wrongDtype = readTensorFile(path, { dtypes: ['F32', 'F16'] });
    await expect(wrongDtype).rejects.toBeInstanceOf(TensorDtypeError);
    await expect(wrongDtype).rejects.toThrow(`${path}: tensor "steps" has dtype I32; expected F32, F16`);
    const warnings: string[] = [];
    const tensors = await readTensorFile(path, { finiteCheck: { onWarning: (message) => warnings.push(message) } });
    tensors.forEach((tensor) => tensor.dispose());
    expect(warnings).toEqual([`${path}: tensor "weight": 2 of 3 values are NaN or ±Inf`]);
    await expect(readTensorFile(path, { finiteCheck: { strict: true } })).rejects.toBeInstanceOf(NonFiniteTensorError);
    expect((await readTensorFile(path)).size).toBe(2);
  });
});
