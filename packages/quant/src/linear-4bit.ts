import * as tf from '@tensorflow/tfjs-core';
import { Module, Parameter, PeftError, type LinearLike, type WeightAccess } from '@peft-ts/core';
import { brandClass, matMul, packedLinearForward } from '@peft-ts/core/internal';
import type { SafetensorsTensor } from '@peft-ts/core/safetensors';
import { linear4bitStateDict } from './bnb-state-dict.js';
import { dequantize4bit } from './dequantize-4bit.js';
import { dequantize4bitTensor, fourBitTensors, matMul4bitTensor, type FourBitTensors } from './dequantize-4bit-tensor.js';
import { dequantize4bitTransposed } from './dequantize-4bit-transposed.js';
import { frozenParameter } from './frozen-parameter.js';
import { HOST_BACKENDS } from './host-backends.js';
import { bytesOfWords } from './packed-words.js';
import type { QuantState4bit, QuantType } from './quant-state.js';
import { quantizedParameterCount } from './quantized-parameter-count.js';
import { quantize4bit, type Quantized4bit } from './quantize-4bit.js';

export type Linear4bitOptions = {
  /** bnb's `Linear4bit` default is 'fp4'; QLoRA uses 'nf4'. */
  readonly quantType?: QuantType;
  /** Power of two from 64 to 4096; default 64. */
  readonly blocksize?: number;
  /** Double-quantize the per-block absmax (bnb `compress_statistics`, default true as in bnb's module). */
  readonly compressStatistics?: boolean;
  /** float32 [out]; the layer keeps its own reference. */
  readonly bias?: tf.Tensor | null;
};

type CustomGradFunction = Parameters<typeof tf.customGrad>[0];

/**
 * bitsandbytes `Linear4bit` (NF4/FP4, blockwise absmax, optional double quantization) for inference and QLoRA.
 * The weight stays packed: two codes per byte, four bytes per int32 word, absmax as fp32 or, double-quantized, as
 * 8-bit codes (in words too) plus one fp32 per 256 blocks, so about 0.516 bytes per parameter with NF4 + double
 * quant. Each weight value is the single fp32 product `code · absmax` of bnb's `dequantize_4bit`, bit for bit,
 * and the forward computes `x·Wᵀ + b` in float32. On cpu/wasm (HOST_BACKENDS) a loop over the bytes dequantizes
 * straight into the transposed layout the product needs (about 5× faster there than a tf-op gather); on webgpu and
 * native a fused kernel dequantizes tile by tile inside the matMul, so the float weight is never materialised; elsewhere tf ops
 * dequantize on the device. The gradient reaches the input only (the weight is frozen, as in bnb), and the
 * backward dequantizes again instead of keeping the float weight alive until then.
 */
export class Linear4bit extends Module implements LinearLike {
  static {
    brandClass(this, '@peft-ts/quant:Linear4bit');
  }

  readonly kind = 'linear' as const;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weightAccess: WeightAccess;
  private state: Omit<QuantState4bit, 'absmax' | 'nested'> & { readonly offset: number | null; readonly nestedBlocksize: number };
  private readonly project: (input: tf.Tensor) => tf.Tensor;

  /** Quantizes a float [out, in] weight (bnb `Params4bit` moved to the device). */
  static fromWeight(weight: tf.Tensor, options: Linear4bitOptions = {}): Linear4bit {
    if (weight.rank !== 2) throw new PeftError(`Linear4bit: the weight must be [out, in], got [${weight.shape}]`);
    const { quantType = 'fp4', blocksize = 64, compressStatistics = true, bias = null } = options;
    const quantized = quantize4bit(weight.dataSync() as Float32Array, { quantType, blocksize, compressStatistics, shape: weight.shape });
    return new Linear4bit(quantized, { bias });
  }

