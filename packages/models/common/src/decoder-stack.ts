import * as tf from '@tensorflow/tfjs-core';
import { Embedding, Module, ModuleList, PeftError, RMSNorm, gradientCheckpoint } from '@peft-ts/core';
import { scopedBackward } from '@peft-ts/core/internal';
import { buildAttentionMask } from './attention-mask.js';
import type { DecoderConfig, DecoderVariant } from './decoder-config.js';
import { TransformerDecoderLayer } from './decoder-layer.js';
import type { KeyValueCache } from './key-value-cache.js';
import { RotaryEmbedding, type RotaryAngles } from './rotary-embedding.js';

export type DecoderForwardInput = {
  /** Token ids, int32 [batch, T]. */
  readonly inputIds: tf.Tensor2D;
  /** 1 keep / 0 padding over [batch, past + T] (left padding); absent means all ones. */
  readonly attentionMask?: tf.Tensor | null;
  /**
   * Rotary positions [batch, T], each in `[0, past + T)` (others give NaN outputs, see RotaryEmbedding.gather). Absent
   * means `past … past+T−1` for every row, as transformers 4.39's forward does even with padding (generation passes
   * mask-derived positions explicitly).
   */
  readonly positionIds?: tf.Tensor | null;
  /** Reused and extended across calls (incremental decoding). */
  readonly cache?: KeyValueCache;
};

/** transformers' `MistralModel` / `LlamaModel`: embedding, decoder stack, final norm (registered as `model` in the causal LM). */
export class DecoderStack extends Module {
  readonly kind = 'decoder_model';
  private readonly rotary: RotaryEmbedding;
  private readonly slidingWindow: number | null;
  /**
   * Recompute each decoder layer's activations in the backward pass instead of keeping them
   * (transformers' `gradient_checkpointing_enable()`); applies in training mode only.
   */
  gradientCheckpointing = false;

  constructor(config: DecoderConfig, options: { meta?: boolean; variant?: DecoderVariant } = {}) {
    super();
    const { meta } = options;
    this.registerModule('embed_tokens', new Embedding(config.vocab_size, config.hidden_size, { paddingIndex: config.pad_token_id, meta }));
    this.registerModule(
      'layers',
      new ModuleList(Array.from({ length: config.num_hidden_layers }, (_, index) => new TransformerDecoderLayer(config, index, { meta }))),
    );
    this.registerModule('norm', new RMSNorm(config.hidden_size, config.rms_norm_eps, { meta }));
    this.rotary = new RotaryEmbedding(config.head_dim, config.rope_theta, options.variant?.rotaryFrequencies);
    this.slidingWindow = config.sliding_window;
  }

  /** Final hidden states [batch, T, hidden]. */
  forward(input: DecoderForwardInput): tf.Tensor3D {
    const { inputIds, cache } = input;
    if (inputIds.rank !== 2 || inputIds.dtype !== 'int32') {
      throw new PeftError(`inputIds: expected an int32 tensor [batch, length], got ${inputIds.dtype} [${inputIds.shape}]`);
    }
    const [batch, length] = inputIds.shape;
    const pastLength = cache?.pastLength ?? 0;
    const angles = this.angles(input.positionIds, batch, length, pastLength);
    const mask = buildAttentionMask({
      batchSize: batch,
      queryLength: length,
      pastLength,
      keyStart: cache?.keyStart ?? 0,
      paddingMask: input.attentionMask,
      slidingWindow: this.slidingWindow,
    });
    try {
      const output = tf.tidy(() => {
        let hidden = this.child<Embedding>('embed_tokens').forward(inputIds) as tf.Tensor3D;
        const context = { angles, mask, cache };
        for (const layer of this.child<ModuleList<TransformerDecoderLayer>>('layers')) {
          const variables = () => layer.parameters().filter((parameter) => parameter.requiresGrad).map((parameter) => parameter.value);
          if (this.training && this.gradientCheckpointing) {
            const constants = mask ? [angles.cos, angles.sin, mask] : [angles.cos, angles.sin];
            hidden = gradientCheckpoint(
              ([layerInput], [cos, sin, savedMask]) =>
                layer.forward(layerInput as tf.Tensor3D, {
                  angles: { cos: cos as tf.Tensor4D, sin: sin as tf.Tensor4D },
                  mask: (savedMask as tf.Tensor4D | undefined) ?? null,
                  cache,
                }),
              [hidden],
              { variables: variables(), constants },
            ) as tf.Tensor3D;
          } else if (this.training) {
            // Each layer back-propagates on its own, so its intermediate gradients are freed as soon as it is done.
            hidden = scopedBackward(([layerInput]) => layer.forward(layerInput as tf.Tensor3D, context), [hidden], { variables: variables() }) as tf.Tensor3D;
          } else {
            hidden = layer.forward(hidden, context);
          }
        }
        return this.child<RMSNorm>('norm').forward(hidden) as tf.Tensor3D;
      });
      cache?.advance(length);
      return output;
    } finally {
      angles.cos.dispose();
      angles.sin.dispose();
      mask?.dispose();
    }
  }

  private angles(positionIds: tf.Tensor | null | undefined, batch: number, length: number, pastLength: number): RotaryAngles {
    if (!positionIds) return this.rotary.range(pastLength, length);
    if (positionIds.size !== batch * length) {
      throw new PeftError(`positionIds: expected shape [${batch}, ${length}], got [${positionIds.shape}]`);
    }
    return this.rotary.gather(positionIds, batch, length, pastLength + length);
  }

  /** Frees the parameters and the cached rotary tables. */
  override dispose(): void {
    super.dispose();
    this.rotary.dispose();
  }
}
