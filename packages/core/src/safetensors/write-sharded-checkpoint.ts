import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { formatPythonJson } from '@peft-ts/config/internal';
import { INDEX_FILE_NAME, SHARD_FILE_PATTERN, SINGLE_FILE_NAME, shardFileName } from './checkpoint-file-names.js';
import type { SafetensorsMetadata } from './parse-header.js';
import { tensorEntries, type SafetensorsTensors } from './plan-layout.js';
import { validateTensor, type SafetensorsTensor } from './tensor-data.js';
import { writeFileAtomically } from './write-file-atomically.js';
import { writeSafetensors } from './write-safetensors.js';

export interface WriteShardedCheckpointOptions {
  /** Most tensor bytes per shard; a larger tensor gets a shard of its own. Default 5 GB, as in transformers. */
  readonly maxShardBytes?: number;
  /** `__metadata__` of every shard. Default `{ format: 'pt' }`, as transformers writes. */
  readonly metadata?: SafetensorsMetadata;
}

/** The file names written, relative to the directory: the shards in order, then the index if there is one. */
export type WrittenCheckpointFiles = readonly string[];

/**
 * Writes a checkpoint as transformers' `save_pretrained` does: tensors are packed greedily, in the given order,
 * into shards of at most `maxShardBytes`; one shard is written as `model.safetensors`, several as
 * `model-0000i-of-0000K.safetensors` plus `model.safetensors.index.json` (indent 2, sorted keys, trailing newline).
 * Every file is written atomically and the index last; files left over from an earlier save that the new
 * checkpoint does not use are removed afterwards, so a stale `model.safetensors` cannot shadow the new index.
 */
export async function writeShardedCheckpoint(
  directory: string,
  tensors: SafetensorsTensors,
  options: WriteShardedCheckpointOptions = {},
): Promise<WrittenCheckpointFiles> {
  const { maxShardBytes = 5_000_000_000, metadata = { format: 'pt' } } = options;
  if (!(maxShardBytes > 0)) {
    throw new RangeError(`maxShardBytes must be positive, got ${maxShardBytes}`);
  }

  // Validate everything before writing anything, so bad input cannot leave a partial checkpoint behind.
  const shards: Map<string, SafetensorsTensor>[] = [new Map()];
  let shardBytes = 0;
  let totalBytes = 0;
  for (const [name, tensor] of tensorEntries(tensors)) {
    const byteLength = validateTensor(name, tensor);
    let shard = shards[shards.length - 1];
    if (shardBytes + byteLength > maxShardBytes && shard.size > 0) {
      shard = new Map();
      shards.push(shard);
      shardBytes = 0;
    }
    shard.set(name, tensor);
    shardBytes += byteLength;
    totalBytes += byteLength;
  }

  await mkdir(directory, { recursive: true });
  const written: string[] = [];
  if (shards.length === 1) {
    await writeSafetensors(join(directory, SINGLE_FILE_NAME), shards[0], metadata);
    written.push(SINGLE_FILE_NAME);
  } else {
    const weightMap: Record<string, string> = {};
    for (const [index, shard] of shards.entries()) {
      const fileName = shardFileName(index + 1, shards.length);
      await writeSafetensors(join(directory, fileName), shard, metadata);
      for (const name of shard.keys()) weightMap[name] = fileName;
      written.push(fileName);
    }
    const index = formatPythonJson({ metadata: { total_size: totalBytes }, weight_map: weightMap });
    await writeFileAtomically(join(directory, INDEX_FILE_NAME), (handle) => handle.writeFile(`${index}\n`, 'utf8'));
    written.push(INDEX_FILE_NAME);
  }

  const stale = (await readdir(directory)).filter(
    (fileName) =>
      !written.includes(fileName) &&
      (fileName === SINGLE_FILE_NAME || fileName === INDEX_FILE_NAME || SHARD_FILE_PATTERN.test(fileName)),
  );
  await Promise.all(stale.map((fileName) => rm(join(directory, fileName), { force: true })));
  return written;
}
