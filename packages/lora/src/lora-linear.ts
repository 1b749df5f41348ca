import * as tf from '@tensorflow/tfjs-core';
import { Linear, ModuleDict, PeftError, type LinearLike } from '@peft-ts/core';
import { brandClass, hasFusedKernel, linear, matMul, nextSeed, runFusedKernel } from '@peft-ts/core/internal';
import { loftqFactors, loftqLayerError } from './loftq.js';
import { LoraLayer, type LoraAdapterSettings } from './lora-layer.js';

/** A and B weights for one adapter, per `init_lora_weights` (PEFT 0.10 §A.8). */
export function initialLoraFactors(
  settings: LoraAdapterSettings,
  shapes: { a: number[]; b: number[]; fanInA: number; fanInB: number },
): { a: tf.Tensor; b: tf.Tensor } {
  const uniform = (shape: number[], fanIn: number) => {
    const bound = 1 / Math.sqrt(fanIn);
    return tf.randomUniform(shape, -bound, bound, 'float32', nextSeed());
  };
  switch (settings.initLoraWeights) {
    case true:
      return { a: uniform(shapes.a, shapes.fanInA), b: tf.zeros(shapes.b) };
    case 'gaussian':
      return { a: tf.randomNormal(shapes.a, 0, 1 / settings.r, 'float32', nextSeed()), b: tf.zeros(shapes.b) };
    case false:
      // No reset: both keep PyTorch's default layer init, so the adapter is not a no-op.
      return { a: uniform(shapes.a, shapes.fanInA), b: uniform(shapes.b, shapes.fanInB) };
    case 'loftq':
      throw loftqLayerError();
    default:
      throw new PeftError(`init_lora_weights: '${String(settings.initLoraWeights)}' is not supported (expected true, false, "gaussian" or "loftq")`);
  }
}

/** LoRA on any linear-like layer (float or quantized): `y = base(x) + B(A(dropout(x)))·s`. */
export class LoraLinear extends LoraLayer<LinearLike> {
  static {
    brandClass(this, '@peft-ts/lora:LoraLinear');
  }

  readonly kind = 'lora_linear';
  readonly adapterLayerNames = ['lora_A', 'lora_B'];

  constructor(base: LinearLike) {
    super(base);
    this.registerModule('lora_A', new ModuleDict<Linear>());
    this.registerModule('lora_B', new ModuleDict<Linear>());
  }

  loraA(adapterName: string): Linear {
    return this.child<ModuleDict<Linear>>('lora_A').get(adapterName)!;
  }

  loraB(adapterName: string): Linear {
    return this.child<ModuleDict<Linear>>('lora_B').get(adapterName)!;
  }

  protected createAdapterWeights(adapterName: string, settings: LoraAdapterSettings): void {
    const { inFeatures, outFeatures } = this.baseLayer;
    const a = new Linear(inFeatures, settings.r, { bias: false, meta: true });
    const b = new Linear(settings.r, outFeatures, { bias: false, meta: true });
    if (!this.isShapeOnly) {
      const shapes = {
        a: [settings.r, inFeatures],
        b: [outFeatures, settings.r],
        fanInA: inFeatures,
        fanInB: settings.r,
      };
      const factors = settings.initLoraWeights === 'loftq' ? this.loftqInitialFactors(settings) : initialLoraFactors(settings, shapes);
      a.weight.set(factors.a);
      b.weight.set(factors.b);
      tf.dispose([factors.a, factors.b]);
    }
    this.child<ModuleDict<Linear>>('lora_A').set(adapterName, a);
    this.child<ModuleDict<Linear>>('lora_B').set(adapterName, b);
  }

  /** LoftQ (PEFT 0.10): A/B fit the quantization error, and the base weight becomes its dequantized quantization. */
  private loftqInitialFactors(settings: LoraAdapterSettings): { a: tf.Tensor; b: tf.Tensor } {
    const base = this.baseLayer;
    if (!(base instanceof Linear)) {
      throw new PeftError('init_lora_weights: "loftq" needs the float weights of a Linear layer; quantize the model after the LoftQ initialisation');
    }
    if (!settings.loftq) {
      throw new PeftError(
        'init_lora_weights: "loftq" needs a quantizer: inject with createLoraMethod({ loftqQuantizer }) (loftqQuantizer from @peft-ts/quant)',
      );
    }
    const { inFeatures, outFeatures } = base;
    const weight = base.parameter('weight');
    const factors = loftqFactors(weight.value.dataSync() as Float32Array, [outFeatures, inFeatures], settings.r, settings.loftq);
    const quantized = tf.tensor(factors.quantized, [outFeatures, inFeatures]);
    weight.set(quantized);
    quantized.dispose();
    return { a: tf.tensor(factors.a, [settings.r, inFeatures]), b: tf.tensor(factors.b, [outFeatures, settings.r]) };
  }


