import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { availableParallelism } from 'node:os';
import { PeftError } from '@peft-ts/config';
import { brandClass } from '@peft-ts/config/internal';
import { loadAddon, type NativeAddon } from './addon.js';
import { decoderKernels } from './decoder-kernels.js';
import { fusedKernels } from './fused-kernels.js';
import { nativeKernels } from './kernels.js';
import { gatherConvKernels } from './gather-conv-kernels.js';
import { loraKernels } from './lora-kernels.js';

export const NATIVE_BACKEND_NAME = 'native';

export class NativeBackendError extends PeftError {
  static {
    brandClass(this, '@peft-ts/backend-native:NativeBackendError');
  }
}

/** The 4-bit weight of a quantized product: packed codes (int32 words), fp32 absmax per block, the 16 code values. */
export type FourBitOperands = { readonly packed: tf.TensorInfo; readonly absmax: tf.TensorInfo; readonly code: tf.TensorInfo };
export type FourBitLayout = { readonly weightRows: number; readonly weightColumns: number; readonly blockShift: number };
/** offset-binary int8 codes (int32 words) of a [weightRows, weightColumns] weight, with optional fp32 row scales. */
export type Int8Layout = { readonly weightRows: number; readonly weightColumns: number; readonly offset: number };

/**
 * tfjs-backend-cpu's backend, whose tensors are plain typed arrays in the JS heap (no 4 GiB cap, read back without a
 * copy), with the addon at hand for the kernels registered over cpu's. The methods below are the quantized products
 * other packages' kernels call (as webgpu kernels call `runWebGPUProgram`); each returns a new float32 tensor.
 */
export class MathBackendNative extends MathBackendCPU {
  private readonly buffers = new BufferPool();