  /**
   * Wraps already quantized data (`state.shape` is [out, in]), or, given another layer, makes a replica holding that
   * layer's very parameters (layer replication): nothing is read back or copied.
   */
  constructor(source: Quantized4bit | Linear4bit, options: { readonly bias?: tf.Tensor | null } = {}) {
    super();
    const shape = source instanceof Linear4bit ? [source.outFeatures, source.inFeatures] : source.state.shape;
    if (shape.length !== 2) throw new PeftError(`Linear4bit: the quantized weight must be [out, in], got [${shape}]`);
    [this.outFeatures, this.inFeatures] = shape;
    if (source instanceof Linear4bit) {
      this.state = source.state;
      for (const [name, parameter] of source.directParameters()) this.registerParameter(name, parameter);
      this.training = source.training;
    } else {
      this.state = this.registerStorage(source, options.bias ?? null);
    }
    this.weightAccess = {
      supportsMerge: true,
      getBaseWeight: () => this.dequantize(),
      setBaseWeight: (weight) => this.requantize(weight),
    };
    const hostProduct = tf.customGrad(((input: tf.Tensor) => ({
      value: tf.tidy(() => this.hostProduct(input)),
      gradFunc: (dy: tf.Tensor) =>
        tf.tidy(() => tf.reshape(matMul(tf.reshape(dy, [-1, this.outFeatures]), this.dequantize()), input.shape)),
    })) as unknown as CustomGradFunction) as (input: tf.Tensor) => tf.Tensor;
    this.project = (input) =>
      HOST_BACKENDS.has(tf.getBackend())
        ? hostProduct(input)
        : tf.reshape(matMul4bitTensor(tf.reshape(input, [-1, this.inFeatures]) as tf.Tensor2D, this.tensors()), [
            ...input.shape.slice(0, -1),
            this.outFeatures,
          ]);
  }

  /** Validates quantized data, registers its tensors and the bias, and returns the layer's state. */
  private registerStorage({ packed, state }: Quantized4bit, bias: tf.Tensor | null): Linear4bit['state'] {
    if (packed.length !== Math.ceil((this.outFeatures * this.inFeatures) / 2)) {
      throw new PeftError(`Linear4bit: [${state.shape}] needs ${Math.ceil((this.outFeatures * this.inFeatures) / 2)} packed bytes, got ${packed.length}`);
    }
    if (bias && (bias.rank !== 1 || bias.shape[0] !== this.outFeatures)) {
      throw new PeftError(`Linear4bit: bias must be [${this.outFeatures}], got [${bias.shape}]`);
    }
    const weightCount = quantizedParameterCount(state.shape, '4bit');
    for (const [name, tensor] of storedTensors(fourBitTensors({ packed, state }))) {
      this.registerParameter(name, frozenParameter(tensor, { logicalSize: name === 'weight' ? weightCount : 0 }));
    }
    this.registerParameter('bias', bias ? new Parameter(bias) : null);
    return {
      quantType: state.quantType,
      blocksize: state.blocksize,
      shape: [...state.shape],
      dtype: state.dtype,
      offset: state.nested ? state.nested.offset : null,
      nestedBlocksize: state.nested ? state.nested.blocksize : 0,
    };
  }

  get bias(): Parameter | null {
    return this.hasParameter('bias') ? this.parameter('bias') : null;
  }

  /** A replica over the same stored codes (layer replication): no weight memory is added. */
  cloneSharingParameters(): Linear4bit {
    return new Linear4bit(this);
  }

  get quantType(): QuantType {
    return this.state.quantType;
  }

  get doubleQuantized(): boolean {
    return this.state.offset !== null;
  }

  forward(input: tf.Tensor): tf.Tensor {
    return packedLinearForward('Linear4bit', this, input, this.project);
  }

  /** The stored codes and quant state in bnb's form (read back from the tensors, synchronously: cpu/wasm). */
  quantized(): Quantized4bit {
    return this.quantizedFrom((name) => this.parameter(name).value.dataSync() as Int32Array | Float32Array);
  }

  /** The codes and quant state as bnb's `Linear4bit` saves them (read back asynchronously, so webgpu can too). */
  async checkpointTensors(): Promise<Map<string, SafetensorsTensor>> {
    const names = this.doubleQuantized ? ['weight', 'absmax', 'nested_absmax'] : ['weight', 'absmax'];
    const values = new Map(await Promise.all(names.map(async (name) => [name, (await this.parameter(name).value.data()) as Int32Array | Float32Array] as const)));
    return linear4bitStateDict(this.quantizedFrom((name) => values.get(name)!));
  }

