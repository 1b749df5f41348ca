import * as tf from '@tensorflow/tfjs-core';
import { brandClass } from '@peft-ts/config/internal';
import { PeftError } from '../errors.js';
import { HOST_BACKENDS } from '../host-backends.js';
import { Parameter } from '../parameter.js';
import {
  bfloat16BitsToFloat32,
  float16BitsToFloat32,
  float32ToBfloat16Bits,
  float32ToFloat16Bits,
} from '../safetensors/half-precision.js';
import { elementwiseProgram, namedInputs, type WebgpuBackendLike } from '../webgpu/webgpu-program.js';

/** The two 16-bit float formats of transformers checkpoints, by their `torch_dtype` names. */
export type HalfDtype = 'float16' | 'bfloat16';

export function isHalfDtype(value: unknown): value is HalfDtype {
  return value === 'float16' || value === 'bfloat16';
}

/** Each half dtype's safetensors name. */
export const HALF_SAFETENSORS_DTYPES = { float16: 'F16', bfloat16: 'BF16' } as const satisfies Record<HalfDtype, string>;

/** A [rows, columns] matrix as 16-bit patterns, row-major. */
export type HalfMatrix = {
  readonly dtype: HalfDtype;
  readonly rows: number;
  readonly columns: number;
  readonly bits: Uint16Array;
};

/** Words per stored row: two halves a word, a row padded to a whole word so that rows can be gathered as they are. */
export const halfWordsPerRow = (columns: number) => Math.ceil(columns / 2);

/**
 * Half patterns two to a little-endian int32 word (element 2j of a row in the low 16 bits of word j): tfjs has no
 * 16-bit dtype, and int32 words keep 2 bytes a value on every backend. An odd row ends in a zero half.
 */
export function packHalfRows({ rows, columns, bits }: HalfMatrix): Int32Array {
  if (bits.length !== rows * columns) throw new PeftError(`half matrix [${rows}, ${columns}] needs ${rows * columns} values, got ${bits.length}`);
  const wordsPerRow = halfWordsPerRow(columns);
  const words = new Int32Array(rows * wordsPerRow);
  const halves = new Uint16Array(words.buffer);
  if (columns % 2 === 0) halves.set(bits);
  else for (let row = 0; row < rows; row++) halves.set(bits.subarray(row * columns, (row + 1) * columns), row * 2 * wordsPerRow);
  return words;
}

/** Inverse of `packHalfRows`. */
export function unpackHalfRows(words: Int32Array, rows: number, columns: number): Uint16Array {
  const halves = new Uint16Array(words.buffer, words.byteOffset, words.length * 2);
  if (columns % 2 === 0) return Uint16Array.from(halves.subarray(0, rows * columns));
  const bits = new Uint16Array(rows * columns);
  const stride = 2 * halfWordsPerRow(columns);
  for (let row = 0; row < rows; row++) bits.set(halves.subarray(row * stride, row * stride + columns), row * columns);
  return bits;
}

/** Exact widening of half patterns to float32 values. */
export function widenHalfBits(bits: Uint16Array, dtype: HalfDtype): Float32Array {
  return dtype === 'bfloat16' ? bfloat16BitsToFloat32(bits) : float16BitsToFloat32(bits);
}

/** float32 values to half patterns, rounding to nearest even (torch's `.to(float16 / bfloat16)`). */
export function narrowToHalfBits(values: Float32Array, dtype: HalfDtype): Uint16Array {
  return dtype === 'bfloat16' ? float32ToBfloat16Bits(values) : float32ToFloat16Bits(values);
}

/**
 * torch's rounding of an in-place `W += Δ` on a half weight: Δ rounded to the half dtype first (`.to(dtype)` of
 * the delta), then the sum rounded again. `merged` is the float32 `W + Δ` an adapter hands over, so Δ is recovered
 * as `fl32(merged − W)`, which is Δ up to the rounding of the float32 sum.
 */
export function mergeIntoHalfBits(base: Uint16Array, merged: Float32Array, dtype: HalfDtype): Uint16Array {
  const baseValues = widenHalfBits(base, dtype);
  const delta = new Float32Array(merged.length);
  for (let index = 0; index < merged.length; index++) delta[index] = merged[index] - baseValues[index];
  const roundedDelta = widenHalfBits(narrowToHalfBits(delta, dtype), dtype);
  for (let index = 0; index < merged.length; index++) delta[index] = baseValues[index] + roundedDelta[index];
  return narrowToHalfBits(delta, dtype);
}

export const WIDEN_HALF_KERNEL = 'PeftWidenHalf';

/**
 * WGSL: the half pattern of output element `index` (row `index / columns`, taken from `Ids` when rows are gathered),
 * and its exact f32 value; F16 subnormals scale an integer by 2^-24 (exact in f32).
 */
