import { dtypeByteSize, isSafetensorsDtype, type SafetensorsDtype } from './dtype.js';
import { SafetensorsError } from './safetensors-error.js';
import { elementCount } from './tensor-data.js';

/** The reference reader refuses larger headers; so do we, before allocating anything for one. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes taken by the little-endian u64 header length that starts every file. */
export const LENGTH_PREFIX_BYTES = 8;

export type SafetensorsMetadata = Readonly<Record<string, string>>;

export interface SafetensorsTensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** `[begin, end)` relative to the start of the data buffer, as written in the header. */
  readonly dataOffsets: readonly [number, number];
  /** Absolute position of the tensor's first byte in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly metadata: SafetensorsMetadata | undefined;
  /** In data-offset order, which is also the order of the bytes in the file. */
  readonly tensors: readonly SafetensorsTensorInfo[];
}

/** Reads the header length from the 8-byte prefix and checks it fits both the limit and the file. */
export function parseHeaderLength(prefix: Uint8Array, fileByteLength: number, source: string): number {
  if (fileByteLength < LENGTH_PREFIX_BYTES || prefix.byteLength < LENGTH_PREFIX_BYTES) {
    throw new SafetensorsError('TRUNCATED', `file is ${fileByteLength} bytes, shorter than the 8-byte header length`, {
      file: source,
    });
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, LENGTH_PREFIX_BYTES).getBigUint64(0, true);
  if (length > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError('HEADER_TOO_LARGE', `header length ${length} exceeds the ${MAX_HEADER_BYTES}-byte limit`, {
      file: source,
    });
  }
  const headerLength = Number(length);
  if (LENGTH_PREFIX_BYTES + headerLength > fileByteLength) {
    throw new SafetensorsError(
      'TRUNCATED',
      `header length ${headerLength} runs past the end of the ${fileByteLength}-byte file`,
      { file: source },
    );
  }
  return headerLength;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseMetadata(value: unknown, source: string): SafetensorsMetadata | undefined {
  // The reference implementation models metadata as an optional map, so an explicit null means "none".
  if (value === null) return undefined;
  if (!isPlainObject(value)) {
    throw new SafetensorsError('INVALID_METADATA', '__metadata__ must be an object of strings', { file: source });
  }
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      throw new SafetensorsError('INVALID_METADATA', `__metadata__ value for ${JSON.stringify(key)} is not a string`, {
        file: source,
      });
    }
  }
  // fromEntries defines own properties, so a "__proto__" key stays data instead of changing the prototype.
  return Object.freeze(Object.fromEntries(Object.entries(value))) as SafetensorsMetadata;
}

function parseTensorEntry(
  name: string,
  value: unknown,
  dataStart: number,
  dataByteLength: number,
  source: string,
): SafetensorsTensorInfo {
  const details = { file: source, tensor: name };
  if (!isPlainObject(value)) {
    throw new SafetensorsError('INVALID_HEADER', 'entry must be an object {dtype, shape, data_offsets}', details);
  }
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw new SafetensorsError('INVALID_HEADER', 'dtype must be a string', details);
  if (!isSafetensorsDtype(dtype)) {
    throw new SafetensorsError('UNKNOWN_DTYPE', `unknown dtype ${JSON.stringify(dtype)}`, details);
  }
  const count = elementCount(shape);
  if (count === undefined) {
    throw new SafetensorsError('INVALID_SHAPE', 'shape must be an array of non-negative integers', details);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((offset) => Number.isSafeInteger(offset) && offset >= 0)
  ) {
    throw new SafetensorsError('INVALID_OFFSETS', 'data_offsets must be two non-negative integers', details);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new SafetensorsError('INVALID_OFFSETS', `data_offsets [${begin}, ${end}] are reversed`, details);
  if (end > dataByteLength) {
    throw new SafetensorsError(
      'OUT_OF_BOUNDS',
      `data_offsets [${begin}, ${end}] end past the ${dataByteLength}-byte data buffer`,
      details,
    );
  }
  const expectedBytes = count * BigInt(dtypeByteSize(dtype));
  if (expectedBytes !== BigInt(end - begin)) {
    throw new SafetensorsError(
      'SIZE_MISMATCH',
      `${dtype} shape [${(shape as number[]).join(', ')}] needs ${expectedBytes} bytes but data_offsets span ${end - begin}`,
      details,
    );
  }
  return Object.freeze({
    name,
    dtype,
    shape: Object.freeze([...(shape as number[])]),
    dataOffsets: Object.freeze([begin, end] as [number, number]),
    byteOffset: dataStart + begin,
    byteLength: end - begin,
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Parses and fully validates a header: every entry well-formed, sizes consistent with dtype and shape, and the
 * tensors tiling the data buffer exactly, with no gap, overlap or trailing byte.
 *
 * @param headerBytes the N header bytes that follow the length prefix
 * @param fileByteLength the size of the whole file, prefix included
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileByteLength: number, source: string): SafetensorsHeader {
  const dataStart = LENGTH_PREFIX_BYTES + headerBytes.byteLength;
  const dataByteLength = fileByteLength - dataStart;
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch (error) {
    throw new SafetensorsError('INVALID_HEADER', 'header is not valid UTF-8', { file: source, cause: error });
  }
  if (!text.startsWith('{')) {
    throw new SafetensorsError('INVALID_HEADER', 'header does not start with "{"', { file: source });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError('INVALID_JSON', `header is not valid JSON (${(error as Error).message})`, {
      file: source,
      cause: error,
    });
  }
  if (!isPlainObject(parsed)) throw new SafetensorsError('INVALID_HEADER', 'header is not a JSON object', { file: source });

  let metadata: SafetensorsMetadata | undefined;
  const tensors: SafetensorsTensorInfo[] = [];
  for (const [name, value] of Object.entries(parsed)) {
    if (name === '__metadata__') metadata = parseMetadata(value, source);
    else tensors.push(parseTensorEntry(name, value, dataStart, dataByteLength, source));
  }

  tensors.sort((left, right) => left.dataOffsets[0] - right.dataOffsets[0] || left.dataOffsets[1] - right.dataOffsets[1]);
  let expectedBegin = 0;
  for (const tensor of tensors) {
    const [begin, end] = tensor.dataOffsets;
    if (begin !== expectedBegin) {
      const problem = begin < expectedBegin ? 'overlaps the previous tensor' : 'leaves a gap after the previous tensor';
      throw new SafetensorsError(
        'INVALID_OFFSETS',
        `data_offsets [${begin}, ${end}] ${problem} (which ends at ${expectedBegin})`,
        { file: source, tensor: tensor.name },
      );
    }
    expectedBegin = end;
  }
  if (expectedBegin !== dataByteLength) {
    throw new SafetensorsError(
      'TRAILING_DATA',
      `tensors cover ${expectedBegin} bytes but the data buffer holds ${dataByteLength}`,
      { file: source },
    );
  }
  return Object.freeze({ metadata, tensors: Object.freeze(tensors) });
}
