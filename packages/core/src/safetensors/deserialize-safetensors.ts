import { LENGTH_PREFIX_BYTES, parseHeaderLength, parseSafetensorsHeader, type SafetensorsMetadata } from './parse-header.js';
import { decodeTensorData, type SafetensorsTensor } from './tensor-data.js';

export interface DeserializedSafetensors {
  readonly metadata: SafetensorsMetadata | undefined;
  /** In file order. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensor>;
}

/**
 * Parses a whole safetensors file held in memory (for example fetched over the network). Tensor data is copied
 * out of `bytes`, so the result does not keep the input alive.
 */
export function deserializeSafetensors(bytes: Uint8Array, source = '<buffer>'): DeserializedSafetensors {
  const headerLength = parseHeaderLength(bytes, bytes.byteLength, source);
  const header = parseSafetensorsHeader(
    bytes.subarray(LENGTH_PREFIX_BYTES, LENGTH_PREFIX_BYTES + headerLength),
    bytes.byteLength,
    source,
  );
  const tensors = new Map<string, SafetensorsTensor>();
  for (const info of header.tensors) {
    const data = decodeTensorData(info.dtype, bytes.slice(info.byteOffset, info.byteOffset + info.byteLength));
    tensors.set(info.name, { dtype: info.dtype, shape: info.shape, data } as SafetensorsTensor);
  }
  return { metadata: header.metadata, tensors };
}
