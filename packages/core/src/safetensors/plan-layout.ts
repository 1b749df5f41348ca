import { dtypeRank } from './dtype.js';
import { LENGTH_PREFIX_BYTES, type SafetensorsMetadata } from './parse-header.js';
import { SafetensorsError } from './safetensors-error.js';
import { validateTensor, type SafetensorsTensor } from './tensor-data.js';

/** Tensors to write, by name. A record's or map's iteration order does not matter: writers sort. */
export type SafetensorsTensors = ReadonlyMap<string, SafetensorsTensor> | Readonly<Record<string, SafetensorsTensor>>;

export interface PlannedTensor {
  readonly name: string;
  readonly tensor: SafetensorsTensor;
  /** Offset of the tensor's bytes from the start of the data buffer. */
  readonly begin: number;
  readonly byteLength: number;
}

export interface SafetensorsLayout {
  /** The length prefix followed by the space-padded JSON header. */
  readonly header: Uint8Array;
  /** In file order. */
  readonly tensors: readonly PlannedTensor[];
  /** Size of the whole file. */
  readonly byteLength: number;
}

export function tensorEntries(tensors: SafetensorsTensors): [string, SafetensorsTensor][] {
  return tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
}

function validateMetadata(metadata: SafetensorsMetadata): void {
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) {
    throw new SafetensorsError('INVALID_METADATA', 'metadata must be an object of strings');
  }
  for (const [key, value] of Object.entries(metadata)) {
    if (typeof value !== 'string') {
      throw new SafetensorsError('INVALID_METADATA', `metadata value for ${JSON.stringify(key)} is not a string`);
    }
  }
}

/**
 * Lays tensors out as the reference writer does: descending dtype alignment, then name in byte order, packed with
 * no gaps; the header lists `__metadata__` first and then the tensors in that order, as compact JSON padded with
 * spaces to a multiple of 8 bytes. The JSON is assembled by hand because objects would move integer-like keys first.
 */
export function planSafetensorsLayout(tensors: SafetensorsTensors, metadata?: SafetensorsMetadata): SafetensorsLayout {
  const entries = tensorEntries(tensors).map(([name, tensor]) => ({
    name,
    tensor,
    byteLength: validateTensor(name, tensor),
    rank: dtypeRank(tensor.dtype),
    nameBytes: Buffer.from(name, 'utf8'),
  }));
  entries.sort((left, right) => right.rank - left.rank || Buffer.compare(left.nameBytes, right.nameBytes));

  const fields: string[] = [];
  if (metadata !== undefined) {
    validateMetadata(metadata);
    const pairs = Object.entries(metadata).map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`);
    fields.push(`"__metadata__":{${pairs.join(',')}}`);
  }
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const { name, tensor, byteLength } of entries) {
    const end = offset + byteLength;
    const shape = tensor.shape.join(',');
    fields.push(`${JSON.stringify(name)}:{"dtype":"${tensor.dtype}","shape":[${shape}],"data_offsets":[${offset},${end}]}`);
    planned.push({ name, tensor, begin: offset, byteLength });
    offset = end;
  }

  const json = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const paddedLength = Math.ceil(json.byteLength / 8) * 8;
  const header = new Uint8Array(LENGTH_PREFIX_BYTES + paddedLength).fill(0x20, LENGTH_PREFIX_BYTES + json.byteLength);
  new DataView(header.buffer).setBigUint64(0, BigInt(paddedLength), true);
  header.set(json, LENGTH_PREFIX_BYTES);
  return { header, tensors: planned, byteLength: header.byteLength + offset };
}
