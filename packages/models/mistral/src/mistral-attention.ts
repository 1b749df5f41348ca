import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, matMul, nextSeed, type LinearLike } from '@peft-ts/core';
import type { KeyValueCache } from './key-value-cache.js';
import { headDimension, type MistralConfig } from './mistral-config.js';
import { applyRotary, type RotaryAngles } from './rotary-embedding.js';

/** What every layer of one forward shares: rotary angles, the additive mask, the cache. */
export type AttentionContext = {
  readonly angles: RotaryAngles;
  /** [batch or 1, 1, T, keys] additive mask, or null when nothing is masked. */
  readonly mask: tf.Tensor4D | null;
  readonly cache?: KeyValueCache;
};

/**
 * Grouped-query self-attention (transformers 4.39 eager). KV head g serves query heads g·G … g·G+G−1; instead of
 * repeating K and V, the G query heads of a group are stacked along the row axis ([B, kv, G·T, d]) so one batched
 * matMul per step covers every head.
 */
export class MistralAttention extends Module {
  readonly kind = 'mistral_attention';
  readonly heads: number;
  readonly keyValueHeads: number;
  readonly headDimension: number;
  readonly attentionDropout: number;

  constructor(config: MistralConfig, options: { meta?: boolean } = {}) {
    super();
    this.heads = config.num_attention_heads;
    this.keyValueHeads = config.num_key_value_heads;
    this.headDimension = headDimension(config);
    this.attentionDropout = config.attention_dropout;
    const hidden = config.hidden_size;
    const queryWidth = this.heads * this.headDimension;
    const keyValueWidth = this.keyValueHeads * this.headDimension;
    const meta = options.meta;
    this.registerModule('q_proj', new Linear(hidden, queryWidth, { bias: false, meta }));
    this.registerModule('k_proj', new Linear(hidden, keyValueWidth, { bias: false, meta }));
    this.registerModule('v_proj', new Linear(hidden, keyValueWidth, { bias: false, meta }));
    this.registerModule('o_proj', new Linear(queryWidth, hidden, { bias: false, meta }));
  }

  /** `hidden` [B, T, hidden] → [B, T, hidden]; appends this layer's keys and values to `context.cache`. */
  forward(hidden: tf.Tensor3D, layerIndex: number, context: AttentionContext): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, length] = hidden.shape;
      const { heads, keyValueHeads, headDimension: dimension } = this;
      const groups = heads / keyValueHeads;
      const project = (name: string, count: number) =>
        tf.reshape(this.child<LinearLike>(name).forward(hidden), [batch, length, count, dimension]) as tf.Tensor4D;

      const query = tf.transpose(applyRotary(project('q_proj', heads), context.angles), [0, 2, 1, 3]);
      let keys = tf.transpose(applyRotary(project('k_proj', keyValueHeads), context.angles), [0, 2, 1, 3]) as tf.Tensor4D;
      let values = tf.transpose(project('v_proj', keyValueHeads), [0, 2, 1, 3]) as tf.Tensor4D;
      if (context.cache) ({ keys, values } = context.cache.append(layerIndex, keys, values));
      const keyLength = keys.shape[2];

      // [B, heads, T, d] → [B, kv, G·T, d]: heads of one group are adjacent, so this is a free reshape.
      const groupedQuery = tf.reshape(query, [batch, keyValueHeads, groups * length, dimension]);
      const scores = matMul(groupedQuery, keys, false, true);
      let probabilities = maskedSoftmax(scores, Math.sqrt(dimension), context.mask, [batch, heads, length, keyLength]);
      // Dropout is elementwise, so the grouped layout takes the same mask.
      if (this.training && this.attentionDropout > 0) probabilities = tf.dropout(probabilities, this.attentionDropout, undefined, nextSeed());

      const output = tf.reshape(matMul(probabilities, values), [batch, heads, length, dimension]);
      const merged = tf.reshape(tf.transpose(output, [0, 2, 1, 3]), [batch, length, heads * dimension]);
      return this.child<LinearLike>('o_proj').forward(merged) as tf.Tensor3D;
    });
  }
}

/**
 * `softmax(scores / scale + mask)` over the last axis, taking and giving scores in their grouped [B, kv, G·T, keys]
 * layout (the mask applies per head, [B, heads, T, keys]). The gradient `P ⊙ (dy − Σ dy⊙P) / scale` is written out:
 * it keeps only P, where autodiff also kept the scaled and the masked scores (two more [B, heads, T, keys] tensors).
 */
function maskedSoftmax(scores: tf.Tensor, scale: number, mask: tf.Tensor | null, perHead: number[]): tf.Tensor {
  const run = tf.customGrad(((grouped: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
    const scaled = tf.div(tf.reshape(grouped, perHead), scale);
    const probabilities = tf.reshape(tf.softmax(mask ? withRowMaxZero(tf.add(scaled, mask)) : scaled), grouped.shape);
    save([probabilities]);
    return {
      value: probabilities,
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) =>
        tf.tidy(() => tf.div(tf.mul(saved, tf.sub(dy, tf.sum(tf.mul(dy, saved), -1, true))), scale)),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (grouped: tf.Tensor) => tf.Tensor;
  return run(scores);
}

/**
 * `x − max(x)` over the last axis. tfjs' WebGPU softmax starts its row max at −3.402823e38, above float32 min, so a
 * fully masked row (a left-padding query) would come out 0/0 = NaN there instead of uniform. Softmax subtracts the row
 * max itself, now an exact 0, so on the other backends the result is the same bit for bit.
 */
function withRowMaxZero(scores: tf.Tensor): tf.Tensor {
  return tf.sub(scores, tf.max(scores, -1, true));
}