const widenFunctions = (gathered: boolean) => `
  fn sourceRow(row : u32) -> u32 {
    return ${gathered ? 'u32(Ids[row])' : 'row'};
  }
  fn halfAt(index : u32) -> u32 {
    let row = index / u32(uniforms.columns);
    let column = index - row * u32(uniforms.columns);
    let word = bitcast<u32>(Words[sourceRow(row) * u32(uniforms.wordsPerRow) + (column >> 1u)]);
    return (word >> ((column & 1u) * 16u)) & 65535u;
  }
  fn widenBfloat16(h : u32) -> f32 {
    return bitcast<f32>(h << 16u);
  }
  fn widenFloat16(h : u32) -> f32 {
    let sign = (h & 32768u) << 16u;
    let exponent = (h >> 10u) & 31u;
    let mantissa = h & 1023u;
    if (exponent == 31u) {
      return bitcast<f32>(sign | 2139095040u | (mantissa << 13u));
    }
    if (exponent != 0u) {
      return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
    }
    let magnitude = f32(mantissa) * 5.9604644775390625e-8;
    return select(magnitude, -magnitude, sign != 0u);
  }
`;

let kernelRegistered = false;

function ensureWidenKernel(): void {
  if (kernelRegistered) return;
  kernelRegistered = true;
  if (tf.getKernel(WIDEN_HALF_KERNEL, 'webgpu')) return;
  tf.registerKernel({
    kernelName: WIDEN_HALF_KERNEL,
    backendName: 'webgpu',
    kernelFunc: ({ inputs, backend, attrs }) => {
      const { rows, columns, dtype } = attrs as unknown as { rows: number; columns: number; dtype: HalfDtype };
      const gathered = inputs.ids !== undefined;
      const names = gathered ? ['words', 'ids'] : ['words'];
      const widen = dtype === 'bfloat16' ? 'widenBfloat16' : 'widenFloat16';
      const program = elementwiseProgram(
        `peftWidenHalf_${dtype}_${gathered ? 'rows' : 'all'}`,
        gathered ? ['Words', 'Ids'] : ['Words'],
        [rows, columns],
        'columns : i32, wordsPerRow : i32,',
        widenFunctions(gathered),
        `${widen}(halfAt(index))`,
      );
      return (backend as unknown as WebgpuBackendLike).runWebGPUProgram(program, namedInputs(inputs, names, WIDEN_HALF_KERNEL), 'float32', [
        { type: 'int32', data: [columns] },
        { type: 'int32', data: [halfWordsPerRow(columns)] },
      ]);
    },
  });
}

const halfTables: Partial<Record<HalfDtype, Float32Array>> = {};

/** Every 16-bit pattern widened, for the tf-op path (a gather is exact on every backend). */
function widenTable(dtype: HalfDtype): Float32Array {
  return (halfTables[dtype] ??= widenHalfBits(Uint16Array.from({ length: 0x10000 }, (_, bits) => bits), dtype));
}

/**
 * Stored words [rows, wordsPerRow] (int32, `packHalfRows`' layout) to float32 [rows, columns]. On cpu/wasm the words
 * are read and widened on the host; on webgpu a kernel splits and widens them with bit operations; elsewhere
 * (tensorflow) tf ops split them, where int32 `floorDiv`/`mod` are exact (not on wasm or webgpu, which go through
 * float32 and lose the low bits of words past 2^24), and gather each pattern's value from a table.
 */
export function widenHalfWords(words: tf.Tensor, columns: number, dtype: HalfDtype): tf.Tensor2D {
  const rows = words.shape[0]!;
  const backend = tf.getBackend();
  // The native backend holds host tensors too, so the host decode beats its (JavaScript) op kernels.
  if (HOST_BACKENDS.has(backend) || backend === 'native') {
    return tf.tensor2d(widenHalfBits(unpackHalfRows(words.dataSync() as Int32Array, rows, columns), dtype), [rows, columns]);
  }
  if (backend === 'webgpu') {
    ensureWidenKernel();
    return tf.engine().runKernel(WIDEN_HALF_KERNEL, { words }, { rows, columns, dtype }) as tf.Tensor2D;
  }
  return widenHalfWordsByOps(words, columns, dtype);
}

/**
 * The rows `ids` (int32 [count]) of stored words, widened: float32 [count, columns]. On webgpu the kernel reads the
 * rows itself, since tfjs' WebGPU gather moves int32 values through float32 and would round words past 2^24;
 * elsewhere an int32 gather is exact, and only the gathered words are widened.
 */
export function widenHalfRows(words: tf.Tensor, ids: tf.Tensor1D, columns: number, dtype: HalfDtype): tf.Tensor2D {
  if (tf.getBackend() === 'webgpu') {
    ensureWidenKernel();
    return tf.engine().runKernel(WIDEN_HALF_KERNEL, { words, ids }, { rows: ids.shape[0], columns, dtype }) as tf.Tensor2D;
  }
  return tf.tidy(() => widenHalfWords(tf.gather(words, ids), columns, dtype));
}

