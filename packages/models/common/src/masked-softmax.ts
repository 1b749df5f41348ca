import * as tf from '@tensorflow/tfjs-core';
import { runFusedKernel } from '@peft-ts/core/internal';

/**
 * `softmax(scores / scale + mask)` over the last axis, taking and giving scores in their grouped [B, kv, G·T, keys]
 * layout (the mask, [B or 1, 1, T, keys], applies per head, [B, heads, T, keys]). The gradient `P ⊙ (dy − Σ dy⊙P) / scale`
 * is written out: it keeps only P, where autodiff also kept the scaled and the masked scores (two more [B, heads, T, keys]
 * tensors). A backend with `PeftMaskedSoftmax` does each row in one pass, forward and back.
 */
export function maskedSoftmax(scores: tf.Tensor, scale: number, mask: tf.Tensor | null, perHead: number[]): tf.Tensor {
  const run = tf.customGrad(((grouped: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
    const fused = fusableMask(mask, perHead) ? runFusedKernel('PeftMaskedSoftmax', mask ? { scores: grouped, mask } : { scores: grouped }, { scale, perHead }) : null;
    const probabilities = fused ? fused[0] : composedMaskedSoftmax(grouped, scale, mask, perHead);
    save([probabilities]);
    return {
      value: probabilities,
      gradFunc: (dy: tf.Tensor, [saved]: tf.Tensor[]) =>
        tf.tidy(() => {
          const fusedGradient = runFusedKernel('PeftMaskedSoftmaxGrad', { dy, probabilities: saved }, { scale });
          return fusedGradient ? fusedGradient[0] : tf.div(tf.mul(saved, tf.sub(dy, tf.sum(tf.mul(dy, saved), -1, true))), scale);
        }),
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as (grouped: tf.Tensor) => tf.Tensor;
  return run(scores);
}

/** Whether the fused kernel takes this mask: none, or [1 or B, 1, T, keys] float32 (what `buildAttentionMask` gives). */
export function fusableMask(mask: tf.Tensor | null, [batch, , length, keys]: number[]): boolean {
  if (!mask) return true;
  const [maskBatch, heads, maskLength, maskKeys] = mask.shape;
  return mask.rank === 4 && mask.dtype === 'float32' && (maskBatch === 1 || maskBatch === batch) && heads === 1 && maskLength === length && maskKeys === keys;
}

function composedMaskedSoftmax(grouped: tf.Tensor, scale: number, mask: tf.Tensor | null, perHead: number[]): tf.Tensor {
  const scaled = tf.div(tf.reshape(grouped, perHead), scale);
  return tf.reshape(tf.softmax(mask ? withRowMaxZero(tf.add(scaled, mask)) : scaled), grouped.shape);
}

/**
 * `x − max(x)` over the last axis. tfjs' WebGPU softmax starts its row max at −3.402823e38, above float32 min, so a
 * fully masked row (a left-padding query) would come out 0/0 = NaN there instead of uniform. Softmax subtracts the row
 * max itself, now an exact 0, so on the other backends the result is the same bit for bit.
 */
function withRowMaxZero(scores: tf.Tensor): tf.Tensor {
  return tf.sub(scores, tf.max(scores, -1, true));
}