  private quantizedFrom(read: (name: string) => Int32Array | Float32Array): Quantized4bit {
    const { offset, nestedBlocksize, ...fields } = this.state;
    const count = this.outFeatures * this.inFeatures;
    const bytes = (name: string, byteLength: number) => Uint8Array.from(bytesOfWords(read(name) as Int32Array, byteLength));
    const packed = bytes('weight', Math.ceil(count / 2));
    const state: QuantState4bit =
      offset === null
        ? { ...fields, absmax: Float32Array.from(read('absmax')) }
        : {
            ...fields,
            nested: {
              codes: bytes('absmax', Math.ceil(count / fields.blocksize)),
              absmax: Float32Array.from(read('nested_absmax')),
              offset,
              blocksize: nestedBlocksize,
            },
          };
    return { packed, state };
  }

  /** The float32 [out, in] weight, `code[nibble] · absmax[block]` in fp32 (bnb `dequantize_4bit`). */
  dequantize(): tf.Tensor2D {
    const shape: [number, number] = [this.outFeatures, this.inFeatures];
    if (HOST_BACKENDS.has(tf.getBackend())) {
      const { packed, state } = this.quantized();
      return tf.tensor2d(dequantize4bit(packed, state), shape);
    }
    return dequantize4bitTensor(this.tensors()) as tf.Tensor2D;
  }

  /** `x·Wᵀ` on a host backend, with the weight dequantized for this call only. */
  private hostProduct(input: tf.Tensor): tf.Tensor {
    const { packed, state } = this.quantized();
    const transposed = tf.tensor2d(dequantize4bitTransposed(packed, state), [this.inFeatures, this.outFeatures]);
    return tf.reshape(matMul(tf.reshape(input, [-1, this.inFeatures]), transposed), [...input.shape.slice(0, -1), this.outFeatures]);
  }

  /** The stored tensors, as `dequantize4bitTensor` takes them. */
  private tensors(): FourBitTensors {
    const { quantType, blocksize, shape, offset, nestedBlocksize } = this.state;
    const packed = this.parameter('weight').value;
    const absmax = this.parameter('absmax').value;
    if (offset === null) return { quantType, blocksize, shape, packed, absmax };
    const nested = { codes: absmax, absmax: this.parameter('nested_absmax').value, offset, blocksize: nestedBlocksize };
    return { quantType, blocksize, shape, packed, nested };
  }

  /** Quantizes `weight` again with the same settings (merging into a 4-bit layer, as PEFT does with bnb). */
  private async requantize(weight: tf.Tensor): Promise<void> {
    if (weight.shape.length !== 2 || weight.shape[0] !== this.outFeatures || weight.shape[1] !== this.inFeatures) {
      throw new PeftError(`Linear4bit: setBaseWeight expects [${this.outFeatures}, ${this.inFeatures}], got [${weight.shape}]`);
    }
    const { quantType, blocksize, shape, dtype } = this.state;
    const { packed, state } = quantize4bit(Float32Array.from(await weight.data()), {
      quantType,
      blocksize,
      shape,
      dtype,
      compressStatistics: this.doubleQuantized,
    });
    if (state.nested) this.state = { ...this.state, offset: state.nested.offset };
    for (const [name, tensor] of storedTensors(fourBitTensors({ packed, state }))) {
      this.parameter(name).set(tensor, `Linear4bit ${name}`);
      tensor.dispose();
    }
  }
}

/** The layer's parameter names for its stored tensors (bnb's: `absmax` holds the codes when double-quantized). */
function storedTensors(tensors: FourBitTensors): [string, tf.Tensor][] {
  if (!tensors.nested) return [['weight', tensors.packed], ['absmax', tensors.absmax]];
  return [['weight', tensors.packed], ['absmax', tensors.nested.codes], ['nested_absmax', tensors.nested.absmax]];
}