/** The tf-op path of `widenHalfWords`: exact where int32 `floorDiv` is (cpu, tensorflow). */
export function widenHalfWordsByOps(words: tf.Tensor, columns: number, dtype: HalfDtype): tf.Tensor2D {
  const rows = words.shape[0]!;
  return tf.tidy(() => {
    const flat = tf.reshape(words, [-1, 1]);
    const high = tf.floorDiv(flat, tf.scalar(0x10000, 'int32'));
    const low = tf.sub(flat, tf.mul(high, tf.scalar(0x10000, 'int32')));
    const halves = tf.concat([low, tf.add(high, tf.mul(tf.cast(tf.less(high, 0), 'int32'), tf.scalar(0x10000, 'int32')))], 1);
    const values = tf.reshape(tf.gather(tf.tensor1d(widenTable(dtype)), tf.reshape(halves, [-1])), [rows, -1]);
    return (values.shape[1] === columns ? values : tf.slice(values, [0, 0], [rows, columns])) as tf.Tensor2D;
  });
}

/** The words of `matrix` as a frozen parameter: the `weight` of the half layers, counted as its half values. */
export function halfWordsParameter(matrix: HalfMatrix): Parameter {
  const words = tf.tensor2d(packHalfRows(matrix), [matrix.rows, halfWordsPerRow(matrix.columns)], 'int32');
  const parameter = new Parameter(words, { requiresGrad: false, logicalSize: matrix.rows * matrix.columns });
  words.dispose();
  return parameter;
}

/** A half matrix already held as a words parameter (shared by tied embeddings and replicas). */
export type HalfWords = { readonly dtype: HalfDtype; readonly rows: number; readonly columns: number; readonly parameter: Parameter };

/**
 * Access to a half layer's `weight` words, 2 bytes a value. The parameter is looked up on each use, so a module
 * whose parameter slot is replaced (a deep copy, a tie) reads the new one. `widen` gives the float32 matrix for
 * one use; the caller frees it.
 */
export class HalfWeight {
  static {
    brandClass(this, '@peft-ts/core:HalfWeight');
  }

  constructor(
    readonly dtype: HalfDtype,
    readonly rows: number,
    readonly columns: number,
    private readonly parameter: () => Parameter,
  ) {}

  /** The float32 [rows, columns] matrix. */
  widen(): tf.Tensor2D {
    return widenHalfWords(this.parameter().value, this.columns, this.dtype);
  }

  /** The float32 rows `ids` (int32 [count]) as [count, columns]: only those rows are widened. */
  widenRows(ids: tf.Tensor1D): tf.Tensor2D {
    return widenHalfRows(this.parameter().value, ids, this.columns, this.dtype);
  }

  /** The float32 rows `start … start + count − 1`. */
  widenRowRange(start: number, count: number): tf.Tensor2D {
    return tf.tidy(() => this.widenRows(tf.range(start, start + count, 1, 'int32') as tf.Tensor1D));
  }

  /** The stored patterns, read back (asynchronously, so device backends can too). */
  async readMatrix(): Promise<HalfMatrix> {
    const words = (await this.parameter().value.data()) as Int32Array;
    return { dtype: this.dtype, rows: this.rows, columns: this.columns, bits: unpackHalfRows(words, this.rows, this.columns) };
  }

  /** Replaces the stored patterns (same shape and dtype). */
  setMatrix(matrix: HalfMatrix): void {
    if (matrix.rows !== this.rows || matrix.columns !== this.columns || matrix.dtype !== this.dtype) {
      throw new PeftError(`half weight: expected ${this.dtype} [${this.rows}, ${this.columns}], got ${matrix.dtype} [${matrix.rows}, ${matrix.columns}]`);
    }
    const words = tf.tensor2d(packHalfRows(matrix), [this.rows, halfWordsPerRow(this.columns)], 'int32');
    this.parameter().set(words, 'half weight');
    words.dispose();
  }

  /** `weight` (float32 [rows, columns]) merged as torch merges into a half weight (see `mergeIntoHalfBits`). */
  async merge(weight: tf.Tensor): Promise<void> {
    if (weight.rank !== 2 || weight.shape[0] !== this.rows || weight.shape[1] !== this.columns) {
      throw new PeftError(`half weight: setBaseWeight expects [${this.rows}, ${this.columns}], got [${weight.shape}]`);
    }
    const { bits } = await this.readMatrix();
    const merged = mergeIntoHalfBits(bits, Float32Array.from(await weight.data()), this.dtype);
    this.setMatrix({ dtype: this.dtype, rows: this.rows, columns: this.columns, bits: merged });
  }
}
