export { INDEX_FILE_NAME, SINGLE_FILE_NAME, shardFileName } from './checkpoint-file-names.js';
export { deserializeSafetensors, type DeserializedSafetensors } from './deserialize-safetensors.js';
export { SAFETENSORS_DTYPES, dtypeByteSize, isSafetensorsDtype, type SafetensorsDtype } from './dtype.js';
export {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './half-precision.js';
export { int64ToFloat64Array, int64ToInt32Array } from './int64.js';
export { openCheckpoint } from './open-checkpoint.js';
export { MAX_HEADER_BYTES, type SafetensorsMetadata, type SafetensorsTensorInfo } from './parse-header.js';
export type { SafetensorsTensors } from './plan-layout.js';
export { SafetensorsError, type SafetensorsErrorCode, type SafetensorsErrorDetails } from './safetensors-error.js';
export { SafetensorsFile } from './safetensors-file.js';
export { serializeSafetensors } from './serialize-safetensors.js';
export { ShardedCheckpoint } from './sharded-checkpoint.js';
export type { SafetensorsArrayTypes, SafetensorsTensor, SafetensorsTensorData } from './tensor-data.js';
export {
  writeShardedCheckpoint,
  type WriteShardedCheckpointOptions,
  type WrittenCheckpointFiles,
} from './write-sharded-checkpoint.js';
export { writeSafetensors } from './write-safetensors.js';
