import { assertBlocksize } from './assert-blocksize.js';
import { QuantError } from './errors.js';
import type { FloatDtype, QuantType } from './quant-state.js';

/** The non-tensor fields of a serialized bnb 4-bit quant state. */
export interface QuantStateJson {
  readonly quantType: QuantType;
  readonly blocksize: number;
  readonly dtype: FloatDtype;
  readonly shape: number[];
  /** Present when the absmax is double-quantized. */
  readonly nested?: { readonly blocksize: number; readonly dtype: FloatDtype; readonly offset: number };
}

const QUANT_TYPES: readonly string[] = ['nf4', 'fp4'];
const DTYPES: readonly string[] = ['float32', 'float16', 'bfloat16'];
const NESTED_KEYS = ['nested_blocksize', 'nested_dtype', 'nested_offset'];

function fail(detail: string): never {
  throw new QuantError(`invalid bitsandbytes quant state: ${detail}`);
}

function dtypeOf(value: unknown, key: string): FloatDtype {
  if (typeof value !== 'string' || !DTYPES.includes(value)) fail(`${key} must be one of ${DTYPES.join(', ')}`);
  return value as FloatDtype;
}

function blocksizeOf(value: unknown, key: string): number {
  if (typeof value !== 'number') fail(`${key} must be a number`);
  assertBlocksize(value);
  return value;
}

/** Parses the bytes `serializeQuantState` (and bnb's `pack_dict_to_tensor`) write, validating every field. */
export function parseQuantState(bytes: Uint8Array): QuantStateJson {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail(`not UTF-8 JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) fail('not a JSON object');
  const fields = parsed as Record<string, unknown>;
  const { quant_type: quantType, shape } = fields;
  if (typeof quantType !== 'string' || !QUANT_TYPES.includes(quantType)) fail(`quant_type must be nf4 or fp4`);
  if (!Array.isArray(shape) || !shape.every((size) => Number.isSafeInteger(size) && size >= 0)) {
    fail('shape must be a list of non-negative integers');
  }
  const state = {
    quantType: quantType as QuantType,
    blocksize: blocksizeOf(fields.blocksize, 'blocksize'),
    dtype: dtypeOf(fields.dtype, 'dtype'),
    shape: shape as number[],
  };
  const nestedCount = NESTED_KEYS.filter((key) => key in fields).length;
  if (nestedCount === 0) return state;
  if (nestedCount < NESTED_KEYS.length) fail(`needs all of ${NESTED_KEYS.join(', ')} or none`);
  if (typeof fields.nested_offset !== 'number') fail('nested_offset must be a number');
  return {
    ...state,
    nested: {
      blocksize: blocksizeOf(fields.nested_blocksize, 'nested_blocksize'),
      dtype: dtypeOf(fields.nested_dtype, 'nested_dtype'),
      offset: fields.nested_offset,
    },
  };
}
