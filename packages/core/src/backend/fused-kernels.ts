import * as tf from '@tensorflow/tfjs-core';

/** Whether the active backend registers a kernel of that name (a fused layer kernel, say `PeftRmsNorm`). */
export function hasFusedKernel(kernelName: string): boolean {
  return tf.getKernel(kernelName, tf.getBackend()) !== undefined;
}

/**
 * The kernel's outputs when the active backend registers it, else null: the op then runs its tf-op composition,
 * which stays the reference and the path every other backend takes. Fused kernels have no tfjs gradient: call them
 * inside a customGrad's forward and gradient bodies.
 */
export function runFusedKernel(kernelName: string, inputs: tf.NamedTensorMap, attrs: tf.NamedAttrMap = {}): tf.Tensor[] | null {
  if (!hasFusedKernel(kernelName)) return null;
  const result = tf.engine().runKernel(kernelName, inputs, attrs) as tf.Tensor | tf.Tensor[];
  return Array.isArray(result) ? result : [result];
}
