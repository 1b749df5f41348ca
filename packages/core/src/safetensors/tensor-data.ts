import { dtypeByteSize, isSafetensorsDtype, type SafetensorsDtype } from './dtype.js';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from './half-precision.js';
import { SafetensorsError } from './safetensors-error.js';

// Typed arrays use the host byte order while safetensors is little-endian; every view below relies on them agreeing.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) {
  throw new Error('@peft-ts/core safetensors requires a little-endian host');
}

/**
 * The typed array holding each dtype's values. F16 and BF16 are widened to float32 (exactly); the two F8 formats
 * are kept as their raw bit patterns, since JavaScript has no arithmetic for them.
 */
export interface SafetensorsArrayTypes {
  BOOL: Uint8Array;
  U8: Uint8Array;
  I8: Int8Array;
  F8_E5M2: Uint8Array;
  F8_E4M3: Uint8Array;
  I16: Int16Array;
  U16: Uint16Array;
  F16: Float32Array;
  BF16: Float32Array;
  I32: Int32Array;
  U32: Uint32Array;
  F32: Float32Array;
  F64: Float64Array;
  I64: BigInt64Array;
  U64: BigUint64Array;
}

export type SafetensorsTensorData = SafetensorsArrayTypes[SafetensorsDtype];

/** A tensor in C order; narrowing on `dtype` narrows `data` to the matching typed array. */
export type SafetensorsTensor<Dtype extends SafetensorsDtype = SafetensorsDtype> = {
  [Key in Dtype]: { readonly dtype: Key; readonly shape: readonly number[]; readonly data: SafetensorsArrayTypes[Key] };
}[Dtype];

const ARRAY_TAGS: Readonly<Record<SafetensorsDtype, string>> = {
  BOOL: 'Uint8Array',
  U8: 'Uint8Array',
  I8: 'Int8Array',
  F8_E5M2: 'Uint8Array',
  F8_E4M3: 'Uint8Array',
  I16: 'Int16Array',
  U16: 'Uint16Array',
  F16: 'Float32Array',
  BF16: 'Float32Array',
  I32: 'Int32Array',
  U32: 'Uint32Array',
  F32: 'Float32Array',
  F64: 'Float64Array',
  I64: 'BigInt64Array',
  U64: 'BigUint64Array',
};

/** Element count of `shape`, or undefined when a dimension is not a non-negative safe integer. */
export function elementCount(shape: unknown): bigint | undefined {
  if (!Array.isArray(shape)) return undefined;
  let count = 1n;
  for (const dimension of shape) {
    if (!Number.isSafeInteger(dimension) || dimension < 0) return undefined;
    count *= BigInt(dimension);
  }
  return count;
}

/**
 * Interprets a tensor's little-endian bytes. `bytes` must be owned by the caller: for most dtypes the result is a
 * view on the same memory, which avoids a copy of possibly large tensors.
 */
export function decodeTensorData(dtype: SafetensorsDtype, bytes: Uint8Array): SafetensorsTensorData {
  const size = dtypeByteSize(dtype);
  // Typed array views need aligned offsets; copying only happens for callers that pass unaligned slices.
  const aligned = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset } = aligned;
  const length = aligned.byteLength / size;
  switch (dtype) {
    case 'BOOL':
    case 'U8':
    case 'F8_E5M2':
    case 'F8_E4M3':
      return aligned;
    case 'I8':
      return new Int8Array(buffer, byteOffset, length);
    case 'I16':
      return new Int16Array(buffer, byteOffset, length);
    case 'U16':
      return new Uint16Array(buffer, byteOffset, length);
    case 'F16':
      return float16BitsToFloat32(new Uint16Array(buffer, byteOffset, length));
    case 'BF16':
      return bfloat16BitsToFloat32(new Uint16Array(buffer, byteOffset, length));
    case 'I32':
      return new Int32Array(buffer, byteOffset, length);
    case 'U32':
      return new Uint32Array(buffer, byteOffset, length);
    case 'F32':
      return new Float32Array(buffer, byteOffset, length);
    case 'F64':
      return new Float64Array(buffer, byteOffset, length);
    case 'I64':
      return new BigInt64Array(buffer, byteOffset, length);
    case 'U64':
      return new BigUint64Array(buffer, byteOffset, length);
  }
}

/**
 * Checks a tensor handed to a writer and returns its size in bytes once stored. The typed array is checked by its
 * tag rather than `instanceof`, so arrays from another realm (a worker, a VM context) are accepted too.
 */
export function validateTensor(name: unknown, tensor: SafetensorsTensor): number {
  const fail: (problem: string) => never = (problem) => {
    throw new SafetensorsError('INVALID_TENSOR', problem, { tensor: String(name) });
  };
  if (typeof name !== 'string') fail('tensor names must be strings');
  if (name === '__metadata__') fail('"__metadata__" is reserved for the metadata map');
  if (typeof tensor !== 'object' || tensor === null) fail('expected an object {dtype, shape, data}');
  if (!isSafetensorsDtype(tensor.dtype)) fail(`unknown dtype ${JSON.stringify(tensor.dtype)}`);
  const count = elementCount(tensor.shape);
  if (count === undefined) fail('shape must be an array of non-negative integers');
  const expectedTag = ARRAY_TAGS[tensor.dtype];
  const data: unknown = tensor.data;
  const tag = ArrayBuffer.isView(data) ? (data as { [Symbol.toStringTag]?: string })[Symbol.toStringTag] : undefined;
  if (tag !== expectedTag) fail(`dtype ${tensor.dtype} needs a ${expectedTag}, got ${tag ?? typeof data}`);
  if (BigInt(tensor.data.length) !== count) {
    fail(`shape [${tensor.shape.join(', ')}] has ${count} elements but data has ${tensor.data.length}`);
  }
  return tensor.data.length * dtypeByteSize(tensor.dtype);
}

/** The little-endian bytes of a validated tensor: a view on its data where no conversion is needed. */
export function encodeTensorData(tensor: SafetensorsTensor): Uint8Array {
  switch (tensor.dtype) {
    case 'F16':
      return toBytes(float32ToFloat16Bits(tensor.data));
    case 'BF16':
      return toBytes(float32ToBfloat16Bits(tensor.data));
    default:
      return toBytes(tensor.data);
  }
}

function toBytes(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
