import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { INDEX_FILE_NAME, SINGLE_FILE_NAME } from './checkpoint-file-names.js';
import type { SafetensorsTensorInfo } from './parse-header.js';
import { SafetensorsError } from './safetensors-error.js';
import { SafetensorsFile } from './safetensors-file.js';
import type { SafetensorsTensor } from './tensor-data.js';

interface CheckpointIndex {
  readonly metadata: Readonly<Record<string, unknown>> | undefined;
  readonly weightMap: ReadonlyMap<string, string>;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNotFound(error: unknown): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

function parseIndex(text: string, source: string): CheckpointIndex {
  const fail = (problem: string, cause?: unknown): SafetensorsError =>
    new SafetensorsError('INVALID_INDEX', problem, { file: source, cause });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw fail(`not valid JSON (${(error as Error).message})`, error);
  }
  if (!isPlainObject(parsed)) throw fail('not a JSON object');
  const { metadata, weight_map: weightMap } = parsed;
  if (metadata !== undefined && !isPlainObject(metadata)) throw fail('"metadata" is not an object');
  if (!isPlainObject(weightMap)) throw fail('"weight_map" is missing or not an object');
  const entries = new Map<string, string>();
  for (const [name, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file === '') throw fail(`shard of tensor ${JSON.stringify(name)} is not a file name`);
    // Shards must stay inside the checkpoint directory, whatever the index says.
    if (isAbsolute(file) || file.split(/[\\/]/).includes('..')) {
      throw fail(`shard ${JSON.stringify(file)} of tensor ${JSON.stringify(name)} points outside the checkpoint directory`);
    }
    entries.set(name, file);
  }
  return { metadata, weightMap: entries };
}

/**
 * A transformers-style safetensors checkpoint: either a single `model.safetensors` or a
 * `model.safetensors.index.json` with its shards, behind one lazy API. Opening validates every shard's header and
 * that each shard holds the tensors the index assigns to it; tensors are read on demand.
 */
export class ShardedCheckpoint implements AsyncDisposable {
  /** The single file or the index this checkpoint was opened from. */
  readonly path: string;
  /** The index's `metadata` (e.g. `total_size`); undefined for a single-file checkpoint. */
  readonly indexMetadata: Readonly<Record<string, unknown>> | undefined;
  /** Every shard, by file name relative to the checkpoint directory. */
  readonly shards: ReadonlyMap<string, SafetensorsFile>;
  /** Index order for sharded checkpoints, file order for a single file. */
  readonly tensorNames: readonly string[];
  readonly #tensorShards: ReadonlyMap<string, SafetensorsFile>;

  private constructor(
    path: string,
    indexMetadata: Readonly<Record<string, unknown>> | undefined,
    shards: ReadonlyMap<string, SafetensorsFile>,
    tensorShards: ReadonlyMap<string, SafetensorsFile>,
  ) {
    this.path = path;
    this.indexMetadata = indexMetadata;
    this.shards = shards;
    this.#tensorShards = tensorShards;
    this.tensorNames = Object.freeze([...tensorShards.keys()]);
  }

  /**
   * Opens a checkpoint directory (preferring `model.safetensors` over an index, as transformers does), an index
   * file (`*.json`), or a single `.safetensors` file.
   */
  static async open(path: string): Promise<ShardedCheckpoint> {
    let stats;
    try {
      stats = await stat(path);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      throw new SafetensorsError('MISSING_SHARD', 'checkpoint does not exist', { file: path, cause: error });
    }
    if (stats.isDirectory()) {
      const single = join(path, SINGLE_FILE_NAME);
      if (await isFile(single)) return ShardedCheckpoint.#openSingle(single);
      const index = join(path, INDEX_FILE_NAME);
      if (await isFile(index)) return ShardedCheckpoint.#openIndex(index, path);
      throw new SafetensorsError('MISSING_SHARD', `directory holds neither ${SINGLE_FILE_NAME} nor ${INDEX_FILE_NAME}`, {
        file: path,
      });
    }
    return path.endsWith('.json') ? ShardedCheckpoint.#openIndex(path, dirname(path)) : ShardedCheckpoint.#openSingle(path);
  }

  static async #openSingle(path: string): Promise<ShardedCheckpoint> {
    const file = await SafetensorsFile.open(path);
    const tensorShards = new Map(file.tensorNames.map((name) => [name, file]));
    return new ShardedCheckpoint(path, undefined, new Map([[basename(path), file]]), tensorShards);
  }

  static async #openIndex(indexPath: string, directory: string): Promise<ShardedCheckpoint> {
    const index = parseIndex(await readFile(indexPath, 'utf8'), indexPath);
    const shards = new Map<string, SafetensorsFile>();
    try {
      for (const fileName of new Set(index.weightMap.values())) {
        const shardPath = join(directory, fileName);
        try {
          shards.set(fileName, await SafetensorsFile.open(shardPath));
        } catch (error) {
          if (!isNotFound(error)) throw error;
          throw new SafetensorsError(
            'MISSING_SHARD',
            `shard ${JSON.stringify(fileName)} listed in the index does not exist`,
            { file: indexPath, cause: error },
          );
        }
      }
      const tensorShards = new Map<string, SafetensorsFile>();
      for (const [name, fileName] of index.weightMap) {
        const shard = shards.get(fileName) as SafetensorsFile;
        if (!shard.has(name)) {
          throw new SafetensorsError(
            'MISSING_TENSOR',
            `index assigns it to ${JSON.stringify(fileName)}, which does not contain it`,
            { file: indexPath, tensor: name },
          );
        }
        tensorShards.set(name, shard);
      }
      return new ShardedCheckpoint(indexPath, index.metadata, shards, tensorShards);
    } catch (error) {
      await Promise.all([...shards.values()].map((shard) => shard.close()));
      throw error;
    }
  }

  has(name: string): boolean {
    return this.#tensorShards.has(name);
  }

  /** The shard holding `name`. */
  shardOf(name: string): SafetensorsFile {
    const shard = this.#tensorShards.get(name);
    if (!shard) {
      throw new SafetensorsError('MISSING_TENSOR', 'no such tensor in this checkpoint', { file: this.path, tensor: name });
    }
    return shard;
  }

  info(name: string): SafetensorsTensorInfo {
    return this.shardOf(name).info(name);
  }

  async readTensor(name: string): Promise<SafetensorsTensor> {
    return this.shardOf(name).readTensor(name);
  }

  async readTensorBytes(name: string): Promise<Uint8Array> {
    return this.shardOf(name).readTensorBytes(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((shard) => shard.close()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
