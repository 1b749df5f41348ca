/**
 * The safetensors dtypes in the reference implementation's enum order, which is increasing alignment;
 * writers sort tensors by this order reversed.
 */
export const SAFETENSORS_DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;

export type SafetensorsDtype = (typeof SAFETENSORS_DTYPES)[number];

const BYTES_PER_ELEMENT: Readonly<Record<SafetensorsDtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === 'string' && Object.hasOwn(BYTES_PER_ELEMENT, value);
}

export function dtypeByteSize(dtype: SafetensorsDtype): number {
  return BYTES_PER_ELEMENT[dtype];
}

/** Position in the enum order: a larger rank means a larger alignment. */
export function dtypeRank(dtype: SafetensorsDtype): number {
  return SAFETENSORS_DTYPES.indexOf(dtype);
}
