import * as tf from '@tensorflow/tfjs-core';
import { Conv2d, ModuleDict } from '@peft-ts/core';
import { brandClass, matMul } from '@peft-ts/core/internal';
import { LoraLayer, type LoraAdapterSettings } from './lora-layer.js';
import { initialLoraFactors } from './lora-linear.js';

/**
 * LoRA on Conv2d: A is a conv with the base kernel, stride and padding (PEFT 0.10 copies neither
 * dilation nor groups), B a 1×1 conv; ΔW[o,i,h,w] = s·Σ_k B[o,k]·A[k,i,h,w].
 */
export class LoraConv2d extends LoraLayer<Conv2d> {
  static {
    brandClass(this, '@peft-ts/lora:LoraConv2d');
  }

  readonly kind = 'lora_conv2d';
  readonly adapterLayerNames = ['lora_A', 'lora_B'];

  constructor(base: Conv2d) {
    super(base);
    this.registerModule('lora_A', new ModuleDict<Conv2d>());
    this.registerModule('lora_B', new ModuleDict<Conv2d>());
  }

  loraA(adapterName: string): Conv2d {
    return this.child<ModuleDict<Conv2d>>('lora_A').get(adapterName)!;
  }

  loraB(adapterName: string): Conv2d {
    return this.child<ModuleDict<Conv2d>>('lora_B').get(adapterName)!;
  }

  protected createAdapterWeights(adapterName: string, settings: LoraAdapterSettings): void {
    const base = this.baseLayer;
    const { stride, padding } = base.geometry;
    const a = new Conv2d(base.inChannels, settings.r, base.kernelSize, { stride, padding, bias: false, meta: true });
    const b = new Conv2d(settings.r, base.outChannels, 1, { bias: false, meta: true });
    if (!this.isShapeOnly) {
      const factors = initialLoraFactors(settings, {
        a: [...a.weight.shape],
        b: [...b.weight.shape],
        fanInA: base.inChannels * base.kernelSize[0] * base.kernelSize[1],
        fanInB: settings.r,
      });
      a.weight.set(factors.a);
      b.weight.set(factors.b);
      tf.dispose([factors.a, factors.b]);
    }
    this.child<ModuleDict<Conv2d>>('lora_A').set(adapterName, a);
    this.child<ModuleDict<Conv2d>>('lora_B').set(adapterName, b);
  }


  deltaWeight(adapterName: string): tf.Tensor {
    return tf.tidy(() => {
      const a = this.loraA(adapterName).weight.value;
      const b = this.loraB(adapterName).weight.value;
      const rank = a.shape[0];
      const product = matMul(tf.reshape(b, [b.shape[0], rank]), tf.reshape(a, [rank, -1]));
      return tf.mul(tf.reshape(product, this.baseLayer.weight.shape as number[]), this.scaling(adapterName));
    });
  }

  loraDelta(adapterName: string, droppedInput: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const down = this.loraA(adapterName).forward(droppedInput);
      return tf.mul(this.loraB(adapterName).forward(down), this.scaling(adapterName));
    });
  }
}
