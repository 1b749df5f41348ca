import { SafetensorsError } from './safetensors-error.js';

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

function narrow<T extends Int32Array | Float64Array>(
  values: BigInt64Array | BigUint64Array,
  output: T,
  minimum: bigint,
  maximum: bigint,
  targetName: string,
  tensor: string | undefined,
  file: string | undefined,
): T {
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    if (value < minimum || value > maximum) {
      throw new SafetensorsError('VALUE_OUT_OF_RANGE', `element ${index} (${value}) does not fit ${targetName}`, { tensor, file });
    }
    output[index] = Number(value);
  }
  return output;
}

/** Narrows I64/U64 data (e.g. token ids, indices) to int32, throwing rather than wrapping on overflow. */
export function int64ToInt32Array(values: BigInt64Array | BigUint64Array, tensor?: string, file?: string): Int32Array {
  return narrow(values, new Int32Array(values.length), INT32_MIN, INT32_MAX, 'int32', tensor, file);
}

/** Converts I64/U64 data to numbers, throwing for values beyond ±(2^53 − 1) that a number cannot hold exactly. */
export function int64ToFloat64Array(values: BigInt64Array | BigUint64Array, tensor?: string, file?: string): Float64Array {
  return narrow(values, new Float64Array(values.length), SAFE_MIN, SAFE_MAX, 'a safe integer', tensor, file);
}
