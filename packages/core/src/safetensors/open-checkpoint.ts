import { ShardedCheckpoint } from './sharded-checkpoint.js';

/** Opens a checkpoint directory, index or file; see {@link ShardedCheckpoint.open}. */
export function openCheckpoint(path: string): Promise<ShardedCheckpoint> {
  return ShardedCheckpoint.open(path);
}
