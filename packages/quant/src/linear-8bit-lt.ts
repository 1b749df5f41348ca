import * as tf from '@tensorflow/tfjs-core';
import { Module, Parameter, PeftError, type LinearLike, type WeightAccess } from '@peft-ts/core';
import { brandClass, matMul, packedLinearForward } from '@peft-ts/core/internal';
import type { SafetensorsTensor } from '@peft-ts/core/safetensors';
import { linear8bitStateDict } from './bnb-state-dict.js';
import { frozenParameter } from './frozen-parameter.js';
import { HOST_BACKENDS } from './host-backends.js';
import { int8VectorwiseQuantize, type Int8Matrix } from './int8-vectorwise-quantize.js';
import { INT8_BYTE_OFFSET, packInt8 } from './pack-int8.js';
import { quantizedParameterCount } from './quantized-parameter-count.js';
import { unpackInt8 } from './unpack-int8.js';
import { bytesOfWords, packBytesIntoWords, unpackWordsTensor } from './packed-words.js';
import { FUSED_KERNEL_BACKENDS, int8CodesKernel, matMulInt8Kernel } from './webgpu-kernels.js';
import { NATIVE_BACKEND } from './native-kernels.js';

export type Linear8bitLtOptions = {
  /**
   * LLM.int8() outlier threshold: input columns holding an |x| ≥ threshold are multiplied in float; 0 (bnb's
   * module default) quantizes every column. transformers passes `llm_int8_threshold` (6).
   */
  readonly threshold?: number;
  /** float32 [out]; the layer keeps its own reference. */
  readonly bias?: tf.Tensor | null;
};

type CustomGradFunction = Parameters<typeof tf.customGrad>[0];

/** bnb multiplies by fp32(1/127) to dequantize (`int8_vectorwise_dequant`). */
const INVERSE_127 = Math.fround(1 / 127);

/**
 * Columns whose int8 products float32 sums exactly: every partial sum of up to 1024 products of magnitude
 * ≤ 127² stays below 2^24 (1024 · 16129 = 16,516,096), whatever order the backend adds them in.
 */
const EXACT_COLUMNS = 1024;

/**
 * `codes · weightCodesᵀ` for integer-valued float32 operands in [−127, 127], as bnb's int32 accumulation: exact
 * for up to 1024 columns; wider inputs are reduced in chunks of 1024, each exact, so only the final additions of
 * ⌈in/1024⌉ partial sums round (relative error ≤ ⌈in/1024⌉·2⁻²⁴, far below the int8 quantization error).
 */
function integerProduct(codes: tf.Tensor2D, weightCodes: tf.Tensor2D): tf.Tensor2D {
  const [tokens, columns] = codes.shape;
  let sum: tf.Tensor2D | null = null;
  for (let start = 0; start < columns; start += EXACT_COLUMNS) {
    const width = Math.min(EXACT_COLUMNS, columns - start);
    const part =
      width === columns
        ? matMul(codes, weightCodes, false, true)
        : matMul(tf.slice(codes, [0, start], [tokens, width]), tf.slice(weightCodes, [0, start], [weightCodes.shape[0], width]), false, true);
    sum = sum ? tf.add(sum, part) : (part as tf.Tensor2D);
  }
  return sum!;
}

/**
 * bitsandbytes `Linear8bitLt` with `has_fp16_weights=False` (LLM.int8() inference and QLoRA-style training):
 * the weight is held as row-wise int8 codes (one byte each, stored `code + 128` four to an int32 word) plus an
 * fp32 absmax per output row (SCB), about 1 + 4/in bytes per parameter on every backend. Forward (spec G.1) in float32: activations are
 * quantized per token with the package's rounding (absmax without outliers, ties to even), multiplied with the
 * codes exactly, and rescaled by SCA·SCB/127²; outlier columns (threshold > 0) go through a float product with
 * the dequantized weight columns. Unlike bnb the input is not first cast to fp16. The gradient reaches the input
 * only, through the dequantized weight `CB·SCB/127`, as bnb's backward computes it.
 */
export class Linear8bitLt extends Module implements LinearLike {
  static {
    brandClass(this, '@peft-ts/quant:Linear8bitLt');
  }

