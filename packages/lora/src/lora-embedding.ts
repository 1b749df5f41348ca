import * as tf from '@tensorflow/tfjs-core';
import { Embedding, Parameter, ParameterDict } from '@peft-ts/core';
import { brandClass, embeddingLookup, matMul, nextSeed } from '@peft-ts/core/internal';
import { loftqLayerError } from './loftq.js';
import { LoraLayer, type LoraAdapterSettings } from './lora-layer.js';

/**
 * LoRA on an embedding: `y = E[ids] + (Aᵀ[ids]·Bᵀ)·s` with A [r, vocab], B [dim, r] stored as
 * plain parameters (`lora_embedding_A/B`). PEFT applies no dropout here.
 */
export class LoraEmbedding extends LoraLayer<Embedding> {
  static {
    brandClass(this, '@peft-ts/lora:LoraEmbedding');
  }

  readonly kind = 'lora_embedding';
  readonly adapterLayerNames = ['lora_embedding_A', 'lora_embedding_B'];

  constructor(base: Embedding) {
    super(base);
    this.registerModule('lora_embedding_A', new ParameterDict());
    this.registerModule('lora_embedding_B', new ParameterDict());
  }

  embeddingA(adapterName: string): Parameter {
    return this.child<ParameterDict>('lora_embedding_A').get(adapterName)!;
  }

  embeddingB(adapterName: string): Parameter {
    return this.child<ParameterDict>('lora_embedding_B').get(adapterName)!;
  }

  protected createAdapterWeights(adapterName: string, settings: LoraAdapterSettings): void {
    const { numEmbeddings, embeddingDim } = this.baseLayer;
    if (settings.initLoraWeights === 'loftq') throw loftqLayerError();
    const aShape = [settings.r, numEmbeddings];
    const bShape = [embeddingDim, settings.r];
    if (this.isShapeOnly) {
      this.child<ParameterDict>('lora_embedding_A').set(adapterName, Parameter.meta(aShape));
      this.child<ParameterDict>('lora_embedding_B').set(adapterName, Parameter.meta(bShape));
      return;
    }
    // true and "gaussian": A = 0, B ~ N(0, 1); false keeps both ~ N(0, 1) (PEFT 0.10).
    const a = settings.initLoraWeights === false ? tf.randomNormal(aShape, 0, 1, 'float32', nextSeed()) : tf.zeros(aShape);
    const b = tf.randomNormal(bShape, 0, 1, 'float32', nextSeed());
    this.child<ParameterDict>('lora_embedding_A').set(adapterName, new Parameter(a));
    this.child<ParameterDict>('lora_embedding_B').set(adapterName, new Parameter(b));
    tf.dispose([a, b]);
  }


  deltaWeight(adapterName: string): tf.Tensor {
    return tf.tidy(() =>
      tf.mul(tf.transpose(matMul(this.embeddingB(adapterName).value, this.embeddingA(adapterName).value)), this.scaling(adapterName)),
    );
  }

  /** PEFT applies no dropout to embedding LoRA: ids cannot be dropped out. */
  override loraOutput(adapterName: string, input: tf.Tensor): tf.Tensor {
    return this.loraDelta(adapterName, input);
  }

  loraDelta(adapterName: string, input: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const rows = embeddingLookup(tf.transpose(this.embeddingA(adapterName).value), input);
      const flat = tf.reshape(rows, [-1, rows.shape[rows.rank - 1]!]);
      const projected = matMul(flat, this.embeddingB(adapterName).value, false, true);
      return tf.mul(tf.reshape(projected, [...input.shape, this.baseLayer.embeddingDim]), this.scaling(adapterName));
    });
  }
}
