import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deserializeSafetensors } from './deserialize-safetensors.js';
import { SafetensorsError, type SafetensorsErrorCode } from './safetensors-error.js';
import { SafetensorsFile } from './safetensors-file.js';
import { VALIDATION_CODES, VALID_PADDING, buildCorpus, entry, fileWithHeader } from '../test/malformed-safetensors-corpus.js';

type Outcome = { kind: 'valid'; tensors: number } | { kind: 'error'; error: unknown };

async function openAndReadAll(path: string): Promise<Outcome> {
  try {
    const file = await SafetensorsFile.open(path);
    try {
      for (const name of file.tensorNames) await file.readTensor(name);
      return { kind: 'valid', tensors: file.tensorNames.length };
    } finally {
      await file.close();
    }
  } catch (error) {
    return { kind: 'error', error };
  }
}

function deserializeAll(bytes: Uint8Array): Outcome {
  try {
    return { kind: 'valid', tensors: deserializeSafetensors(bytes).tensors.size };
  } catch (error) {
    return { kind: 'error', error };
  }
}

describe('malformed files', () => {
  const corpus = buildCorpus();
  let directory: string;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'safetensors-malformed-'));
    await Promise.all(corpus.map((testCase, index) => writeFile(join(directory, `${index}.safetensors`), testCase.bytes)));
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it('has a corpus of at least 200 distinct files', () => {
    expect(VALID_PADDING).toBeGreaterThan(1); // the header-length cases above rely on some padding to drop
    expect(corpus.length).toBeGreaterThanOrEqual(200);
    expect(new Set(corpus.map((testCase) => Buffer.from(testCase.bytes).toString('base64'))).size).toBeGreaterThan(200);
  });

  it('rejects every malformed file with a SafetensorsError of the expected code, from disk and from memory', async () => {
    const started = performance.now();
    const failures: string[] = [];
    const seen = new Map<string, number>();
    for (const [index, testCase] of corpus.entries()) {
      const path = join(directory, `${index}.safetensors`);
      const fromFile = await openAndReadAll(path);
      const fromMemory = deserializeAll(testCase.bytes);
      for (const [route, outcome] of [['file', fromFile], ['memory', fromMemory]] as const) {
        let got: string;
        if (outcome.kind === 'valid') got = 'valid';
        else if (outcome.error instanceof SafetensorsError) {
          got = outcome.error.code;
          if (route === 'file' && !outcome.error.message.includes(path)) {
            failures.push(`${testCase.name}: message lacks the path`);
          }
        } else got = `non-SafetensorsError ${String(outcome.error)}`;
        seen.set(got, (seen.get(got) ?? 0) + 1);
        if (!testCase.expected.includes(got as SafetensorsErrorCode)) {
          failures.push(`${testCase.name} (${route}): expected ${testCase.expected.join('|')}, got ${got}`);
        }
      }
      // Both routes share the validation, so they must agree.
      const codeOf = (outcome: Outcome) => (outcome.kind === 'valid' ? 'valid' : (outcome.error as SafetensorsError).code);
      if (codeOf(fromFile) !== codeOf(fromMemory)) failures.push(`${testCase.name}: file and memory disagree`);
    }
    expect(failures).toEqual([]);
    // Every code the validation can produce occurs, so none of the checks is unreachable.
    for (const code of [...VALIDATION_CODES, 'valid']) {
      expect(seen.get(code), code).toBeGreaterThan(0);
    }
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('names the tensor in errors about an entry', async () => {
    const header = `{"good":${entry('"F32"', '[1]', '[0,4]')},"bad one":${entry('"F32"', '[5]', '[4,8]')}}`;
    const bytes = fileWithHeader(header, new Uint8Array(8));
    expect(() => deserializeSafetensors(bytes, 'memory.safetensors')).toThrow(
      /^memory\.safetensors: tensor "bad one": F32 shape \[5\] needs 20 bytes but data_offsets span 4 \[SIZE_MISMATCH\]$/,
    );
  });
});
