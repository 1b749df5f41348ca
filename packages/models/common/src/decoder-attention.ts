import * as tf from '@tensorflow/tfjs-core';
import { Linear, Module, type LinearLike } from '@peft-ts/core';
import type { DecoderConfig } from './decoder-config.js';
import type { KeyValueCache } from './key-value-cache.js';
import { groupedAttention } from './grouped-attention.js';
import { applyRotary, type RotaryAngles } from './rotary-embedding.js';

/** What every layer of one forward shares: rotary angles, the additive mask, the cache. */
export type AttentionContext = {
  readonly angles: RotaryAngles;
  /** [batch or 1, 1, T, keys] additive mask, or null when nothing is masked. */
  readonly mask: tf.Tensor4D | null;
  readonly cache?: KeyValueCache;
};

/**
 * Grouped-query self-attention (transformers 4.39 eager, as Llama and Mistral share it); the sliding window and the
 * causal mask come in through `context.mask`. KV head g serves query heads g·G … g·G+G−1; instead of
 * repeating K and V, the G query heads of a group are stacked along the row axis ([B, kv, G·T, d]) so one batched
 * matMul per step covers every head.
 */
export class DecoderAttention extends Module {
  readonly kind = 'decoder_attention';
  readonly heads: number;
  readonly keyValueHeads: number;
  readonly headDimension: number;
  readonly attentionDropout: number;

  constructor(config: DecoderConfig, options: { meta?: boolean } = {}) {
    super();
    this.heads = config.num_attention_heads;
    this.keyValueHeads = config.num_key_value_heads;
    this.headDimension = config.head_dim;
    this.attentionDropout = config.attention_dropout ?? 0;
    const hidden = config.hidden_size;
    const queryWidth = this.heads * this.headDimension;
    const keyValueWidth = this.keyValueHeads * this.headDimension;
    const settings = { bias: config.attention_bias ?? false, meta: options.meta };
    this.registerModule('q_proj', new Linear(hidden, queryWidth, settings));
    this.registerModule('k_proj', new Linear(hidden, keyValueWidth, settings));
    this.registerModule('v_proj', new Linear(hidden, keyValueWidth, settings));
    this.registerModule('o_proj', new Linear(queryWidth, hidden, settings));
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
      const attended = groupedAttention(groupedQuery as tf.Tensor4D, keys, values, {
        scale: Math.sqrt(dimension),
        mask: context.mask,
        perHead: [batch, heads, length, keyLength],
        dropout: this.training ? this.attentionDropout : 0,
      });
      const output = tf.reshape(attended, [batch, heads, length, dimension]);
      const merged = tf.reshape(tf.transpose(output, [0, 2, 1, 3]), [batch, length, heads * dimension]);
      return this.child<LinearLike>('o_proj').forward(merged) as tf.Tensor3D;
    });
  }
}