  readonly kind = 'linear' as const;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly threshold: number;
  readonly weightAccess: WeightAccess;
  private readonly project: (input: tf.Tensor) => tf.Tensor;

  /** Quantizes a float [out, in] weight row-wise (bnb `Int8Params` moved to the device). */
  static fromWeight(weight: tf.Tensor, options: Linear8bitLtOptions = {}): Linear8bitLt {
    if (weight.rank !== 2) throw new PeftError(`Linear8bitLt: the weight must be [out, in], got [${weight.shape}]`);
    const [rows, columns] = weight.shape;
    return new Linear8bitLt(int8VectorwiseQuantize(weight.dataSync() as Float32Array, rows, columns), options);
  }

  /**
   * Wraps row-wise int8 codes (`quantized` [out, in]) and their row absmax (`rowStats`, bnb `SCB`), or, given another
   * layer, makes a replica holding that layer's very parameters (layer replication): nothing is read back or copied.
   */
  constructor(source: Int8Matrix | Linear8bitLt, options: Linear8bitLtOptions = {}) {
    super();
    if (source instanceof Linear8bitLt) {
      [this.outFeatures, this.inFeatures, this.threshold] = [source.outFeatures, source.inFeatures, source.threshold];
      for (const [name, parameter] of source.directParameters()) this.registerParameter(name, parameter);
      this.training = source.training;
    } else {
      [this.outFeatures, this.inFeatures] = [source.rows, source.columns];
      this.threshold = options.threshold ?? 0;
      this.registerStorage(source, options.bias ?? null);
    }
    this.weightAccess = {
      supportsMerge: true,
      getBaseWeight: () => tf.tidy(() => this.dequantizeColumns(this.weightCodes())),
      setBaseWeight: (value) => this.requantize(value),
    };
    this.project = tf.customGrad(((input: tf.Tensor) => ({
      value: tf.tidy(() => {
        const flat = tf.reshape(input, [-1, this.inFeatures]) as tf.Tensor2D;
        return tf.reshape(this.int8Product(flat), [...input.shape.slice(0, -1), this.outFeatures]);
      }),
      gradFunc: (dy: tf.Tensor) =>
        tf.tidy(() => {
          const flatGradient = tf.reshape(dy, [-1, this.outFeatures]) as tf.Tensor2D;
          if (this.nativeProducts()) return tf.reshape(this.nativeProduct(flatGradient, true, false), input.shape);
          return tf.reshape(matMul(flatGradient, this.dequantizeColumns(this.weightCodes())), input.shape);
        }),
    })) as unknown as CustomGradFunction) as (input: tf.Tensor) => tf.Tensor;
  }

  /** Validates the codes, the threshold and the bias, and registers their tensors. */
  private registerStorage(weight: Int8Matrix, bias: tf.Tensor | null): void {
    if (weight.quantized.length !== weight.rows * weight.columns || weight.rowStats.length !== weight.rows) {
      throw new PeftError(
        `Linear8bitLt: [${weight.rows}, ${weight.columns}] needs ${weight.rows * weight.columns} codes and ${weight.rows} row stats, ` +
          `got ${weight.quantized.length} and ${weight.rowStats.length}`,
      );
    }
    if (!(this.threshold >= 0)) throw new PeftError(`Linear8bitLt: threshold must be ≥ 0, got ${this.threshold}`);
    if (bias && (bias.rank !== 1 || bias.shape[0] !== this.outFeatures)) {
      throw new PeftError(`Linear8bitLt: bias must be [${this.outFeatures}], got [${bias.shape}]`);
    }
    const [codes, rowStats] = storageTensors(weight);
    this.registerParameter('weight', frozenParameter(codes, { logicalSize: quantizedParameterCount([weight.rows, weight.columns], 'int8') }));
    this.registerParameter('SCB', frozenParameter(rowStats, { logicalSize: 0 }));
    this.registerParameter('bias', bias ? new Parameter(bias) : null);
  }

  get bias(): Parameter | null {
    return this.hasParameter('bias') ? this.parameter('bias') : null;
  }