  constructor(readonly addon: NativeAddon) {
    super();
    // cpu's first write prints advice to install tfjs-node, which does not apply to this backend.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** A float32 tensor's values, in place (a copy only for data stored in another array type). */
  floats(tensor: tf.TensorInfo): Float32Array {
    const values = this.data.get(tensor.dataId).values;
    if (values instanceof Float32Array) return values;
    if (tensor.dtype === 'string' || tensor.dtype === 'complex64') throw new NativeBackendError(`native: a ${tensor.dtype} tensor has no float32 values`);
    return Float32Array.from(values as ArrayLike<number>);
  }

  /** An int32 tensor's values, in place. */
  words(tensor: tf.TensorInfo): Int32Array {
    const values = this.data.get(tensor.dataId).values;
    if (values instanceof Int32Array) return values;
    return Int32Array.from(values as ArrayLike<number>);
  }

  /**
   * A new float32 tensor of `shape`, filled by `write`, which must set every element: the array may be a recycled
   * one holding a disposed tensor's values.
   */
  output(shape: number[], write: (out: Float32Array) => void): tf.TensorInfo {
    return this.outputs([shape], ([out]) => write(out))[0];
  }

  /** New float32 tensors of `shapes`, filled by one `write`, under the contract of `output`. */
  outputs(shapes: number[][], write: (outs: Float32Array[]) => void): tf.TensorInfo[] {
    const outs = shapes.map((shape) => this.buffers.take(tf.util.sizeFromShape(shape)));
    write(outs);
    return outs.map((out, index) => {
      const info = this.makeTensorInfo(shapes[index], 'float32', out);
      this.buffers.adopt(out);
      return info;
    });
  }

  override write(values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType): tf.DataId {
    this.buffers.expose(values);
    return super.write(values, shape, dtype);
  }

  override move(dataId: tf.DataId, values: tf.backend_util.BackendValues, shape: number[], dtype: tf.DataType, refCount: number): void {
    this.buffers.expose(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: tf.DataId): tf.backend_util.BackendValues {
    const values = super.readSync(dataId);
    this.buffers.expose(values);
    return values;
  }

  override disposeData(dataId: tf.DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const released = super.disposeData(dataId, force);
    if (values && !this.data.has(dataId)) this.buffers.recycle(values);
    return released;
  }

  override dispose(): void {
    this.buffers.clear();
    super.dispose();
  }

  /** `x·Wᵀ` (transposeWeight; x [rows, weightColumns]) or `x·W` (x [rows, weightRows]) for a 4-bit W, one tile at a time. */
  matMul4bit(x: tf.TensorInfo, weight: FourBitOperands, layout: FourBitLayout, transposeWeight: boolean): tf.TensorInfo {
    const rows = x.shape[0];
    const columns = transposeWeight ? layout.weightRows : layout.weightColumns;
    return this.output([rows, columns], (out) =>
      this.addon.matMul4bit(this.floats(x), out, rows, transposeWeight, ...this.fourBitArguments(weight, layout)),
    );
  }

  /** The float32 [weightRows, weightColumns] 4-bit weight. */
  dequantize4bit(weight: FourBitOperands, layout: FourBitLayout): tf.TensorInfo {
    return this.output([layout.weightRows, layout.weightColumns], (out) => this.addon.decode4bit(out, ...this.fourBitArguments(weight, layout)));
  }

  /**
   * `x·Wᵀ` (transposeWeight) or `x·W` for int8 codes W, scaled per row as bnb dequantizes (`fp32(fp32(code·scale)·fp32(1/127))`)
   * when rowScales is given, the integer codes otherwise (then exact: sums run over 1024 columns at a time).
   */
  matMulInt8(x: tf.TensorInfo, packed: tf.TensorInfo, rowScales: tf.TensorInfo | null, layout: Int8Layout, transposeWeight: boolean): tf.TensorInfo {
    const rows = x.shape[0];
    const columns = transposeWeight ? layout.weightRows : layout.weightColumns;
    return this.output([rows, columns], (out) =>
      this.addon.matMulInt8(this.floats(x), out, rows, transposeWeight, this.words(packed), rowScales && this.floats(rowScales), layout.weightRows, layout.weightColumns, layout.offset),
    );
  }

  /** The int8 codes as float32 [weightRows, weightColumns] (exact small integers). */
  int8Codes(packed: tf.TensorInfo, layout: Int8Layout): tf.TensorInfo {
    return this.output([layout.weightRows, layout.weightColumns], (out) =>
      this.addon.decodeInt8(out, this.words(packed), null, layout.weightRows, layout.weightColumns, layout.offset),
    );
  }

  private fourBitArguments(weight: FourBitOperands, layout: FourBitLayout) {
    return [this.words(weight.packed), this.floats(weight.absmax), this.floats(weight.code), layout.weightRows, layout.weightColumns, layout.blockShift] as const;
  }
}

/**
 * Float32 arrays of disposed native-kernel outputs, reused for later outputs of the same length. A training step
 * allocates hundreds of MB of outputs; fresh ones cost V8 a garbage collection every few MB ("external memory
 * pressure") plus zero-filling and page faults, a quarter of a LoRA step's time. An array is recycled only while
 * nothing else can see it: once its values were read out (dataSync and the like) or another tensor was made over
 * its buffer (cpu kernels' zero-copy slices), it stays the garbage collector's.
 */
class BufferPool {
  /** Below this many elements V8 allocates cheaply and a pool would only hold memory. */
  private static readonly minimumLength = 4096;
  /** The most freed memory kept for reuse; beyond it arrays go to the garbage collector. */
  private static readonly capacityBytes = 2 ** 30;
  private readonly free = new Map<number, Float32Array[]>();
  private readonly recyclable = new WeakSet<ArrayBufferLike>();
  private pooledBytes = 0;

  take(length: number): Float32Array {
    const reused = this.free.get(length)?.pop();
    if (!reused) return new Float32Array(length);
    this.pooledBytes -= reused.byteLength;
    return reused;
  }

  /** `array` belongs to exactly one tensor now: it may be recycled once that one is disposed. */
  adopt(array: Float32Array): void {
    if (array.length >= BufferPool.minimumLength) this.recyclable.add(array.buffer);
  }

  /** Someone else may hold `values` (or a view of its buffer): never recycle it. */
  expose(values: unknown): void {
    if (ArrayBuffer.isView(values)) this.recyclable.delete(values.buffer);
  }

  recycle(values: unknown): void {
    if (!(values instanceof Float32Array) || !this.recyclable.has(values.buffer)) return;
    this.recyclable.delete(values.buffer);
    if (this.pooledBytes + values.byteLength > BufferPool.capacityBytes) return;
    const list = this.free.get(values.length);
    if (list) list.push(values);
    else this.free.set(values.length, [values]);
    this.pooledBytes += values.byteLength;
  }

  clear(): void {
    this.free.clear();
    this.pooledBytes = 0;
  }
}

export type NativeBackendOptions = {
  /** OpenBLAS threads; default `PEFT_TS_THREADS`, else every core. */
  readonly threads?: number;
};

/** The thread count asked for: the option, else PEFT_TS_THREADS, else every core. */
function threadCount(requested: number | undefined): number {
  const fromEnvironment = process.env.PEFT_TS_THREADS;
  const [value, source] = requested !== undefined ? [requested, 'the threads option'] : fromEnvironment ? [Number(fromEnvironment), 'PEFT_TS_THREADS'] : [availableParallelism(), 'the core count'];
  if (!Number.isInteger(value) || value < 1) {
    throw new NativeBackendError(`native backend: ${source} must be a positive integer, got '${requested ?? fromEnvironment}'`);
  }
  return value;
}

/** Whether the addon loads here; `reason` says what to install when it does not. */
export function nativeBackendStatus(): { readonly available: boolean; readonly reason?: string } {
  const { addon, reason } = loadAddon();
  return addon ? { available: true } : { available: false, reason };
}

let kernelsRegistered = false;

/**
 * Registers the `native` tfjs backend: every kernel tfjs-backend-cpu registers (the same functions, which run on
 * this backend's cpu-format tensors), with native ones in their place where the time goes. Sets the OpenBLAS
 * thread count; calling it again only changes that. Throws a NativeBackendError when the addon cannot be loaded.
 */
export function registerNativeBackend(options: NativeBackendOptions = {}): { readonly threads: number } {
  const { addon, reason } = loadAddon();
  if (!addon) throw new NativeBackendError(`the native backend is unavailable: ${reason}`);
  const threads = threadCount(options.threads);
  addon.setThreads(threads);
  if (!tf.findBackendFactory(NATIVE_BACKEND_NAME)) tf.registerBackend(NATIVE_BACKEND_NAME, () => new MathBackendNative(addon));
  if (!kernelsRegistered) {
    kernelsRegistered = true;
    for (const config of tf.getKernelsForBackend('cpu')) {
      if (!tf.getKernel(config.kernelName, NATIVE_BACKEND_NAME)) tf.registerKernel({ ...config, backendName: NATIVE_BACKEND_NAME });
    }
    for (const config of [...nativeKernels(), ...gatherConvKernels(), ...fusedKernels(), ...loraKernels(), ...decoderKernels()]) {
      if (tf.getKernel(config.kernelName, NATIVE_BACKEND_NAME)) tf.unregisterKernel(config.kernelName, NATIVE_BACKEND_NAME);
      tf.registerKernel({ ...config, backendName: NATIVE_BACKEND_NAME });
    }
  }
  // What OpenBLAS took (it may cap the count at its build's maximum).
  return { threads: addon.threads() };
}
