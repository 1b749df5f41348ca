import { brandClass } from '@peft-ts/config/internal';
import { PeftError } from '../errors.js';

/**
 * Why a safetensors operation failed.
 *
 * - `TRUNCATED`: the file is shorter than its 8-byte length prefix, its header, or (found while reading) a tensor.
 * - `HEADER_TOO_LARGE`: the declared header length exceeds 100,000,000 bytes (the reference reader's limit).
 * - `INVALID_HEADER`: the header is not UTF-8, does not start with `{`, is not a JSON object, or an entry is malformed.
 * - `INVALID_JSON`: the header is not parseable JSON.
 * - `INVALID_METADATA`: `__metadata__` is not a flat string-to-string map.
 * - `UNKNOWN_DTYPE`: a tensor's dtype is not one of the safetensors dtypes.
 * - `INVALID_SHAPE`: a dimension is not a non-negative safe integer.
 * - `INVALID_OFFSETS`: `data_offsets` is malformed, reversed, overlapping or leaves a gap.
 * - `SIZE_MISMATCH`: a tensor's byte range does not equal element count times element size.
 * - `OUT_OF_BOUNDS`: a tensor's byte range ends past the end of the file.
 * - `TRAILING_DATA`: bytes follow the last tensor.
 * - `TENSOR_TOO_LARGE`: a tensor is too large to hold in a single typed array.
 * - `MISSING_TENSOR`: a requested tensor, or one an index names, is absent.
 * - `MISSING_SHARD`: a shard named by a checkpoint index, or the checkpoint itself, does not exist.
 * - `INVALID_INDEX`: a `model.safetensors.index.json` is malformed.
 * - `INVALID_TENSOR`: a tensor given to a writer is inconsistent (dtype, shape, data type or length, name).
 * - `VALUE_OUT_OF_RANGE`: a 64-bit integer does not fit the requested narrower type.
 * - `CLOSED`: the file was read after `close()`.
 */
export type SafetensorsErrorCode =
  | 'TRUNCATED'
  | 'HEADER_TOO_LARGE'
  | 'INVALID_HEADER'
  | 'INVALID_JSON'
  | 'INVALID_METADATA'
  | 'UNKNOWN_DTYPE'
  | 'INVALID_SHAPE'
  | 'INVALID_OFFSETS'
  | 'SIZE_MISMATCH'
  | 'OUT_OF_BOUNDS'
  | 'TRAILING_DATA'
  | 'TENSOR_TOO_LARGE'
  | 'MISSING_TENSOR'
  | 'MISSING_SHARD'
  | 'INVALID_INDEX'
  | 'INVALID_TENSOR'
  | 'VALUE_OUT_OF_RANGE'
  | 'CLOSED';

export interface SafetensorsErrorDetails {
  /** The file (or other source) the problem was found in. */
  readonly file?: string;
  /** The tensor the problem concerns. */
  readonly tensor?: string;
  readonly cause?: unknown;
}

/** The single error type thrown for malformed safetensors data and misuse of this module's API. */
export class SafetensorsError extends PeftError {
  static {
    brandClass(this, '@peft-ts/core:SafetensorsError');
  }

  readonly code: SafetensorsErrorCode;
  readonly file: string | undefined;
  readonly tensor: string | undefined;

  constructor(code: SafetensorsErrorCode, problem: string, details: SafetensorsErrorDetails = {}) {
    const location = [details.file, details.tensor === undefined ? undefined : `tensor ${JSON.stringify(details.tensor)}`]
      .filter((part) => part !== undefined)
      .join(': ');
    super(`${location ? `${location}: ` : ''}${problem} [${code}]`);
    if (details.cause !== undefined) this.cause = details.cause;
    this.code = code;
    this.file = details.file;
    this.tensor = details.tensor;
  }
}
