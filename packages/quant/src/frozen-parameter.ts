import type * as tf from '@tensorflow/tfjs-core';
import { Parameter } from '@peft-ts/core';

/**
 * A parameter that never trains (quantized storage: codes, scales), taking over `tensor` without a copy.
 * `tensor` is disposed: the parameter's variable holds the only reference to its data.
 */
export function frozenParameter(tensor: tf.Tensor): Parameter {
  const parameter = new Parameter(tensor, { requiresGrad: false });
  tensor.dispose();
  return parameter;
}
