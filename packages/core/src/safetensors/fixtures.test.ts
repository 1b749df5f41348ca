import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { int64ToInt32Array } from './int64.js';
import { SafetensorsFile } from './safetensors-file.js';
import { serializeSafetensors } from './serialize-safetensors.js';
import type { SafetensorsTensor } from './tensor-data.js';

const fixturesRoot = new URL('../../../../fixtures/peft-0.10/', import.meta.url);

interface ManifestEntry {
  bytes: number;
  sha256: string;
  metadata?: Record<string, string> | null;
  tensors?: Record<string, [string, number[]]>;
}

const manifest = JSON.parse(await readFile(new URL('manifest.json', fixturesRoot), 'utf8')) as {
  files: Record<string, ManifestEntry>;
};
const safetensorsFiles = Object.entries(manifest.files).filter(([name]) => name.endsWith('.safetensors'));

describe('PEFT 0.10 fixtures', () => {
  it('includes the expected set of files', () => {
    expect(safetensorsFiles.length).toBe(30);
  });

  it.each(safetensorsFiles)('%s: header matches the manifest and re-serializes byte for byte', async (name, entry) => {
    const path = fileURLToPath(new URL(name, fixturesRoot));
    const original = await readFile(path);
    // Guards against a fixture that changed under the test, which would make the byte comparison meaningless.
    expect(createHash('sha256').update(original).digest('hex')).toBe(entry.sha256);

    const file = await SafetensorsFile.open(path);
    try {
      expect(file.byteLength).toBe(entry.bytes);
      expect(file.metadata ?? null).toEqual(entry.metadata ?? null);
      const described = Object.fromEntries(
        file.tensorNames.map((tensor) => {
          const info = file.info(tensor);
          return [tensor, [info.dtype, info.shape]];
        }),
      );
      expect(described).toEqual(entry.tensors);

      const tensors = new Map<string, SafetensorsTensor>();
      for (const tensor of file.tensorNames) {
        const read = await file.readTensor(tensor);
        expect(read.data.length).toBe(read.shape.reduce((product, dimension) => product * dimension, 1));
        tensors.set(tensor, read);
      }
      const rewritten = serializeSafetensors(tensors, file.metadata);
      expect(Buffer.compare(Buffer.from(rewritten), original)).toBe(0);
    } finally {
      await file.close();
    }
  });

  it('reads I64 data correctly: the bitsandbytes outlier columns are the weight columns with |w| > 3.5', async () => {
    const file = await SafetensorsFile.open(fileURLToPath(new URL('bnb/quant_fixtures.safetensors', fixturesRoot)));
    try {
      const outliers = await file.readTensor('int8_t3.5_outlier_cols');
      const weight = await file.readTensor('weight');
      if (outliers.dtype !== 'I64' || weight.dtype !== 'F32') throw new Error('unexpected fixture dtypes');
      expect(outliers.data).toBeInstanceOf(BigInt64Array);

      const [rows, columns] = weight.shape;
      const expected: number[] = [];
      for (let column = 0; column < columns; column++) {
        let outlier = false;
        for (let row = 0; row < rows; row++) outlier ||= Math.abs(weight.data[row * columns + column]) > 3.5;
        if (outlier) expected.push(column);
      }
      expect(expected.length).toBeGreaterThan(0);
      expect(Array.from(outliers.data, Number)).toEqual(expected);
      expect(Array.from(int64ToInt32Array(outliers.data))).toEqual(expected);
    } finally {
      await file.close();
    }
  });

  it('reads I8 data as Int8Array with negative values intact', async () => {
    const file = await SafetensorsFile.open(fileURLToPath(new URL('bnb/quant_fixtures.safetensors', fixturesRoot)));
    try {
      const quantized = await file.readTensor('int8_q');
      expect(quantized.data).toBeInstanceOf(Int8Array);
      expect(Array.from(quantized.data.subarray(0, 8) as Int8Array)).toEqual([-42, -43, -9, -16, 32, 26, -12, -79]);
    } finally {
      await file.close();
    }
  });
});
