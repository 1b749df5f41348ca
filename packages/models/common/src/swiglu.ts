import * as tf from '@tensorflow/tfjs-core';
import { runFusedKernel } from '@peft-ts/core/internal';

/**
 * `silu(gate) ⊙ up` with its gradient written out: it keeps gate and up only, where autodiff also kept the sigmoid and
 * the activation (two more intermediate-wide tensors per layer).
 */
export const swiGlu = tf.customGrad(((gate: tf.Tensor, up: tf.Tensor, save: (tensors: tf.Tensor[]) => void) => {
  save([gate, up]);
  const fused = runFusedKernel('PeftSwiGlu', { gate, up });
  return {
    value: fused ? fused[0] : tf.mul(tf.mul(gate, tf.sigmoid(gate)), up),
    gradFunc: (dy: tf.Tensor, [savedGate, savedUp]: tf.Tensor[]) =>
      tf.tidy(() => {
        const fusedGradients = runFusedKernel('PeftSwiGluGrad', { dy, gate: savedGate, up: savedUp });
        if (fusedGradients) return fusedGradients;
        const sigmoid = tf.sigmoid(savedGate);
        // silu'(g) = σ(g)·(1 + g·(1 − σ(g))).
        const slope = tf.mul(sigmoid, tf.add(1, tf.mul(savedGate, tf.sub(1, sigmoid))));
        return [tf.mul(tf.mul(dy, savedUp), slope), tf.mul(dy, tf.mul(savedGate, sigmoid))];
      }),
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as (gate: tf.Tensor, up: tf.Tensor) => tf.Tensor;
