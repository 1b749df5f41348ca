import { createRequire } from 'node:module';
import type { DecoderAddonFunctions } from './decoder-kernels.js';
import type { FusedAddonFunctions } from './fused-kernels.js';
import type { LoraAddonFunctions } from './lora-kernels.js';

/** The compiled addon's functions (src/native/addon.cc); each writes into `out`, which the caller allocates. */
export type NativeAddon = {
  setThreads(count: number): void;
  threads(): number;
  batchMatMul(a: Float32Array, b: Float32Array, out: Float32Array, batchA: number, batchB: number, m: number, n: number, k: number, transposeA: boolean, transposeB: boolean): void;
  /** In place: `out += bias` (bias of length 1 or of the last axis), then activation (see ACTIVATION_CODES). */
  biasActivation(out: Float32Array, bias: Float32Array | null, activation: number, alpha: number): void;
  matMul4bit(x: Float32Array, out: Float32Array, rows: number, transposeWeight: boolean, ...weight: FourBitWeightArguments): void;
  matMulInt8(x: Float32Array, out: Float32Array, rows: number, transposeWeight: boolean, ...weight: Int8WeightArguments): void;
  decode4bit(out: Float32Array, ...weight: FourBitWeightArguments): void;
  decodeInt8(out: Float32Array, ...weight: Int8WeightArguments): void;
  /** Element-wise `op` (see BINARY_CODES) over the broadcast `shape`; a broadcast axis has stride 0. */
  binary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, shape: Int32Array, aStrides: Int32Array, bStrides: Int32Array): void;
  unary(op: number, x: Float32Array, out: Float32Array): void;
  softmax(x: Float32Array, out: Float32Array, rows: number, columns: number): void;
  /** out, row-major in `shape`, takes x[index · strides]; any 32-bit element type. */
  transpose(x: Float32Array | Int32Array, out: Float32Array | Int32Array, shape: Int32Array, strides: Int32Array): void;
  /** Sum/Mean/Max/Min (see REDUCE_CODES) over the reduced axes, both sets read through their strides. */
  reduce(op: number, x: Float32Array, out: Float32Array, keptShape: Int32Array, keptStrides: Int32Array, reducedShape: Int32Array, reducedStrides: Int32Array): void;
  /** x [batch, outer, dim, slice] gathered along dim by indices [batch, count] into out [batch, outer, count, slice]; any 32-bit element type. */
  gather(x: Float32Array | Int32Array, indices: Int32Array, out: Float32Array | Int32Array, batchSize: number, outerSize: number, dimSize: number, sliceSize: number): void;
  /** out [numSegments, columns]: the sums of the rows of x [ids, columns] by id; ids outside [0, numSegments) are dropped. */
  segmentSum(x: Float32Array, segmentIds: Int32Array, out: Float32Array, numSegments: number, columns: number): void;
  /** NHWC x, HWIO filter; geometry: see CONV_GEOMETRY_FIELDS (gather-conv-kernels.ts). */
  conv2d(x: Float32Array, filter: Float32Array, out: Float32Array, geometry: Int32Array): void;
  conv2dBackpropInput(dy: Float32Array, filter: Float32Array, dx: Float32Array, geometry: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, geometry: Int32Array): void;
} & FusedAddonFunctions & LoraAddonFunctions & DecoderAddonFunctions;

/** packed codes (bytes in int32 words), fp32 absmax per block, the 16 code values, [rows, columns], log2 blocksize. */
export type FourBitWeightArguments = [packed: Int32Array, absmax: Float32Array, code: Float32Array, rows: number, columns: number, blockShift: number];
/** offset-binary codes (bytes in int32 words), row scales (null: the integer codes), [rows, columns], the offset. */
export type Int8WeightArguments = [packed: Int32Array, rowScales: Float32Array | null, rows: number, columns: number, offset: number];

export type AddonStatus = { readonly addon: NativeAddon; readonly reason?: undefined } | { readonly addon?: undefined; readonly reason: string };

let status: AddonStatus | undefined;

/** Loads the addon once; when it was not built or OpenBLAS cannot be loaded, says why instead of throwing. */
export function loadAddon(): AddonStatus {
  if (status) return status;
  const require = createRequire(import.meta.url);
  // OpenBLAS reads this when it loads, with the addon. By default its idle threads busy-wait 2^28 cycles (~0.1 s)
  // after every product, taking a core from the kernels that run next on threads of their own (element-wise ops,
  // attention); 2^16 cycles still spans the back-to-back products of one kernel. A value the user set is kept.
  process.env.OPENBLAS_THREAD_TIMEOUT ??= '16';
  try {
    status = { addon: require('../build/Release/peft_native.node') as NativeAddon };
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    status = {
      reason: /libopenblas/.test(message)
        ? `OpenBLAS cannot be loaded (${message}): install it (apt-get install libopenblas-dev)`
        : `the addon is not built (${message}): install libopenblas-dev, a C++ compiler and python3, then run pnpm rebuild @peft-ts/backend-native`,
    };
  }
  return status;
}
