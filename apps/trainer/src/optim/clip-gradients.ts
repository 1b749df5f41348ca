import * as tf from '@tensorflow/tfjs-core';

export type ClippedGradients = {
  /** New tensors, owned by the caller. */
  readonly gradients: Map<string, tf.Tensor>;
  /** The global L2 norm before clipping, owned by the caller. */
  readonly totalNorm: tf.Scalar;
};

/** The L2 norm of all gradients taken together, as the norm of the per-tensor norms (PyTorch's order). */
export function globalGradientNorm(gradients: ReadonlyMap<string, tf.Tensor>): tf.Scalar {
  return tf.tidy(() => {
    const norms = [...gradients.values()].map((gradient) => tf.sqrt(tf.sum(tf.square(gradient))));
    return norms.length ? tf.sqrt(tf.sum(tf.square(tf.stack(norms)))) : tf.scalar(0);
  });
}

/**
 * `torch.nn.utils.clip_grad_norm_`: every gradient is multiplied by min(1, max_norm / (total_norm + 1e-6)). The
 * factor stays a tensor, so clipping needs no read back from the device.
 */
export function clipGradients(gradients: ReadonlyMap<string, tf.Tensor>, maxNorm: number): ClippedGradients {
  const totalNorm = globalGradientNorm(gradients);
  const clipped = tf.tidy(() => {
    const factor = tf.minimum(tf.div(maxNorm, tf.add(totalNorm, 1e-6)), 1);
    return [...gradients].map(([name, gradient]) => [name, tf.mul(gradient, factor)] as const);
  });
  return { gradients: new Map(clipped), totalNorm };
}