  forward(input: tf.Tensor): tf.Tensor {
    return packedLinearForward('Linear8bitLt', this, input, this.project);
  }

  /** A replica over the same stored codes (layer replication): no weight memory is added. */
  cloneSharingParameters(): Linear8bitLt {
    return new Linear8bitLt(this);
  }

  /** The stored codes and row absmax (bnb `CB`, `SCB`), read back from the tensors. */
  quantized(): Int8Matrix {
    return {
      quantized: unpackInt8(this.codeBytes()),
      rowStats: Float32Array.from(this.parameter('SCB').value.dataSync()),
      rows: this.outFeatures,
      columns: this.inFeatures,
    };
  }

  /** The codes and row absmax as bnb's `Linear8bitLt` saves them (read back asynchronously, so webgpu can too). */
  async checkpointTensors(): Promise<Map<string, SafetensorsTensor>> {
    const [words, rowStats] = await Promise.all([this.parameter('weight').value.data(), this.parameter('SCB').value.data()]);
    const bytes = bytesOfWords(words as Int32Array, this.outFeatures * this.inFeatures);
    return linear8bitStateDict({ quantized: unpackInt8(bytes), rowStats: Float32Array.from(rowStats), rows: this.outFeatures, columns: this.inFeatures });
  }

  /** The stored offset-binary code bytes, read back from their words. */
  private codeBytes(): Uint8Array {
    return bytesOfWords(this.parameter('weight').value.dataSync() as Int32Array, this.outFeatures * this.inFeatures);
  }

  /** Whether the backend multiplies by the stored codes directly (native), one dequantized tile at a time. */
  private nativeProducts(): boolean {
    return tf.getBackend() === NATIVE_BACKEND;
  }

  /** `x·Wᵀ` (transposeWeight) or `x·W` on the native backend: W the integer codes, or (scaled) bnb's dequantized weight. */
  private nativeProduct(x: tf.Tensor2D, scaled: boolean, transposeWeight: boolean): tf.Tensor2D {
    const layout = { weightRows: this.outFeatures, weightColumns: this.inFeatures, offset: INT8_BYTE_OFFSET };
    return matMulInt8Kernel(x, this.parameter('weight').value, scaled ? this.parameter('SCB').value : null, layout, transposeWeight);
  }

  /** The int8 codes as float32 [out, in] (exact small integers): unpacked on the device, or on the host on cpu/wasm. */
  private weightCodes(): tf.Tensor2D {
    const shape: [number, number] = [this.outFeatures, this.inFeatures];
    const backend = tf.getBackend();
    if (FUSED_KERNEL_BACKENDS.has(backend)) return int8CodesKernel(this.parameter('weight').value, ...shape, INT8_BYTE_OFFSET);
    if (!HOST_BACKENDS.has(backend)) {
      const bytes = unpackWordsTensor(this.parameter('weight').value, shape[0] * shape[1]);
      return tf.reshape(tf.sub(tf.cast(bytes, 'float32'), INT8_BYTE_OFFSET), shape);
    }
    const bytes = this.codeBytes();
    const codes = new Float32Array(bytes.length);
    for (let index = 0; index < bytes.length; index++) codes[index] = bytes[index] - INT8_BYTE_OFFSET;
    return tf.tensor2d(codes, shape);
  }

  /** `fp32(fp32(code · SCB[row]) · fp32(1/127))` for codes [out, columns]: bnb's `int8_vectorwise_dequant`. */
  private dequantizeColumns(codes: tf.Tensor2D): tf.Tensor2D {
    return tf.mul(tf.mul(codes, tf.reshape(this.parameter('SCB').value, [-1, 1])), INVERSE_127) as tf.Tensor2D;
  }

