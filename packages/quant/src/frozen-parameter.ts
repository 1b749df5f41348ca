import type * as tf from '@tensorflow/tfjs-core';
import { Parameter } from '@peft-ts/core';

/**
 * A parameter that never trains (quantized storage: codes, scales), taking over `tensor` without a copy.
 * `tensor` is disposed: the parameter's variable holds the only reference to its data. `logicalSize` is what it
 * counts as (see `quantizedParameterCount`): the codes the parameters they stand for, the statistics 0.
 */
export function frozenParameter(tensor: tf.Tensor, options: { readonly logicalSize: number }): Parameter {
  const parameter = new Parameter(tensor, { requiresGrad: false, logicalSize: options.logicalSize });
  tensor.dispose();
  return parameter;
}