  deltaWeight(adapterName: string): tf.Tensor {
    return tf.tidy(() =>
      tf.mul(matMul(this.loraB(adapterName).weight.value, this.loraA(adapterName).weight.value), this.scaling(adapterName)),
    );
  }

  /** On a backend with `PeftLoraLinear` (native), a float32 `Linear` base whose weight and bias are frozen. */
  override fusedLoraForward(adapterName: string, input: tf.Tensor, options: { readonly bias: boolean } = { bias: true }): tf.Tensor | null {
    const base = this.baseLayer;
    if (!(base instanceof Linear) || !hasFusedKernel('PeftLoraLinear')) return null;
    // The fused gradient reaches x, A and B only.
    if (base.weight.requiresGrad || base.bias?.requiresGrad) return null;
    const operands = {
      weight: base.weight.value,
      bias: options.bias ? (base.bias?.value ?? null) : null,
      loraA: this.loraA(adapterName).weight.value,
      loraB: this.loraB(adapterName).weight.value,
      scaling: this.scaling(adapterName),
    };
    if ([input, ...Object.values(operands)].some((operand) => operand instanceof tf.Tensor && operand.dtype !== 'float32')) return null;
    const dropout = this.dropout(adapterName);
    return tf.tidy(() => fusedLoraLinear(input, dropout.isIdentity ? null : dropout.forward(input), operands));
  }

  loraDelta(adapterName: string, droppedInput: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      // Scaling the rank-r activations instead of the output: an r-wide multiply, and no output-wide tensor kept for its gradient.
      const down = tf.mul(linear(droppedInput, this.loraA(adapterName).weight.value), this.scaling(adapterName));
      return linear(down, this.loraB(adapterName).weight.value);
    });
  }
}

type FusedLoraOperands = { weight: tf.Tensor; bias: tf.Tensor | null; loraA: tf.Tensor; loraB: tf.Tensor; scaling: number };

function fusedKernel(kernelName: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap): tf.Tensor[] {
  const outputs = runFusedKernel(kernelName, inputs, attrs);
  if (!outputs) throw new PeftError(`LoraLinear: the ${tf.getBackend()} backend has no ${kernelName} kernel (the backend changed between forward and backward?)`);
  return outputs;
}

/**
 * `x·Wᵀ + b + s·(dropped·Aᵀ)·Bᵀ` with a frozen W and b, in one kernel each way: the base product and the adapter
 * branch accumulate into one output, so the layer runs no separate add, scaling or rank-r products through tfjs
 * (each ~1 ms of dispatch at LoRA's shapes). `dropped` is x after the adapter's dropout, null when that is the
 * identity; its gradient then joins x's inside the kernel.
 */
function fusedLoraLinear(input: tf.Tensor, dropped: tf.Tensor | null, { weight, bias, loraA, loraB, scaling }: FusedLoraOperands): tf.Tensor {
  const run = tf.customGrad(((x: tf.Tensor, a: tf.Tensor, b: tf.Tensor, ...rest: unknown[]) => {
    const save = rest.pop() as (tensors: tf.Tensor[]) => void;
    const separate = rest[0] as tf.Tensor | undefined;
    const [output, down] = fusedKernel(
      'PeftLoraLinear',
      { x, weight, loraA: a, loraB: b, ...(bias ? { bias } : {}), ...(separate ? { dropped: separate } : {}) },
      { scaling },
    );
    // The branch input serves dA and the rank-r activations dB; the frozen W needs nothing from the forward.
    save([separate ?? x, down]);
    return {
      value: output,
      gradFunc: (dy: tf.Tensor, [branchInput, savedDown]: tf.Tensor[]) =>
        fusedKernel('PeftLoraLinearGrad', { dy, weight, loraA: a, loraB: b, down: savedDown, dropped: branchInput }, { scaling, dropout: separate !== undefined }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (...inputs: tf.Tensor[]) => tf.Tensor;
  return dropped ? run(input, loraA, loraB, dropped) : run(input, loraA, loraB);
}