  /** LLM.int8() product of `flat` [tokens, in] with the weight, bias excluded. */
  private int8Product(flat: tf.Tensor2D): tf.Tensor2D {
    const magnitudes = tf.abs(flat);
    // Natively the codes are multiplied as stored; the float codes are only made for outlier columns.
    let codesTensor: tf.Tensor2D | null = null;
    const weightCodes = () => (codesTensor ??= this.weightCodes());
    let kept = magnitudes;
    let outlierColumns: Int32Array = new Int32Array(0);
    let outlierMask: tf.Tensor | null = null;
    if (this.threshold > 0) {
      // torch compares against the threshold cast to fp32; elements at or above it do not count for the row max.
      const isOutlier = tf.greaterEqual(magnitudes, Math.fround(this.threshold));
      kept = tf.where(isOutlier, tf.zerosLike(magnitudes), magnitudes);
      if (HOST_BACKENDS.has(tf.getBackend())) {
        const columnFlags = tf.any(isOutlier, 0).dataSync();
        outlierColumns = Int32Array.from(columnFlags.keys()).filter((column) => columnFlags[column] !== 0);
      } else {
        // A device backend cannot hand the columns to the host without a sync read: mask them instead.
        outlierMask = tf.reshape(tf.cast(tf.any(isOutlier, 0), 'float32'), [1, this.inFeatures]);
      }
    }
    const rowStats = tf.max(kept, 1);
    // 127/rowStats as torch evaluates it (reciprocal, then times 127); an all-zero row quantizes to 0.
    const scale = tf.where(tf.greater(rowStats, 0), tf.mul(tf.div(1, rowStats), 127), tf.zerosLike(rowStats));
    let codes = tf.round(tf.mul(flat, tf.reshape(scale, [-1, 1]))) as tf.Tensor2D;
    if (outlierColumns.length > 0) {
      const keepColumn = new Float32Array(this.inFeatures).fill(1);
      for (const column of outlierColumns) keepColumn[column] = 0;
      codes = tf.mul(codes, tf.tensor2d(keepColumn, [1, this.inFeatures]));
    }
    if (outlierMask) codes = tf.mul(codes, tf.sub(1, outlierMask));
    const scbOver127Squared = tf.div(this.parameter('SCB').value, 127 * 127);
    const codeProduct = this.nativeProducts() ? this.nativeProduct(codes, false, true) : integerProduct(codes, weightCodes());
    const output = tf.mul(tf.mul(codeProduct, tf.reshape(rowStats, [-1, 1])), tf.reshape(scbOver127Squared, [1, -1]));
    if (outlierMask) {
      const outliers = tf.mul(flat, outlierMask) as tf.Tensor2D;
      const outlierProduct = this.nativeProducts() ? this.nativeProduct(outliers, true, true) : matMul(outliers, this.dequantizeColumns(weightCodes()), false, true);
      return tf.add(output, outlierProduct) as tf.Tensor2D;
    }
    if (outlierColumns.length === 0) return output as tf.Tensor2D;
    const indices = tf.tensor1d(outlierColumns, 'int32');
    const outlierWeight = this.dequantizeColumns(tf.gather(weightCodes(), indices, 1) as tf.Tensor2D);
    return tf.add(output, matMul(tf.gather(flat, indices, 1), outlierWeight, false, true)) as tf.Tensor2D;
  }

  /** Quantizes `weight` again row-wise (merging into an 8-bit layer, as PEFT does with bnb), on the host. */
  private async requantize(weight: tf.Tensor): Promise<void> {
    if (weight.shape.length !== 2 || weight.shape[0] !== this.outFeatures || weight.shape[1] !== this.inFeatures) {
      throw new PeftError(`Linear8bitLt: setBaseWeight expects [${this.outFeatures}, ${this.inFeatures}], got [${weight.shape}]`);
    }
    const quantized = int8VectorwiseQuantize(Float32Array.from(await weight.data()), this.outFeatures, this.inFeatures);
    const [codes, rowStats] = storageTensors(quantized);
    this.parameter('weight').set(codes, 'Linear8bitLt weight');
    this.parameter('SCB').set(rowStats, 'Linear8bitLt SCB');
    tf.dispose([codes, rowStats]);
  }
}

/** Codes as offset-binary bytes in int32 words (row-major [out, in]) and the fp32 row absmax [out]. */
function storageTensors(weight: Int8Matrix): [tf.Tensor, tf.Tensor] {
  return [tf.tensor1d(packBytesIntoWords(packInt8(weight.quantized)), 'int32'), tf.tensor1d(weight.rowStats)];
}
