import { mkdir, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openCheckpoint } from './open-checkpoint.js';
import { SafetensorsError } from './safetensors-error.js';
import { serializeSafetensors } from './serialize-safetensors.js';
import { ShardedCheckpoint } from './sharded-checkpoint.js';
import type { SafetensorsTensor } from './tensor-data.js';
import { writeSafetensors } from './write-safetensors.js';
import { writeShardedCheckpoint } from './write-sharded-checkpoint.js';

const fixturesRoot = new URL('../../../../fixtures/peft-0.10/', import.meta.url);

let directory: string;
beforeEach(async () => {
  directory = await mkdtemp(join(tmpdir(), 'safetensors-sharded-'));
});
afterEach(async () => {
  await rm(directory, { recursive: true, force: true });
});

/** 16 + 8 bytes fill shard 1 at a 24-byte limit; 16 + 6 bytes go to shard 2. */
const tensors = new Map<string, SafetensorsTensor>([
  ['layer.0.weight', { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) }],
  ['layer.0.bias', { dtype: 'F32', shape: [2], data: Float32Array.of(-1, -2) }],
  ['layer.1.weight', { dtype: 'F32', shape: [4], data: Float32Array.of(5, 6, 7, 8) }],
  ['embed', { dtype: 'F16', shape: [3], data: Float32Array.of(0.5, 0.25, -8) }],
]);

const FIRST = 'model-00001-of-00002.safetensors';
const SECOND = 'model-00002-of-00002.safetensors';

// What Python's json.dumps(index, indent=2, sort_keys=True) + "\n" gives for this checkpoint.
const EXPECTED_INDEX = `{
  "metadata": {
    "total_size": 46
  },
  "weight_map": {
    "embed": "${SECOND}",
    "layer.0.bias": "${FIRST}",
    "layer.0.weight": "${FIRST}",
    "layer.1.weight": "${SECOND}"
  }
}
`;

async function errorOf(promise: Promise<unknown>): Promise<SafetensorsError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(SafetensorsError);
  return error as SafetensorsError;
}

