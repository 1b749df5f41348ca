import * as tf from '@tensorflow/tfjs-core';
import type { Parameter } from '@peft-ts/core';

/** Sets a float parameter from host values in its own shape (float64 values are rounded to float32). */
export function setParameterData(parameter: Parameter, data: ArrayLike<number>): void {
  const tensor = tf.tensor(data instanceof Float32Array ? data : Float32Array.from(data), [...parameter.shape]);
  try {
    parameter.set(tensor);
  } finally {
    tensor.dispose();
  }
}
