/** File names used by transformers' `save_pretrained` for safetensors checkpoints. */
export const SINGLE_FILE_NAME = 'model.safetensors';
export const INDEX_FILE_NAME = 'model.safetensors.index.json';

/** Matches shard names such as `model-00001-of-00003.safetensors`. */
export const SHARD_FILE_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** The name of shard `index` (1-based) of `count`. */
export function shardFileName(index: number, count: number): string {
  return `model-${String(index).padStart(5, '0')}-of-${String(count).padStart(5, '0')}.safetensors`;
}
