import * as tf from '@tensorflow/tfjs-core';

/**
 * The wasm backend multiplies fast (XNNPACK) only for a single untransposed 2-D product: with a
 * transposed operand or a batch dimension it falls back to a loop some 15× slower, and autodiff's
 * matMul gradients are transposed products. So on wasm every product is rewritten as untransposed
 * 2-D products (explicit transposes cost a copy, far cheaper than the slow path), gradients
 * included; other backends use tfjs' matMul directly.
 */
const plainProduct = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
  save([a, b]);
  return {
    value: slicedProduct(a, b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [savedA, savedB] = saved;
      return [slicedProduct(dy, swapLastAxes(savedB)), slicedProduct(swapLastAxes(savedA), dy)];
    },
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

function swapLastAxes(tensor: tf.Tensor): tf.Tensor {
  const axes = tensor.shape.map((_, axis) => axis);
  axes.push(...axes.splice(-2).reverse());
  return tf.transpose(tensor, axes);
}

/** [..., M, K] × [..., K, N] as one 2-D product per batch entry (no gradient of its own). */
function slicedProduct(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank === 2) return tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.rank - 1];
  const batchShape = a.shape.slice(0, -2);
  const flatA = tf.unstack(tf.reshape(a, [-1, m, k]));
  const flatB = tf.unstack(tf.reshape(b, [-1, k, n]));
  return tf.reshape(tf.stack(flatA.map((slice, index) => tf.matMul(slice as tf.Tensor2D, flatB[index] as tf.Tensor2D))), [...batchShape, m, n]);
}

/** `tf.matMul` semantics (batch dims must match), fast on wasm including its gradients. */
export function matMul(a: tf.Tensor, b: tf.Tensor, transposeA = false, transposeB = false): tf.Tensor {
  if (tf.getBackend() !== 'wasm') return tf.matMul(a, b, transposeA, transposeB);
  return tf.tidy(() => plainProduct(transposeA ? swapLastAxes(a) : a, transposeB ? swapLastAxes(b) : b));
}