describe('sharded checkpoints', () => {
  it('write shards and an index exactly as transformers does, and read every tensor back', async () => {
    const written = await writeShardedCheckpoint(directory, tensors, { maxShardBytes: 24 });
    expect(written).toEqual([FIRST, SECOND, 'model.safetensors.index.json']);
    expect((await readdir(directory)).sort()).toEqual([FIRST, SECOND, 'model.safetensors.index.json']);
    expect(await readFile(join(directory, 'model.safetensors.index.json'), 'utf8')).toBe(EXPECTED_INDEX);
    const firstShard = new Map([...tensors].slice(0, 2));
    expect(Buffer.compare(await readFile(join(directory, FIRST)), serializeSafetensors(firstShard, { format: 'pt' }))).toBe(0);

    const checkpoint = await openCheckpoint(directory);
    try {
      expect(checkpoint.path).toBe(join(directory, 'model.safetensors.index.json'));
      expect(checkpoint.indexMetadata).toEqual({ total_size: 46 });
      expect([...checkpoint.shards.keys()].sort()).toEqual([FIRST, SECOND]);
      expect(checkpoint.tensorNames).toEqual(['embed', 'layer.0.bias', 'layer.0.weight', 'layer.1.weight']);
      expect(checkpoint.shardOf('embed').path).toBe(join(directory, SECOND));
      expect(checkpoint.info('layer.0.bias')).toMatchObject({ dtype: 'F32', shape: [2], byteLength: 8 });
      for (const [name, tensor] of tensors) {
        const read = await checkpoint.readTensor(name);
        expect(read.dtype).toBe(tensor.dtype);
        expect(read.shape).toEqual(tensor.shape);
        expect(read.data).toEqual(tensor.data);
      }
      await expect(checkpoint.readTensor('nope')).rejects.toMatchObject({ code: 'MISSING_TENSOR' });
    } finally {
      await checkpoint.close();
    }
  });

  it('gives an oversized tensor a shard of its own', async () => {
    const written = await writeShardedCheckpoint(directory, tensors, { maxShardBytes: 10 });
    expect(written).toEqual([
      'model-00001-of-00004.safetensors',
      'model-00002-of-00004.safetensors',
      'model-00003-of-00004.safetensors',
      'model-00004-of-00004.safetensors',
      'model.safetensors.index.json',
    ]);
    const checkpoint = await ShardedCheckpoint.open(join(directory, 'model.safetensors.index.json'));
    expect(checkpoint.shardOf('layer.0.weight').tensorNames).toEqual(['layer.0.weight']);
    expect((await checkpoint.readTensor('embed')).data).toEqual(tensors.get('embed')?.data);
    await checkpoint[Symbol.asyncDispose]();
  });

  it('writes a single model.safetensors when everything fits, replacing an older sharded save, and vice versa', async () => {
    await writeShardedCheckpoint(directory, tensors, { maxShardBytes: 24 });
    expect(await writeShardedCheckpoint(directory, tensors)).toEqual(['model.safetensors']);
    expect(await readdir(directory)).toEqual(['model.safetensors']);
    const single = await openCheckpoint(directory);
    expect(single.indexMetadata).toBeUndefined();
    expect(single.tensorNames).toEqual(['layer.0.bias', 'layer.0.weight', 'layer.1.weight', 'embed']);
    await single.close();

    await writeFile(join(directory, 'notes.txt'), 'kept');
    await writeShardedCheckpoint(directory, tensors, { maxShardBytes: 24 });
    // A stale model.safetensors would otherwise take precedence over the new index.
    expect((await readdir(directory)).sort()).toEqual([FIRST, SECOND, 'model.safetensors.index.json', 'notes.txt']);
  });

  it('rejects an index that points at a missing shard, naming the shard and the index', async () => {
    await writeShardedCheckpoint(directory, tensors, { maxShardBytes: 24 });
    await unlink(join(directory, SECOND));
    const error = await errorOf(openCheckpoint(directory));
    expect(error.code).toBe('MISSING_SHARD');
    expect(error.message).toContain(SECOND);
    expect(error.message).toContain(join(directory, 'model.safetensors.index.json'));
  });

  it('rejects an index that assigns a tensor to a shard lacking it', async () => {
    await writeShardedCheckpoint(directory, tensors, { maxShardBytes: 24 });
    const indexPath = join(directory, 'model.safetensors.index.json');
    await writeFile(indexPath, EXPECTED_INDEX.replace(`"embed": "${SECOND}"`, `"embed": "${FIRST}"`));
    const error = await errorOf(openCheckpoint(directory));
    expect(error).toMatchObject({ code: 'MISSING_TENSOR', tensor: 'embed', file: indexPath });
  });

  it('rejects a malformed shard with the shard’s own error', async () => {
    await writeShardedCheckpoint(directory, tensors, { maxShardBytes: 24 });
    await writeFile(join(directory, FIRST), Buffer.from('ffffffffffffffff', 'hex'));
    const error = await errorOf(openCheckpoint(directory));
    expect(error).toMatchObject({ code: 'HEADER_TOO_LARGE', file: join(directory, FIRST) });
  });

  it.each([
    ['not JSON', '{"weight_map":'],
    ['not an object', '[]'],
    ['no weight_map', '{"metadata":{}}'],
    ['a non-object metadata', `{"metadata":1,"weight_map":{"a":"${FIRST}"}}`],
    ['a non-string shard', '{"weight_map":{"a":1}}'],
    ['an empty shard name', '{"weight_map":{"a":""}}'],
    ['a parent-directory shard', '{"weight_map":{"a":"../model.safetensors"}}'],
    ['an absolute shard path', '{"weight_map":{"a":"/etc/passwd"}}'],
  ])('rejects an index with %s as INVALID_INDEX', async (_, text) => {
    await writeFile(join(directory, 'model.safetensors.index.json'), text);
    expect((await errorOf(openCheckpoint(directory))).code).toBe('INVALID_INDEX');
  });

  it('reports a missing checkpoint', async () => {
    expect((await errorOf(openCheckpoint(directory))).code).toBe('MISSING_SHARD');
    expect((await errorOf(openCheckpoint(join(directory, 'absent')))).code).toBe('MISSING_SHARD');
  });

  it('opens a single file or an index given directly', async () => {
    const path = join(directory, 'adapter_model.safetensors');
    await writeSafetensors(path, tensors);
    const checkpoint = await openCheckpoint(path);
    expect([...checkpoint.shards.keys()]).toEqual(['adapter_model.safetensors']);
    expect(checkpoint.tensorNames).toHaveLength(4);
    await checkpoint.close();

    const nested = join(directory, 'nested');
    await mkdir(nested);
    await writeShardedCheckpoint(nested, tensors, { maxShardBytes: 24 });
    const indexed = await openCheckpoint(join(nested, 'model.safetensors.index.json'));
    expect(indexed.shards.size).toBe(2);
    await indexed.close();
  });

  it('opens the real transformers checkpoint from the fixtures', async () => {
    const manifest = JSON.parse(await readFile(new URL('manifest.json', fixturesRoot), 'utf8'));
    const expected = Object.keys(manifest.files['mistral/base_model/model.safetensors'].tensors);
    const checkpoint = await openCheckpoint(fileURLToPath(new URL('mistral/base_model/', fixturesRoot)));
    try {
      expect([...checkpoint.tensorNames].sort()).toEqual(expected.sort());
      const embedding = await checkpoint.readTensor('model.embed_tokens.weight');
      expect(embedding.dtype).toBe('F32');
      expect(embedding.data.length).toBe(embedding.shape[0] * embedding.shape[1]);
    } finally {
      await checkpoint.close();
    }
  });
});
