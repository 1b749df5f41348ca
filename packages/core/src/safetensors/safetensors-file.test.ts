import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { int64ToFloat64Array, int64ToInt32Array } from './int64.js';
import { SafetensorsError } from './safetensors-error.js';
import { SafetensorsFile } from './safetensors-file.js';
import { serializeSafetensors } from './serialize-safetensors.js';
import type { SafetensorsTensor } from './tensor-data.js';
import { writeFileAtomically } from './write-file-atomically.js';
import { writeSafetensors } from './write-safetensors.js';

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'safetensors-file-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

const tensors: Record<string, SafetensorsTensor> = {
  big: { dtype: 'F32', shape: [256, 4], data: Float32Array.from({ length: 1024 }, (_, index) => index / 7) },
  half: { dtype: 'F16', shape: [3], data: Float32Array.of(1, -0.25, 1024) },
  ids: { dtype: 'I64', shape: [2], data: BigInt64Array.of(3n, -4n) },
  flags: { dtype: 'BOOL', shape: [2, 1], data: Uint8Array.of(0, 1) },
};

describe('SafetensorsFile', () => {
  it('writes a file identical to serializeSafetensors and reads every tensor back', async () => {
    const path = join(directory, 'model.safetensors');
    await writeSafetensors(path, tensors, { format: 'pt' });
    expect(Buffer.compare(await readFile(path), Buffer.from(serializeSafetensors(tensors, { format: 'pt' })))).toBe(0);

    const file = await SafetensorsFile.open(path);
    try {
      expect(file.metadata).toEqual({ format: 'pt' });
      expect(file.tensorNames).toEqual(['ids', 'big', 'half', 'flags']);
      expect(file.has('big')).toBe(true);
      expect(file.has('missing')).toBe(false);
      const info = file.info('half');
      expect(info).toMatchObject({ name: 'half', dtype: 'F16', shape: [3], byteLength: 6 });
      expect(info.dataOffsets).toEqual([16 + 4096, 16 + 4096 + 6]);
      expect(info.byteOffset).toBe(file.byteLength - 2 - 6);
      for (const [name, tensor] of Object.entries(tensors)) {
        const read = await file.readTensor(name);
        expect(read.dtype).toBe(tensor.dtype);
        expect(read.shape).toEqual(tensor.shape);
        expect(read.data).toEqual(tensor.data);
      }
      expect(Array.from(await file.readTensorBytes('half'))).toEqual([0x00, 0x3c, 0x00, 0xb4, 0x00, 0x64]);
    } finally {
      await file.close();
    }
  });

  it('reads a tensor from its own byte range only', async () => {
    const path = join(directory, 'model.safetensors');
    await writeSafetensors(path, tensors);
    const file = await SafetensorsFile.open(path);
    try {
      // Cut the file after the first tensor: that tensor must still read, later ones fail cleanly instead of hanging.
      const ids = file.info('ids');
      await truncate(path, ids.byteOffset + ids.byteLength);
      expect(Array.from((await file.readTensor('ids')).data as BigInt64Array)).toEqual([3n, -4n]);
      const error = await file.readTensor('flags').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(SafetensorsError);
      expect(error).toMatchObject({ code: 'TRUNCATED', file: path, tensor: 'flags' });
    } finally {
      await file.close();
    }
  });

  it('reports a missing tensor and reading after close with typed errors', async () => {
    const path = join(directory, 'model.safetensors');
    await writeSafetensors(path, tensors);
    const file = await SafetensorsFile.open(path);
    expect(() => file.info('nope')).toThrow(SafetensorsError);
    await expect(file.readTensor('nope')).rejects.toMatchObject({ code: 'MISSING_TENSOR', tensor: 'nope' });
    await file[Symbol.asyncDispose]();
    await file.close();
    await expect(file.readTensor('big')).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('rejects opening a malformed file', async () => {
    const path = join(directory, 'bad.safetensors');
    await writeFile(path, Buffer.from('0800000000000000', 'hex'));
    await expect(SafetensorsFile.open(path)).rejects.toMatchObject({ name: 'SafetensorsError', code: 'TRUNCATED' });
  });
});

describe('atomic writes', () => {
  it('leaves the previous file intact and no temporary file when writing fails midway', async () => {
    const path = join(directory, 'model.safetensors');
    await writeFile(path, 'previous');
    const failure = writeFileAtomically(path, async (handle) => {
      await handle.write('partial');
      throw new Error('disk full');
    });
    await expect(failure).rejects.toThrow('disk full');
    expect(await readFile(path, 'utf8')).toBe('previous');
    expect(await readdir(directory)).toEqual(['model.safetensors']);
  });

  it('validates every tensor before creating any file', async () => {
    const path = join(directory, 'model.safetensors');
    await writeFile(path, 'previous');
    const bad = { ...tensors, wrong: { dtype: 'F32', shape: [2], data: Float32Array.of(1) } as SafetensorsTensor };
    await expect(writeSafetensors(path, bad)).rejects.toMatchObject({ code: 'INVALID_TENSOR', tensor: 'wrong' });
    expect(await readFile(path, 'utf8')).toBe('previous');
    expect(await readdir(directory)).toEqual(['model.safetensors']);
  });

  it('replaces an existing file', async () => {
    const path = join(directory, 'model.safetensors');
    await writeFile(path, 'previous');
    await writeSafetensors(path, { x: { dtype: 'U8', shape: [1], data: Uint8Array.of(9) } });
    const file = await SafetensorsFile.open(path);
    expect(Array.from((await file.readTensor('x')).data as Uint8Array)).toEqual([9]);
    await file.close();
  });
});

describe('int64 conversion', () => {
  it('narrows in-range values and rejects out-of-range ones', () => {
    const extremes = BigInt64Array.of(-(2n ** 31n), 0n, 2n ** 31n - 1n);
    expect(Array.from(int64ToInt32Array(extremes))).toEqual([-(2 ** 31), 0, 2 ** 31 - 1]);
    expect(() => int64ToInt32Array(BigInt64Array.of(0n, 2n ** 31n), 'ids')).toThrow(
      /tensor "ids": element 1 \(2147483648\) does not fit int32 \[VALUE_OUT_OF_RANGE\]/,
    );
    expect(() => int64ToInt32Array(BigUint64Array.of(2n ** 64n - 1n))).toThrow(SafetensorsError);
    expect(Array.from(int64ToFloat64Array(BigInt64Array.of(-(2n ** 53n) + 1n, 2n ** 53n - 1n)))).toEqual([
      -(2 ** 53) + 1,
      2 ** 53 - 1,
    ]);
    expect(() => int64ToFloat64Array(BigInt64Array.of(2n ** 53n))).toThrow(/VALUE_OUT_OF_RANGE/);
  });
});
